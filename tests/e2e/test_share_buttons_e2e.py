"""Issue 32: "Copy link" and "Copy result" keep their labels wherever they sit, including the Speech
page's narrow result column on a desktop (they had shrunk to unlabelled icons) and a 390 px phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import PHONE, open_page, upload
from tests.e2e.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "models" / "speech" / "examples" / "7_yweweler_3.wav"

# Whether the whole label of a button is drawn: present, laid out, and not clipped by its box.
LABEL_SHOWN_JS = """(button) => {
  const range = document.createRange();
  const walker = document.createTreeWalker(button, NodeFilter.SHOW_TEXT);
  let text = "", width = 0;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    const box = button.getBoundingClientRect();
    if (r.width > 0 && r.left >= box.left - 1 && r.right <= box.right + 1) { text += node.textContent; width += r.width; }
  }
  return {text: text.trim(), width};
}"""


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, PHONE], ids=["desktop", "phone"])
def test_speech_share_buttons_keep_their_labels(browser, app_url, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        open_page(page, app_url, "Speech")
        upload(page, EXAMPLE)
        expect(page.get_by_text("Heard “7”")).to_be_visible(timeout=90_000)
        for label in ("Copy link", "Copy result"):
            button = page.get_by_role("button", name=label)
            expect(button).to_be_visible()
            shown = button.evaluate(LABEL_SHOWN_JS)
            assert label in shown["text"] and shown["width"] > 40, (label, shown)
    finally:
        context.close()
