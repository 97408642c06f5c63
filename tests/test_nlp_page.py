"""AppTest for pages/2_Language.py: sentiment with highlights, mixed opinions, bad input, similarity,
summary, batch upload, the per-domain table."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from models.nlp import SST2_SENTIMENT
from tests.conftest import REPO_ROOT, open_tab

PAGE = str(REPO_ROOT / "pages/2_Language.py")
pytestmark = pytest.mark.skipif(not SST2_SENTIMENT.weights.is_file(), reason="committed NLP weights missing")


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def _all_markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_sentiment_label_and_highlights():
    at = _page()
    at.text_area[0].input("A wonderful, warm and funny film.")
    at.button[0].click().run()
    assert not at.exception
    text = _all_markdown(at)
    assert "Sentiment: **positive**" in text
    assert ":green-background[" in text  # word highlights rendered
    assert not at.error


def test_empty_text_shows_a_warning_not_a_traceback():
    at = _page()
    at.text_area[0].input("   ")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert any("empty" in w.value for w in at.warning)


def test_emoji_only_gets_a_clear_message():
    at = _page()
    at.text_area[0].input("😀🎉👍")
    at.button[0].click().run()
    assert not at.exception
    assert any("no words" in w.value for w in at.warning)


def test_long_example_says_it_was_chunked():
    at = _page()
    at.selectbox[0].select("Long review (split into parts)").run()
    at.button[0].click().run()
    assert not at.exception
    assert any("split into" in i.value for i in at.info)


def test_mixed_opinions_show_each_part_and_a_mixed_reading():
    at = _page()
    at.text_area[0].input("Great food, rude staff.")
    at.button[0].click().run()
    assert not at.exception
    text = _all_markdown(at)
    assert "Sentiment: **mixed**" in text
    assert "Sentiment of each part" in text
    assert ":green-badge[positive" in text and ":red-badge[negative" in text
    assert "Great food" in text and "rude staff" in text


def test_several_sentences_get_one_reading_each():
    at = _page()
    at.selectbox[0].select("Mixed opinions (hotel)").run()
    at.button[0].click().run()
    assert not at.exception
    text = _all_markdown(at)
    assert "Sentiment of each sentence" in text
    assert text.count("-badge[") >= 2


def test_about_box_shows_the_test_only_table():
    at = _page()
    metrics = json.loads((REPO_ROOT / "models" / "nlp" / "metrics.json").read_text())
    (table,) = [m.value for m in at.markdown if str(m.value).startswith("| test-only set |")]
    assert "| accuracy | ECE |" in table
    hotels = metrics["test_sets"]["opener_en_hotels"]
    assert f"| opener en hotels | {hotels['n']:,} | {hotels['accuracy']:.1%} | {hotels['ece']:.3f} |" in table


def test_similarity_and_summary_tabs():
    at = open_tab(_page(), "nlp_tab", "Similarity")
    at.button[0].click().run()  # Compare (bundled pair)
    assert not at.exception
    assert any(m.label == "Cosine similarity" for m in at.metric)
    open_tab(at, "nlp_tab", "Summary").button[0].click().run()  # Summarise (bundled article)
    assert not at.exception
    assert "Summary" in _all_markdown(at)
    assert len(at.text) == 3


def test_batch_upload_and_bad_file():
    at = open_tab(_page(), "nlp_tab", "Batch")
    at.file_uploader[0].set_value(("reviews.csv", b"text\nLovely film.\nAwful film.\n\n", "text/csv")).run()
    assert not at.exception
    assert any("Classified 2 texts: 1 positive, 1 negative" in s.value for s in at.success)
    assert len(at.dataframe) >= 1
    at.file_uploader[0].set_value(("junk.txt", b"\x00\x01\x02\x03" * 100, "text/plain")).run()
    assert not at.exception
    assert any("binary" in w.value for w in at.warning)


def test_batch_csv_keeps_the_users_other_columns():
    at = open_tab(_page(), "nlp_tab", "Batch")
    csv = b'id,text,stars,label\n7,"Lovely film, truly.",5,pos\n\n9,Awful film.,1,neg\n'
    at.file_uploader[0].set_value(("reviews.csv", csv, "text/csv")).run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "confidence" in df.value.columns)
    # The user's columns first, in their order and untouched; the model's after them (its label renamed
    # so the user's own `label` column survives).
    assert list(table.columns[:5]) == ["id", "text", "stars", "label", "label (model)"]
    assert table["id"].tolist() == ["7", "9"] and table["stars"].tolist() == ["5", "1"]
    assert table["label"].tolist() == ["pos", "neg"]
    assert table["label (model)"].tolist() == ["positive", "negative"]
    assert "confidence" in table.columns


def test_batch_txt_gets_a_text_column_and_the_predictions():
    at = open_tab(_page(), "nlp_tab", "Batch")
    at.file_uploader[0].set_value(("reviews.txt", b"Lovely film.\nAwful film.\n", "text/plain")).run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "confidence" in df.value.columns)
    assert list(table.columns[:3]) == ["text", "label", "confidence"]


def test_highlights_are_graded_and_keep_punctuation_with_its_word():
    from pages.ui.language import attribution_markdown

    text = "The soup was cold, the waiter kind."
    words = [  # word pieces as the service returns them: the comma and full stop are words of their own
        {"start": 0, "end": 3, "score": 0.01},
        {"start": 13, "end": 17, "score": -1.0},
        {"start": 17, "end": 18, "score": -0.05},
        {"start": 23, "end": 29, "score": 0.2},
        {"start": 30, "end": 34, "score": 0.5},
        {"start": 34, "end": 35, "score": 0.0},
    ]
    md = attribution_markdown(text, words)
    assert ":red-background[**cold,**] the" in md  # strongest: bold on a background, comma kept with it
    assert ":green[waiter]" in md  # weak: coloured text only
    assert ":green-background[kind\\.]" in md  # medium: a background, not bold
    assert md.startswith("The soup")  # faint: left plain
    assert " ," not in md.replace("\\", "")


def test_about_box_shows_the_out_of_domain_range_beside_the_benchmark():
    import json

    metrics = json.loads((REPO_ROOT / "models/nlp/metrics.json").read_text())
    outside = [row["accuracy"] for key, row in metrics["test_sets"].items() if key != "sst2_dev"]
    about = _all_markdown(_page())
    assert f"{metrics['accuracy']:.1%} on the {metrics['n']} {metrics['dataset']}" in about
    assert f"**{min(outside):.1%}–{max(outside):.1%}**" in about  # read from metrics.json, not typed


def test_about_box_says_which_way_the_mistakes_lean():
    import json

    from models.nlp.card import strongest_lean

    metrics = json.loads((REPO_ROOT / "models/nlp/metrics.json").read_text())
    lean = strongest_lean(metrics["test_sets"])
    assert lean, "metrics.json has no error directions: run python -m models evaluate nlp"
    captions = [caption.value for caption in _page().caption]
    assert lean in captions


def test_batch_summary_counts_a_mixed_text_on_its_own():
    """Issue 32: "Great food, rude staff." (read as mixed, overall label positive) was counted as positive."""
    at = open_tab(_page(), "nlp_tab", "Batch")
    csv = b'text\n"Lovely film, truly."\nAwful film.\n"Great food, rude staff."\n'
    at.file_uploader[0].set_value(("reviews.csv", csv, "text/csv")).run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "reading" in df.value.columns)
    assert table["reading"].tolist() == ["positive", "negative", "mixed"]
    summary = next(s.value for s in at.success if s.value.startswith("Classified"))
    assert summary.startswith("Classified 3 texts: 1 positive, 1 negative, 1 mixed"), summary


def test_summary_of_a_review_keeps_its_verdict():
    """Issue 32: the three-sentence summary of the bundled three-paragraph review left out its verdict
    ("Overall this is an uneven but often rewarding piece of work ...")."""
    review = (REPO_ROOT / "models" / "nlp" / "examples" / "long_review.txt").read_text(encoding="utf-8")
    at = open_tab(_page(), "nlp_tab", "Summary")
    at.text_area[0].set_value(review)
    at.button[0].click().run()
    assert not at.exception
    shown = [t.value for t in at.text]
    assert len(shown) == 3 and any(s.startswith("Overall this is an uneven") for s in shown), shown
