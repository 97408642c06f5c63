"""Validation of reading unsure parts of a number as digits (services.speech.DIGIT_CONTEXT_MIN).

    python -m models.speech.digit_context --data-dir ../shared/data/fsdd

Builds seeded recordings from validation clips only (the speakers `training_run` holds out): three-digit
strings from `speech_commands_digits_extra` train's validation speakers, and the same with one digit
replaced by an unknown word of `speech_commands_words`' validation speakers. Each is read through the
service with the rule off and with it on for one or two digits around, and the file records how many
numbers are read exactly, how often the unknown word is taken for a digit, and what becomes of every
validation clip said alone (a clip split into parts can meet the rule too). No test set is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from models.speech import PACKAGE_DIR, SpeechBundle
from models.speech import data as speech_data
from models.speech.evaluation import answer, service_results, word_strings
from models.speech.training_run import _by_speaker

OUT_PATH = PACKAGE_DIR / "experiments" / "digit_context.validation.json"
N_STRINGS = 300
SEED = 77


def validation_recordings(data_root: Path, sample_rate: int) -> tuple[list, list, list]:
    """(digit strings, strings of two digits and one unknown word, single clips): lists of (wave, words);
    the single clips are every validation digit, command and unknown word on its own (words None)."""
    extra = speech_data.load_digits_extra(data_root, "train", sample_rate)
    _, val = _by_speaker(extra)
    digits = [(extra.clips[i], str(extra.labels[i])) for i in val]
    words = speech_data.load_words(data_root, sample_rate)
    _, word_val = _by_speaker(words)
    others = [(words.clips[i], None) for i in word_val if words.labels[i] == speech_data.OTHER_INDEX]
    rng = np.random.default_rng(SEED)
    mixed = []
    for k in range(N_STRINGS):
        first, second = rng.choice(len(digits), 2, replace=False)
        trio = [digits[first], digits[second], others[int(rng.integers(len(others)))]]
        mixed.append(word_strings(trio, sample_rate, 1, SEED + k)[0])  # the three in a seeded order
    commands = [
        (words.clips[i], [speech_data.TRAIN_LABELS[int(words.labels[i])]])
        for i in word_val
        if words.labels[i] != speech_data.OTHER_INDEX
    ]
    singles = [(clip, [word]) for clip, word in digits] + commands + [(clip, None) for clip, _ in others]
    return word_strings(digits, sample_rate, N_STRINGS, SEED), mixed, singles


def measure(service, digit_strings: list, mixed: list, singles: list) -> dict:
    from services.speech import join_words

    rate = service.sample_rate
    read = [answer(r) for r in service_results(service, [w for w, _ in digit_strings], rate)]
    exact = float(
        np.mean([a == join_words(words) for a, (_, words) in zip(read, digit_strings, strict=True)])
    )
    mixed_results = service_results(service, [w for w, _ in mixed], rate)
    taken = [len(r.get("words", [])) == 3 for r in mixed_results]
    single = [answer(r) for r in service_results(service, [w for w, _ in singles], rate)]
    known = [a == join_words(words) for a, (_, words) in zip(single, singles, strict=True) if words]
    rejected = [a is None for a, (_, words) in zip(single, singles, strict=True) if not words]
    return {
        "digit_strings_exact": round(exact, 4),
        "unknown_word_read_as_digit": round(float(np.mean(taken)), 4),
        "single_known_words_right": round(float(np.mean(known)), 4),
        "single_unknown_words_rejected": round(float(np.mean(rejected)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    from services.speech import DIGIT_CONTEXT_MIN, SpeechService

    parser = argparse.ArgumentParser(
        prog="python -m models.speech.digit_context", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="the FSDD folder; the Speech Commands sets sit beside it"
    )
    parser.add_argument("--out", type=Path, default=OUT_PATH)
    args = parser.parse_args(argv)
    root = args.data_dir.parent
    if not speech_data.words_path(root).is_file():
        print(f"error: speech_commands_words not found beside {args.data_dir}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    bundle = SpeechBundle.from_weights("speech", PACKAGE_DIR / "speech_gru.safetensors")
    device = torch.device("cpu")
    digit_strings, mixed, singles = validation_recordings(root, bundle.sample_rate)
    rows = {}
    for minimum in (None, 1, 2):
        service = SpeechService(bundle, device, digit_context_min=minimum)
        rows["off" if minimum is None else f"at least {minimum} digit(s) around"] = measure(
            service, digit_strings, mixed, singles
        )
        print(json.dumps(rows), flush=True)
    record = {
        "command": "python -m models.speech.digit_context "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "what": __doc__.split("\n\n")[2].replace("\n", " "),
        "n_strings": N_STRINGS,
        "seed": SEED,
        "reject_threshold": bundle.reject_threshold,
        "rows": rows,
        "shipped": DIGIT_CONTEXT_MIN,
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
