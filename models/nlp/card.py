"""The model card's per-domain table, written from metrics.json by `python -m models evaluate nlp`.

Every figure in the table is read from metrics.json (never typed by hand); tests/test_nlp_domains.py
checks that the card and the metrics agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from models.nlp import PACKAGE_DIR
from models.nlp.domains import TEST_ONLY_SETS

CARD = PACKAGE_DIR / "MODEL_CARD.md"
START, END = "<!-- domains:start -->", "<!-- domains:end -->"


def render_domain_table(metrics: dict[str, Any]) -> str:
    """Markdown: one row per test-only set scored, with its accuracy and calibration error."""
    described = {t.key: t.description for t in TEST_ONLY_SETS}
    lines = [
        "| test-only set | sentences | accuracy | ECE | ECE at T = 1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, row in (metrics.get("test_sets") or {}).items():
        lines.append(
            f"| `{key}`: {described.get(key, key)} | {row['n']:,} | {row['accuracy']:.4f} | "
            f"{row['ece']:.4f} | {row['ece_temperature_1']:.4f} |"
        )
    if "test_sets_mean_accuracy" in metrics:
        lines.append("")
        lines.append(
            f"Unweighted mean accuracy over the test-only sets other than SST-2 dev: "
            f"{metrics['test_sets_mean_accuracy']:.4f}. Temperature {metrics['temperature']:.4f}."
        )
    if metrics.get("command"):
        lines.append(f"Measured by `{metrics['command']}`.")
    return "\n".join(lines)


def card_table(card: Path = CARD) -> str | None:
    match = re.search(
        re.escape(START) + r"\n(.*?)\n" + re.escape(END), card.read_text(encoding="utf-8"), re.S
    )
    return match.group(1) if match else None


def update_card(metrics: dict[str, Any], card: Path = CARD) -> bool:
    """Rewrite the table between the markers (the card must hold them); True when it changed."""
    text = card.read_text(encoding="utf-8")
    block = f"{START}\n{render_domain_table(metrics)}\n{END}"
    new, count = re.subn(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if count and new != text:
        card.write_text(new, encoding="utf-8")
    return bool(count) and new != text
