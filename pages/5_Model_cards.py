"""Model cards: data and licence, split, measured metrics beside published references, confusion
matrices, limitations, and the command that reproduces each number."""

from __future__ import annotations

import json
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from pages.ui import chart_height, setup_page
from services.model_cards import load_model_cards, markdown_blocks

REPO_ROOT = Path(__file__).resolve().parents[1]

setup_page(
    "Model cards",
    "📇",
    "Every model shipped with this demo, how it was trained and evaluated, and where it falls short. "
    "All figures are read from metrics.json files written by the evaluation commands shown.",
)


def confusion_heatmap(labels: list[str], matrix: list[list[int]]) -> alt.Chart:
    rows = [
        {"true": labels[i], "predicted": labels[j], "count": int(count)}
        for i, row in enumerate(matrix)
        for j, count in enumerate(row)
    ]
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=labels, title="predicted"),
        y=alt.Y("true:N", sort=labels, title="true"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="purples", type="symlog"), legend=None),
        tooltip=["true", "predicted", "count"],
    )
    text = base.mark_text(fontSize=13).encode(
        text="count:Q",
        color=alt.condition(
            alt.datum.count > frame["count"].max() / 3, alt.value("white"), alt.value("#333")
        ),
    )
    # Square cells of at least 90 px: a 2-class matrix stays a readable square, not a 112 px strip.
    # "pad": width and height are the plotting area itself, axes come on top of it.
    cell = max(36, 240 // len(labels))
    return (cells + text).properties(
        width=cell * len(labels), height=cell * len(labels), autosize=alt.AutoSizeParams(type="pad")
    )


def training_source_table(metrics: dict) -> pd.DataFrame | None:
    """Each training source with its licence, as the evaluation command recorded it (None when absent)."""
    sources = metrics.get("training_sources")
    if not isinstance(sources, list) or not sources:
        return None
    columns = {
        "key": "source",
        "description": "what it is",
        "rows_per_epoch": "rows per epoch",
        "licence": "licence",
    }
    return pd.DataFrame(
        [{name: s.get(key) for key, name in columns.items()} for s in sources if isinstance(s, dict)]
    )


def cost_curve() -> list[alt.Chart] | None:
    """Training time and peak memory against the number of ratings (bench/recommend_scaling.json)."""
    path = REPO_ROOT / "bench" / "recommend_scaling.json"
    if not path.is_file():
        return None
    points = json.loads(path.read_text(encoding="utf-8")).get("points", [])
    names = {"als": "this project's ALS", "ranker": "PureSVD candidates", "surprise": "Surprise SVD"}
    rows = []
    for point in points:
        for model, name in names.items():
            row = point.get(model)
            if not isinstance(row, dict) or not isinstance(row.get("fit_s"), int | float):
                continue  # e.g. a point that ran past its time limit
            seconds = row["fit_s"] + row.get("prepare_s", 0.0)  # Surprise must build its trainset first
            rows.append(
                {
                    "ratings": point["n_ratings"],
                    "model": name,
                    "measure": "training time (s)",
                    "value": seconds,
                }
            )
            if isinstance(row.get("peak_over_baseline_mb"), int | float):
                # what training itself added, above the interpreter, torch and the loaded ratings
                added = max(row["peak_over_baseline_mb"], 1.0)
                rows.append(
                    {
                        "ratings": point["n_ratings"],
                        "model": name,
                        "measure": "peak memory added (MB)",
                        "value": added,
                    }
                )
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    charts = []
    for measure in ("training time (s)", "peak memory added (MB)"):
        charts.append(
            alt.Chart(frame[frame["measure"] == measure])
            .mark_line(point=True)
            .encode(
                x=alt.X("ratings:Q", scale=alt.Scale(type="log"), title="ratings (synthetic)"),
                y=alt.Y("value:Q", scale=alt.Scale(type="log"), title=measure),
                # One entry per line: three side by side were wider than a phone and cut to "t".
                color=alt.Color(
                    "model:N", legend=alt.Legend(orient="bottom", direction="vertical", title=None)
                ),
                tooltip=["model", "ratings", "value"],
            )
            .properties(height=chart_height(160, legend=True))
        )
    return charts


def reliability_diagram(calibration: dict) -> alt.Chart | None:
    """Mean confidence against how often the answers were right, per confidence bin (the diagonal is
    perfect calibration), for the numbers the doubt threshold was chosen on and, if measured, the test."""
    rows = [
        {**row, "numbers": name}
        for key, name in (("fit", "training digits (threshold chosen here)"), ("test", "test digits"))
        for row in calibration.get(key, {}).get("bins", [])
    ]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    axis = alt.Scale(domain=[0, 1])
    diagonal = (
        alt.Chart(pd.DataFrame({"x": [0.0, 1.0]}))
        .mark_line(strokeDash=[4, 4], color="gray")
        .encode(
            x=alt.X("x:Q", scale=axis, title="confidence of the whole number"), y=alt.Y("x:Q", scale=axis)
        )
    )
    points = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("confidence:Q", scale=axis),
            y=alt.Y("accuracy:Q", scale=axis, title="share read right"),
            color=alt.Color(
                "numbers:N", legend=alt.Legend(orient="bottom", direction="vertical", title=None)
            ),
            tooltip=["numbers", "lower", "upper", "n", "confidence", "accuracy"],
        )
    )
    threshold = calibration.get("doubt_below")
    rule = alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(color="#DC2626").encode(x="t:Q")
    return (diagonal + points + rule).properties(height=chart_height(220, legend=True))


cards = load_model_cards()
if not cards:
    st.warning("No model cards found in models/. Train the models first: `make train`.")

for tab, card in zip(st.tabs([card.title.split(" · ")[0] for card in cards]), cards, strict=True):
    with tab:
        st.subheader(card.title)
        st.markdown("**Measured here**")
        rows = card.metric_rows()
        if rows:
            # st.table wraps long text (st.dataframe cut the names inside its scroll box).
            st.table(pd.DataFrame(rows), hide_index=True)
        else:
            st.info("No metrics.json yet: run `make evaluate`.")
        st.markdown("**Published references**")
        st.table(pd.DataFrame(card.references, columns=["model", "figure"]), hide_index=True)
        per_set = card.test_set_rows()
        if per_set:
            st.markdown("**Beyond the benchmark**: test sets never trained or tuned on")
            st.table(pd.DataFrame(per_set).fillna("–"), hide_index=True)
        sources = training_source_table(card.metrics)
        if sources is not None:
            st.markdown("**Trained on**: each source with its licence or terms")
            st.table(sources.fillna("–"), hide_index=True)
        if card.task == "recommend" and (curves := cost_curve()) is not None:
            st.markdown("**Cost curve**: training time and peak memory as the data grows (`make bench`)")
            for column, curve in zip(st.columns(len(curves)), curves, strict=True):
                column.altair_chart(curve, width="stretch")
        if card.reproduce_command:
            st.markdown("**Reproduce**")
            st.code(card.reproduce_command, language="bash")
        calibration = card.metrics.get("number_calibration")
        if isinstance(calibration, dict) and (diagram := reliability_diagram(calibration)) is not None:
            st.markdown(
                f"**Is the number's confidence honest?** Generated numbers: confidence against the share read "
                f"right (dashed: perfect). Below the red line ({calibration['doubt_below']:.0%}) an answer is "
                "flagged *check this number*; the line was chosen on numbers made of training digits only."
            )
            st.altair_chart(diagram, width="stretch")
        confusion = card.confusion_matrix
        if confusion:
            st.markdown("**Confusion matrix** (evaluation split)")
            st.altair_chart(confusion_heatmap(*confusion), width="content")
        with st.expander("Full model card", expanded=False):
            for kind, block in markdown_blocks(card.markdown):
                if kind == "table":  # as a table that wraps: a Markdown table is cut off on a phone
                    header, rows = block
                    st.table(pd.DataFrame(rows, columns=header), hide_index=True)
                else:
                    st.markdown(block)
