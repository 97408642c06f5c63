"""Cost curve of the recommender: training time and peak memory against the number of ratings.

    make bench-scaling        (= python -m bench.recommend_scaling; `make bench BENCH_SCALING=skip`
                              then keeps this curve instead of measuring its own)
    python -m bench.recommend_scaling [--sizes 100000,1000000,10000000] [--timeout 900]

For each size, synthetic MovieLens-shaped ratings (not MovieLens data): users and films scaled by
the same factor √(N / 100,000) from MovieLens-100K's 943 × 1,682, so the density stays 6.3%;
power-law activity (user u's share of ratings ∝ rank^-0.39, film i's ∝ rank^-0.45, which gives
MovieLens-100K's max/median ratios of about 11 and 21); stars from a rank-10 taste model plus
biases and noise, rounded to 1–5 with MovieLens' mean of about 3.5.

Each (model, size) point runs in its own Python process, so that its peak resident memory
(`ru_maxrss`) belongs to that training alone; the parent writes the ratings to a temporary .npy
file first, and the child loads them before it measures. A point that runs past its time limit
(`TIME_LIMITS_S`, or `--timeout` for every model) is recorded as such, which keeps the 10 M point
bounded. Beside each point go the UTC time it started and the load average (1, 5 and 15 min,
`os.getloadavg`) just before and just after it, so a figure taken on a busy machine shows as such;
the measuring process itself keeps one core busy, which adds up to 1 to the "after" figures, so each
point also records how many cores other processes kept busy while it ran (from /proc/stat). Models:

    als       the shipped rating model (trainer and hyper-parameters from mf.safetensors' metadata)
    ranker    the shipped PureSVD candidate stage (sparse truncated SVD), reported separately
    surprise  Surprise's SVD with its defaults (100 factors, 20 SGD epochs); its time is `fit()`,
              like bench's u1 comparison, and building its trainset is reported as prepare_s

Results go to bench/recommend_scaling.json (read by the Model cards page), to
`services.recommend.scaling` in bench/results.json when that file exists (and from there to
bench/results.md and the README's benchmark table), and to a hand-written SVG chart,
bench/recommend_scaling.svg (no plotting library is installed). `python -m bench` reuses the curve on
file when it was measured for the same code and sizes (`curve_key`), and measures it otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "bench"
BASE_USERS, BASE_ITEMS, BASE_RATINGS = 943, 1682, 100_000  # MovieLens-100K
USER_EXPONENT, ITEM_EXPONENT = 0.39, 0.45  # power-law activity, matched to ML-100K's max/median counts
SIZES = (100_000, 1_000_000, 10_000_000)
MODELS = ("als", "ranker", "surprise")
# Seconds one (model, size) point may run, its process start, imports and data load included. On a
# quiet 2-core machine ALS and the ranker take well under a minute at 10 M. Surprise's SGD runs in
# pure-Python-object storage (its trainset holds every rating twice as Python tuples), so at 10 M
# it needs several GB and many minutes; 20 minutes bounds the whole run to about half an hour.
TIME_LIMITS_S = {"als": 900.0, "ranker": 900.0, "surprise": 1200.0}


def synthetic_ratings(n_ratings: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """(users, items, stars, n_users, n_items): n_ratings distinct pairs at ML-100K's density."""
    rng = np.random.default_rng(seed)
    scale = math.sqrt(n_ratings / BASE_RATINGS)
    n_users, n_items = round(BASE_USERS * scale), round(BASE_ITEMS * scale)
    user_weight = np.arange(1, n_users + 1, dtype=np.float64) ** -USER_EXPONENT
    item_weight = np.arange(1, n_items + 1, dtype=np.float64) ** -ITEM_EXPONENT
    user_weight, item_weight = user_weight / user_weight.sum(), item_weight / item_weight.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_ratings:  # draw, drop repeated pairs, top up
        draw = int((n_ratings - len(keys)) * 1.15) + 1000
        users = rng.choice(n_users, size=draw, p=user_weight)
        items = rng.choice(n_items, size=draw, p=item_weight)
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * n_items + items]))
    keys = rng.permutation(keys)[:n_ratings]
    users, items = (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)
    rank = 10
    taste = rng.normal(0, 0.35, (n_users, rank)).astype(np.float32)
    kind = rng.normal(0, 0.35, (n_items, rank)).astype(np.float32)
    stars = np.empty(n_ratings, dtype=np.float32)
    for start in range(0, n_ratings, 1_000_000):  # chunks: the row products stay small
        u, i = users[start : start + 1_000_000], items[start : start + 1_000_000]
        stars[start : start + len(u)] = (taste[u] * kind[i]).sum(1)
    user_bias = rng.normal(0, 0.4, n_users).astype(np.float32)
    item_bias = rng.normal(0, 0.5, n_items).astype(np.float32)
    stars += 3.55 + user_bias[users] + item_bias[items] + rng.normal(0, 0.8, n_ratings).astype(np.float32)
    return users, items, np.clip(np.rint(stars), 1, 5).astype(np.float32), n_users, n_items


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _child(model: str, data_path: str) -> dict:
    """Runs in a fresh process: load the ratings, train one model, report time and memory."""
    import torch

    torch.set_num_threads(1)  # as the training CLI and the bench's u1 comparison
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    with np.load(data_path) as data:
        users, items, stars = data["users"], data["items"], data["stars"]
        n_users, n_items = int(data["n_users"]), int(data["n_items"])
    if model == "surprise":
        import pandas as pd
        from surprise import SVD, Dataset, Reader
    from models.recommend import MF_MOVIELENS_100K
    from models.recommend.mf import PureSVD

    baseline = _rss_mb()
    row: dict = {"baseline_rss_mb": round(baseline, 1)}
    started = time.perf_counter()
    if model == "als":
        estimator = MF_MOVIELENS_100K.estimator().fit(users, items, stars, n_users, n_items)
        row["fit_s"] = round(time.perf_counter() - started, 3)
        row["params"] = estimator.get_params()
    elif model == "ranker":
        factors = int(MF_MOVIELENS_100K.metadata().get("ranking_factors", 20))
        PureSVD(factors).fit(users, items, n_users, n_items)
        row["fit_s"] = round(time.perf_counter() - started, 3)
    else:
        frame = pd.DataFrame({"u": users, "i": items, "r": stars})
        trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
        del frame
        row["prepare_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        SVD(random_state=0).fit(trainset)
        row["fit_s"] = round(time.perf_counter() - started, 3)
    row["peak_rss_mb"] = round(_peak_mb(), 1)
    row["peak_over_baseline_mb"] = round(_peak_mb() - baseline, 1)
    return row


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (runnable processes, averaged; 2 means both cores busy)."""
    return [round(value, 2) for value in os.getloadavg()]


def _busy_cpu_seconds() -> float | None:
    """CPU seconds spent busy by every process on the machine since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already in user


def _children_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_point(model: str, data_path: Path, timeout_s: float) -> dict:
    command = [sys.executable, "-m", "bench.recommend_scaling", "--child", model, "--data", str(data_path)]
    context: dict = {"started_at": utc_now(), "load_before": load_average()}
    busy, ours = _busy_cpu_seconds(), _children_cpu_seconds()
    started = time.perf_counter()

    def others_cores() -> float | None:
        """Cores kept busy by other processes while the point ran, on average: the machine's busy CPU
        time less this point's own, over the wall time (a timed-out child's own time is not reaped, so
        it counts as others')."""
        now = _busy_cpu_seconds()
        if busy is None or now is None:
            return None
        wall = max(time.perf_counter() - started, 1e-6)
        return round(max(now - busy - (_children_cpu_seconds() - ours), 0.0) / wall, 2)

    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return {"timed_out_after_s": timeout_s, **context, "load_after": load_average()}
    context["load_after"] = load_average()
    context["other_processes_cores"] = others_cores()
    if done.returncode != 0:
        return {"failed": (done.stderr.strip().splitlines() or ["no output"])[-1][:300], **context}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["process_wall_s"] = round(time.perf_counter() - started, 2)
    return {**row, **context}


def curve_key(sizes: tuple[int, ...], models: tuple[str, ...] = MODELS) -> str:
    """What the cost curve depends on: the measuring code, the shipped trainer's settings, the sizes."""
    import hashlib

    from models.recommend import MF_MOVIELENS_100K

    digest = hashlib.sha256()
    for source in ("bench/recommend_scaling.py", "models/recommend/als.py", "models/recommend/mf.py"):
        path = REPO_ROOT / source
        digest.update(path.read_bytes() if path.is_file() else source.encode())
    digest.update(json.dumps(MF_MOVIELENS_100K.metadata(), sort_keys=True, default=str).encode())
    digest.update(json.dumps([list(sizes), list(models)]).encode())
    return digest.hexdigest()[:16]


def read_curve(out_dir: Path = OUT_DIR) -> dict | None:
    """The curve last written to out_dir/recommend_scaling.json, or None."""
    path = out_dir / "recommend_scaling.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def measure(
    sizes: tuple[int, ...] = SIZES,
    models: tuple[str, ...] = MODELS,
    timeout_s: float | None = None,
    log=None,
) -> dict:
    """The cost curve: {"setup", "points": [{"n_ratings", "n_users", "n_items", model: row, ...}], "slope",
    "time_limits_s", "started_at", "finished_at", "load_before", "load_after", "key"}.

    timeout_s: one time limit for every model instead of TIME_LIMITS_S."""
    limits = {model: timeout_s or TIME_LIMITS_S.get(model, 900.0) for model in models}
    started_at, load_before = utc_now(), load_average()
    points = []
    with tempfile.TemporaryDirectory(prefix="rec_scaling_") as tmp:
        for n_ratings in sizes:
            started = time.perf_counter()
            users, items, stars, n_users, n_items = synthetic_ratings(n_ratings)
            path = Path(tmp) / f"ratings_{n_ratings}.npz"
            np.savez(path, users=users, items=items, stars=stars, n_users=n_users, n_items=n_items)
            point = {
                "n_ratings": n_ratings,
                "n_users": n_users,
                "n_items": n_items,
                "mean_stars": round(float(stars.mean()), 3),
                "generate_s": round(time.perf_counter() - started, 2),
            }
            del users, items, stars
            for model in models:
                point[model] = _run_point(model, path, limits[model])
                if log:
                    print(f"scaling: {n_ratings:,} ratings, {model}: {point[model]}", file=log, flush=True)
            path.unlink()
            points.append(point)
    return {
        "setup": (
            "synthetic MovieLens-shaped ratings (density of ML-100K, power-law activity, users "
            f"rank^-{USER_EXPONENT}, films rank^-{ITEM_EXPONENT}); one process per point; one CPU thread; "
            f"{os.cpu_count()} cores shared with other jobs"
        ),
        "started_at": started_at,
        "finished_at": utc_now(),
        "load_before": load_before,
        "load_after": load_average(),
        "time_limits_s": limits,
        "points": points,
        "slope": fitted_slopes(points, models),
        "key": curve_key(sizes, models),
    }


def fitted_slopes(points: list[dict], models: tuple[str, ...]) -> dict:
    """Per model: exponent b of time ∝ N^b and memory ∝ N^b (least squares in log-log), and seconds
    and MB per million ratings at the largest measured size."""
    slopes = {}
    for model in models:
        rows = [(p["n_ratings"], p[model]) for p in points if "fit_s" in p.get(model, {})]
        if len(rows) < 2:
            continue
        n = np.log([r[0] for r in rows])
        seconds = np.log([max(r[1]["fit_s"] + r[1].get("prepare_s", 0.0), 1e-6) for r in rows])
        memory = np.log([max(r[1]["peak_over_baseline_mb"], 1.0) for r in rows])
        largest_n, largest = rows[-1]
        slopes[model] = {
            "time_exponent": round(float(np.polyfit(n, seconds, 1)[0]), 2),
            "memory_exponent": round(float(np.polyfit(n, memory, 1)[0]), 2),
            "seconds_per_million_at_largest": round(
                (largest["fit_s"] + largest.get("prepare_s", 0.0)) / (largest_n / 1e6), 3
            ),
            "mb_per_million_at_largest": round(largest["peak_over_baseline_mb"] / (largest_n / 1e6), 1),
        }
    return slopes


# ---- chart: a small hand-written SVG (log-log), so that no plotting library is needed ------------
_COLOURS = {"als": "#6a3d9a", "ranker": "#1f78b4", "surprise": "#e6550d"}
_NAMES = {"als": "ours: ALS rating model", "ranker": "ours: PureSVD ranker", "surprise": "Surprise SVD"}


def _panel(points, models, key, title, unit, x0, width, height) -> list[str]:
    series = {
        model: [
            (p["n_ratings"], p[model]["fit_s"] + p[model].get("prepare_s", 0.0))
            if key == "time"
            else (p["n_ratings"], max(p[model]["peak_over_baseline_mb"], 1.0))
            for p in points
            if "fit_s" in p.get(model, {})
        ]
        for model in models
    }
    values = [v for rows in series.values() for _, v in rows]
    if not values:
        return []
    lo, hi = 10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)))
    nx = [p["n_ratings"] for p in points]
    xlo, xhi = math.log10(min(nx)) - 0.15, math.log10(max(nx)) + 0.15
    left, top, plot_w, plot_h = x0 + 58, 36, width - 78, height - 120

    def x(n: float) -> float:
        return left + (math.log10(n) - xlo) / (xhi - xlo) * plot_w

    def y(v: float) -> float:
        return top + plot_h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h

    out = [f'<text x="{x0 + width / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>']
    decade = lo
    while decade <= hi * 1.0001:
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" stroke="#ddd"/>'
        )
        label = f"{decade:g}"
        out.append(f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">{label}</text>')
        decade *= 10
    for n in nx:
        out.append(f'<line x1="{x(n):.1f}" x2="{x(n):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>')
        out.append(f'<text x="{x(n):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{n / 1e6:g} M</text>')
    out.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" text-anchor="middle">ratings (log scale)</text>'
    )
    out.append(
        f'<text transform="translate({x0 + 14},{top + plot_h / 2}) rotate(-90)" text-anchor="middle">{unit}</text>'
    )
    for model, rows in series.items():
        if not rows:
            continue
        colour = _COLOURS.get(model, "#333")
        path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in rows)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for n, v in rows:
            out.append(
                f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"><title>{_NAMES[model]}: '
                f"{v:.3g} {unit.split(' ')[0]} at {n:,} ratings</title></circle>"
            )
    return out


def write_svg(result: dict, path: Path) -> None:
    """Two log-log panels (training time, peak memory above the loaded data) with a legend."""
    points = result["points"]
    models = [m for m in MODELS if any("fit_s" in p.get(m, {}) for p in points)]
    width, height = 900, 430
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        *_panel(points, models, "time", "Training time", "seconds", 0, width / 2, height),
        *_panel(
            points,
            models,
            "memory",
            "Peak memory of training",
            "MB above the loaded data",
            width / 2,
            width / 2,
            height,
        ),
    ]
    for position, model in enumerate(models):
        lx = 70 + position * 260
        body.append(f'<rect x="{lx}" y="{height - 40}" width="14" height="4" fill="{_COLOURS[model]}"/>')
        body.append(f'<text x="{lx + 20}" y="{height - 34}">{_NAMES[model]}</text>')
    timed_out = [
        f"{m} at {p['n_ratings'] / 1e6:g} M"
        for p in points
        for m in models
        if "timed_out_after_s" in p.get(m, {}) or "failed" in p.get(m, {})
    ]
    if timed_out:
        body.append(
            f'<text x="70" y="{height - 12}" fill="#a00">not finished within the time limit: '
            f"{', '.join(timed_out)}</text>"
        )
    body.append("</svg>")
    path.write_text("\n".join(body) + "\n", encoding="utf-8")


def write_outputs(result: dict, out_dir: Path) -> None:
    """bench/recommend_scaling.json (read by the Model cards page) and the SVG chart for the README."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "recommend_scaling.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_svg(result, out_dir / "recommend_scaling.svg")


def merge_into_results(result: dict, results_path: Path) -> bool:
    """Put the curve under services.recommend.scaling of an existing bench/results.json."""
    if not results_path.is_file():
        return False
    results = json.loads(results_path.read_text(encoding="utf-8"))
    results.setdefault("services", {}).setdefault("recommend", {})["scaling"] = result
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.recommend_scaling", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated rating counts")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds per (model, size) point for every model (default: {TIME_LIMITS_S})",
    )
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    parser.add_argument("--no-readme", action="store_true", help="do not refresh README.md's tables")
    parser.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.data)))
        return 0
    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    models = tuple(m for m in args.models.split(",") if m.strip())
    result = measure(sizes, models, args.timeout, log=sys.stderr)
    result["command"] = " ".join(
        ["python -m bench.recommend_scaling", *(argv if argv is not None else sys.argv[1:])]
    )
    out = Path(args.out_dir)
    write_outputs(result, out)
    merged = merge_into_results(result, out / "results.json")
    if merged:  # results.md and the README's tables are drawn from results.json: redraw them
        from bench.report import refresh_from_results

        print(refresh_from_results(out, readme=not args.no_readme))
    print(json.dumps(result["slope"]))
    print(
        f"wrote {out / 'recommend_scaling.json'}, {out / 'recommend_scaling.svg'}"
        + (f", services.recommend.scaling in {out / 'results.json'} and results.md" if merged else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
