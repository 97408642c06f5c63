"""`make bench`'s pieces with small inputs: the report drawn from a results dict, the README's marked
sections, the cost curve's reuse rules and one real (tiny) cost-curve point with its load average."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import comparisons, recommend_scaling
from bench.report import (
    append_history,
    cost_curve_table,
    markdown_table,
    refresh_from_results,
    scaling_summary,
    write_report,
)
from bench.tasks import BENCHES, TASKS


def _row(fit_s: float, mb: float, load: float, prepare_s: float | None = None) -> dict:
    row = {
        "other_processes_cores": 0.05,
        "fit_s": fit_s,
        "peak_over_baseline_mb": mb,
        "load_before": [load, 0.2, 0.1],
        "load_after": [1.0, 0.3, 0.1],
    }
    if prepare_s is not None:
        row["prepare_s"] = prepare_s
    return row


CURVE = {
    "started_at": "2026-12-06T04:01:00Z",
    "finished_at": "2026-12-06T04:20:00Z",
    "load_before": [0.12, 0.34, 0.56],
    "load_after": [0.98, 0.87, 0.65],
    "time_limits_s": {"als": 900.0, "ranker": 900.0, "surprise": 1200.0},
    "points": [
        {
            "n_ratings": 100_000,
            "als": _row(0.16, 37, 0.05),
            "ranker": _row(1.2, 32, 0.61),
            "surprise": _row(1.1, 36, 0.52, 0.4),
        },
        {
            "n_ratings": 1_000_000,
            "als": _row(1.9, 94, 0.33),
            "ranker": _row(4.0, 69, 0.7),
            "surprise": _row(14.0, 324, 0.8, 3.0),
        },
        {
            "n_ratings": 10_000_000,
            "als": _row(21.0, 569, 0.4),
            "ranker": _row(40.0, 442, 0.9),
            "surprise": {"timed_out_after_s": 1200.0, "load_before": [0.95, 0.9, 0.7]},
        },
    ],
}
CURVE["slope"] = recommend_scaling.fitted_slopes(CURVE["points"], recommend_scaling.MODELS)


def _results() -> dict:
    single = {"p50_ms": 7.04, "p95_ms": 7.8}
    batch = {"items_per_s": 215.2, "batch": 32}
    return {
        "date": "2026-12-06",
        "machine": {"device": "CPU (fp32)", "cpu": "2 cores, x86_64", "torch": "2.x"},
        "services": {
            "vision": {"single": single, "batch": batch, "unit": "images"},
            "recommend": {"single": single, "batch": batch, "unit": "users", "scaling": CURVE},
        },
    }


def test_one_list_of_tasks():
    from services.tasks import TASK_NAMES

    assert TASKS == tuple(BENCHES) == TASK_NAMES  # the task table's, in its order


def test_table_carries_the_figures_and_skips_tasks_not_measured():
    table = markdown_table(_results())
    assert "| vision | 7.0 | 7.8 | 215 images/s (batch 32) |" in table
    assert "| speech |" not in table  # not measured in this run: no row, no made-up figure


def test_cost_curve_rows_show_time_memory_limit_and_load():
    lines = cost_curve_table(CURVE)
    assert "| 100,000 | 0.2 s, +37 MB | 1.5 s, +36 MB | 1.2 s, +32 MB | 0.05 / 0.52 / 0.61 |" in lines
    assert "did not finish in 1200 s" in lines[4]  # the 10 M row states the limit it ran into
    caption = " ".join(lines)
    assert "2026-12-06T04:01:00Z" in caption and "0.12 / 0.34 / 0.56" in caption
    assert "Surprise SVD 1200 s" in caption
    assert "other processes kept 0.05–0.05 cores busy" in caption


def test_summary_sentences_follow_the_fitted_exponents():
    text = scaling_summary(CURVE)
    als = CURVE["slope"]["als"]
    assert f"N^{als['time_exponent']:.2f} in time" in text
    assert "Surprise's SVD" in text and "did not finish 10 M within its 1200 s time limit" in text
    assert "over 0.1–1 M ratings" in text  # Surprise's exponent is fitted on the points it finished


def test_write_and_refresh_fill_only_the_marked_readme_sections(tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\nkept\n<!-- bench:start -->\nold table\n<!-- bench:end -->\nmiddle\n"
        "<!-- scaling:start -->\nold sentence\n<!-- scaling:end -->\nend\n",
        encoding="utf-8",
    )
    out = tmp_path / "bench"
    table = write_report(_results(), out, history=True, readme_path=readme)
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and "old sentence" not in text
    assert table in text and scaling_summary(CURVE) in text
    assert text.startswith("# Title\nkept\n") and "\nmiddle\n" in text and text.endswith("end\n")
    assert (out / "results.md").read_text(encoding="utf-8") == table + "\n"
    assert len((out / "history.jsonl").read_text(encoding="utf-8").splitlines()) == 1

    # a new curve put into results.json (as `make bench-scaling` does) reaches the README, no new history line
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results["services"]["recommend"]["scaling"]["points"][0]["als"]["fit_s"] = 9.87
    (out / "results.json").write_text(json.dumps(results), encoding="utf-8")
    refresh_from_results(out, readme_path=readme)
    assert "| 100,000 | 9.9 s, +37 MB |" in readme.read_text(encoding="utf-8")
    assert len((out / "history.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_cost_curve_reuse_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    measured = []

    def fake_measure(sizes, log=None):
        measured.append(sizes)
        return {"points": [], "key": "new"}

    monkeypatch.setattr(recommend_scaling, "measure", fake_measure)
    monkeypatch.setattr(recommend_scaling, "curve_key", lambda sizes, models=None: "current")
    assert comparisons.recommender_cost_curve(False, "skip", tmp_path) is None  # nothing on file
    assert comparisons.recommender_cost_curve(False, "reuse", tmp_path) == {"points": [], "key": "new"}
    assert measured == [recommend_scaling.SIZES]

    (tmp_path / "recommend_scaling.json").write_text(json.dumps({"key": "current", "points": [1]}))
    assert comparisons.recommender_cost_curve(False, "reuse", tmp_path)["reused"] is True
    (tmp_path / "recommend_scaling.json").write_text(json.dumps({"key": "stale", "points": [1]}))
    assert comparisons.recommender_cost_curve(False, "skip", tmp_path) == {
        "key": "stale",
        "points": [1],
        "reused": True,
    }
    comparisons.recommender_cost_curve(True, "reuse", tmp_path)  # stale: measured, --quick stops at 1 M
    assert measured[-1] == recommend_scaling.SIZES[:2]
    with pytest.raises(ValueError):
        comparisons.recommender_cost_curve(False, "sometimes", tmp_path)


@pytest.mark.slow
def test_a_real_tiny_point_records_when_and_how_busy():
    curve = recommend_scaling.measure((3000,), ("als",))
    (point,) = curve["points"]
    row = point["als"]
    assert row["fit_s"] > 0 and row["peak_over_baseline_mb"] >= 0
    assert len(row["load_before"]) == len(row["load_after"]) == 3
    assert 0 <= row["other_processes_cores"] <= os.cpu_count()
    assert (
        row["started_at"].endswith("Z") and curve["started_at"] <= row["started_at"] <= curve["finished_at"]
    )
    assert curve["time_limits_s"] == {"als": recommend_scaling.TIME_LIMITS_S["als"]}
    assert curve["key"] == recommend_scaling.curve_key((3000,), ("als",))


def test_language_rows_and_history_say_which_precision_the_batch_ran_in(tmp_path: Path):
    results = _results()
    results["services"]["nlp"] = {
        "single": {"p50_ms": 6.2, "p95_ms": 6.9},
        "batch": {"items_per_s": 640.4, "batch": 32},
        "unit": "sentences",
        "pipeline_single": {"p50_ms": 12.9, "p95_ms": 14.0},
        "pipeline_batch": {"items_per_s": 266.0, "batch": 32},
        "single_p50_ratio_vs_pipeline": 0.481,
        "batch_throughput_ratio_vs_pipeline": 2.408,
        "batch_precision": "bf16",
    }
    table = markdown_table(results)
    assert (
        "| batch of 32 different sentences (sentences/s; ours bf16, pipeline fp32) | 640 | 266 | **2.41×**"
        in table
    )
    append_history(results, tmp_path / "history.jsonl")
    line = json.loads((tmp_path / "history.jsonl").read_text(encoding="utf-8"))
    assert line["nlp_batch_precision"] == "bf16" and line["nlp_batch_ratio_vs_pipeline"] == 2.408
