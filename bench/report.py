"""What `make bench` writes: bench/results.json, bench/results.md, a line in bench/history.jsonl and
the README's table between `<!-- bench:start -->` and `<!-- bench:end -->`, all from one results dict."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from bench import replace_readme_section
from bench.tasks import TASKS

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"


def markdown_table(results: dict) -> str:
    rows = ["| task | single p50 (ms) | single p95 (ms) | batch throughput |", "|---|---:|---:|---:|"]
    for task in TASKS:
        r = results["services"].get(task)
        if not r:
            continue
        rows.append(
            f"| {task} | {r['single']['p50_ms']:.1f} | {r['single']['p95_ms']:.1f} | "
            f"{r['batch']['items_per_s']:.0f} {r['unit']}/s (batch {r['batch']['batch']}) |"
        )
    lines = [
        f"Measured by `make bench` on {results['machine']['device']} "
        f"({results['machine']['cpu']}, torch {results['machine']['torch']}), {results['date']}.",
        "",
        *rows,
        "",
    ]
    number = results["services"].get("vision", {}).get("number_photo_4_digits")
    if number:
        lines += [
            "| vision: phone photo of a handwritten 4-digit number, end to end | p50 (ms) | p95 (ms) |",
            "|---|---:|---:|",
            f"| decode, find and cut the digits, read them (goal p50 ≤ 30 ms) | **{number['p50_ms']:.1f}** "
            f"| {number['p95_ms']:.1f} |",
            "",
        ]
    nlp_r = results["services"].get("nlp")
    if nlp_r:
        lines += [
            '| language: ours vs `pipeline("text-classification")` | ours | pipeline | ratio |',
            "|---|---:|---:|---:|",
            f"| single sentence p50 (ms) | {nlp_r['single']['p50_ms']:.1f} | {nlp_r['pipeline_single']['p50_ms']:.1f} "
            f"| **{nlp_r['single_p50_ratio_vs_pipeline']:.2f}×** (goal ≤ 0.7×) |",
            f"| batch of 32 different sentences (sentences/s; ours {nlp_r.get('batch_precision', 'fp32')}, "
            f"pipeline fp32) | {nlp_r['batch']['items_per_s']:.0f} | {nlp_r['pipeline_batch']['items_per_s']:.0f} "
            f"| **{nlp_r['batch_throughput_ratio_vs_pipeline']:.2f}×** (goal ≥ 1.5×) |",
            "",
        ]
    rec = results["services"].get("recommend", {})
    vs = rec.get("vs_surprise", {})
    if "surprise_svd_rmse" in vs:
        lines += [
            "| recommender on MovieLens u1 | ours (ALS, shipped) | Surprise SVD | ratio |",
            "|---|---:|---:|---:|",
            f"| training time (s) | {vs['ours_fit_s']:.1f} | {vs['surprise_svd_fit_s']:.1f} | **{vs['fit_time_ratio']:.2f}×** |",
            f"| RMSE on u1.test | {vs['ours_rmse']:.4f} | {vs['surprise_svd_rmse']:.4f} | **{vs['rmse_ratio']:.3f}×** |",
            f"| fold-in of a new user, p50 (ms) | {rec['fold_in']['p50_ms']:.2f} | – | – |",
            "",
        ]
    scaling = rec.get("scaling", {})
    if scaling.get("points"):
        lines += cost_curve_table(scaling)
    app = results.get("app", {})
    if app:
        loads = app.get("cold_load_s", {})
        lines += [
            "| app | seconds / MB |",
            "|---|---:|",
            f"| server start (`make run`) → health check answers | {app.get('to_health_s', '–')} s |",
            f"| server start (`make run`) → home page shown | {app.get('to_first_page_s', '–')} s |",
            f"| server start (`make run`) → all four self-tests answered | {app.get('to_all_models_answering_s', '–')} s |",
            *[
                f"| cold load of the {task} model (fresh process, imports included) | {loads[task]} s |"
                for task in loads
            ],
            f"| resident memory, all four models loaded (one process) | {app.get('rss_all_models_mb', '–')} MB |",
            f"| resident memory of the app server after the home page | {app.get('server_rss_mb', '–')} MB |",
            "",
        ]
    return "\n".join(lines)


def _curve_cell(row: dict | None) -> str:
    if isinstance(row, dict) and isinstance(row.get("fit_s"), int | float):
        seconds = row["fit_s"] + row.get("prepare_s", 0.0)  # Surprise must build its trainset first
        return f"{seconds:.1f} s, +{row.get('peak_over_baseline_mb', 0):.0f} MB"
    if isinstance(row, dict) and isinstance(row.get("timed_out_after_s"), int | float):
        return f"did not finish in {row['timed_out_after_s']:.0f} s"
    if isinstance(row, dict) and row.get("failed"):
        return "failed (see bench/recommend_scaling.json)"
    return "did not finish in its time limit"


def _load_1min(row: dict | None) -> str:
    load = row.get("load_before") if isinstance(row, dict) else None
    return f"{load[0]:.2f}" if isinstance(load, list) and load else "–"


def _loads(load: list | None) -> str:
    return " / ".join(f"{value:.2f}" for value in load) if isinstance(load, list) and load else "–"


def _others_cores(scaling: dict) -> str:
    """', other processes kept 0.02–0.10 of the 2 cores busy during the points' (from /proc/stat)."""
    cores = [
        row["other_processes_cores"]
        for point in scaling.get("points", [])
        for row in point.values()
        if isinstance(row, dict) and isinstance(row.get("other_processes_cores"), int | float)
    ]
    if not cores:
        return ""
    return f"; other processes kept {min(cores):.2f}–{max(cores):.2f} cores busy during the points"


_CURVE_NAMES = {"als": "ALS", "ranker": "PureSVD", "surprise": "Surprise SVD"}


def cost_curve_table(scaling: dict) -> list[str]:
    """The cost curve's rows, with when it was measured and how busy the machine was around each point."""
    models = ("als", "surprise", "ranker")
    lines = [
        "| cost curve: synthetic ratings | ours (ALS): time, memory added | Surprise SVD | PureSVD candidates "
        "| 1-min load before each point (ALS / Surprise / PureSVD) |",
        "|---:|---:|---:|---:|---:|",
        *[
            f"| {p['n_ratings']:,} | {_curve_cell(p.get('als'))} | {_curve_cell(p.get('surprise'))} "
            f"| {_curve_cell(p.get('ranker'))} | {' / '.join(_load_1min(p.get(m)) for m in models)} |"
            for p in scaling["points"]
        ],
        "",
    ]
    if scaling.get("started_at"):
        limits = scaling.get("time_limits_s", {})
        lines += [
            f"Cost curve measured by `make bench-scaling` from {scaling['started_at']} to "
            f"{scaling.get('finished_at', '?')}, one process and one thread per point; load average "
            f"(1 / 5 / 15 min) {_loads(scaling.get('load_before'))} before the run and "
            f"{_loads(scaling.get('load_after'))} after it (the point being measured adds up to 1)"
            + _others_cores(scaling)
            + "; "
            "time limit per point: "
            + ", ".join(
                f"{_CURVE_NAMES.get(model, model)} {seconds:.0f} s" for model, seconds in limits.items()
            )
            + ".",
            "",
        ]
    return lines


def scaling_summary(scaling: dict) -> str:
    """The README's sentences on how each model's cost grows, from the fitted exponents."""
    names = {"als": "Our ALS", "ranker": "the PureSVD candidate stage", "surprise": "Surprise's SVD"}
    slopes = scaling.get("slope", {})
    points = scaling.get("points", [])
    sentences = []
    for model, name in names.items():
        slope = slopes.get(model)
        finished = [p["n_ratings"] for p in points if isinstance(p.get(model, {}).get("fit_s"), int | float)]
        if not slope or not finished:
            continue
        sentence = (
            f"{name[0].upper() + name[1:]} grows as N^{slope['time_exponent']:.2f} in time and "
            f"N^{slope['memory_exponent']:.2f} in memory over {min(finished) / 1e6:g}–{max(finished) / 1e6:g} M "
            f"ratings ({slope['seconds_per_million_at_largest']:.1f} s and "
            f"{slope['mb_per_million_at_largest']:.0f} MB per million ratings at {max(finished) / 1e6:g} M)"
        )
        missing = [p["n_ratings"] for p in points if p["n_ratings"] not in finished and model in p]
        if missing:
            limit = scaling.get("time_limits_s", {}).get(model)
            within = f"its {limit:.0f} s time limit" if limit else "its time limit"
            sentence += f", and did not finish {', '.join(f'{n / 1e6:g} M' for n in missing)} within {within}"
        sentences.append(sentence + ".")
    return " ".join(sentences)


def update_readme(table: str, readme: Path = README) -> None:
    if not readme.is_file():
        return
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)", re.DOTALL)
    if pattern.search(text):
        readme.write_text(
            pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text), encoding="utf-8"
        )


def append_history(results: dict, path: Path) -> None:
    """One line per run with the ratios that must hold run after run (bench/history.jsonl)."""
    nlp = results["services"].get("nlp", {})
    vs = results["services"].get("recommend", {}).get("vs_surprise", {})
    app = results.get("app", {})
    line = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "nlp_batch_ratio_vs_pipeline": nlp.get("batch_throughput_ratio_vs_pipeline"),
        "nlp_single_p50_ratio_vs_pipeline": nlp.get("single_p50_ratio_vs_pipeline"),
        "nlp_batch_precision": nlp.get("batch_precision", "fp32"),
        "recommend_fit_time_ratio": vs.get("fit_time_ratio"),
        "recommend_rmse_ratio": vs.get("rmse_ratio"),
        "app_to_first_page_s": app.get("to_first_page_s"),
        "app_to_all_models_answering_s": app.get("to_all_models_answering_s"),
    }
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def write_report(
    results: dict, out_dir: Path, readme: bool = True, history: bool = True, readme_path: Path = README
) -> str:
    """results.json, results.md, a history line (unless `history` is False) and the README's tables."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if history:
        append_history(results, out_dir / "history.jsonl")
    table = markdown_table(results)
    (out_dir / "results.md").write_text(table + "\n", encoding="utf-8")
    if readme and readme_path.is_file():
        update_readme(table, readme_path)
        scaling = results.get("services", {}).get("recommend", {}).get("scaling", {})
        if scaling.get("points"):
            replace_readme_section("scaling", scaling_summary(scaling), readme_path)
    return table


def refresh_from_results(out_dir: Path, readme: bool = True, readme_path: Path = README) -> str:
    """Redraw results.md and the README's tables from out_dir/results.json as it stands (after
    `make bench-scaling` put a new cost curve into it); no history line, nothing measured."""
    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    return write_report(results, out_dir, readme=readme, history=False, readme_path=readme_path)
