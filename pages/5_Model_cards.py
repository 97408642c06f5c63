"""Model cards: data and licence, split, measured metrics beside published references, confusion
matrices, limitations, and the command that reproduces each number."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from pages.ui import setup_page
from services.model_cards import load_model_cards

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


cards = load_model_cards()
if not cards:
    st.warning("No model cards found in models/. Train the models first: `make train`.")

for tab, card in zip(st.tabs([card.title.split(" · ")[0] for card in cards]), cards, strict=True):
    with tab:
        st.subheader(card.title)
        measured, reference = st.columns(2)
        with measured:
            st.markdown("**Measured here**")
            headline = card.headline_metrics()
            if headline:
                st.dataframe(
                    pd.DataFrame(
                        {"metric": list(headline), "value": [round(v, 4) for v in headline.values()]}
                    ),
                    hide_index=True,
                    width="stretch",
                )
            else:
                st.info("No metrics.json yet: run the command below.")
        with reference:
            st.markdown("**Published references**")
            st.dataframe(
                pd.DataFrame(card.references, columns=["model", "figure"]), hide_index=True, width="stretch"
            )
        st.markdown("**Reproduce**")
        st.code(card.reproduce_command, language="bash")
        confusion = card.confusion_matrix
        if confusion:
            st.markdown("**Confusion matrix** (evaluation split)")
            st.altair_chart(confusion_heatmap(*confusion), width="content")
        with st.expander("Full model card", expanded=False):
            st.markdown(card.markdown)
