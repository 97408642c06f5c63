"""Training and evaluation of the spoken-digit recognizer (digits 0–9 plus "other").

Real voices are few (FSDD's six speakers, 167 Speech Commands speakers, espeak-ng's synthetic ones),
so every training example is re-synthesised on the fly to look like another voice on another
microphone in another room: edge cropping and silence padding (imperfect trimming, time shift),
speed/pitch change by resampling, a detour through another sample rate (the same
`torchaudio.functional.resample` call the app uses on uploads), band limits (telephone 300–3,400 Hz,
a cheap laptop mic), synthetic room reverb, white/pink/brown noise and babble from other training
clips at 0–30 dB SNR, gain, hard and soft clipping, then VTLP frequency warping of the spectrogram
and SpecAugment masks on the features.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from torch import nn

from models.runtime import inference_context, select_device, set_seed
from models.speech import DIGIT_LABELS, DigitRecognizer, FeatureConfig, LogMelFrontend, ModelConfig

logger = logging.getLogger(__name__)

TEST_INDICES = range(0, 5)  # FSDD's official split: recordings 0–4 of every speaker and digit
OTHER_RATES = (11_025, 16_000, 22_050, 44_100, 48_000)
# Band limits: 2.5–3.2 kHz (a muffled microphone) and, for a 16 kHz model, 8 kHz audio such as FSDD's.
NARROW_RATES = (5_000, 6_000, 6_400, 8_000, 11_025)


@dataclass
class FsddData:
    clips: list[np.ndarray]  # float32 in [-1, 1] at 8 kHz
    digits: np.ndarray  # (N,) int64
    speakers: np.ndarray  # (N,) str
    indices: np.ndarray  # (N,) int
    filenames: np.ndarray  # (N,) str
    sample_rate: int

    def split(self, name: str) -> np.ndarray:
        is_test = np.isin(self.indices, list(TEST_INDICES))
        return np.flatnonzero(is_test if name == "test" else ~is_test)


def load_fsdd(data_dir: str | Path) -> FsddData:
    """Read `fsdd.npz` (see the dataset's PROVENANCE.md for the layout)."""
    path = Path(data_dir) / "fsdd.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found. Point --data-dir at a folder holding fsdd.npz (the Free Spoken Digit "
            "Dataset repacked as described in shared/data/fsdd/PROVENANCE.md)."
        )
    with np.load(path) as archive:
        audio, offsets = archive["audio"], archive["offsets"]
        clips = [
            audio[offsets[i] : offsets[i + 1]].astype(np.float32) / 32768.0 for i in range(len(offsets) - 1)
        ]
        return FsddData(
            clips=clips,
            digits=archive["digits"].astype(np.int64),
            speakers=archive["speakers"].astype(str),
            indices=archive["indices"].astype(int),
            filenames=archive["filenames"].astype(str),
            sample_rate=int(archive["sample_rate"]),
        )


def resample(wave: torch.Tensor, orig_hz: int, new_hz: int) -> torch.Tensor:
    """The resampling call of services.audio_io.resample (sinc, width 6, same rounding rule)."""
    if orig_hz == new_hz:
        return wave
    if orig_hz // math.gcd(orig_hz, new_hz) > 2000:
        orig_hz = max(10, round(orig_hz / 10) * 10)
    return AF.resample(wave, orig_hz, new_hz)


@dataclass
class AugmentConfig:
    """Probabilities and ranges of each augmentation. An FSDD-only run with everything stronger
    (speed 0.8–1.3, SNR from 5 dB, no clean examples) reached only 0.95 on FSDD's clean test split, so
    a fifth of the examples stay clean; the rest cover the rooms and microphones of real users."""

    p_clean: float = 0.2  # examples left as recorded (no waveform or spectrogram augmentation)
    p_crop: float = 0.5
    max_crop_start_s: float = 0.03
    max_crop_end_s: float = 0.12
    p_speed: float = 0.6
    speed_range: tuple[float, float] = (0.85, 1.15)  # >1 = faster and higher (±15 %)
    p_other_rate: float = 0.2
    p_bandlimit: float = 0.1
    p_telephone: float = 0.1  # 300–3,400 Hz band
    p_laptop: float = 0.15  # weak bass, a resonance and a soft top: a cheap built-in microphone
    p_reverb: float = 0.25
    p_pad: float = 0.6
    max_pad_s: float = 0.25
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (0.0, 30.0)
    p_background: float = 0.35  # real background noise (Speech Commands' rooms) mixed underneath
    background_snr_db: tuple[float, float] = (0.0, 25.0)
    p_babble: float = 0.15  # other training clips mixed underneath (needs a babble pool)
    babble_snr_db: tuple[float, float] = (5.0, 25.0)
    p_clip: float = 0.05
    p_soft_clip: float = 0.05
    p_vtlp: float = 0.6
    vtlp_range: tuple[float, float] = (0.88, 1.15)
    freq_masks: int = 1
    max_freq_mask: int = 5
    time_masks: int = 1
    max_time_mask_frac: float = 0.08


class Augmenter:
    """Waveform-level augmentation; one numpy Generator, so a seed repeats a run."""

    def __init__(
        self,
        config: AugmentConfig,
        sample_rate: int,
        rng: np.random.Generator,
        babble_pool: list[np.ndarray] | None = None,
        background_pool: list[np.ndarray] | None = None,
    ) -> None:
        self.config, self.sr, self.rng = config, sample_rate, rng
        self.babble_pool = babble_pool or []
        self.background_pool = background_pool or []

    def background(self, n: int) -> np.ndarray:
        """`n` samples of a real recording of a room (a random stretch, looped if too short)."""
        source = self.background_pool[int(self.rng.integers(len(self.background_pool)))].astype(np.float64)
        start = int(self.rng.integers(max(1, source.shape[0] - n)))
        piece = np.resize(source[start:], n)
        piece = piece - piece.mean()
        return piece / (piece.std() + 1e-9)

    def babble(self, n: int) -> np.ndarray:
        """3–6 other clips at random offsets, summed: the murmur of other people talking."""
        out = np.zeros(n)
        for _ in range(int(self.rng.integers(3, 7))):
            clip = self.babble_pool[int(self.rng.integers(len(self.babble_pool)))].astype(np.float64)
            clip = clip / (np.sqrt(np.mean(clip**2)) + 1e-9)
            start = int(self.rng.integers(-clip.shape[0] // 2, max(1, n - clip.shape[0] // 2)))
            a, b = max(0, start), min(n, start + clip.shape[0])
            if b > a:
                out[a:b] += clip[a - start : b - start]
        return out / (out.std() + 1e-9)

    def band_filter(self, wave: np.ndarray, kind: str) -> np.ndarray:
        """Telephone (300–3,400 Hz) or laptop-mic response, applied as a smooth gain in the FFT domain."""
        spectrum = np.fft.rfft(wave)
        freqs = np.fft.rfftfreq(wave.shape[0], 1 / self.sr)
        if kind == "telephone":
            gain = 1 / (1 + (300 / np.maximum(freqs, 1)) ** 8) / (1 + (freqs / 3_400) ** 8)
        else:
            low = self.rng.uniform(150, 450)
            high = self.rng.uniform(2_800, 3_900)
            peak, width = self.rng.uniform(1_000, 3_000), self.rng.uniform(200, 600)
            boost = 10 ** (self.rng.uniform(0, 8) / 20) - 1
            gain = (1 / (1 + (low / np.maximum(freqs, 1)) ** 4) / (1 + (freqs / high) ** 6)) * (
                1 + boost * np.exp(-0.5 * ((freqs - peak) / width) ** 2)
            )
        return np.fft.irfft(spectrum * gain, wave.shape[0])

    def _noise(self, n: int) -> np.ndarray:
        kind = self.rng.integers(3)
        white = self.rng.standard_normal(n)
        if kind == 0:
            return white
        spectrum = np.fft.rfft(white)
        freqs = np.arange(spectrum.shape[0], dtype=np.float64)
        freqs[0] = 1.0
        shaped = np.fft.irfft(spectrum / (freqs ** (0.5 if kind == 1 else 1.0)), n)  # pink or brown
        return shaped / (shaped.std() + 1e-9)

    def is_clean(self) -> bool:
        """Draw whether the next example stays clean."""
        return bool(self.rng.random() < self.config.p_clean)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        c, rng, sr = self.config, self.rng, self.sr
        wave = clip
        if rng.random() < c.p_crop:
            start = int(rng.uniform(0, c.max_crop_start_s) * sr)
            end = int(rng.uniform(0, c.max_crop_end_s) * sr)
            if wave.shape[0] - start - end > 0.6 * wave.shape[0]:
                wave = wave[start : wave.shape[0] - end]
        tensor = torch.from_numpy(np.ascontiguousarray(wave))
        if rng.random() < c.p_speed:
            speed = math.exp(rng.uniform(math.log(c.speed_range[0]), math.log(c.speed_range[1])))
            tensor = resample(tensor, sr, int(round(sr / speed / 100) * 100))  # played back at sr
        if rng.random() < c.p_other_rate:
            other = int(rng.choice(OTHER_RATES))
            tensor = resample(resample(tensor, sr, other), other, sr)
        if rng.random() < c.p_bandlimit:
            narrow = int(rng.choice([rate for rate in NARROW_RATES if rate < sr]))
            tensor = resample(resample(tensor, sr, narrow), narrow, sr)
        wave = tensor.numpy().astype(np.float64)
        if rng.random() < c.p_telephone:
            wave = self.band_filter(wave, "telephone")
        elif rng.random() < c.p_laptop:
            wave = self.band_filter(wave, "laptop")
        if rng.random() < c.p_reverb:
            rt60 = rng.uniform(0.1, 0.5)
            n = int(rt60 * sr)
            decay = np.exp(-6.9 * np.arange(n) / n)
            rir = rng.standard_normal(n) * decay
            rir[0] = 1.0 / max(rng.uniform(0.2, 1.0), 1e-3)  # direct path
            size = wave.shape[0] + n - 1
            nfft = 1 << (size - 1).bit_length()  # FFT convolution: np.convolve is O(N·M) per clip
            wet = np.fft.irfft(np.fft.rfft(wave, nfft) * np.fft.rfft(rir, nfft), nfft)
            wave = wet[: wave.shape[0] + n // 4]
        speech_rms = np.sqrt(np.mean(wave**2)) + 1e-9
        if rng.random() < c.p_pad:
            left = int(rng.uniform(0, c.max_pad_s) * sr)
            right = int(rng.uniform(0, c.max_pad_s) * sr)
            wave = np.pad(wave, (left, right))
        if rng.random() < c.p_noise:
            snr = rng.uniform(*c.snr_db)
            wave = wave + self._noise(wave.shape[0]) * speech_rms / (10 ** (snr / 20))
        else:
            wave = wave + rng.standard_normal(wave.shape[0]) * speech_rms * 1e-3  # dither
        if self.background_pool and rng.random() < c.p_background:
            snr = rng.uniform(*c.background_snr_db)
            wave = wave + self.background(wave.shape[0]) * speech_rms / (10 ** (snr / 20))
        if self.babble_pool and rng.random() < c.p_babble:
            snr = rng.uniform(*c.babble_snr_db)
            wave = wave + self.babble(wave.shape[0]) * speech_rms / (10 ** (snr / 20))
        wave = wave / (np.abs(wave).max() + 1e-9) * 10 ** (rng.uniform(-30, 0) / 20)
        if rng.random() < c.p_clip:
            wave = np.clip(wave * rng.uniform(1.5, 4.0), -1.0, 1.0)
        elif rng.random() < c.p_soft_clip:
            drive = rng.uniform(2.0, 8.0)
            wave = np.tanh(wave * drive) / np.tanh(drive)
        return wave.astype(np.float32)

    def spec_augment(
        self, feats: torch.Tensor, frames: torch.Tensor, skip: np.ndarray | None = None
    ) -> torch.Tensor:
        """Zero (= the per-utterance mean) random frequency bands and time spans, in place."""
        c, rng = self.config, self.rng
        for b in range(feats.shape[0]):
            if skip is not None and skip[b]:
                continue
            for _ in range(c.freq_masks):
                width = int(rng.integers(0, c.max_freq_mask + 1))
                start = int(rng.integers(0, feats.shape[2] - width + 1))
                feats[b, :, start : start + width] = 0
            length = int(frames[b])
            for _ in range(c.time_masks):
                width = int(rng.integers(0, max(1, int(c.max_time_mask_frac * length)) + 1))
                start = int(rng.integers(0, max(1, length - width + 1)))
                feats[b, start : start + width, :] = 0
        return feats


def pad_batch(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([w.shape[0] for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : w.shape[0]] = torch.from_numpy(w)
    return batch, lengths


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    ema_decay: float = 0.995  # the shipped weights are an exponential moving average
    seed: int = 0
    bucket: int = 4  # augment this many batches at once and group them by length (less padding)
    workers: int = 0  # background processes preparing batches (0: in the training process, one core)


class _EpochBatches(torch.utils.data.Dataset):
    """Item k = `bucket` ready batches (features, frames, labels), augmented from its own seed.

    The seed is (run seed, epoch, k), so the batches do not depend on the number of workers.
    """

    def __init__(
        self, clips, digits, plan, epoch, config, features, augment, babble_pool=None, background_pool=None
    ) -> None:
        self.clips, self.digits, self.plan, self.epoch = clips, digits, plan, epoch
        self.config, self.features, self.augment = config, features, augment
        self.babble_pool, self.background_pool = babble_pool, background_pool
        self.frontend = LogMelFrontend(features)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int):
        rng = np.random.default_rng((self.config.seed, self.epoch, k))
        augmenter = Augmenter(
            self.augment, self.features.sample_rate, rng, self.babble_pool, self.background_pool
        )
        chunk = self.plan[k]
        clean = np.array([augmenter.is_clean() for _ in chunk])
        waves = [
            self.clips[i] if keep else augmenter(self.clips[i]) for i, keep in zip(chunk, clean, strict=True)
        ]
        by_length = np.argsort([w.shape[0] for w in waves], kind="stable")
        out = []
        for start in range(0, len(chunk), self.config.batch_size):
            sel = by_length[start : start + self.config.batch_size]
            batch, lengths = pad_batch([waves[i] for i in sel])
            alpha = torch.from_numpy(rng.uniform(*self.augment.vtlp_range, size=len(sel))).float()
            keep = torch.from_numpy((rng.random(len(sel)) >= self.augment.p_vtlp) | clean[sel])
            warp = torch.where(keep, torch.ones_like(alpha), alpha)
            with torch.no_grad():
                feats, frames = self.frontend(batch, lengths, warp=warp)
                feats = augmenter.spec_augment(feats, frames, skip=clean[sel])
            out.append((feats, frames, torch.as_tensor(self.digits[chunk[sel]], dtype=torch.long)))
        order = rng.permutation(len(out))
        return [out[i] for i in order]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def _progress(iterable, total: int, desc: str):
    try:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, mininterval=2.0)
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        return iterable


def train_model(
    clips: list[np.ndarray],
    digits: np.ndarray,
    config: TrainConfig,
    features: FeatureConfig | None = None,
    model_config: ModelConfig | None = None,
    augment: AugmentConfig | None = None,
    device: torch.device | None = None,
    eval_fn=None,
    babble_pool: list[np.ndarray] | None = None,
    background_pool: list[np.ndarray] | None = None,
    checkpoint: Path | None = None,
) -> DigitRecognizer:
    """Train from scratch (or resume from `checkpoint`); returns the EMA model in eval mode.

    `digits` holds class indices; `eval_fn(model)` returns a validation figure to log every 5 epochs;
    `babble_pool` and `background_pool` feed the babble and real-background augmentations. With
    `checkpoint`, the model, its EMA, the optimizer and the schedule are saved after every epoch and a
    run that finds the file goes on from the next epoch (each epoch's data order and augmentation come
    from (seed, epoch), so a resumed run sees the batches the uninterrupted one would have).
    """
    set_seed(config.seed)
    device = device or select_device()
    features, model_config, augment = (
        features or FeatureConfig(),
        model_config or ModelConfig(),
        augment or AugmentConfig(),
    )
    model = DigitRecognizer(model_config).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(clips) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * steps_per_epoch + config.bucket,
        pct_start=0.15,
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    digits = np.asarray(digits)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "training %d parameters on %d clips for %d epochs on %s", n_params, len(clips), config.epochs, device
    )
    chunk_size = config.batch_size * config.bucket
    first_epoch = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        first_epoch = int(state["epoch"])
        logger.info("resumed from %s after epoch %d", checkpoint, first_epoch)
    for epoch in range(first_epoch, config.epochs):
        model.train()
        started, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        order = np.random.default_rng((config.seed, epoch, 7)).permutation(len(clips))
        plan = [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]
        batches = _EpochBatches(
            clips, digits, plan, epoch, config, features, augment, babble_pool, background_pool
        )
        loader = (
            torch.utils.data.DataLoader(
                batches, batch_size=None, shuffle=False, num_workers=config.workers,
                worker_init_fn=_worker_init,
            )
            if config.workers > 0
            else (batches[k] for k in range(len(batches)))  # in this process: one core in all
        )  # fmt: skip
        for chunk in _progress(loader, len(plan), f"epoch {epoch + 1}/{config.epochs}"):
            for feats, frames, target in chunk:
                feats, frames, target = feats.to(device), frames.to(device), target.to(device)
                logits, _ = model(feats, frames)
                loss = loss_fn(logits, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                scheduler.step()
                with torch.no_grad():
                    step = scheduler.last_epoch
                    decay = min(config.ema_decay, (1 + step) / (10 + step))
                    for ema_p, p in zip(ema.parameters(), model.parameters(), strict=True):
                        ema_p.lerp_(p.detach(), 1 - decay)
                total_loss += float(loss.detach()) * len(target)
                correct += int((logits.argmax(1) == target).sum())
                seen += len(target)
        message = (
            f"epoch {epoch + 1}/{config.epochs}: loss {total_loss / seen:.4f}, "
            f"train acc (augmented) {correct / seen:.4f}, {time.perf_counter() - started:.1f} s"
        )
        if eval_fn is not None and ((epoch + 1) % 5 == 0 or epoch + 1 == config.epochs):
            message += f", ema validation acc {eval_fn(ema):.4f}"
        logger.info(message)
        if checkpoint is not None:
            _save_checkpoint(Path(checkpoint), model, ema, optimizer, scheduler, epoch + 1)
    return ema


def _save_checkpoint(path: Path, model, ema, optimizer, scheduler, epoch: int) -> None:
    """Write atomically (a crash mid-write leaves the previous epoch's file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(
        {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
        },
        partial,
    )
    partial.replace(path)


def predict_clips(
    model: DigitRecognizer, clips: list[np.ndarray], features: FeatureConfig, batch_size: int = 128
) -> np.ndarray:
    """Class probabilities (N, C) for clips already at `features.sample_rate`."""
    device = next(model.parameters()).device
    frontend = LogMelFrontend(features).to(device).eval()
    out = []
    with inference_context(device):
        for start in range(0, len(clips), batch_size):
            waves, lengths = pad_batch(clips[start : start + batch_size])
            feats, frames = frontend(waves.to(device), lengths.to(device))
            logits, _ = model(feats, frames)
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(out)


def evaluation_report(probs: np.ndarray, digits: np.ndarray, speakers: np.ndarray) -> dict:
    """Accuracy, per-speaker accuracy and the confusion matrix (rows = true, columns = predicted)."""
    preds = probs.argmax(axis=1)
    n = len(DIGIT_LABELS)
    confusion = np.zeros((n, n), dtype=int)
    for true, pred in zip(digits, preds, strict=True):
        confusion[true, pred] += 1
    per_speaker = {
        str(s): round(float((preds[speakers == s] == digits[speakers == s]).mean()), 4)
        for s in sorted(set(speakers))
    }
    return {
        "accuracy": round(float((preds == digits).mean()), 4),
        "n_test": int(len(digits)),
        "errors": int((preds != digits).sum()),
        "per_speaker_accuracy": per_speaker,
        "labels": list(DIGIT_LABELS),
        "confusion_matrix": confusion.tolist(),
    }
