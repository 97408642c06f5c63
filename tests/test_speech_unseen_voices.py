"""Synthetic voices from Debian's espeak-ng, through the full service path.

espeak-ng is one of the training sources (random voice/variant/speed/pitch draws, see
models/speech/data.py), so these voices are not unseen: the test checks that the engine's voices,
re-encoded as FLAC/OGG at other rates, keep working. The independent synthetic evaluation uses other
engines, which training never touches.

Run directly for the full report (all voices, FLAC/OGG conversions and digit strings):
    .venv/bin/python tests/test_speech_unseen_voices.py
The pytest version uses a smaller voice set and skips when espeak-ng is not installed.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services import audio_io  # noqa: E402

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
BASES = ["en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4"]
QUICK_VOICES = ["en-us+m3", "en+f2", "en-gb-scotland+m5"]
ESPEAK = shutil.which("espeak-ng")


def espeak_wave(voice: str, text: str, speed: int = 150) -> tuple[np.ndarray, int]:
    """Synthesise `text` with espeak-ng into memory (22.05 kHz mono float32)."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(  # noqa: S603
            [ESPEAK, "-v", voice, "-s", str(speed), "-w", out.name, text],
            check=True,
            capture_output=True,
            timeout=30,
        )
        wave, rate = sf.read(out.name, dtype="float32")
    return wave, rate


def encode(wave: np.ndarray, rate: int, fmt: str, channels: int = 1, out_rate: int | None = None) -> bytes:
    """Resample to `out_rate`, duplicate to `channels` (with a small inter-channel difference), encode."""
    if out_rate and out_rate != rate:
        wave = audio_io.resample(wave, rate, out_rate)
        rate = out_rate
    if channels == 2:
        wave = np.stack([wave, 0.8 * wave], axis=1)
    buffer = io.BytesIO()
    subtype = {"FLAC": "PCM_24", "OGG": "VORBIS", "WAV": "PCM_16"}[fmt]
    sf.write(buffer, np.clip(wave, -1, 1), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def run_voices(
    service, voices: list[str], fmt: str = "WAV", out_rate: int | None = None, channels: int = 1
) -> dict:
    correct, total, errors, per_voice = 0, 0, [], {}
    for voice in voices:
        hits = 0
        for digit, word in enumerate(WORDS):
            wave, rate = espeak_wave(voice, word)
            result = service.predict(encode(wave, rate, fmt, channels, out_rate))
            ok = result["label"] == str(digit)
            hits += ok
            if not ok:
                errors.append(f"{voice}:{word}->{result['label']}")
        per_voice[voice] = hits / len(WORDS)
        correct += hits
        total += len(WORDS)
    return {"accuracy": round(correct / total, 4), "n": total, "per_voice": per_voice, "errors": errors}


def digit_string(voice: str, digits: str, pause_s: float = 0.45) -> tuple[np.ndarray, int]:
    pieces, rate = [], 22_050
    for d in digits:
        wave, rate = espeak_wave(voice, WORDS[int(d)])
        pieces += [wave, np.zeros(int(pause_s * rate), dtype=np.float32)]
    return np.concatenate(pieces), rate


@pytest.fixture(scope="module")
def service():
    from services.speech import load_service

    return load_service()


@pytest.mark.slow
@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed")
def test_espeak_voices_mostly_recognised(service):
    report = run_voices(service, QUICK_VOICES, fmt="FLAC", out_rate=44_100, channels=2)
    assert report["accuracy"] >= 0.75, report  # a plain GRU without augmentation gets about 0.75


@pytest.mark.slow
@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed")
def test_espeak_digit_string_in_ogg_48k(service):
    wave, rate = digit_string("en-us+m3", "427")
    result = service.predict(encode(wave, rate, "OGG", out_rate=48_000))
    assert result["n_digits"] == 3
    assert result["label"] == "427", result


def main() -> int:
    if ESPEAK is None:
        print("espeak-ng not installed", file=sys.stderr)
        return 1
    from services.speech import load_service

    service = load_service()
    voices = [f"{base}+{variant}" for base in BASES for variant in VARIANTS]
    report = {
        "voices": len(voices),
        "wav_22k": run_voices(service, voices),
        "flac_44k_stereo": run_voices(service, voices[::5], fmt="FLAC", out_rate=44_100, channels=2),
        "ogg_48k": run_voices(service, voices[::5], fmt="OGG", out_rate=48_000),
    }
    strings = []
    rng = np.random.default_rng(0)
    for voice in voices[::3]:
        digits = "".join(str(d) for d in rng.integers(0, 10, size=3))
        wave, rate = digit_string(voice, digits)
        strings.append((voice, digits, service.predict(encode(wave, rate, "OGG", out_rate=48_000))["label"]))
    report["strings_ogg_48k"] = {
        "exact": round(float(np.mean([d == heard for _, d, heard in strings])), 4),
        "n": len(strings),
        "misses": [f"{v}:{d}->{h}" for v, d, h in strings if d != h],
    }
    for key in ("wav_22k", "flac_44k_stereo", "ogg_48k"):
        report[key].pop("per_voice") if key != "wav_22k" else None
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
