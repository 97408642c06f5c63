"""`python -m models train speech`: the training data, the run, the threshold and the weights file.

Every source here is a train set (see models.speech.data for the roles); validation is carved from
them by speaker (Speech Commands), by recording index (FSDD), by voice and word (espeak-ng) and by clip
(noise), and it alone chooses the "not a word I know" threshold.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from models.runtime import describe_device, select_device
from models.speech import DigitEnsemble, FeatureConfig, ModelConfig
from models.speech import data as speech_data
from models.speech.calibration import MAX_FALSE_REJECT
from models.speech.reading_speed import SPEED_GRID, choose_speed, parse_grid
from models.speech.train import AugmentConfig, TrainConfig, _progress, load_fsdd, predict_clips, train_model

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]
FSDD_VALIDATION_INDICES = (47, 48, 49)  # of the training recordings 5–49: validation only
VALIDATION_SPEAKER_SHARE = 0.2  # of the Speech Commands speakers (the same hash in every SC set)
NOISE_VALIDATION_SHARE = 0.2  # of the silence clips and of the end of each background recording
# The threshold is set on real voices only: espeak-ng words are clear and sure, so pooled with them a
# threshold that cost 3 % of all validation digits rejected 12–14 % of the real Speech Commands ones.
REAL_VALIDATION_SETS = ("fsdd_val", "extra_val", "words_val")
VALIDATION_SETS = (*REAL_VALIDATION_SETS, "synth_val", "real_other_val", "silence_val")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=0, help="training seed (member k uses seed + k)")
    parser.add_argument("--members", type=int, default=2, help="networks whose probabilities are averaged")
    parser.add_argument(
        "--parallel-members",
        action="store_true",
        default=True,
        help="train the members at once, one process each (the default; a member per CPU core)",
    )
    parser.add_argument(
        "--sequential-members",
        dest="parallel_members",
        action="store_false",
        help="train the members one after the other in this process",
    )
    # set by --parallel-members for each of its worker processes
    parser.add_argument("--only-member", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=8_000,
        choices=(8_000, 16_000),
        help="the model's input rate: 8 kHz (FSDD's) or 16 kHz (Speech Commands' and most microphones')",
    )
    parser.add_argument("--n-mels", type=int, default=40, help="mel bands from 20 Hz to half the sample rate")
    parser.add_argument("--hidden", type=int, default=112)
    parser.add_argument("--conv-channels", type=int, default=96)
    parser.add_argument("--synth-digit-voices", type=int, default=200, help="espeak-ng voices × 10 digits")
    parser.add_argument(
        "--synth-command-voices", type=int, default=100, help="espeak-ng voices × 10 commands"
    )
    parser.add_argument("--synth-other", type=int, default=1200, help="espeak-ng clips of other words")
    parser.add_argument("--real-other", type=int, default=600, help="non-words cut from real speech")
    parser.add_argument("--extra-repeat", type=int, default=6, help="copies of each real SC digit clip")
    parser.add_argument("--command-repeat", type=int, default=2, help="copies of each real SC command clip")
    parser.add_argument("--other-repeat", type=int, default=4, help="copies of each real SC other-word clip")
    parser.add_argument("--noise-crops", type=int, default=300, help="silence examples cut from background")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the espeak-ng recipe and cuts")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / "runs" / "speech-cache")
    parser.add_argument("--checkpoint", type=Path, help="resumable per-epoch checkpoint (resumed if present)")
    parser.add_argument("--workers", type=int, default=0, help="batch preparation processes (0: in-process)")
    parser.add_argument("--limit", type=int, default=0, help="use at most N clips per source (quick runs)")
    parser.add_argument(
        "--reading-speeds",
        type=parse_grid,
        default=SPEED_GRID,
        help="speeds the trained networks are tried at on validation, the best kept (models.speech.reading_speed)",
    )


def _cap(clip_set: speech_data.ClipSet, limit: int, rng: np.random.Generator) -> speech_data.ClipSet:
    if not limit or len(clip_set) <= limit:
        return clip_set
    return clip_set.subset(np.sort(rng.choice(len(clip_set), limit, replace=False)))


def _by_speaker(clip_set: speech_data.ClipSet) -> tuple[np.ndarray, np.ndarray]:
    is_val = np.array([speech_data.speaker_bucket(s) < VALIDATION_SPEAKER_SHARE for s in clip_set.groups])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _noise_sets(
    root: Path, sample_rate: int, n_crops: int, rng: np.random.Generator
) -> tuple[dict[str, speech_data.ClipSet], list[np.ndarray], list[np.ndarray]]:
    """Silence-class sets and the background pools (train, validation) for mixing under speech."""
    silence, backgrounds = speech_data.load_noise(root, sample_rate)
    is_val = np.array(
        [speech_data.speaker_bucket(f"silence-{i}") < NOISE_VALIDATION_SHARE for i in range(len(silence))]
    )
    train_pool = [b[: int(len(b) * (1 - NOISE_VALIDATION_SHARE))] for b in backgrounds]
    val_pool = [b[int(len(b) * (1 - NOISE_VALIDATION_SHARE)) :] for b in backgrounds]

    def crops(pool: list[np.ndarray], n: int) -> list[np.ndarray]:
        out = []
        for _ in range(n):
            source = pool[int(rng.integers(len(pool)))]
            length = int(rng.uniform(0.3, 1.0) * sample_rate)
            start = int(rng.integers(max(1, source.shape[0] - length)))
            out.append(source[start : start + length].astype(np.float32))
        return out

    sets = {}
    for name, clips in (
        ("silence_train", [silence[i] for i in np.flatnonzero(~is_val)] + crops(train_pool, n_crops)),
        ("silence_val", [silence[i] for i in np.flatnonzero(is_val)] + crops(val_pool, max(1, n_crops // 5))),
    ):
        sets[name] = speech_data.ClipSet(
            clips, np.full(len(clips), speech_data.SILENCE_INDEX), np.array(["noise"] * len(clips)), name
        )
    # Mixing pools: the background recordings and the silence clips of the same side of the split.
    mix_train = train_pool + [silence[i] for i in np.flatnonzero(~is_val)]
    mix_val = val_pool + [silence[i] for i in np.flatnonzero(is_val)]
    return sets, mix_train, mix_val


def build_training_data(args: argparse.Namespace, data_dir: Path, sample_rate: int) -> dict:
    """Train and validation sets from the trainable sources only (see models.speech.data)."""
    rng = np.random.default_rng(args.data_seed)
    fsdd = load_fsdd(data_dir)
    train_idx = fsdd.split("train")
    is_val = np.isin(fsdd.indices[train_idx], FSDD_VALIDATION_INDICES)
    fsdd_set = speech_data.ClipSet(fsdd.clips, fsdd.digits, fsdd.speakers, "fsdd/train")
    sets = {
        "fsdd_train": _cap(fsdd_set.subset(train_idx[~is_val]), args.limit, rng),
        "fsdd_val": _cap(fsdd_set.subset(train_idx[is_val]), args.limit, rng),
    }
    root = data_dir.parent
    trim = speech_data.trim_to_speech
    if speech_data.digits_extra_path(root).is_file():
        extra = speech_data.load_digits_extra(root, "train", sample_rate)
        extra.clips = [trim(c, sample_rate) for c in extra.clips]
        train, val = _by_speaker(extra)
        sets["extra_train"] = _cap(extra.subset(train), args.limit, rng)
        sets["extra_val"] = _cap(extra.subset(val), args.limit, rng)
    else:
        logger.warning("speech_commands_digits_extra not found beside %s: training without it", data_dir)
    pools = {"background_train": [], "background_val": []}
    if speech_data.words_path(root).is_file():
        words = speech_data.load_words(root, sample_rate)
        words.clips = [trim(c, sample_rate) for c in words.clips]
        train, val = _by_speaker(words)
        is_other = words.labels == speech_data.OTHER_INDEX
        sets["commands_train"] = _cap(words.subset(train[~is_other[train]]), args.limit, rng)
        sets["other_words_train"] = _cap(words.subset(train[is_other[train]]), args.limit, rng)
        sets["words_val"] = _cap(words.subset(val), args.limit, rng)
        noise, pools["background_train"], pools["background_val"] = _noise_sets(
            root, sample_rate, min(args.noise_crops, args.limit or args.noise_crops), rng
        )
        sets.update({k: _cap(v, args.limit, rng) for k, v in noise.items()})
    else:
        logger.warning("speech_commands_words not found beside %s: training without commands", data_dir)

    train_words, val_words = speech_data.split_other_words()
    n_voices, n_commands, n_other = args.synth_digit_voices, args.synth_command_voices, args.synth_other
    if args.limit:
        n_voices = min(n_voices, max(1, args.limit // 10))
        n_commands = min(n_commands, max(1, args.limit // 10))
        n_other = min(n_other, args.limit)
    for name, plan in (
        ("synth_train", speech_data.synth_plan(n_voices, n_other, args.data_seed, train_words, n_commands)),
        ("synth_val", speech_data.synth_plan(
            max(1, n_voices // 8), max(1, n_other // 8), args.data_seed + 1000, val_words, max(1, n_commands // 8)
        )),
    ):  # fmt: skip
        clip_set = speech_data.synthetic_set(plan, sample_rate, args.cache_dir, progress=_progress)
        clip_set.clips = [trim(c, sample_rate) for c in clip_set.clips]
        sets[name] = clip_set

    def known_words(names: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray]:
        """Real recordings of digits and commands in the named sets, with their labels."""
        clips, labels = [], []
        for name in names:
            if name in sets:
                known = np.flatnonzero(sets[name].labels < speech_data.N_WORDS)
                clips += [sets[name].clips[i] for i in known]
                labels.append(sets[name].labels[known])
        return clips, np.concatenate(labels)

    n_real_other = min(args.real_other, args.limit or args.real_other)
    for name, pool, n in (
        ("real_other_train", known_words(("fsdd_train", "extra_train", "commands_train")), n_real_other),
        ("real_other_val", known_words(("fsdd_val", "extra_val", "words_val")), max(1, n_real_other // 5)),
    ):
        clips = speech_data.real_other_clips(*pool, n, rng)
        sets[name] = speech_data.ClipSet(
            clips, np.full(n, speech_data.OTHER_INDEX), np.array(["cut"] * n), name
        )
    sets["_pools"] = pools
    return sets


def recorded_args(args: argparse.Namespace) -> dict:
    """The parsed options as stored in the weights: paths relative to the repository when inside it."""
    out = {}
    for key, value in vars(args).items():
        if isinstance(value, Path):
            value = value.resolve()
            value = str(value.relative_to(REPO_ROOT)) if value.is_relative_to(REPO_ROOT) else str(value)
        out[key] = value
    return out


def _concat(parts: list[tuple[speech_data.ClipSet, int]]) -> tuple[list[np.ndarray], np.ndarray]:
    clips, labels = [], []
    for clip_set, repeat in parts:
        for _ in range(repeat):
            clips += clip_set.clips
            labels.append(clip_set.labels)
    return clips, np.concatenate(labels)


def _train_members_in_parallel(args: argparse.Namespace, argv: list[str], scratch: Path) -> None:
    """One `--only-member k` process per member, all at once; each leaves a finished checkpoint (beside
    --checkpoint, or in `scratch` without one) that the caller's member loop then loads.
    Raises SystemExit if any of them fails."""
    if args.checkpoint is None:
        args.checkpoint = scratch / "checkpoint.pt"
        argv = [*argv, "--checkpoint", str(args.checkpoint)]
    base = [a for a in argv if a != "--parallel-members"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "models", "train", "speech", *base, "--only-member", str(k)], cwd=REPO_ROOT
        )
        for k in range(args.members)
    ]
    failed = [k for k, worker in enumerate(workers) if worker.wait() != 0]
    if failed:
        raise SystemExit(f"error: training member(s) {failed} failed (see their output above)")


def run_training(args: argparse.Namespace, argv: list[str], data_dir: Path, bundle_name: str) -> int:
    features = FeatureConfig.at_rate(args.sample_rate, args.n_mels)
    sets = build_training_data(args, data_dir, features.sample_rate)
    pools = sets.pop("_pools")
    repeats = {
        "fsdd_train": 1, "synth_train": 1, "real_other_train": 1, "silence_train": 1,
        "extra_train": args.extra_repeat, "commands_train": args.command_repeat,
        "other_words_train": args.other_repeat,
    }  # fmt: skip
    train_parts = [(sets[name], n) for name, n in repeats.items() if name in sets and n > 0]
    val_names = [name for name in VALIDATION_SETS if name in sets]
    train_clips, train_labels = _concat(train_parts)
    val_clips, val_labels = _concat([(sets[name], 1) for name in val_names])
    class_counts = np.bincount(train_labels, minlength=len(speech_data.TRAIN_LABELS)).tolist()
    logger.info("training clips %d per epoch (%s), per class %s; validation clips %d",
                len(train_clips), {k: len(v) for k, v in sets.items()}, class_counts, len(val_clips))  # fmt: skip

    model_config = ModelConfig(
        n_mels=features.n_mels,
        conv_channels=args.conv_channels,
        hidden=args.hidden,
        n_classes=len(speech_data.TRAIN_LABELS),
        members=1,
    )

    def val_accuracy(model) -> float:
        probs = predict_clips(model, val_clips, features)
        return float((probs.argmax(1) == val_labels).mean())

    device = select_device()
    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="speech-members-")
    if args.parallel_members and args.members > 1 and args.only_member is None:
        _train_members_in_parallel(args, argv, Path(scratch.name))
    members = []
    augment = AugmentConfig()
    babble = [
        c
        for name in ("fsdd_train", "extra_train", "commands_train")
        if name in sets
        for c in sets[name].clips
    ]
    for k in range(args.members):
        if args.only_member is not None and k != args.only_member:
            continue
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed + k,
            workers=args.workers,
        )
        checkpoint = (
            args.checkpoint.with_name(f"{args.checkpoint.stem}.member{k}.pt") if args.checkpoint else None
        )
        logger.info("training member %d/%d (seed %d)", k + 1, args.members, config.seed)
        members.append(
            train_model(
                train_clips, train_labels, config, features=features, model_config=model_config,
                augment=augment, device=device, eval_fn=val_accuracy, babble_pool=babble,
                background_pool=pools["background_train"] or None, checkpoint=checkpoint,
            )
        )  # fmt: skip
    if args.only_member is not None:
        logger.info("member %d trained in %.1f s", args.only_member, time.perf_counter() - started)
        return 0
    model = DigitEnsemble.from_members(members).eval()
    wall = time.perf_counter() - started

    choice = choose_speed(
        lambda speed: {
            name: predict_clips(model, sets[name].clips, replace(features, speed=speed)) for name in val_names
        },
        {name: sets[name].labels for name in val_names},
        REAL_VALIDATION_SETS,
        args.reading_speeds,
    )
    features, threshold, validation = (
        replace(features, speed=choice.speed),
        choice.threshold,
        choice.validation,
    )
    training = {
        "command": "python -m models train speech " + shlex.join(argv),
        "argv": argv,
        "args": recorded_args(args),
        "seeds": {"train": [args.seed + k for k in range(args.members)], "data": args.data_seed},
        "data": {k: len(v) for k, v in sets.items()},
        "repeats": repeats,
        "class_counts_per_epoch": dict(zip(speech_data.TRAIN_LABELS, class_counts, strict=True)),
        "train_config": asdict(config),
        "augment": asdict(augment),
        "validation": validation,
        "max_false_reject": MAX_FALSE_REJECT,
        "threshold_set_on": [name for name in REAL_VALIDATION_SETS if name in validation],
        "reading_speed": choice.record(),
        "train_wall_s": round(wall, 1),
        "device": describe_device(device)["name"],
    }
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(
        state,
        str(args.weights),
        metadata={
            "bundle": bundle_name,
            "labels": json.dumps(list(speech_data.TRAIN_LABELS)),
            "features": json.dumps(asdict(features)),
            "model_config": json.dumps(asdict(model.config)),
            "reject_threshold": f"{threshold:.2f}",
            "training": json.dumps(training),
        },
    )
    print(json.dumps({"task": "speech", "weights": str(args.weights), "train_clips": len(train_clips),
                      "epochs": args.epochs, "train_wall_s": round(wall, 1), "reject_threshold": threshold,
                      "validation": validation}))  # fmt: skip
    return 0
