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


# Strength bands of a word's share of the strongest word's score: a faint word stays plain; then
# coloured text, a coloured background, and a bold coloured background. Streamlit's Markdown has no
# free colour shades (and raw HTML is off limits here), so the grade is carried by these three steps;
# the bar chart beside the text gives the exact values.
WEAK, MEDIUM, STRONG = 0.15, 0.4, 0.7
POLARITY_COLOURS = {True: "green", False: "red"}  # score > 0 pushes towards positive


def display_words(text: str, words: Sequence[dict]) -> list[dict]:
    """Tokenizer words joined into the words a reader sees: "cold" and "," with nothing between them
    are one word "cold," (scores added). Highlighting the comma on its own put a padded box between
    them, which read as "cold , the"."""
    joined: list[dict] = []
    for word in sorted(words, key=lambda w: w["start"]):
        if joined and word["start"] == joined[-1]["end"] and not text[word["start"] : word["end"]].isspace():
            joined[-1] = {**joined[-1], "end": word["end"], "score": joined[-1]["score"] + word["score"]}
        else:
            joined.append({"start": word["start"], "end": word["end"], "score": word["score"]})
    for word in joined:
        word["word"] = text[word["start"] : word["end"]]
    return joined


def strength_band(strength: float) -> int:
    """0 (plain) to 3 (strongest) for |score| / peak."""
    return sum(abs(strength) >= edge for edge in (WEAK, MEDIUM, STRONG))


def highlight(token: str, band: int, positive: bool) -> str:
    """`token` (already escaped) marked at strength `band` in its polarity's colour."""
    colour = POLARITY_COLOURS[positive]
    if band == 1:
        return f":{colour}[{token}]"
    if band == 2:
        return f":{colour}-background[{token}]"
    if band == 3:
        return f":{colour}-background[**{token}**]"
    return token


def highlight_legend() -> str:
    """The key to the highlights, strongest negative to strongest positive."""
    negative = [highlight(name, band, False) for band, name in ((3, "strong"), (2, "medium"), (1, "weak"))]
    positive = [highlight(name, band, True) for band, name in ((1, "weak"), (2, "medium"), (3, "strong"))]
    return f"towards negative {' '.join(negative)} · neutral · {' '.join(positive)} towards positive"


def attribution_markdown(text: str, words: Sequence[dict]) -> str:
    """Markdown with every word of `text` escaped and the influential ones marked in graded steps.

    Green = pushes towards positive, red = towards negative; the stronger the push, the heavier the
    mark (see `highlight`). Safe for any user text.
    """
    words = display_words(text, words)
    peak = max((abs(w["score"]) for w in words), default=0.0) or 1.0
    out: list[str] = []
    cursor = 0
    for word in words:
        if word["start"] > cursor:
            out.append(markdown_escape(text[cursor : word["start"]]))
        strength = word["score"] / peak
        out.append(highlight(markdown_escape(word["word"]), strength_band(strength), strength > 0))
        cursor = word["end"]
    out.append(markdown_escape(text[cursor:]))
    return "".join(out)


def word_chart(text: str, words: Sequence[dict], top: int = 12) -> dict | None:
    """A Vega-Lite spec (plain data, see confidence_bars) of the strongest words' scores on one diverging
    scale (red negative, green positive), so the exact strength of each word can be read off, not only
    its band."""
    from pages.ui import chart_height

    shown = sorted(display_words(text, words), key=lambda w: abs(w["score"]), reverse=True)[:top]
    if not shown:
        return None
    peak = max(abs(w["score"]) for w in shown) or 1.0
    names = [w["word"] for w in shown]
    rows = [
        {
            "word": f"{w['word']} ({i + 1})" if names.count(w["word"]) > 1 else w["word"],
            "contribution": w["score"],
        }
        for i, w in enumerate(shown)
    ]
    return {
        "data": {"values": rows},
        "mark": {"type": "bar", "cornerRadiusEnd": 3},
        "encoding": {
            # No stacking and a fixed, symmetric domain: Vega then derives no extent from the data, which
            # it logged as "Infinite extent" warnings on every result while the data was still empty.
            "x": {
                "field": "contribution",
                "type": "quantitative",
                "title": "push towards positive (logits)",
                "stack": None,
                "scale": {"domain": [-peak, peak]},
            },
            "y": {
                "field": "word",
                "type": "nominal",
                "sort": {"field": "contribution", "order": "descending"},
                "title": None,
            },
            "color": {
                "field": "contribution",
                "type": "quantitative",
                "scale": {"scheme": "redyellowgreen", "domain": [-peak, peak]},
                "legend": None,
            },
            "tooltip": [
                {"field": "word", "type": "nominal"},
                {"field": "contribution", "type": "quantitative", "format": "+.3f"},
            ],
        },
        "height": chart_height(20 * len(rows)),
    }


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
        st.markdown("**Why:** the words that pushed the answer, marked by how strongly they pushed.")
        st.caption(highlight_legend())
        text_col, chart_col = st.columns([3, 2])
        with text_col, st.container(border=True):
            st.markdown(attribution_markdown(result["text"], result["words"]))
        chart = word_chart(result["text"], result["words"])
        if chart is not None:
            chart_col.vega_lite_chart(spec=chart, width="stretch")
        st.caption(
            f"{result['attribution']['method']}; completeness gap {result['attribution']['delta']:+.3f} logits."
        )


def out_of_domain_summary(metrics: dict[str, Any], benchmark: str = "sst2_dev") -> str:
    """ ", and 70.4%–92.2% (mean 82.1%) on 6 sets it never trained on": the honest range beside the
    benchmark, from metrics.json (empty when the file has no test-only sets)."""
    scores = [
        row["accuracy"]
        for key, row in (metrics.get("test_sets") or {}).items()
        if key != benchmark and isinstance(row.get("accuracy"), int | float)
    ]
    if not scores:
        return ""
    mean = metrics.get("test_sets_mean_accuracy", sum(scores) / len(scores))
    return (
        f", and **{min(scores):.1%}–{max(scores):.1%}** (mean {mean:.1%}) on {len(scores)} sets of other "
        "reviews and posts it never trained on"
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


def domain_table_markdown(metrics: dict[str, Any]) -> str:
    """The same rows as a Markdown table ("" when nothing was scored): a static table needs none of
    the interactive grid's scripts, which a first visit would otherwise download to show six rows."""
    rows = domain_table(metrics)
    if not rows:
        return ""

    def cell(value: Any, pattern: str) -> str:
        return pattern.format(value) if isinstance(value, int | float) else "–"

    lines = ["| test-only set | sentences | accuracy | ECE |", "|---|--:|--:|--:|"]
    lines += [
        # spaces, not underscores, so that a long set name wraps on a phone instead of widening the page
        f"| {row['test-only set'].replace('_', ' ')} | {cell(row['sentences'], '{:,}')} | {cell(row['accuracy'], '{:.1%}')} "
        f"| {cell(row['ECE'], '{:.3f}')} |"
        for row in rows
    ]
    return "\n".join(lines)


PREDICTION_COLUMNS = ("label", "confidence", "low_confidence", "reading", "chunked", "error")


def user_columns(data: bytes, filename: str, texts: Sequence[str]):
    """The uploaded table's rows that hold `texts`, with every column the user sent, or None when
    the file is plain text or its rows cannot be lined up with `texts` exactly.

    services.nlp.read_batch_file has already checked size, encoding and the text column; this reads
    the same file again as a table only to carry the user's other columns into the result.
    """
    import csv
    import io

    import pandas as pd

    from services.nlp.inputs import TEXT_COLUMNS

    lower = filename.lower()
    if not lower.endswith((".csv", ".tsv")):
        return None
    tsv = lower.endswith(".tsv")
    try:
        table = pd.read_csv(
            io.StringIO(data.decode("utf-8-sig")),
            sep="\t" if tsv else ",",
            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
        )
    except (ValueError, csv.Error, UnicodeDecodeError):
        return None
    names = {str(c).strip().lower(): c for c in table.columns}
    column = next((names[n] for n in TEXT_COLUMNS if n in names), None)
    if column is None:
        return None
    table = table[table[column].str.strip() != ""].reset_index(drop=True)
    if table[column].tolist() != list(texts):
        return None  # never misalign a prediction with someone else's row
    return table


def batch_summary(results: Sequence[dict]) -> str:
    """ "Classified 4 texts: 1 positive, 1 negative, 1 mixed, 1 with errors." A mixed text is counted
    as mixed only, never inside the positive or negative count its overall label leans to."""
    errors = sum(bool(row.get("error")) for row in results)
    readings = [row.get("reading") or row.get("label") for row in results if not row.get("error")]
    counts = {reading: readings.count(reading) for reading in ("positive", "negative", "mixed")}
    text = f"Classified {len(results)} texts: {counts['positive']} positive, {counts['negative']} negative"
    if counts["mixed"]:
        text += f", {counts['mixed']} mixed (positive and negative parts; see the reading column)"
    return text + f", {errors} with errors."


def batch_table(data: bytes, filename: str, texts: Sequence[str], results: Sequence[dict]):
    """The result table: the user's own columns in their order, then the model's columns after them.

    A user column with the same name as a model column (say a hand-made `label`) is kept as it is and
    the model's column is called `label (model)`.
    """
    import pandas as pd

    predictions = pd.DataFrame(
        [
            {
                "label": row.get("label", ""),
                "confidence": row.get("confidence"),
                "low_confidence": row.get("low_confidence"),
                "reading": row.get("reading", ""),
                "chunked": row.get("chunked"),
                "error": row.get("error", {}).get("message", ""),
            }
            for row in results
        ]
    )
    table = user_columns(data, filename, texts)
    if table is None:
        table = pd.DataFrame({"text": list(texts)})
    taken = {str(c).strip().lower() for c in table.columns}
    predictions.columns = [f"{c} (model)" if c in taken else c for c in predictions.columns]
    return pd.concat([table, predictions], axis=1)
