"""`make bench` (`python -m bench`): every figure measured in one run on this machine.

Writes bench/results.json and bench/results.md, and refreshes the table between the
`<!-- bench:start -->` / `<!-- bench:end -->` markers of README.md.

Per service: single-request p50/p95 and batch throughput after warm-up, on the selected device.
Language: our service vs Hugging Face `pipeline("text-classification")` on the same fine-tuned model.
Recommender: our biased MF vs scikit-surprise's SVD on MovieLens u1 (training time and RMSE).
App: seconds from `streamlit run` to the health check and to the home page with all four models
answering, cold load time of each model, and resident memory with all four loaded.

The pieces: bench/tasks.py (per-task timings), bench/comparisons.py (against other libraries),
bench/app_start.py (cold start) and bench/report.py (the files and the README table).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "bench"


def machine() -> dict:
    import torch

    from models.runtime import describe_device

    device = describe_device()
    return {
        "device": f"{device['name']} ({device['precision']})",
        "cpu": f"{os.cpu_count()} cores, {platform.machine()}",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    from bench.comparisons import SCALING_MODES

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=str(REPO_ROOT.parent / "shared" / "data" / "movielens-100k"),
        help="MovieLens-100K folder for the recommender comparison",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--skip-app", action="store_true", help="skip the app cold-start measurements")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    parser.add_argument("--rescale", action="store_true", help="measure the recommender cost curve again")
    parser.add_argument(
        "--scaling",
        choices=SCALING_MODES,
        default="reuse",
        help="recommender cost curve: reuse the one on file if measured for this code (default), "
        "measure it again (same as --rescale), or skip measuring and keep the one on file",
    )
    parser.add_argument("--no-readme", action="store_true", help="do not refresh README.md's table")
    args = parser.parse_args(argv)

    import services  # noqa: F401 - applies the serving thread policy before anything is measured
    from bench.app_start import bench_app_start, bench_cold_loads
    from bench.report import write_report
    from bench.tasks import BENCHES, BenchOptions

    options = BenchOptions(
        quick=args.quick,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        scaling="measure" if args.rescale else args.scaling,
    )
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "services": {}}
    for task, bench in BENCHES.items():
        print(f"bench: {task} …", file=sys.stderr, flush=True)
        results["services"][task] = bench(options)
    if not args.skip_app:
        print("bench: app cold start …", file=sys.stderr, flush=True)
        results["app"] = {**bench_cold_loads(), **bench_app_start()}

    table = write_report(results, Path(args.out_dir), readme=not args.no_readme)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
