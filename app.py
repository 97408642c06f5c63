"""Home page of the multi-task AI demo: what it is, the device, and the four tasks."""

from __future__ import annotations

import streamlit as st

from pages.ui import setup_page

setup_page(
    "Multi-task AI demo",
    "🧪",
    "Four small models, each trained or fine-tuned by this project on real public data, "
    "running live on your inputs. Pick a task below or from the sidebar.",
)

TASKS = [
    ("pages/1_Vision.py", "Vision", "🔢", "Handwritten and printed digits: upload a photo or draw one."),
    ("pages/2_Language.py", "Language", "💬", "Sentiment with word-level explanations, similarity, summaries."),
    ("pages/3_Speech.py", "Speech", "🎙️", "Spoken digits, single or strings, from your microphone or a file."),
    ("pages/4_Recommendation.py", "Recommendation", "🎬", "Movie recommendations from a few ratings."),
]

columns = st.columns(len(TASKS))
for column, (path, title, icon, blurb) in zip(columns, TASKS, strict=True):
    with column.container(border=True):
        st.subheader(f"{icon} {title}")
        st.write(blurb)
        st.page_link(path, label=f"Open {title}", icon=":material/arrow_forward:")
