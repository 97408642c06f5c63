"""`python -m models train nlp --data-dir DIR` and `python -m models evaluate nlp --data-dir DIR`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from models.nlp import PACKAGE_DIR, SST2_SENTIMENT, FineTuneSettings

logger = logging.getLogger(__name__)

DEFAULT_METRICS = PACKAGE_DIR / "metrics.json"
CANONICAL_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"


def _data_dir(value: str | None) -> Path:
    if value:
        folder = Path(value)
        if not (folder / "train.tsv").is_file() and not (folder / "dev.tsv").is_file():
            raise SystemExit(f"error: {folder} holds neither train.tsv nor dev.tsv (GLUE SST-2 layout)")
        return folder
    raise SystemExit(
        "error: --data-dir is required: a folder with GLUE SST-2 train.tsv and dev.tsv "
        f"(for example ../shared/data/sst2; canonical source {CANONICAL_URL}, not downloaded automatically "
        "because this demo runs offline)"
    )


def _train(argv: list[str]) -> int:
    from models.nlp.train import SOUP_LRS, TrainConfig, make_soup, read_sst2, train, train_soup

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m models train nlp", description=__doc__)
    parser.add_argument("--data-dir", help="folder with GLUE SST-2 train.tsv and dev.tsv")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--lrs",
        type=float,
        nargs="+",
        default=list(SOUP_LRS),
        help="encoder learning rate of each run; two or more runs are averaged into one model (a soup)",
    )
    parser.add_argument("--head-lr", type=float, default=defaults.head_lr)
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--max-train", type=int, default=None, help="use only this many training rows")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--method", choices=("full", "lora"), default=SST2_SENTIMENT.finetune.method, help="what is trained"
    )
    parser.add_argument(
        "--rank", type=int, default=SST2_SENTIMENT.finetune.r, help="LoRA rank r (alpha = 2r)"
    )
    parser.add_argument(
        "--pooling",
        choices=("cls", "mean"),
        default=SST2_SENTIMENT.finetune.pooling,
        help="what the head reads",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--out", type=Path, default=SST2_SENTIMENT.weights, help="where to write the safetensors"
    )
    parser.add_argument("--no-dev", action="store_true", help="skip the dev score after each epoch")
    parser.add_argument(
        "--ingredients-dir", type=Path, default=None, help="keep each run of a soup here (default: discarded)"
    )
    parser.add_argument(
        "--stage",
        choices=("mixed", "all", "sst2", "domains"),
        default="mixed",
        help="mixed: one stage from the base model over every training source (the shipped recipe); "
        "all: the earlier SST-2 soup, then the multi-domain stage from it; "
        "sst2: stage 1 only; domains: stage 2 only, from --init-from",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="mixed stage: epoch checkpoints and the resume state (rerun the same command to continue; "
        "default: a folder beside --out)",
    )
    parser.add_argument(
        "--mixed-epochs", type=int, default=None, help="mixed stage epochs (default: MixedConfig.epochs)"
    )
    parser.add_argument(
        "--per-epoch-scale",
        type=float,
        default=1.0,
        help="mixed stage: multiply every source's rows per epoch (smoke runs)",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="stage 2 starts from this stage-1 checkpoint instead of training stage 1 first",
    )
    parser.add_argument(
        "--domain-lrs",
        type=float,
        nargs="+",
        default=None,
        help="encoder learning rates of the stage-2 runs (default: DomainConfig.lrs)",
    )
    parser.add_argument("--domain-epochs", type=int, default=None, help="stage-2 epochs per run")
    parser.add_argument(
        "--domain-run-seeds",
        type=int,
        nargs="+",
        default=None,
        help="stage 2 trains every learning rate once per seed; all runs go into the soup "
        "(default: DomainConfig.run_seeds)",
    )
    parser.add_argument(
        "--domain-train-layers-from",
        type=int,
        default=None,
        help="stage 2 trains encoder layers from this one up (0: every layer; default: DomainConfig)",
    )
    parser.add_argument(
        "--limit-rows", type=int, default=None, help="stage 2: cap every source's rows (smoke runs)"
    )
    parser.add_argument(
        "--soup-of",
        type=Path,
        nargs="+",
        default=None,
        metavar="CHECKPOINT",
        help="skip training: average these full fine-tunes (e.g. from --ingredients-dir) into --out",
    )
    args = parser.parse_args(argv)
    data_dir = _data_dir(args.data_dir)
    torch.set_num_threads(max(1, args.threads))
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lrs[0],
        head_lr=args.head_lr,
        max_length=args.max_length,
        max_train=args.max_train,
        seed=args.seed,
    )
    settings = FineTuneSettings(method=args.method, pooling=args.pooling, r=args.rank, alpha=2 * args.rank)
    if settings != SST2_SENTIMENT.finetune:
        logger.warning(
            "fine-tuning settings %s differ from the shipped bundle's %s: the app will not load these weights",
            settings,
            SST2_SENTIMENT.finetune,
        )
    if (args.soup_of or len(args.lrs) > 1) and settings.method != "full":
        raise SystemExit(
            "error: only full fine-tunes can be averaged; pass one --lrs value with --method lora"
        )
    dev_path = data_dir / "dev.tsv"
    dev = read_sst2(dev_path) if not args.no_dev and dev_path.is_file() else None
    if args.stage == "mixed" and not args.soup_of and args.init_from is None:
        from dataclasses import replace as _replace

        from models.nlp.train_mixed import MixedConfig, train_mixed

        mixed = MixedConfig(seed=args.seed, limit_rows=args.limit_rows, per_epoch_scale=args.per_epoch_scale)
        if args.mixed_epochs:
            mixed = _replace(mixed, epochs=args.mixed_epochs)
        work_dir = args.work_dir or args.out.parent / f"{args.out.stem}.mixed-work"
        summary = train_mixed(data_dir.parent, args.out, work_dir, mixed, settings)
        dev = None  # the temperature was fitted on the validation rows carved from the train sources
    elif args.init_from is not None or args.stage == "domains":
        if args.init_from is None or not args.init_from.is_file():
            raise SystemExit("error: --stage domains needs --init-from CHECKPOINT (a stage-1 SST-2 model)")
        summary = _train_domains(args, data_dir, args.init_from, settings)
        dev = None  # stage 2 fits its temperature on its own validation split
    elif args.stage == "all" and not args.soup_of:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="nlp-stage1-") as scratch:
            folder = args.ingredients_dir or Path(scratch)
            stage1 = folder / f"{args.out.stem}.stage1.safetensors"
            first = train_soup(
                data_dir, stage1, config, settings, args.lrs, args.ingredients_dir, not args.no_dev
            )
            summary = {"stage1": first, "stage2": _train_domains(args, data_dir, stage1, settings)}
        dev = None
    elif args.soup_of:
        missing = [str(p) for p in args.soup_of if not p.is_file()]
        if missing:
            raise SystemExit(f"error: checkpoint not found: {', '.join(missing)}")
        # each run's own record (written beside it by this command) travels into the soup's record
        runs = [
            json.loads(p.with_suffix(".train.json").read_text())
            for p in args.soup_of
            if p.with_suffix(".train.json").is_file()
        ]
        summary = {"runs": runs, "soup": make_soup(args.soup_of, args.out, settings, dev)}
    elif len(args.lrs) > 1:
        summary = train_soup(
            data_dir, args.out, config, settings, args.lrs, args.ingredients_dir, not args.no_dev
        )
    else:
        summary = train(data_dir, args.out, config, settings, eval_dev=not args.no_dev)
    if dev is not None:
        from models.nlp.train_mixed import calibrate_checkpoint

        summary["calibration"] = calibrate_checkpoint(args.out, settings, data_dir.parent)
    record = {
        "task": "nlp",
        "action": "train",
        "command": "python -m models train nlp " + " ".join(argv),
        **summary,
    }
    args.out.with_suffix(".train.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))
    return 0


def _train_domains(args, data_dir: Path, init_weights: Path, settings) -> dict:
    from dataclasses import replace

    from models.nlp.train_domains import DomainConfig, train_multi_domain

    config = DomainConfig(seed=args.seed, limit_rows=args.limit_rows)
    if args.domain_lrs:
        config = replace(config, lrs=tuple(args.domain_lrs))
    if args.domain_epochs:
        config = replace(config, epochs=args.domain_epochs)
    if args.domain_run_seeds:
        config = replace(config, run_seeds=tuple(args.domain_run_seeds))
    if args.domain_train_layers_from is not None:
        config = replace(config, train_layers_from=args.domain_train_layers_from)
    # the other sets sit beside the SST-2 folder (../shared/data/sst2 -> ../shared/data)
    return train_multi_domain(data_dir.parent, init_weights, args.out, config, settings, args.ingredients_dir)


def _evaluate(argv: list[str]) -> int:
    from models.nlp.evaluate import evaluate_checkpoint

    parser = argparse.ArgumentParser(prog="python -m models evaluate nlp", description=__doc__)
    parser.add_argument(
        "--data-dir",
        help="folder with GLUE SST-2 dev.tsv; every test-only sentiment set found beside it is scored too",
    )
    parser.add_argument("--split", default="dev", help="SST-2 TSV file name without .tsv (labelled)")
    parser.add_argument("--weights", type=Path, default=SST2_SENTIMENT.weights, help="checkpoint to score")
    parser.add_argument("--metrics-out", type=Path, default=DEFAULT_METRICS, help="'' to write nothing")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--latency-runs", type=int, default=100, help="single-sentence timing runs (0: skip)")
    parser.add_argument(
        "--fit-temperature",
        action="store_true",
        help="refit the softmax temperature on the validation split carved from the train sets "
        "(never on a test set) and store it in the weights' metadata",
    )
    args = parser.parse_args(argv)
    data_dir = _data_dir(args.data_dir)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "task": "nlp",
        "command": "python -m models evaluate nlp " + " ".join(argv),
        **evaluate_checkpoint(data_dir, args.weights, args.split, args.fit_temperature, args.latency_runs),
    }
    if args.metrics_out and str(args.metrics_out):
        # written whole, not merged: a figure of an older model must not survive beside the new ones
        args.metrics_out.write_text(json.dumps(result, indent=2) + "\n")
        if args.metrics_out.resolve() == DEFAULT_METRICS.resolve():
            from models.nlp.card import update_card

            update_card(result)
    print(json.dumps(result))
    return 0


def main(action: str, argv: list[str]) -> int:
    if action == "train":
        return _train(argv)
    if action == "evaluate":
        return _evaluate(argv)
    print(f"unknown action {action!r}; use train or evaluate", file=sys.stderr)
    return 2
