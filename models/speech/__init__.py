"""Spoken digits and voice commands: a log-mel front end and a small bidirectional GRU with attention pooling.

The shipped checkpoint is `SPEECH_BUNDLE`: a `SpeechBundle` that carries the weights path, the
sample rate, the feature parameters and the labels, so callers never need to know any of them.

    bundle = SPEECH_BUNDLE
    frontend, model = bundle.get_frontend(), bundle.get_model()
    features, frames = frontend(waves, lengths)      # waves (B, N) float at bundle.sample_rate
    logits, attention = model(features, frames)      # (B, C) log-probabilities, (B, T')

The classes (`bundle.labels`) are the digits 0–9, the ten commands (yes, no, up, down, left, right, on,
off, stop, go), "other" (a word it does not know) and "silence" (no speech). `DigitEnsemble` averages
the probabilities of its members; the shipped checkpoint has one (`--members` trains more).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torchaudio
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
DIGIT_LABELS: tuple[str, ...] = tuple(str(digit) for digit in range(10))
# The ten command words of Speech Commands' keyword-spotting task, in its own order.
COMMAND_LABELS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
OTHER_LABEL = "other"  # speech that is not a known word (when the checkpoint has the class)
SILENCE_LABEL = "silence"  # silence or steady noise (when the checkpoint has the class)
VOCABULARY_LABELS: tuple[str, ...] = (*DIGIT_LABELS, *COMMAND_LABELS, OTHER_LABEL, SILENCE_LABEL)


def word_kind(label: str) -> str | None:
    """ "digit" or "command" for a known word; None for "other", "silence" or anything else."""
    if label in DIGIT_LABELS:
        return "digit"
    if label in COMMAND_LABELS:
        return "command"
    return None


@dataclass(frozen=True)
class FeatureConfig:
    """How a waveform becomes the (T, n_mels) matrix the network sees."""

    sample_rate: int = 8_000  # FSDD is recorded at 8 kHz; every input is resampled to this
    n_fft: int = 256  # 32 ms FFT
    win_length: int = 200  # 25 ms Hann window
    hop_length: int = 80  # 10 ms between frames
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 4_000.0  # Nyquist at 8 kHz
    target_rms_db: float = -20.0  # each clip is scaled to this RMS level before the spectrogram
    log_floor: float = 1e-6  # added to mel power before the log (≈ -60 dB below the normalised level)
    # Each clip is resampled to play at this speed (tempo and pitch together) before the spectrogram.
    # Training reads clips at 1.0; afterwards validation chooses the speed the trained networks read
    # real voices best at (models.speech.reading_speed): below 1 is a little slower and lower.
    speed: float = 1.0

    @property
    def frame_seconds(self) -> float:
        """Time of the input between two frames (the hop, in the clip's own time before resampling)."""
        return self.hop_length * self.speed / self.sample_rate

    @property
    def speed_source_rate(self) -> int:
        """The rate a clip is taken to have when it is resampled to `sample_rate` to play at `speed`."""
        return round(self.sample_rate * self.speed)

    @classmethod
    def at_rate(cls, sample_rate: int, n_mels: int = 40) -> FeatureConfig:
        """The same 32 ms FFT, 25 ms window and 10 ms hop at `sample_rate`, mel bands up to Nyquist."""
        scale = sample_rate / cls.sample_rate
        return cls(
            sample_rate=sample_rate,
            n_fft=round(cls.n_fft * scale),
            win_length=round(cls.win_length * scale),
            hop_length=round(cls.hop_length * scale),
            n_mels=n_mels,
            f_max=sample_rate / 2,
        )


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 40
    conv_channels: int = 96  # a 1-D conv block before the GRU; its second conv halves the frame rate
    hidden: int = 96  # GRU hidden size per direction
    layers: int = 2
    dropout: float = 0.2
    n_classes: int = 10
    members: int = 2  # independently trained networks (different seeds) whose probabilities are averaged


class LogMelFrontend(nn.Module):
    """RMS-normalised waveform → log-mel spectrogram with per-utterance mean/variance normalisation.

    `warp` (training only) is a per-example frequency-warp factor applied to the power spectrogram
    before the mel filterbank: vocal-tract-length perturbation (VTLP).
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=2.0,
            center=True,
        )
        # the resampling kernel is built once here, not on every call
        self.reading_speed = (
            torchaudio.transforms.Resample(config.speed_source_rate, config.sample_rate)
            if config.speed_source_rate != config.sample_rate
            else None
        )

    def frame_count(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.config.hop_length + 1  # center=True framing

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, N) zero-padded, lengths (B,) in samples → features (B, T, n_mels), frames (B,)."""
        lengths = lengths.to(waves.device)
        if self.reading_speed is not None:
            source_rate = self.config.speed_source_rate
            waves = self.reading_speed(waves)
            # torchaudio's output length for a lone clip, so a batched clip keeps its own frames
            lengths = torch.div(
                lengths * self.config.sample_rate + source_rate - 1, source_rate, rounding_mode="floor"
            )
        sample_mask = torch.arange(waves.shape[1], device=waves.device)[None, :] < lengths[:, None]  # (B, N)
        valid = sample_mask.float()
        count = valid.sum(dim=1, keepdim=True).clamp_min(1.0)
        mean = (waves * valid).sum(dim=1, keepdim=True) / count
        centred = (waves - mean) * valid
        rms = (centred.pow(2).sum(dim=1, keepdim=True) / count).sqrt().clamp_min(1e-5)
        waves = centred * (10 ** (self.config.target_rms_db / 20) / rms)
        waves = _reflect_tails(waves, lengths, self.config.n_fft // 2)

        power = self.melspec.spectrogram(waves)  # (B, F, T)
        if warp is not None:
            power = _warp_frequency(power, warp)
        mel = self.melspec.mel_scale(power)  # (B, n_mels, T)
        feats = torch.log(mel + self.config.log_floor).transpose(1, 2)  # (B, T, n_mels)

        frames = self.frame_count(lengths).clamp(max=feats.shape[1])
        feats = feats[:, : int(frames.max())]  # drop frames that only exist because of the tail padding
        frame_mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]).unsqueeze(
            -1
        )
        n = frames.clamp_min(1).view(-1, 1, 1).float()
        mu = (feats * frame_mask).sum(dim=1, keepdim=True) / n
        var = ((feats - mu).pow(2) * frame_mask).sum(dim=1, keepdim=True) / n
        feats = (feats - mu) / var.add(1e-3).sqrt()
        return feats * frame_mask, frames


def _reflect_tails(waves: torch.Tensor, lengths: torch.Tensor, half: int) -> torch.Tensor:
    """Fill the `half` samples after each clip's end with its reflection (as `center=True` STFT padding
    does for a lone clip), so a clip's frames are the same whether it is batched with longer ones or not."""
    waves = nn.functional.pad(waves, (0, half))  # (B, N + half)
    offsets = torch.arange(half, device=waves.device)[None, :]
    lengths = lengths.to(waves.device)[:, None]
    source = (lengths - 2 - offsets).clamp_min(0)
    return waves.scatter(1, lengths + offsets, torch.gather(waves, 1, source))


def _warp_frequency(power: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear VTLP warp of the frequency axis of (B, F, T), one factor per example.

    Below a boundary at 0.8 · Nyquist · min(α, 1) / α frequencies scale by α; above it a line joins
    the boundary to Nyquist, so the output always covers the full band.
    """
    n_bins = power.shape[1]
    nyquist = float(n_bins - 1)
    target = torch.arange(n_bins, device=power.device, dtype=power.dtype)[None, :]  # (1, F)
    alpha = alpha.to(power.dtype).view(-1, 1)  # (B, 1)
    boundary = 0.8 * nyquist * torch.clamp(alpha, max=1.0)  # warped-domain knee
    # Inverse map: output bin f reads input bin f / α below the knee.
    knee_in = boundary / alpha
    slope = (nyquist - knee_in) / (nyquist - boundary)
    source = torch.where(target <= boundary, target / alpha, knee_in + (target - boundary) * slope)
    source = source.clamp(0, nyquist)
    low = source.floor().long().clamp(max=n_bins - 2)
    frac = (source - low.to(power.dtype)).unsqueeze(-1)  # (B, F, 1)
    low = low.unsqueeze(-1).expand(-1, -1, power.shape[2])
    return torch.gather(power, 1, low) * (1 - frac) + torch.gather(power, 1, low + 1) * frac


class DigitRecognizer(nn.Module):
    """Conv block → 2-layer bidirectional GRU → masked attention pooling → linear classifier."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config.conv_channels
        self.conv = nn.Sequential(
            nn.Conv1d(config.n_mels, c, kernel_size=5, padding=2),
            nn.GELU(),
            nn.Conv1d(c, c, kernel_size=3, stride=2, padding=1),  # halves the frame rate (20 ms)
            nn.GELU(),
        )
        self.gru = nn.GRU(
            c, config.hidden, num_layers=config.layers, batch_first=True, bidirectional=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )  # fmt: skip
        self.attention = nn.Linear(2 * config.hidden, 1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(4 * config.hidden, config.n_classes)

    @staticmethod
    def output_frames(frames: torch.Tensor) -> torch.Tensor:
        return (frames - 1) // 2 + 1

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mels), frames (B,) → logits (B, C), attention weights (B, T') over 20 ms steps."""
        frame_mask = (
            torch.arange(feats.shape[1], device=feats.device)[None, :] < frames.to(feats.device)[:, None]
        )
        x = self.conv[1](self.conv[0](feats.transpose(1, 2)))  # (B, C, T)
        x = x * frame_mask.unsqueeze(
            1
        )  # padding frames stay zero, so batching does not change a clip's result
        x = self.conv[3](self.conv[2](x)).transpose(1, 2)  # (B, T', C)
        steps = self.output_frames(frames).clamp(1, x.shape[1])
        packed = nn.utils.rnn.pack_padded_sequence(x, steps.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=x.shape[1]
        )  # (B, T', 2H)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < steps.to(x.device)[:, None]  # (B, T')
        scores = self.attention(out).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=1).to(out.dtype)  # (B, T')
        attended = torch.bmm(weights.unsqueeze(1), out).squeeze(1)  # (B, 2H)
        mean = (out * mask.unsqueeze(-1)).sum(dim=1) / steps.to(out.device).unsqueeze(-1).to(out.dtype)
        logits = self.head(self.dropout(torch.cat([attended, mean], dim=-1)))
        return logits, weights


class DigitEnsemble(nn.Module):
    """Average of the class probabilities of `members` DigitRecognizers (trained with different seeds).

    Returns (log of the averaged probabilities, mean attention), so `softmax` of the first output is
    the averaged distribution and callers treat it like one network's logits.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(DigitRecognizer(config) for _ in range(config.members))

    @classmethod
    def from_members(cls, members: list[DigitRecognizer]) -> DigitEnsemble:
        config = replace(members[0].config, members=len(members))
        ensemble = cls(config)
        for target, source in zip(ensemble.members, members, strict=True):
            target.load_state_dict(source.state_dict())
        return ensemble.to(next(members[0].parameters()).device)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(feats, frames) for member in self.members]
        probs = torch.stack([torch.softmax(logits.float(), dim=-1) for logits, _ in outputs]).mean(dim=0)
        attention = torch.stack([weights.float() for _, weights in outputs]).mean(dim=0)
        return probs.clamp_min(1e-12).log(), attention


@dataclass(frozen=True)
class SpeechBundle:
    """One shipped checkpoint: weights, architecture, features, labels and the rejection threshold.

    `from_weights` reads everything but the path from the safetensors header, which the training CLI
    writes, so the architecture, the labels and the threshold can never drift from the weights.
    """

    name: str
    weights_path: Path
    labels: tuple[str, ...] = DIGIT_LABELS
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    # A part is "not a digit" when P(other) wins or the best digit's probability is below this
    # (chosen on a validation split of the training data; 0 = never reject).
    reject_threshold: float = 0.0
    training: dict = field(default_factory=dict)  # the command line, data and seeds of the run

    @classmethod
    def from_weights(cls, name: str, weights_path: Path) -> SpeechBundle:
        metadata = read_metadata(weights_path)
        kwargs: dict = {}
        if "labels" in metadata:
            kwargs["labels"] = tuple(json.loads(metadata["labels"]))
        if "features" in metadata:
            kwargs["features"] = _config_from_json(FeatureConfig, metadata["features"])
        if "model_config" in metadata:
            kwargs["model"] = _config_from_json(ModelConfig, metadata["model_config"])
        if "reject_threshold" in metadata:
            kwargs["reject_threshold"] = float(metadata["reject_threshold"])
        if "training" in metadata:
            kwargs["training"] = json.loads(metadata["training"])
        return cls(name=name, weights_path=Path(weights_path), **kwargs)

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate

    @property
    def other_index(self) -> int | None:
        return self.labels.index(OTHER_LABEL) if OTHER_LABEL in self.labels else None

    @property
    def silence_index(self) -> int | None:
        return self.labels.index(SILENCE_LABEL) if SILENCE_LABEL in self.labels else None

    @property
    def word_indices(self) -> list[int]:
        """Columns of the known words (digits and commands), the ones an answer can name."""
        return [i for i, label in enumerate(self.labels) if word_kind(label) is not None]

    def get_frontend(self, device: torch.device | str | None = None) -> LogMelFrontend:
        frontend = LogMelFrontend(self.features).eval()
        return frontend.to(device) if device is not None else frontend

    def get_model(self, device: torch.device | str | None = None) -> DigitEnsemble:
        """Build the network, load the safetensors weights, `.eval()`, freeze, move to `device`."""
        started = time.perf_counter()
        model = DigitEnsemble(self.model)
        model.load_state_dict(load_file(str(self.weights_path)))
        model.eval().requires_grad_(False)
        if device is not None:
            model = model.to(device)
        logger.info("loaded %s in %.2f s", self.name, time.perf_counter() - started)
        return model

    def describe(self) -> dict:
        return {
            "name": self.name,
            "labels": list(self.labels),
            "features": asdict(self.features),
            "model": asdict(self.model),
            "reject_threshold": self.reject_threshold,
        }


def read_metadata(weights_path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (header only; the tensors are not read)."""
    with safe_open(str(weights_path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def _config_from_json(config_type, text: str):
    known = {f.name for f in fields(config_type)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items() if k in known}
    return config_type(**values)


SPEECH_BUNDLE = SpeechBundle.from_weights(
    name="digits-commands-bigru", weights_path=PACKAGE_DIR / "speech_gru.safetensors"
)
"""Spoken digits 0–9 and the ten Speech Commands commands (English), with "other" (a word it does not
know) and "silence", trained by this project on FSDD (CC BY-SA 4.0), Speech Commands clips (CC BY 4.0)
and espeak-ng voices. See MODEL_CARD.md and metrics.json."""

__all__ = [
    "COMMAND_LABELS",
    "DIGIT_LABELS",
    "OTHER_LABEL",
    "SILENCE_LABEL",
    "VOCABULARY_LABELS",
    "word_kind",
    "SPEECH_BUNDLE",
    "DigitEnsemble",
    "DigitRecognizer",
    "FeatureConfig",
    "LogMelFrontend",
    "ModelConfig",
    "SpeechBundle",
    "read_metadata",
]
