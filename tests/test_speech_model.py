"""The speech model package: bundle, front end, network, augmentation, a tiny training run, and the
committed weights on the real FSDD test split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.speech import (
    FSDD_DIGITS_GRU,
    FeatureConfig,
    LogMelFrontend,
    ModelConfig,
    _warp_frequency,
)
from models.speech.train import (
    AugmentConfig,
    Augmenter,
    TrainConfig,
    load_fsdd,
    pad_batch,
    predict_clips,
    train_model,
)
from tests.conftest import REPO_ROOT, dataset_dir


def tone_clip(cls: int, rng: np.random.Generator, rate: int = 8_000) -> np.ndarray:
    """A toy 'digit': a harmonic sound whose pitch and length depend on the class."""
    seconds = rng.uniform(0.3, 0.5)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 100 + 60 * cls
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    return (0.2 * wave * np.hanning(t.shape[0])).astype(np.float32)


def test_bundle_describes_its_checkpoint():
    bundle = FSDD_DIGITS_GRU
    assert bundle.sample_rate == 8_000
    assert bundle.labels == tuple("0123456789")
    assert bundle.weights_path.suffix == ".safetensors" and bundle.weights_path.is_file()
    model = bundle.get_model()
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())


def test_frontend_shapes_and_gain_invariance():
    frontend = LogMelFrontend(FeatureConfig())
    rng = np.random.default_rng(0)
    clip = tone_clip(3, rng)
    waves, lengths = pad_batch([clip, clip * 0.01])
    feats, frames = frontend(waves, lengths)
    assert feats.shape == (2, clip.shape[0] // 80 + 1, 40)
    assert torch.allclose(feats[0], feats[1], atol=1e-2)  # loudness normalised before the log


def test_padding_does_not_change_the_answer():
    frontend, model = FSDD_DIGITS_GRU.get_frontend(), FSDD_DIGITS_GRU.get_model()
    rng = np.random.default_rng(1)
    short, long = tone_clip(2, rng), tone_clip(7, rng)
    with torch.inference_mode():
        alone, _ = model(*frontend(*pad_batch([short])))
        batched, _ = model(*frontend(*pad_batch([long, short])))
    assert torch.allclose(alone[0], batched[1], atol=1e-4)


def test_vtlp_warp_is_identity_at_one_and_moves_energy_otherwise():
    power = torch.rand(2, 129, 10)
    same = _warp_frequency(power, torch.ones(2))
    assert torch.allclose(same, power, atol=1e-5)
    peak = torch.zeros(1, 129, 1)
    peak[0, 40, 0] = 1.0
    up = _warp_frequency(peak, torch.tensor([1.15]))
    assert int(up[0, :, 0].argmax()) in (45, 46, 47)


def test_augmenter_is_seeded_and_keeps_audio_in_range():
    clip = tone_clip(5, np.random.default_rng(0))
    first = Augmenter(AugmentConfig(), 8_000, np.random.default_rng(3))
    second = Augmenter(AugmentConfig(), 8_000, np.random.default_rng(3))
    for _ in range(5):
        a, b = first(clip), second(clip)
        assert np.array_equal(a, b)
        assert a.dtype == np.float32 and np.abs(a).max() <= 1.0 and a.shape[0] > 0.5 * clip.shape[0]


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: extra threads only add contention on a busy CPU
    yield
    torch.set_num_threads(previous)


def test_tiny_training_run_learns_toy_classes(one_thread):
    rng = np.random.default_rng(0)
    labels = np.array([c for c in range(0, 10, 3) for _ in range(40)])  # 4 toy classes
    clips = [tone_clip(int(c), rng) for c in labels]
    config = TrainConfig(epochs=6, batch_size=32, lr=1e-2, seed=0, workers=0, bucket=2)
    light = AugmentConfig(p_speed=0, p_other_rate=0, p_bandlimit=0, p_reverb=0, p_noise=0.3, p_vtlp=0)
    model = train_model(
        clips, labels, config, model_config=ModelConfig(conv_channels=32, hidden=32), augment=light,
        device=torch.device("cpu"),
    )  # fmt: skip
    probs = predict_clips(model, clips, FeatureConfig())
    assert (probs.argmax(1) == labels).mean() > 0.6  # chance is 0.25


@pytest.mark.slow
def test_committed_weights_reach_the_target_on_fsdd_test():
    data = load_fsdd(dataset_dir("fsdd", "fsdd.npz"))
    test = data.split("test")
    assert len(test) == 300 and len(data.split("train")) == 2700
    probs = predict_clips(
        FSDD_DIGITS_GRU.get_model(), [data.clips[i] for i in test], FSDD_DIGITS_GRU.features
    )
    accuracy = float((probs.argmax(1) == data.digits[test]).mean())
    assert accuracy >= 0.99
    reported = json.loads((REPO_ROOT / "models/speech/metrics.json").read_text())
    assert reported["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert np.array(reported["confusion_matrix"]).sum() == 300


def test_ensemble_of_identical_members_equals_one_member():
    from models.speech import DigitEnsemble, DigitRecognizer

    torch.manual_seed(0)
    member = DigitRecognizer(ModelConfig(conv_channels=16, hidden=8)).eval()
    ensemble = DigitEnsemble.from_members([member, member]).eval()
    feats, frames = torch.randn(3, 30, 40), torch.tensor([30, 20, 12])
    with torch.inference_mode():
        single, _ = member(feats, frames)
        averaged, attention = ensemble(feats, frames)
    assert torch.allclose(torch.softmax(single, -1), torch.softmax(averaged, -1), atol=1e-5)
    assert attention.shape == (3, 15)
