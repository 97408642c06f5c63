"""Audio input path shared by the speech service: bytes → mono float32 at the model's rate.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG Vorbis/Opus, MP3 and more) straight from
memory. M4A/AAC/WebM go through the `ffmpeg` command when it is installed (with a time limit);
without it the user is told which formats work. Every limit is checked on the header before the
whole file is decoded, so a long or huge file fails fast instead of hanging.

Then: channels are averaged to mono, the signal is resampled with
`torchaudio.functional.resample` (the same call and kernel settings the speech model's training
augmentation uses), and an energy detector finds the spoken parts: `trim` keeps the span from the
first to the last voiced frame, `segment` splits on pauses (one part per spoken digit).
`normalize_loudness` scales a part to a fixed RMS level with a peak limit.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from services import limits
from services.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    NothingFoundError,
    UnsupportedFormatError,
)

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = limits.SPEECH.max_upload_bytes  # 20 MiB of encoded audio
MAX_SECONDS = 30.0  # longest clip accepted (checked from the header before decoding)
MAX_CHANNELS = 16
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
FFMPEG_TIMEOUT_S = 20.0  # wall-clock limit for one ffmpeg conversion
SUPPORTED_FORMATS = "WAV, FLAC, OGG (Vorbis/Opus) or MP3 (M4A/AAC/WebM when ffmpeg is installed)"

# Energy detector (frames of 20 ms every 10 ms).
FRAME_S = 0.020
HOP_S = 0.010
ABS_FLOOR_DB = -55.0  # frames quieter than this (dBFS) are never speech
REL_THRESHOLD_DB = 30.0  # voiced frames lie within this many dB of the loudest frame
NOISE_MARGIN_DB = 9.0  # ... and this many dB above the estimated noise floor
MIN_DYNAMIC_RANGE_DB = 6.0  # loudest vs quietest frames: steady hum or noise has less than this
MIN_VOICE_RANGE_DB = 3.0  # ... a word cut tight still rises and falls this much; a steady hum does not
SHORT_CLIP_FRAMES = 100  # clips up to about 1 s may be cut tight around one word (no silence in them)
PERIODICITY_THRESHOLD = 0.4  # normalised autocorrelation peak at a 60–400 Hz pitch lag: a voiced frame
MIN_PERIODIC_FRAMES = 3  # a spoken digit has a vowel: at least this many voiced (periodic) frames
MIN_SEGMENT_S = 0.08  # shorter bursts (clicks) are ignored
MIN_PAUSE_S = 0.22  # a gap at least this long separates two digits
# A part whose loudest frame is this far below the loudest part's is background (a voice in another
# room, a breath, a hum), not a word of the speaker's. Chosen on three-digit strings built from the
# training clips: at 18 dB no digit of 2,400 was lost and 23 of 36 stray sounds inside the Speech
# Commands clips were (at 12 dB, 25 digits were lost).
BACKGROUND_BELOW_DB = 18.0
SEGMENT_MARGIN_S = 0.15  # context kept on each side of a part (never past half-way to the next part)
TARGET_RMS_DB = -20.0  # loudness normalisation target (RMS over the part, dBFS)
PEAK_LIMIT = 0.99
NO_SPEECH = "no speech detected: the recording is silent or only noise. Speak closer to the microphone."


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded clip: `samples` is float32 (frames, channels) in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / float(self.sample_rate)


def _looks_like_ffmpeg_only(data: bytes) -> bool:
    """MP4/M4A (`ftyp` box), raw AAC (ADTS sync word) or WebM/Matroska (EBML magic)."""
    head = data[:16]
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return True
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return True
    return head.startswith(b"\x1a\x45\xdf\xa3")


def _looks_like_audio(data: bytes) -> bool:
    head = data[:12]
    return head.startswith((b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM", b".snd")) or (
        len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0
    )


def _check_header(frames: int, sample_rate: int, channels: int) -> None:
    if channels < 1 or channels > MAX_CHANNELS:
        raise UnsupportedFormatError(
            f"the file has {channels} channels; at most {MAX_CHANNELS} are supported"
        )
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise UnsupportedFormatError(
            f"sample rate {sample_rate} Hz is not supported (use {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz)"
        )
    if frames > 0 and frames / sample_rate > MAX_SECONDS:
        raise InputTooLargeError(
            f"the recording is {frames / sample_rate:.1f} s long; the limit is {MAX_SECONDS:.0f} s"
        )


def _decode_soundfile(data: bytes) -> DecodedAudio:
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            frames, rate, channels = handle.frames, handle.samplerate, handle.channels
            codec = f"{handle.format}/{handle.subtype}"
            _check_header(frames, rate, channels)
            # MP3 headers may under- or over-estimate: read at most the limit plus one second.
            limit = int((MAX_SECONDS + 1) * rate)
            samples = handle.read(
                frames=min(frames, limit) if frames > 0 else limit, dtype="float32", always_2d=True
            )
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise _DecodeFailure(str(err)) from err
    if samples.shape[0] / rate > MAX_SECONDS + 1e-6:
        raise InputTooLargeError(f"the recording is longer than the {MAX_SECONDS:.0f} s limit")
    return DecodedAudio(samples, int(rate), codec)


class _DecodeFailure(Exception):
    pass


def _decode_ffmpeg(data: bytes) -> DecodedAudio:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise UnsupportedFormatError(
            "this looks like M4A/AAC/WebM audio, which needs ffmpeg (not installed here). "
            f"Please upload {SUPPORTED_FORMATS.split(' (')[0]}."
        )
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
        "-i", "pipe:0",
        "-t", str(MAX_SECONDS + 1),  # never decode more than the limit (+1 s to detect "too long")
        "-vn", "-ac", "1", "-ar", "16000", "-f", "wav", "pipe:1",
    ]  # fmt: skip
    try:
        result = subprocess.run(  # noqa: S603 - fixed argument list, data goes through stdin
            command, input=data, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise InputTooLargeError(
            f"decoding took longer than {FFMPEG_TIMEOUT_S:.0f} s; try a shorter file"
        ) from err
    if result.returncode != 0 or len(result.stdout) <= 44:
        raise CorruptInputError("the audio file could not be decoded (damaged or unsupported codec)")
    try:
        samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise CorruptInputError("the audio file could not be decoded") from err
    if samples.shape[0] / rate > MAX_SECONDS:
        raise InputTooLargeError(f"the recording is longer than the {MAX_SECONDS:.0f} s limit")
    return DecodedAudio(samples, int(rate), "ffmpeg")


def decode(data: bytes) -> DecodedAudio:
    """Decode audio bytes (any supported container) with size and duration guards."""
    if not data:
        raise EmptyInputError("the audio file is empty (0 bytes)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputTooLargeError(
            f"the file is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB"
        )
    if _looks_like_ffmpeg_only(data) and not _looks_like_audio(data):
        decoded = _decode_ffmpeg(data)
    else:
        try:
            decoded = _decode_soundfile(data)
        except _DecodeFailure as err:
            if _looks_like_audio(data):
                raise CorruptInputError(
                    "the audio file is damaged or truncated and could not be decoded"
                ) from err
            raise UnsupportedFormatError(
                f"this is not an audio file we can read; please upload {SUPPORTED_FORMATS}"
            ) from err
    if decoded.samples.shape[0] == 0:
        raise EmptyInputError("the audio file contains no samples")
    if not np.isfinite(decoded.samples).all():
        raise CorruptInputError("the audio file contains invalid (NaN or infinite) samples")
    return decoded


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) → (frames,) float32 by averaging channels."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(wave: np.ndarray | torch.Tensor, orig_hz: int, new_hz: int) -> np.ndarray:
    """Band-limited resampling with `torchaudio.functional.resample` (sinc, Hann window, width 6).

    An awkward rate whose ratio has a huge numerator (e.g. 44101 Hz) would need a huge kernel;
    such a rate is first rounded to the nearest 10 Hz (a pitch error below 0.02 %).
    """
    tensor = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    orig_hz, new_hz = int(orig_hz), int(new_hz)
    if orig_hz == new_hz:
        return tensor.numpy().copy()
    if orig_hz // math.gcd(orig_hz, new_hz) > 2000:
        orig_hz = max(10, round(orig_hz / 10) * 10)
        if orig_hz == new_hz:
            return tensor.numpy().copy()
    return AF.resample(tensor, orig_hz, new_hz).numpy()


def load_mono(data: bytes, sample_rate: int) -> tuple[np.ndarray, DecodedAudio]:
    """Decode, mix to mono and resample to `sample_rate`; returns the wave and the decode info."""
    decoded = decode(data)
    wave = resample(to_mono(decoded.samples), decoded.sample_rate, sample_rate)
    return np.clip(wave, -1.0, 1.0).astype(np.float32), decoded


def frame_energy_db(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS energy (dBFS) of 20 ms frames every 10 ms; frame i starts at i * hop."""
    frame, hop = int(FRAME_S * sample_rate), int(HOP_S * sample_rate)
    if wave.shape[0] < frame:
        wave = np.pad(wave, (0, frame - wave.shape[0]))
    n_frames = 1 + (wave.shape[0] - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = wave[index].astype(np.float64)
    frames = frames - frames.mean(axis=1, keepdims=True)  # ignore DC offset
    rms = np.sqrt((frames**2).mean(axis=1) + 1e-12)
    return 20 * np.log10(rms + 1e-10)


def voiced_frames(
    wave: np.ndarray,
    sample_rate: int,
    energy: np.ndarray | None = None,
    periodic: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of frames that carry speech energy (empty mask for silence or steady noise).
    `energy` is `frame_energy_db(wave, sample_rate)` when the caller has it already; `periodic`
    (`periodicity(...) >= PERIODICITY_THRESHOLD`) lets a short clip cut tight around a word keep it."""
    energy = frame_energy_db(wave, sample_rate) if energy is None else energy
    peak = float(energy.max())
    floor = float(np.percentile(energy, 10))
    if peak < ABS_FLOOR_DB:
        return np.zeros_like(energy, dtype=bool)
    # A short clip whose quietest frames are still a voice has no pause to measure noise on: its
    # "floor" is the word's own tail, and a margin above it would cut the word away.
    floor_is_voice = False
    if periodic is not None and energy.shape[0] <= SHORT_CLIP_FRAMES:
        quiet = (energy <= floor)[: periodic.shape[0]]
        floor_is_voice = bool(quiet.any()) and float(periodic[: quiet.shape[0]][quiet].mean()) > 0.5
    steady = peak - floor < (MIN_VOICE_RANGE_DB if floor_is_voice else MIN_DYNAMIC_RANGE_DB)
    if steady and energy.shape[0] > 50:
        # Long and steady: hum or noise. (Short tightly-cut clips may have no quiet frames at all.)
        return np.zeros_like(energy, dtype=bool)
    above_noise = -np.inf if floor_is_voice else min(floor + NOISE_MARGIN_DB, peak - 6.0)
    threshold = max(peak - REL_THRESHOLD_DB, ABS_FLOOR_DB, above_noise)
    return energy >= threshold


def periodicity(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per 10 ms hop: the peak of the normalised autocorrelation (40 ms Hann frames, light
    pre-emphasis) at lags of a 60–400 Hz pitch. Vowels score near 1, white or pink noise near 0."""
    frame, hop = int(0.040 * sample_rate), int(HOP_S * sample_rate)
    wave = np.asarray(wave, dtype=np.float64)
    wave = np.append(wave[:1], wave[1:] - 0.5 * wave[:-1])
    if wave.shape[0] < frame:
        wave = np.pad(wave, (0, frame - wave.shape[0]))
    n_frames = 1 + (wave.shape[0] - frame) // hop
    window = np.hanning(frame)
    frames = wave[np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]]
    frames = (frames - frames.mean(axis=1, keepdims=True)) * window
    autocorr = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * frame)) ** 2)[:, :frame]
    window_corr = np.fft.irfft(np.abs(np.fft.rfft(window, 2 * frame)) ** 2)[:frame]
    autocorr = autocorr / (autocorr[:, :1] + 1e-12) / (window_corr / window_corr[0])
    low, high = int(sample_rate / 400), int(sample_rate / 60)
    return autocorr[:, low:high].max(axis=1)


def segment(wave: np.ndarray, sample_rate: int) -> list[tuple[int, int]]:
    """Sample ranges [start, end) of spoken parts, split where the pause is ≥ MIN_PAUSE_S.

    Raises NothingFoundError when nothing speech-like is found.
    """
    energy = frame_energy_db(wave, sample_rate)
    voiced = periodicity(wave, sample_rate) >= PERIODICITY_THRESHOLD
    mask = voiced_frames(wave, sample_rate, energy, voiced)
    hop, frame = int(HOP_S * sample_rate), int(FRAME_S * sample_rate)
    runs: list[list[int]] = []  # [first_frame, last_frame]
    for index in np.flatnonzero(mask):
        if runs and index - runs[-1][1] - 1 < round(MIN_PAUSE_S / HOP_S):
            runs[-1][1] = index
        else:
            runs.append([index, index])
    margin = int(SEGMENT_MARGIN_S * sample_rate)
    parts, loudest = [], []
    for first, last in runs:
        start, end = first * hop, min(wave.shape[0], last * hop + frame)
        if (end - start) / sample_rate < MIN_SEGMENT_S:
            continue
        if int(voiced[first : last + 1].sum()) < MIN_PERIODIC_FRAMES:
            continue  # a click, a breath or a burst of noise: no vowel in it
        parts.append((start, end))
        loudest.append(float(energy[first : last + 1].max()))
    if not parts:
        raise NothingFoundError(NO_SPEECH)
    parts = [
        part
        for part, level in zip(parts, loudest, strict=True)
        if level >= max(loudest) - BACKGROUND_BELOW_DB
    ]
    # Widen each part by the margin (quiet onsets like the "f" of "four"), but stop half-way to a neighbour.
    widened = []
    for i, (start, end) in enumerate(parts):
        low = 0 if i == 0 else (parts[i - 1][1] + start) // 2
        high = wave.shape[0] if i == len(parts) - 1 else (end + parts[i + 1][0]) // 2
        widened.append((max(low, start - margin), min(high, end + margin)))
    return widened


def trim(wave: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """Sample range [start, end) from the first to the last spoken part (silence trimmed)."""
    parts = segment(wave, sample_rate)
    return parts[0][0], parts[-1][1]


def normalize_loudness(wave: np.ndarray, target_db: float = TARGET_RMS_DB) -> np.ndarray:
    """Scale to `target_db` RMS (dBFS), then limit the peak to PEAK_LIMIT."""
    wave = np.asarray(wave, dtype=np.float32)
    wave = wave - wave.mean()
    rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)) + 1e-9)
    gain = 10 ** (target_db / 20) / rms
    peak = float(np.abs(wave).max()) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    return (wave * gain).astype(np.float32)
