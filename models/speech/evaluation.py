"""`python -m models evaluate speech`: every test set, scored through the service's full audio path.

Each clip goes in as WAV bytes (decode → pause split → loudness normalisation → model → decision), as
a user's would. A known word answered as unknown, or as no speech, counts as wrong. Figures per
source, and per speaker: FSDD by its six named speakers, the Speech Commands sets by how many of
their many speakers (one or a few clips each) were read without a mistake.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shlex
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from models.runtime import describe_device, select_device
from models.speech import COMMAND_LABELS, PACKAGE_DIR, SpeechBundle
from models.speech import data as speech_data
from models.speech.card import update_card_table, update_card_training
from models.speech.train import evaluation_report, load_fsdd, predict_clips

logger = logging.getLogger(__name__)

STRING_SEED = 12  # the three-digit test strings
N_STRINGS = 120
STRING_PAUSE_S = (0.3, 0.6)
WORST_SPEAKERS = 5  # listed per Speech Commands set


def _wav_bytes(clip: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(clip, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def service_results(service, clips: list[np.ndarray], sample_rate: int) -> list[dict]:
    """Each clip through the full service path (decode → pause split → normalise → model)."""
    results = []
    items = [_wav_bytes(c, sample_rate) for c in clips]
    for start in range(0, len(items), service.max_batch):
        results += service.predict_batch(items[start : start + service.max_batch], top_k=1)
    return results


def answer(result: dict) -> str | None:
    """The service's reading of a clip: the label, or None (unknown word, or no speech)."""
    return None if "error" in result else result["label"]


def _rate(flags) -> float:
    flags = list(flags)
    return round(float(np.mean(flags)), 4) if flags else float("nan")


def speaker_summary(speakers: np.ndarray, correct: list[bool]) -> dict:
    """How the clips' speakers fared: count, share read without a mistake, and the worst few."""
    by_speaker: dict[str, list[bool]] = defaultdict(list)
    for speaker, ok in zip(speakers, correct, strict=True):
        by_speaker[str(speaker)].append(bool(ok))
    worst = sorted(by_speaker.items(), key=lambda item: (np.mean(item[1]), -len(item[1]), item[0]))
    return {
        "speakers": len(by_speaker),
        "speakers_all_right": _rate(all(v) for v in by_speaker.values()),
        "worst_speakers": {s: f"{sum(v)}/{len(v)}" for s, v in worst[:WORST_SPEAKERS] if not all(v)},
    }


def word_strings(
    pool: list[tuple[np.ndarray, str]], sample_rate: int, n: int, seed: int, length: int = 3
) -> list[tuple[np.ndarray, list[str]]]:
    """`n` seeded strings of `length` clips of the pool joined by 0.3–0.6 s pauses of near-silence."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        picks = rng.choice(len(pool), length, replace=False)
        pieces, words = [], []
        for j, index in enumerate(picks):
            clip, word = pool[int(index)]
            if j:
                pause = int(rng.uniform(*STRING_PAUSE_S) * sample_rate)
                pieces.append(rng.normal(0, 3e-4, pause).astype(np.float32))  # a quiet room, not digital zero
            pieces.append(clip / (np.abs(clip).max() + 1e-9) * rng.uniform(0.3, 0.9))
            words.append(word)
        out.append((np.concatenate(pieces).astype(np.float32), words))
    return out


def _known_word_entry(name: str, answers, expected, speakers) -> dict:
    correct = [a == y for a, y in zip(answers, expected, strict=True)]
    return {
        "name": name, "n": len(correct), "unit": "clips",
        "accuracy": _rate(correct),
        "wrongly_rejected_rate": _rate(a is None for a in answers),
        **speaker_summary(speakers, correct),
    }  # fmt: skip


def score_test_sets(service, data_dir: Path, batch_size: int) -> tuple[dict, dict]:
    """(metrics of FSDD's test split for the top level, the `test_sets` table)."""
    from services.speech import join_words

    bundle: SpeechBundle = service.bundle
    rate = bundle.sample_rate
    fsdd = load_fsdd(data_dir)
    test_idx = fsdd.split("test")
    fsdd_clips = [fsdd.clips[i] for i in test_idx]
    fsdd_digits = fsdd.digits[test_idx]
    probs = predict_clips(service.model, fsdd_clips, bundle.features, batch_size=batch_size)
    report = evaluation_report(probs[:, :10], fsdd_digits, fsdd.speakers[test_idx])
    fsdd_answers = [answer(r) for r in service_results(service, fsdd_clips, fsdd.sample_rate)]
    test_sets = {
        "fsdd_test": _known_word_entry(
            "FSDD test split (recordings 0–4, 6 speakers)", fsdd_answers, [str(d) for d in fsdd_digits],
            fsdd.speakers[test_idx],
        )
    }  # fmt: skip
    correct = np.array([a == str(d) for a, d in zip(fsdd_answers, fsdd_digits, strict=True)])
    test_sets["fsdd_test"]["per_speaker_accuracy"] = {
        str(s): _rate(correct[fsdd.speakers[test_idx] == s]) for s in sorted(set(fsdd.speakers[test_idx]))
    }

    root = data_dir.parent
    if speech_data.subset_path(root).is_file():
        subset = speech_data.load_subset(root, rate)
        words = subset.extra["words"]
        answers = [answer(r) for r in service_results(service, subset.clips, rate)]
        expected = [speech_data.TRAIN_LABELS[y] for y in subset.labels]
        kinds = {
            "digits": subset.labels < 10,
            "commands": np.isin(words, COMMAND_LABELS),
        }
        for kind, mask in kinds.items():
            index = np.flatnonzero(mask)
            test_sets[f"speech_commands_subset_{kind}"] = _known_word_entry(
                f"speech_commands_subset, the {kind} (real strangers' voices, phone and laptop mics)",
                [answers[i] for i in index], [expected[i] for i in index], subset.groups[index],
            )  # fmt: skip
        known = np.flatnonzero(subset.labels < speech_data.N_WORDS)
        test_sets["speech_commands_subset_known_words"] = {
            "name": "speech_commands_subset, digits and commands together", "n": len(known), "unit": "clips",
            "accuracy": _rate(answers[i] == expected[i] for i in known),
            "wrongly_rejected_rate": _rate(answers[i] is None for i in known),
        }  # fmt: skip
        other = np.flatnonzero(subset.labels == speech_data.OTHER_INDEX)
        other_words = sorted(set(words[other]))
        test_sets["speech_commands_subset_other"] = {
            "name": f"speech_commands_subset, the {len(other_words)} other words ({', '.join(other_words)})",
            "n": len(other), "unit": "clips",
            "rejected_rate": _rate(answers[i] is None for i in other),
            "answered_a_word_rate": _rate(answers[i] is not None for i in other),
            **speaker_summary(subset.groups[other], [answers[i] is None for i in other]),
        }  # fmt: skip
    if speech_data.digits_extra_path(root).is_file():
        extra = speech_data.load_digits_extra(root, "test", rate)
        answers = [answer(r) for r in service_results(service, extra.clips, rate)]
        test_sets["speech_commands_digits_extra_test"] = _known_word_entry(
            f"speech_commands_digits_extra, test split ({len(set(extra.groups))} speakers)",
            answers, [str(y) for y in extra.labels], extra.groups,
        )  # fmt: skip
        pool = [(clip, str(label)) for clip, label in zip(extra.clips, extra.labels, strict=True)]
        strings = word_strings(pool, rate, N_STRINGS, STRING_SEED)
        answers = [answer(r) for r in service_results(service, [w for w, _ in strings], rate)]
        test_sets["digit_strings"] = {
            "name": "three-digit strings of speech_commands_digits_extra test clips, 0.3–0.6 s pauses",
            "n": len(strings), "unit": "strings",
            "exact_match": _rate(a == join_words(w) for a, (_, w) in zip(answers, strings, strict=True)),
        }  # fmt: skip
    return report, test_sets


def evaluate(args: argparse.Namespace, argv: list[str], data_dir: Path, bundle_name: str) -> int:
    from services.speech import SpeechService  # scored through the path users get

    device = select_device()
    bundle = SpeechBundle.from_weights(bundle_name, args.weights)
    service = SpeechService(bundle, device)
    started = time.perf_counter()
    report, test_sets = score_test_sets(service, data_dir, args.batch_size)
    elapsed = time.perf_counter() - started
    metrics = {
        "task": "speech",
        "model": bundle.name,
        "dataset": "Free Spoken Digit Dataset, official test split (recordings 0-4 of 6 speakers x 10 digits)",
        **report,
        # Through the service (pause split, "not a word I know" rejection): a rejected digit counts as wrong.
        "accuracy": test_sets["fsdd_test"]["accuracy"],
        "accuracy_model_only": report["accuracy"],  # the network's best digit on each clip, no rejection
        "vocabulary": {
            "digits": [label for label in bundle.labels if label.isdigit()],
            "commands": [label for label in bundle.labels if label in COMMAND_LABELS],
        },
        "test_sets": test_sets,
        "reject_threshold": bundle.reject_threshold,
        "trained_on": trained_on(bundle),
        "training": training_summary(bundle),
        "held_out": "FSDD recordings 0–4, all of speech_commands_subset, the test split of "
        "speech_commands_digits_extra",
        "command": "python -m models evaluate speech " + shlex.join(argv),
        "device": describe_device(device)["name"],
        "eval_seconds": round(elapsed, 2),
    }
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(metrics, indent=2) + "\n")
    if args.metrics_out.resolve() == (PACKAGE_DIR / "metrics.json").resolve():
        update_card_table(metrics)
        update_card_training(metrics)
    summary = {"task": "speech", "accuracy": metrics["accuracy"]}
    for key, entry in test_sets.items():
        figures = {k: v for k, v in entry.items() if isinstance(v, int | float) and k != "n"}
        logger.info("%s (%d %s): %s", entry["name"], entry["n"], entry["unit"], figures)
        summary.update({f"{key}.{k}": v for k, v in figures.items()})
    print(json.dumps(summary))
    return 0


def training_summary(bundle: SpeechBundle) -> dict:
    """What the weights say about the run that made them (empty for a checkpoint without a record)."""
    training = bundle.training
    keys = ("command", "seeds", "data", "repeats", "extra_repeat", "class_counts_per_epoch", "validation",
            "max_false_reject", "threshold_set_on", "reading_speed", "train_wall_s", "device")  # fmt: skip
    return {key: training[key] for key in keys if key in training}


def trained_on(bundle: SpeechBundle) -> str:
    data = bundle.training.get("data", {})
    if not data:
        return "FSDD recordings 5–49 (six speakers)"
    return (
        f"FSDD recordings 5–46 ({data.get('fsdd_train', 0)} clips), the train split of "
        f"speech_commands_digits_extra ({data.get('extra_train', 0)} digit clips), speech_commands_words "
        f"({data.get('commands_train', 0)} command clips and {data.get('other_words_train', 0)} clips of 15 "
        f"other words), espeak-ng voices ({data.get('synth_train', 0)} clips of digits, commands and other "
        f"words), {data.get('real_other_train', 0)} non-words cut from real training clips and "
        f"{data.get('silence_train', 0)} silence and background-noise clips; recordings 47–49 of FSDD, a "
        "fifth of the Speech Commands speakers, unseen espeak-ng voices and words and a fifth of the noise "
        "were kept for validation."
    )
