"""Audio path: decoding of every format, guards, resampling, mono, trimming and segmentation."""

from __future__ import annotations

import io
import shutil
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from services import audio_io
from services.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    NothingFoundError,
    UnsupportedFormatError,
)
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "models" / "speech" / "examples"


def vowel(seconds: float, rate: int, f0: float = 120.0) -> np.ndarray:
    """A voiced, vowel-like sound: harmonics of f0 under a smooth envelope."""
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12) if f0 * k < rate / 2)
    envelope = np.sin(np.pi * np.linspace(0, 1, t.shape[0])) ** 0.5
    return (0.3 * wave / np.abs(wave).max() * envelope).astype(np.float32)


def encode(wave: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def three_part_clip(rate: int = 16_000, pause: float = 0.4) -> np.ndarray:
    silence = np.zeros(int(pause * rate), dtype=np.float32)
    parts = [
        silence,
        vowel(0.35, rate, 110),
        silence,
        vowel(0.3, rate, 140),
        silence,
        vowel(0.4, rate, 125),
        silence,
    ]
    return np.concatenate(parts)


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "channels"),
    [
        ("WAV", "PCM_16", 8_000, 1),
        ("WAV", "FLOAT", 16_000, 1),
        ("WAV", "PCM_24", 22_050, 2),
        ("FLAC", "PCM_16", 44_100, 2),
        ("OGG", "VORBIS", 48_000, 1),
        ("OGG", "OPUS", 48_000, 2),
        ("MP3", "MPEG_LAYER_III", 44_100, 1),
    ],
)
def test_decodes_every_soundfile_format(fmt, subtype, rate, channels):
    wave = vowel(0.5, rate)
    samples = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    data = encode(samples, rate, fmt, subtype)
    mono, decoded = audio_io.load_mono(data, 8_000)
    assert decoded.sample_rate == rate
    assert decoded.samples.shape[1] == channels
    assert abs(mono.shape[0] / 8_000 - 0.5) < 0.06  # codecs may pad a little
    assert np.abs(mono).max() > 0.1


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_decodes_m4a_through_ffmpeg(tmp_path):
    source = tmp_path / "in.wav"
    sf.write(source, vowel(0.6, 16_000), 16_000)
    target = tmp_path / "out.m4a"
    subprocess.run(  # noqa: S603
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-c:a", "aac", str(target)],  # noqa: S607
        check=True, timeout=60,
    )  # fmt: skip
    mono, decoded = audio_io.load_mono(target.read_bytes(), 8_000)
    assert decoded.codec == "ffmpeg"
    assert abs(mono.shape[0] / 8_000 - 0.6) < 0.1


def test_m4a_without_ffmpeg_names_the_supported_formats(monkeypatch):
    monkeypatch.setattr(audio_io.shutil, "which", lambda _: None)
    fake_m4a = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + b"\x00" * 64
    with pytest.raises(UnsupportedFormatError, match="ffmpeg"):
        audio_io.decode(fake_m4a)


def test_resampling_keeps_the_pitch():
    rate = 44_100
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = audio_io.resample(tone, rate, 8_000)
    assert out.shape[0] == 8_000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 8_000 / out.shape[0] - 440) < 2


def test_awkward_rate_is_rounded_not_exploded():
    wave = np.random.default_rng(0).standard_normal(44_101).astype(np.float32)
    started = time.perf_counter()
    out = audio_io.resample(wave, 44_101, 8_000)
    assert time.perf_counter() - started < 5
    assert abs(out.shape[0] - 8_000) <= 2


def test_stereo_is_averaged_to_mono():
    left = np.ones(100, dtype=np.float32)
    right = -np.ones(100, dtype=np.float32) * 0.5
    assert np.allclose(audio_io.to_mono(np.stack([left, right], axis=1)), 0.25)


def test_empty_and_zero_frame_files():
    with pytest.raises(EmptyInputError):
        audio_io.decode(b"")
    with pytest.raises(EmptyInputError):
        audio_io.decode(encode(np.zeros(0, dtype=np.float32), 8_000, "WAV", "PCM_16"))


def test_corrupt_and_unsupported_bytes():
    good = encode(vowel(0.3, 8_000), 8_000, "FLAC", "PCM_16")
    with pytest.raises(CorruptInputError):
        audio_io.decode(good[:4] + bytes(200) + good[300:])
    with pytest.raises(CorruptInputError):
        audio_io.decode(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk" + bytes(50))
    with pytest.raises(UnsupportedFormatError):
        audio_io.decode(b"this is a text file, not audio" * 10)
    with pytest.raises(UnsupportedFormatError):
        audio_io.decode(b"\x89PNG\r\n\x1a\n" + bytes(100))


def test_too_long_is_rejected_from_the_header_quickly():
    data = encode(np.zeros(int(8_000 * (audio_io.MAX_SECONDS + 5)), dtype=np.int16), 8_000, "WAV", "PCM_16")
    started = time.perf_counter()
    with pytest.raises(InputTooLargeError, match="limit"):
        audio_io.decode(data)
    assert time.perf_counter() - started < 1.0


def test_too_many_bytes_is_rejected_before_decoding():
    with pytest.raises(InputTooLargeError):
        audio_io.decode(b"RIFF" + bytes(audio_io.MAX_UPLOAD_BYTES))


def test_silence_and_steady_noise_are_not_speech():
    rate = 8_000
    rng = np.random.default_rng(0)
    with pytest.raises(NothingFoundError, match="no speech"):
        audio_io.segment(np.zeros(rate, dtype=np.float32), rate)
    with pytest.raises(NothingFoundError, match="no speech"):
        audio_io.segment((rng.standard_normal(2 * rate) * 0.1).astype(np.float32), rate)
    spectrum = np.fft.rfft(rng.standard_normal(2 * rate))
    pink = np.fft.irfft(spectrum / np.sqrt(np.arange(1, spectrum.shape[0] + 1)), 2 * rate)
    with pytest.raises(NothingFoundError):
        audio_io.segment((pink / np.abs(pink).max() * 0.3).astype(np.float32), rate)
    hum = (0.3 * np.sin(2 * np.pi * 60 * np.arange(2 * rate) / rate)).astype(np.float32)
    with pytest.raises(NothingFoundError):
        audio_io.segment(hum, rate)


def test_segmentation_splits_on_pauses():
    rate = 8_000
    clip = three_part_clip(rate)
    parts = audio_io.segment(clip, rate)
    assert len(parts) == 3
    starts = [s / rate for s, _ in parts]
    assert starts[0] == pytest.approx(0.4 - audio_io.SEGMENT_MARGIN_S, abs=0.08)
    start, end = audio_io.trim(clip, rate)
    assert start == parts[0][0] and end == parts[-1][1]


def test_segmentation_keeps_one_part_for_each_bundled_example():
    for path in sorted(EXAMPLES.glob("*.wav")):
        wave, rate = audio_io.load_mono(path.read_bytes(), 8_000)
        parts = audio_io.segment(wave, 8_000)
        expected = 3 if path.stem.startswith("string_") else 1
        assert len(parts) == expected, path.name


def test_loudness_normalisation():
    quiet = vowel(0.5, 8_000) * 0.01
    out = audio_io.normalize_loudness(quiet)
    rms_db = 20 * np.log10(np.sqrt(np.mean(out**2)))
    assert rms_db == pytest.approx(audio_io.TARGET_RMS_DB, abs=0.5) or np.abs(out).max() == pytest.approx(
        audio_io.PEAK_LIMIT, abs=1e-3
    )
    assert np.abs(out).max() <= audio_io.PEAK_LIMIT + 1e-6


def _joined_with_pauses(pause_s: float, snr_db: float | None, seed: int = 0) -> np.ndarray:
    """Three bundled digits (different speakers) joined by `pause_s` pauses, in white noise at `snr_db`."""
    rng = np.random.default_rng(seed)
    pieces = []
    for name in ("2_jackson_0.wav", "6_theo_2.wav", "9_lucas_4.wav"):
        wave, _ = audio_io.load_mono((EXAMPLES / name).read_bytes(), 8_000)
        start, end = audio_io.trim(wave, 8_000)  # the clips' own silences would lengthen the pauses
        word = audio_io.normalize_loudness(wave[start:end], -25.0)  # one speaker, one level
        pieces += [word, np.zeros(int(pause_s * 8_000), np.float32)]
    joined = np.concatenate([np.zeros(2_000, np.float32), *pieces[:-1], np.zeros(2_000, np.float32)])
    if snr_db is not None:
        speech_rms = np.sqrt(np.mean(np.concatenate(pieces[::2]) ** 2))
        joined = joined + rng.standard_normal(joined.shape[0]).astype(np.float32) * speech_rms / 10 ** (
            snr_db / 20
        )
    return joined.astype(np.float32)


@pytest.mark.parametrize(
    ("pause_s", "snr_db"), [(0.25, None), (0.25, 20.0), (0.25, 10.0), (0.3, 10.0), (0.5, 5.0)]
)
def test_segmentation_survives_short_pauses_and_noise(pause_s, snr_db):
    parts = audio_io.segment(_joined_with_pauses(pause_s, snr_db), 8_000)
    assert len(parts) == 3, [(round(a / 8_000, 2), round(b / 8_000, 2)) for a, b in parts]


@pytest.mark.parametrize(("level_db", "kept"), [(-6.0, 2), (-12.0, 2), (-24.0, 1), (-30.0, 1)])
def test_a_much_quieter_voiced_sound_is_background_not_a_word(level_db, kept):
    """A word, a pause, then a voice `level_db` below it: kept as a second word unless it is more
    than BACKGROUND_BELOW_DB quieter (a voice in another room, not the speaker's next digit)."""
    rate = 8_000
    silence = np.zeros(int(0.4 * rate), np.float32)
    far = vowel(0.3, rate, 180) * np.float32(10 ** (level_db / 20))
    clip = np.concatenate([silence, vowel(0.35, rate, 110), silence, far, silence])
    parts = audio_io.segment(clip, rate)
    assert len(parts) == kept
    assert parts[0][0] / rate == pytest.approx(0.4 - audio_io.SEGMENT_MARGIN_S, abs=0.08)


def _tight_quiet_word(seconds: float, decay_db: float, peak: float = 0.02) -> np.ndarray:
    """A quiet vowel cut tight: voiced from the first sample to the last, fading by `decay_db`."""
    rate = 8_000
    word = vowel(seconds, rate, 115) / np.float32(
        np.sin(np.pi * np.linspace(0, 1, int(seconds * rate))) ** 0.5 + 1e-3
    )
    word = word / np.abs(word).max() * np.logspace(0, -decay_db / 20, word.shape[0])
    return (word * peak).astype(np.float32)


@pytest.mark.parametrize(("seconds", "decay_db"), [(0.45, 12.0), (0.6, 5.0)])
def test_a_quiet_word_cut_tight_is_still_speech(seconds, decay_db):
    """No pause in the clip to measure noise on: its quietest frames are the word's own tail."""
    parts = audio_io.segment(_tight_quiet_word(seconds, decay_db), 8_000)
    assert len(parts) == 1
    assert (parts[0][1] - parts[0][0]) / 8_000 >= 0.8 * seconds


def test_a_steady_hum_under_a_second_is_still_no_speech():
    rate = 8_000
    hum = (0.3 * np.sin(2 * np.pi * 120 * np.arange(int(0.8 * rate)) / rate)).astype(np.float32)
    with pytest.raises(NothingFoundError):
        audio_io.segment(hum, rate)
