"""AppTest for the home page (live self-tests) and the model-cards page."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from services.model_cards import CARD_INDEX, load_model_cards

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_home_page_runs_every_self_test():
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=240).run()
    assert not at.exception
    assert "Multi-task AI demo" in at.title[0].value
    assert len(at.success) == 4, [w.value for w in at.warning] + [e.value for e in at.error]
    assert not at.error


def test_model_cards_page_renders_every_card():
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "5_Model_cards.py"), default_timeout=60).run()
    assert not at.exception
    assert len(at.tabs) == len(CARD_INDEX)
    assert not at.warning


def test_every_shipped_model_has_a_card_with_metrics():
    cards = {card.task: card for card in load_model_cards()}
    assert set(cards) == set(CARD_INDEX)
    for card in cards.values():
        assert card.metrics.get("task") == card.task, card.task
        assert "## " in card.markdown  # sections of the Hugging Face card layout
    for task in ("vision", "speech", "nlp"):
        labels, matrix = cards[task].confusion_matrix
        assert len(matrix) == len(labels) and all(len(row) == len(labels) for row in matrix)
