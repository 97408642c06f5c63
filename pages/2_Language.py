"""Language: sentiment with word-level explanations, semantic similarity, extractive summaries, batch mode."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.ui import (
    cached,
    latency_caption,
    nlp_service,
    result_actions,
    scroll_into_view_on_phone,
    setup_page,
    shared_input,
    user_facing_errors,
)
from pages.ui.language import (
    batch_summary,
    batch_table,
    domain_table_markdown,
    out_of_domain_summary,
    show_sentiment,
)
from services import nlp

setup_page(
    "Language",
    "💬",
    "Sentiment of English reviews and comments from all-MiniLM-L6-v2 fine-tuned on movie, product, "
    "restaurant and hotel reviews, tweets and Reddit comments: each sentence read on its own, mixed opinions shown as "
    "mixed, and the words behind the decision highlighted. Similarity and summaries use the same MiniLM's "
    "sentence embeddings without fine-tuning.",
)

examples = nlp.example_inputs()

service = None
with user_facing_errors("loading the language models"):
    service = nlp_service()
if service is None:
    st.stop()

info = service.info()
metrics = info["metrics"]
with st.expander("About these models and their limits", icon=":material/info:"):
    accuracy = metrics.get("accuracy")
    rows = info.get("training_rows") or {}
    sources = (
        ", ".join(f"{name} ({count:,})" for name, count in rows.items()) if isinstance(rows, dict) else ""
    )
    outside = out_of_domain_summary(metrics)
    st.markdown(
        f"""
- **Sentiment model:** {info["architecture"]} ({info["parameters"]:,} parameters), with
  {info["fine_tuning"]}. Trained in one stage on a mixture of every sentiment set open for training,
  drawn each epoch by a weight per source (movie reviews, restaurant and product reviews, hotel reviews,
  tweets, Reddit comments{f"; rows per source: {sources}" if sources else ""}), the epoch checkpoints
  averaged when validation says so. Inference: {info["runtime"]}.
- **Accuracy:** {f"{accuracy:.1%}" if accuracy else "not measured yet"} on the {metrics.get("n", "")} {metrics.get("dataset", "SST-2 dev")}
  sentences (the benchmark){outside}. Expect the lower figures on text unlike movie reviews (table below;
  the *Model cards* page has the details).
- **Labels:** positive or negative for the whole text. When its sentences (or the clauses of a single
  sentence, as in "great food, rude staff") confidently disagree, the reading is **mixed**. Answers below
  {nlp.LOW_CONFIDENCE:.0%} confidence are flagged as low confidence; the confidence is calibrated
  (temperature {info["temperature"]:.2f}, fitted on validation sentences carved from the training sets).
- **Long texts** such as a whole review of several paragraphs are read two ways. *As a whole*: a text of more
  than {info["window_tokens"] - 2} word pieces is split into sentence-aligned windows and their probabilities
  are averaged weighted by length (the result says so); the model was trained on whole reviews cut to their
  first and last word pieces. *As parts*: each sentence (the first {nlp.MAX_READINGS}) is also read on its own,
  and when confident sentences disagree the reading is **mixed**, with the sentence-by-sentence readings below.
- **Word highlights** are integrated gradients on the word embeddings: green words pushed towards
  *positive*, red towards *negative*, in three steps of strength (coloured text, coloured background,
  bold on a coloured background); the bars beside the text give each word's exact push.
- **Limits:** {nlp.MAX_CHARS:,} characters per text; batch files up to {nlp.MAX_UPLOAD_BYTES / 1e6:.0f} MB and
  {nlp.MAX_BATCH_TEXTS:,} texts.
"""
    )
    table = domain_table_markdown(metrics)
    if table:
        st.markdown(table)
        st.caption(f"Measured by `{metrics.get('command', 'python -m models evaluate nlp')}`.")
        if info.get("mistakes_lean"):
            st.caption(info["mistakes_lean"])

# Only the open tab runs (and only its widgets' scripts reach a first-time visitor's browser).
sentiment_tab, similarity_tab, summary_tab, batch_tab = st.tabs(
    [
        ":material/mood: Sentiment",
        ":material/compare_arrows: Similarity",
        ":material/summarize: Summary",
        ":material/table_view: Batch",
    ],
    on_change="rerun",
    key="nlp_tab",
)


# ---- sentiment -----------------------------------------------------------------------------------
@st.fragment
def sentiment_section() -> None:
    """A submitted text reruns only this tab."""
    shared_text = shared_input("text")
    choice = st.selectbox(
        "Start from an example (or type your own below)",
        ["(your own text)", *examples["sentiment"]],
        key="nlp_example",
    )
    default_text = examples["sentiment"].get(choice, "") or (shared_text or "")
    with st.form("sentiment_form", border=False):
        text = st.text_area(
            "Text to analyse",
            value=default_text,
            height=150,
            placeholder="Type or paste an English sentence or review…",
            key=f"nlp_text_{choice}",
        )
        explain = st.toggle("Highlight the words behind the decision", value=True)
        submitted = st.form_submit_button("Analyse sentiment", type="primary", icon=":material/psychology:")
    # A shared link opens on its text and answers at once, as the person who shared it saw it.
    opened_from_link = shared_text is not None and not st.session_state.get("nlp_link_answered")
    if submitted or opened_from_link:
        st.session_state.nlp_link_answered = True
        with st.container(key="nlp_result"), user_facing_errors("analysing the sentiment"):
            result = cached(service.predict)(text, explain=explain)
            show_sentiment(result)
            latency_caption(result["latency_ms"])
            result_actions(result, {"text": text}, key="sentiment")
            # On a phone the form fills the screen and the answer lands below it: bring it up.
            scroll_into_view_on_phone("nlp_result", f"{explain}:{text}")


if sentiment_tab.open:
    with sentiment_tab:
        sentiment_section()


# ---- similarity ----------------------------------------------------------------------------------
@st.fragment
def similarity_section() -> None:
    """Comparing reruns only this tab."""
    first_default, second_default = examples["similarity"]
    with st.form("similarity_form", border=False):
        col_a, col_b = st.columns(2)
        text_a = col_a.text_area("First text", value=first_default, height=120)
        text_b = col_b.text_area("Second text", value=second_default, height=120)
        compare = st.form_submit_button("Compare", type="primary", icon=":material/compare_arrows:")
    if compare:
        with user_facing_errors("comparing the texts"):
            sim = cached(service.similarity)(text_a, text_b)
            st.metric("Cosine similarity", f"{sim['similarity']:.3f}", help="1 = same meaning, 0 = unrelated")
            st.progress(max(0.0, sim["similarity"]), text=f"Verdict: **{sim['verdict']}**")
            for note in sim["notes"]:
                st.info(note, icon=":material/info:")
            latency_caption(sim["latency_ms"])


if similarity_tab.open:
    with similarity_tab:
        similarity_section()


# ---- summary -------------------------------------------------------------------------------------
@st.fragment
def summary_section() -> None:
    """Summarising reruns only this tab."""
    with st.form("summary_form", border=False):
        article = st.text_area("Article to summarise", value=examples["article"], height=220)
        n_sentences = st.slider("Sentences in the summary", min_value=1, max_value=10, value=3)
        summarise = st.form_submit_button("Summarise", type="primary", icon=":material/summarize:")
    if summarise:
        with user_facing_errors("summarising the text"):
            summary = cached(service.summarize)(article, n_sentences)
            st.markdown(
                f"**Summary** ({len(summary['summary'])} of {summary['n_sentences']} sentences, original order)"
            )
            with st.container(border=True):
                for sentence in summary["summary"]:
                    st.text(sentence)
            for note in summary["notes"]:
                st.info(note, icon=":material/info:")
            with st.expander("Centrality of every sentence"):
                st.dataframe(pd.DataFrame(summary["sentences"]), hide_index=True, width="stretch")
            latency_caption(summary["latency_ms"])


if summary_tab.open:
    with summary_tab:
        summary_section()


# ---- batch ---------------------------------------------------------------------------------------
@st.fragment
def batch_section() -> None:
    """A batch file reruns only this tab."""
    st.write(
        "Upload a **CSV** with a `text` column (or `sentence` / `review`) or a **TXT** file with one text per line."
    )
    upload = st.file_uploader("Texts to classify", type=["csv", "txt"], key="nlp_batch")
    use_example = st.checkbox("Use the bundled example file instead", value=False)
    data, name = None, None
    if upload is not None:
        data, name = upload.getvalue(), upload.name
    elif use_example:
        data, name = examples["batch_file"].read_bytes(), examples["batch_file"].name
    if data is not None:
        with user_facing_errors("classifying the file"):
            texts = nlp.read_batch_file(data, name or "texts.txt")
            results = cached(service.predict_batch)(texts)
            # The user's own columns come back in their order, the model's columns after them.
            table = batch_table(data, name or "texts.txt", texts, results)
            st.success(batch_summary(results), icon=":material/check_circle:")
            st.dataframe(table, hide_index=True, width="stretch")
            st.download_button(
                "Download results (CSV)",
                table.to_csv(index=False).encode("utf-8"),
                file_name="sentiment_results.csv",
                mime="text/csv",
                icon=":material/download:",
            )
            latency_caption(sum(r.get("latency_ms", 0.0) for r in results))


if batch_tab.open:
    with batch_tab:
        batch_section()
