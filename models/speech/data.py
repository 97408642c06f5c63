"""Data for the spoken-digit model: the real sets, espeak-ng voices, and the "other" class.

Roles (shared/data/README.md) are enforced here, not left to callers:

- FSDD recordings 5–49 and `speech_commands_digits_extra` rows with `split == "train"` may be trained
  and tuned on; `load_training_sets` never returns anything else;
- FSDD recordings 0–4, `speech_commands_digits_extra` `split == "test"` and all of
  `speech_commands_subset` are test sets: only `load_test_sets` reads them, and only the evaluation
  CLI calls it.

Synthetic voices come from Debian's espeak-ng only (other synthesisers are kept for independent
evaluation). Each synthesised clip is cached as a whole set in one `.npz` keyed by a hash of its
recipe, so a second run does not call espeak-ng again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from models.speech import COMMAND_LABELS, OTHER_LABEL, SILENCE_LABEL, VOCABULARY_LABELS

logger = logging.getLogger(__name__)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN_LABELS = VOCABULARY_LABELS  # digits 0-9, the ten commands, "other", "silence"
COMMAND_INDEX = {word: TRAIN_LABELS.index(word) for word in COMMAND_LABELS}
OTHER_INDEX = TRAIN_LABELS.index(OTHER_LABEL)  # a word that is neither a digit nor a command
SILENCE_INDEX = TRAIN_LABELS.index(SILENCE_LABEL)  # silence or noise without speech
N_WORDS = OTHER_INDEX  # classes 0..N_WORDS-1 are known words


def word_label(word: str) -> int:
    """The class of a spoken word: its digit, its command, or "other"."""
    if word in DIGIT_WORDS:
        return DIGIT_WORDS.index(word)
    return COMMAND_INDEX.get(word, OTHER_INDEX)


# Non-digit words for the "other" class: common English words, chosen without the test sets' word
# lists. Left out on purpose: homophones of digits (won, to, too, for, fore, ate, oh, nein) — they *are*
# the digits to a listener — and the 20 non-digit words of speech_commands_subset, so that every
# rejection measured on that test set is of a word the model never heard.
OTHER_WORDS = tuple(
    """
    apple arm baby back bag ball bank bat beach bean bell belt big black blue boat body bone book boot
    bottle box boy bread break bridge brown brush build bus butter button cake call camera can candle
    car card care carry chair chalk cheese chicken child church city class clean clock cloud coat coffee
    cold come cook cool corn cotton cow cup cut dance dark day deep desk dinner dish doctor door dream
    dress drink drive drop dry duck ear earth egg eleven empty end engine even evening eye face fact fall
    family farm fast father feather field fight film find fine fire fish flag floor flower fly food foot
    forest fork fresh friend fruit full game garden gate gift girl give glass glove gold good grass gray
    great green ground group grow hair hammer hand hat head heart heat heaven help hill hold hole home
    hook horse hot hour hundred ice idea iron island jacket jelly jump key king kitchen knee knife lady
    lake lamp land last late laugh leaf learn leg lemon letter level light line lion lip list little lock
    long look love low lunch machine man map market match meat milk minute mirror money monkey moon
    morning mother mountain mouse mouth music name near neck needle nest net never new news night noise
    nose note number ocean oil old open orange page paint paper park party pen pencil people pepper
    person picture pig pin pipe place plane plant plate play please pocket point potato print pull pump
    push queen question quick quiet rabbit rain red rice ring river road rock roof room root rope rose
    round rule run salt sand school science sea seat second seed send sentence sharp sheep shelf ship
    shirt shoe short shout show side sign silver simple sister sit size skin skirt sky sleep slow small
    smile smoke snake snow soap sock soft song sound soup south space spoon spring square star station
    steam steel stick stone store storm story street string sugar summer sun sweet table tail talk tall
    tea teacher ten thank thick thin thing thirty thousand thread throat thumb thunder ticket time tired
    today tomorrow tongue tooth top town toy train truck twelve twenty umbrella uncle under van vest
    voice wall warm wash watch water wave way weather week wheel whistle white wind window wine winter
    wire woman wood wool word work world yellow young
    """.split()
)
HELD_OUT_SUBSET_WORDS = frozenset(
    "bed bird cat dog down go happy house left marvin no off on right sheila stop tree up wow yes".split()
)

# espeak-ng English accents (gmw voices; the MBROLA "mb/" voices need packages not installed here).
ESPEAK_ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
    "en-us-nyc",
)  # fmt: skip
ESPEAK_VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "croak", "klatt",
    "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "Alex", "Alicia", "Andrea", "Andy", "Annie",
    "Denis", "Gene", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Tweaky",
    "adam", "anika", "announcer", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david",
    "ed", "edward", "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "john", "kaukovalta",
    "linda", "max", "michel", "miguel", "norbert", "paul", "pedro", "quincy", "rob", "robert", "steph",
    "steph2", "steph3", "travis", "victor", "whisper", "whisperf", "zac", "shelby", "sandro", "pablo",
    "marcelo",
)  # fmt: skip


@dataclass
class ClipSet:
    """Clips at one sample rate with integer labels (10 = "other") and a source tag per clip."""

    clips: list[np.ndarray]
    labels: np.ndarray  # (N,) int64
    groups: np.ndarray  # (N,) str: speaker or synthetic voice, for speaker-disjoint validation
    source: str
    extra: dict = field(default_factory=dict)

    def subset(self, index: np.ndarray) -> ClipSet:
        index = np.asarray(index, dtype=int)
        return ClipSet([self.clips[i] for i in index], self.labels[index], self.groups[index], self.source)

    def __len__(self) -> int:
        return len(self.clips)


def _resample(wave: np.ndarray, orig_hz: int, new_hz: int) -> np.ndarray:
    import torch

    from models.speech.train import resample

    return resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), orig_hz, new_hz).numpy()


def _npz_clips(path: Path, sample_rate: int) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    with np.load(path) as archive:
        audio, offsets = archive["audio"], archive["offsets"]
        source_rate = int(archive["sample_rate"])
        columns = {k: archive[k] for k in archive.files if k not in ("audio", "offsets", "sample_rate")}
        clips = [
            _resample(
                audio[offsets[i] : offsets[i + 1]].astype(np.float32) / 32768.0, source_rate, sample_rate
            )
            for i in range(len(offsets) - 1)
        ]
    return clips, columns


def digits_extra_path(data_root: Path) -> Path:
    return Path(data_root) / "speech_commands_digits_extra" / "speech_commands_digits_extra.npz"


def subset_path(data_root: Path) -> Path:
    return Path(data_root) / "speech_commands_subset" / "speech_commands_subset.npz"


def load_digits_extra(data_root: Path, split: str, sample_rate: int) -> ClipSet:
    """Real Speech Commands v0.02 digits; `split` is "train" (trainable) or "test" (test-only)."""
    if split not in ("train", "test"):
        raise ValueError(split)
    clips, columns = _npz_clips(digits_extra_path(data_root), sample_rate)
    index = np.flatnonzero(columns["splits"].astype(str) == split)
    return ClipSet(
        [clips[i] for i in index],
        columns["digits"].astype(np.int64)[index],
        columns["speakers"].astype(str)[index],
        f"speech_commands_digits_extra/{split}",
    )


def load_subset(data_root: Path, sample_rate: int) -> ClipSet:
    """All 300 clips of speech_commands_subset (test-only), labelled by `word_label`."""
    clips, columns = _npz_clips(subset_path(data_root), sample_rate)
    words = columns["words"].astype(str)
    labels = np.array([word_label(w) for w in words], dtype=np.int64)
    return ClipSet(clips, labels, columns["speakers"].astype(str), "speech_commands_subset", {"words": words})


def words_path(data_root: Path) -> Path:
    return Path(data_root) / "speech_commands_words" / "speech_commands_words.npz"


def noise_path(data_root: Path) -> Path:
    return Path(data_root) / "speech_commands_words" / "noise.npz"


def load_words(data_root: Path, sample_rate: int) -> ClipSet:
    """speech_commands_words (train): the ten commands get their class, the other 15 words "other"."""
    clips, columns = _npz_clips(words_path(data_root), sample_rate)
    words = columns["words"].astype(str)
    labels = np.array([word_label(w) for w in words], dtype=np.int64)
    return ClipSet(clips, labels, columns["speakers"].astype(str), "speech_commands_words", {"words": words})


def load_noise(data_root: Path, sample_rate: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """noise.npz: (the 408 one-second silence clips, the two long background recordings)."""
    with np.load(noise_path(data_root)) as archive:
        rate = int(archive["sample_rate"])

        def cut(audio_key: str, offsets_key: str) -> list[np.ndarray]:
            audio, offsets = archive[audio_key], archive[offsets_key]
            return [
                _resample(audio[offsets[i] : offsets[i + 1]].astype(np.float32) / 32768.0, rate, sample_rate)
                for i in range(len(offsets) - 1)
            ]

        return cut("silence_audio", "silence_offsets"), cut("background_audio", "background_offsets")


# ---- espeak-ng ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthSpec:
    text: str
    voice: str  # e.g. "en-gb-scotland+f3"
    speed: int  # words per minute
    pitch: int  # 0-99
    label: int


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(spec: SynthSpec, sample_rate: int) -> np.ndarray:
    """One utterance from espeak-ng, resampled to `sample_rate`."""
    command = [
        "espeak-ng",
        "-v",
        spec.voice,
        "-s",
        str(spec.speed),
        "-p",
        str(spec.pitch),
        "--stdout",
        spec.text,
    ]
    result = subprocess.run(command, capture_output=True, timeout=30, check=True)  # noqa: S603 - fixed argv
    wave, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return _resample(wave, rate, sample_rate)


def split_other_words(validation_share: float = 0.15) -> tuple[list[str], list[str]]:
    """Non-digit words for training and for validation (disjoint, fixed by a hash of the word), so the
    rejection threshold is chosen on words the network never heard, as users' words will be."""
    train, validation = [], []
    for word in OTHER_WORDS:
        if word in HELD_OUT_SUBSET_WORDS:
            continue
        bucket = int(hashlib.sha256(f"other-words:{word}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (validation if bucket < validation_share else train).append(word)
    return train, validation


def synth_plan(
    n_digit_voices: int, n_other: int, seed: int, words: list[str], n_command_voices: int = 0
) -> list[SynthSpec]:
    """A seeded recipe: every digit in `n_digit_voices` random voices, `n_other` clips of `words`, then
    every command in `n_command_voices` voices (drawn after the rest, so older recipes stay cached)."""
    rng = np.random.default_rng(seed)

    def voice() -> tuple[str, int, int]:
        accent = ESPEAK_ACCENTS[int(rng.integers(len(ESPEAK_ACCENTS)))]
        variant = ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))]
        return (
            (f"{accent}+{variant}" if variant else accent),
            int(rng.integers(110, 230)),
            int(rng.integers(15, 90)),
        )

    specs = []
    for _ in range(n_digit_voices):
        name, speed, pitch = voice()
        specs += [SynthSpec(word, name, speed, pitch, d) for d, word in enumerate(DIGIT_WORDS)]
    for _ in range(n_other):
        name, speed, pitch = voice()
        specs.append(SynthSpec(words[int(rng.integers(len(words)))], name, speed, pitch, OTHER_INDEX))
    for _ in range(n_command_voices):
        name, speed, pitch = voice()
        specs += [SynthSpec(word, name, speed, pitch, COMMAND_INDEX[word]) for word in COMMAND_LABELS]
    return specs


def synthetic_set(specs: list[SynthSpec], sample_rate: int, cache_dir: Path, progress=None) -> ClipSet:
    """Synthesise `specs` (or read them from the cache) → ClipSet grouped by voice."""
    recipe = json.dumps([[s.text, s.voice, s.speed, s.pitch, s.label] for s in specs])
    key = hashlib.sha256(f"{sample_rate}|{recipe}".encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"espeak_{key}.npz"
    if cache.is_file():
        with np.load(cache) as archive:
            offsets, audio = archive["offsets"], archive["audio"]
            clips = [audio[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    else:
        if not espeak_available():
            raise FileNotFoundError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        iterator = progress(specs, len(specs), "espeak-ng") if progress else specs
        clips = [synthesize(spec, sample_rate) for spec in iterator]
        cache.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [c.shape[0] for c in clips])
        np.savez(cache, audio=np.concatenate(clips).astype(np.float32), offsets=offsets)
        logger.info("cached %d espeak-ng clips in %s", len(clips), cache)
    return ClipSet(
        clips,
        np.array([s.label for s in specs], dtype=np.int64),
        np.array([s.voice for s in specs]),
        "espeak-ng",
        {"texts": np.array([s.text for s in specs])},
    )


def speaker_bucket(speaker: str) -> float:
    """A fixed number in [0, 1) per speaker, for speaker-disjoint validation splits."""
    return int(hashlib.sha256(f"speech-val:{speaker}".encode()).hexdigest()[:8], 16) / 0x100000000


def trim_to_speech(clip: np.ndarray, sample_rate: int, margin_s: float = 0.15) -> np.ndarray:
    """Cut leading and trailing non-speech, keeping `margin_s` each side, as the service's pause detector
    does for an upload; a 1 s Speech Commands window or an espeak-ng file with a long tail then looks
    like what the network is given at inference."""
    hop = int(0.010 * sample_rate)
    frame = 2 * hop
    if clip.shape[0] < 4 * frame:
        return clip
    n = 1 + (clip.shape[0] - frame) // hop
    frames = clip[np.arange(frame)[None, :] + hop * np.arange(n)[:, None]].astype(np.float64)
    energy = 10 * np.log10(((frames - frames.mean(axis=1, keepdims=True)) ** 2).mean(axis=1) + 1e-12)
    floor = float(np.percentile(energy, 10))
    threshold = max(float(energy.max()) - 35.0, min(floor + 9.0, float(energy.max()) - 6.0))
    voiced = np.flatnonzero(energy >= threshold)
    margin = int(margin_s * sample_rate)
    start = max(0, int(voiced[0]) * hop - margin)
    end = min(clip.shape[0], int(voiced[-1]) * hop + frame + margin)
    return clip[start:end]


# ---- non-digit speech cut from real training clips -------------------------------------------
def real_other_clips(
    clips: list[np.ndarray], labels: np.ndarray, n: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Speech-like sounds that are not known words, made from real recordings (real voices and mics):
    time-reversed words, and chimeras of the first part of one word and the last part of a *different*
    word (two halves of the same word from two speakers still sound like that word, so such a pair
    would teach the model to reject the word itself)."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("chimeras need recordings of at least two different words")
    out = []
    for k in range(n):
        i = int(rng.integers(len(clips)))
        a = clips[i]
        if k % 2 == 0:
            out.append(np.ascontiguousarray(a[::-1]))
        else:
            others = np.flatnonzero(labels != labels[i])
            b = clips[int(others[int(rng.integers(len(others)))])]
            cut_a = int(a.shape[0] * rng.uniform(0.35, 0.6))
            cut_b = int(b.shape[0] * rng.uniform(0.4, 0.65))
            fade = min(80, cut_a, b.shape[0] - cut_b)
            head, tail = a[:cut_a].copy(), b[cut_b:].copy()
            if fade > 0:
                ramp = np.linspace(0, 1, fade, dtype=np.float32)
                head[-fade:] *= ramp[::-1]
                tail[:fade] *= ramp
            scale = (np.sqrt(np.mean(head**2)) + 1e-6) / (np.sqrt(np.mean(tail**2)) + 1e-6)
            out.append(np.concatenate([head, tail * scale]).astype(np.float32))
    return out
