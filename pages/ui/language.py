"""Streamlit pieces of the Language page: the sentiment result, its per-sentence readings and the
word highlights. Pure markup helpers (`attribution_markdown`) are safe for any user text."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import streamlit as st

from pages.ui import confidence_bars

READING_ICONS = {"positive": "😊", "negative": "☹️", "mixed": "⚖️"}


def markdown_escape(text: str) -> str:
    """Escape everything Streamlit markdown could interpret (incl. colour directives and raw HTML)."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~:$>])", r"\\\1", text).replace("\n", " ")


def attribution_markdown(text: str, words: Sequence[dict]) -> str:
    """Markdown with every word of `text` escaped and the influential ones on a coloured background.

    Green = pushes towards positive, red = towards negative; bold when strong. Safe for any user text.
    """
    peak = max((abs(w["score"]) for w in words), default=0.0) or 1.0
    out: list[str] = []
    cursor = 0
    for word in words:
        if word["start"] > cursor:
            out.append(markdown_escape(text[cursor : word["start"]]))
        token = markdown_escape(text[word["start"] : word["end"]])
        strength = word["score"] / peak
        if abs(strength) >= 0.15:
            colour = "green" if strength > 0 else "red"
            token = f":{colour}-background[{'**' + token + '**' if abs(strength) >= 0.5 else token}]"
        out.append(token)
        cursor = word["end"]
    out.append(markdown_escape(text[cursor:]))
    return "".join(out)


def readings_markdown(parts: Sequence[dict]) -> str:
    """One line per sentence or clause: a coloured label, its confidence and the escaped text."""
    lines = []
    for part in parts:
        colour = "green" if part["label"] == "positive" else "red"
        lines.append(
            f"- :{colour}-badge[{part['label']} {part['confidence']:.0%}] {markdown_escape(part['text'])}"
        )
    return "\n".join(lines)


def show_sentiment(result: dict[str, Any]) -> None:
    """Headline (positive, negative or mixed), class bars, notes, per-part readings, word highlights."""
    reading = result.get("reading", result["label"])
    left, right = st.columns([1, 2])
    with left:
        st.markdown(f"### {READING_ICONS.get(reading, '')} Sentiment: **{reading}**")
        if reading == "mixed":
            st.caption(
                f"Read as a whole it leans {result['label']} ({result['confidence']:.0%}); "
                "its parts disagree (below)."
            )
        else:
            st.caption(f"Confidence {result['confidence']:.1%}")
        if result["low_confidence"] and reading != "mixed":
            st.warning("Low-confidence answer: treat it as a guess.", icon=":material/help:")
    with right:
        confidence_bars(result["top_k"])
    for note in result["notes"]:
        st.info(note, icon=":material/info:")
    parts = result.get("sentences") or result.get("clauses")
    if parts:
        kind = "sentence" if "sentences" in result else "part"
        st.markdown(f"**Sentiment of each {kind}**")
        st.markdown(readings_markdown(parts))
    if result.get("chunked"):
        import pandas as pd

        with st.expander(f"The text was split into {result['n_chunks']} windows: results per window"):
            st.dataframe(pd.DataFrame(result["chunks"]), hide_index=True, width="stretch")
    if result.get("words"):
        st.markdown(
            "**Why:** :green-background[green] words pushed towards positive, "
            ":red-background[red] towards negative (bold = strongest)."
        )
        with st.container(border=True):
            st.markdown(attribution_markdown(result["text"], result["words"]))
        st.caption(
            f"{result['attribution']['method']}; completeness gap {result['attribution']['delta']:+.3f} logits."
        )


def domain_table(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for the accuracy/ECE table of every test-only set scored by `python -m models evaluate nlp`."""
    return [
        {
            "test-only set": key,
            "sentences": row.get("n"),
            "accuracy": row.get("accuracy"),
            "ECE": row.get("ece"),
        }
        for key, row in (metrics.get("test_sets") or {}).items()
    ]
