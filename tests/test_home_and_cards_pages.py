"""AppTest for the home page (live self-tests) and the model-cards page."""

import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services import preload, registry
from services.model_cards import METRIC_GLOSSARY, TEST_SET_NAMES, load_model_cards
from services.tasks import TASKS as CARD_INDEX  # one card per task

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_home_page_shows_at_once_then_every_self_test_answers():
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert "Multi-task AI demo" in at.title[0].value
    assert len(at.success) + len(at.info) == 4  # a card per task, answered or still loading
    assert preload.wait_until_ready(timeout_s=300), {t: preload.status(t) for t in preload.LOAD_ORDER}
    at.run()
    assert not at.exception
    assert len(at.success) == 4, [w.value for w in at.warning] + [e.value for e in at.error]
    assert not at.error
    # Issue 32: the purpose line is body text, not a small grey caption.
    assert any(m.value.startswith("Four small models") for m in at.markdown)
    assert not any(c.value.startswith("Four small models") for c in at.caption)


def test_the_first_page_needs_no_torch():
    """The home page must show before any model loads: its imports may not pull in torch (seconds)."""
    code = (
        "import sys; import pages.ui, services.preload, services.client, services.device; "
        "from services.device import device_summary; device_summary(); "
        "states = [services.client.task_status(t) for t in services.preload.LOAD_ORDER]; "  # the cards
        "assert all(s['state'] == 'waiting' for s in states), states; "
        "assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_background_loading_fills_every_task_once():
    preload.start_background_loading()
    assert preload.wait_until_ready(timeout_s=300)
    for task in preload.LOAD_ORDER:
        assert preload.status(task)["state"] == "ready", preload.status(task)
        assert registry.load(task) is registry.load(task)  # one instance per process


def test_language_model_starts_without_its_pytorch_module_then_warms_up():
    """A warm start serves from the cached ONNX graph; the PyTorch module (explanations) and the base
    encoder (similarity) are built by the warm-up that follows, not on the start's critical path."""
    code = (
        "import sys; from services import nlp; s = nlp.load_service(); "
        "print(s.classifier.onnx_source, s.classifier.model_loaded, s.embedder._encoder is not None, "
        "'transformers.models.bert.modeling_bert' in sys.modules); "
        "s.warm_up(); print(s.classifier.model_loaded, s.embedder._encoder is not None)"
    )
    first = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    # the first start may have exported the graph; the second one reads it back from the cache
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    start, warmed = out.stdout.strip().splitlines()[-2:]
    assert start == "cache False False False", out.stdout
    assert warmed == "True True"


def test_model_cards_page_renders_every_card():
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "5_Model_cards.py"), default_timeout=60).run()
    assert not at.exception
    assert len(at.tabs) == len(CARD_INDEX)
    assert not at.warning


def test_model_cards_show_human_names_never_raw_keys():
    """Issue 32: the cards showed `ece_temperature_1` and `mf_rating_order_ndcg@10` with no word on them.
    Every figure of every metrics.json (and of its test-set table) has a name and a one-line meaning."""
    cards = load_model_cards()
    for card in cards:
        for key in card.headline_metrics():
            assert key in METRIC_GLOSSARY, f"{card.task}: add {key!r} to services.model_cards.METRIC_GLOSSARY"
        for name, values in (card.metrics.get("test_sets") or {}).items():
            assert name in TEST_SET_NAMES, f"{card.task}: add test set {name!r} to TEST_SET_NAMES"
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    assert key in METRIC_GLOSSARY, f"{card.task}/{name}: add {key!r} to METRIC_GLOSSARY"
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "5_Model_cards.py"), default_timeout=60).run()
    assert not at.exception
    shown = "\n".join(
        str(cell)
        for table in at.table
        for frame in [table.value]
        for cell in [*frame.columns, *frame.to_numpy().ravel()]
    )
    raw_keys = {key for card in cards for key in card.headline_metrics() if "_" in key or "@" in key}
    assert raw_keys and not [key for key in raw_keys if key in shown.split("\n")]
    assert "ece_temperature_1" not in shown and "mf_rating_order_ndcg@10" not in shown
    assert "Calibration error, unadjusted" in shown and "popularity beats it" in shown
    assert not at.dataframe  # tables wrap (st.table) instead of cutting text in a scroll box
    # Issue 32: the vision card shows the whole-number reliability diagram with the doubt threshold.
    specs = [chart.proto.spec for chart in at.get("vega_lite_chart")]
    assert any('"share read right"' in spec and '"rule"' in spec for spec in specs)


def test_model_cards_page_lists_the_language_training_sources_with_their_licences():
    metrics = next(card for card in load_model_cards() if card.task == "nlp").metrics
    if "training_sources" not in metrics:
        pytest.skip("the language metrics.json has no training sources yet (python -m models evaluate nlp)")
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "5_Model_cards.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Trained on" in block.value for block in at.markdown)
    tables = [table.value for table in at.table if "licence" in table.value.columns]
    keys = {key for frame in tables if "source" in frame.columns for key in frame["source"]}
    assert {source["key"] for source in metrics["training_sources"]} <= keys


def test_every_shipped_model_has_a_card_with_metrics():
    cards = {card.task: card for card in load_model_cards()}
    assert set(cards) == set(CARD_INDEX)
    for card in cards.values():
        assert card.metrics.get("task") == card.task, card.task
        assert "## " in card.markdown  # sections of the Hugging Face card layout
    for task in ("vision", "speech", "nlp"):
        labels, matrix = cards[task].confusion_matrix
        assert len(matrix) == len(labels) and all(len(row) == len(labels) for row in matrix)


def test_card_markdown_tables_become_tables():
    from services.model_cards import markdown_blocks

    text = "Intro.\n\n| set | n |\n|---|---:|\n| a \\| b | 3 |\n| c | 4 |\n\nAfter."
    assert markdown_blocks(text) == [
        ("markdown", "Intro.\n"),
        ("table", (["set", "n"], [["a | b", "3"], ["c", "4"]])),
        ("markdown", "\nAfter."),
    ]
