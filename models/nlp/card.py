"""The model card's generated tables, written from metrics.json by `python -m models evaluate nlp`.

Two blocks between markers: the per-domain test table (`domains`) and the training sources with their
terms (`sources`). Every figure is read from metrics.json (never typed by hand);
tests/test_nlp_domains.py checks that the card and the metrics agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from models.nlp.bundle import PACKAGE_DIR
from models.nlp.domains import TEST_ONLY_SETS

CARD = PACKAGE_DIR / "MODEL_CARD.md"
START, END = "<!-- domains:start -->", "<!-- domains:end -->"
SOURCES_START, SOURCES_END = "<!-- sources:start -->", "<!-- sources:end -->"


def render_domain_table(metrics: dict[str, Any]) -> str:
    """Markdown: one row per test-only set scored, with its accuracy, calibration error and terms."""
    known = {t.key: t for t in TEST_ONLY_SETS}
    lines = [
        "| test-only set | sentences | accuracy | negatives read positive | positives read negative "
        "| ECE | ECE at T = 1 | licence / terms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    test_sets = metrics.get("test_sets") or {}
    for key, row in test_sets.items():
        description = row.get("description") or (known[key].description if key in known else key)
        licence = row.get("licence") or (known[key].licence if key in known else "")
        lines.append(
            f"| `{key}`: {description} | {row['n']:,} | {row['accuracy']:.4f} | "
            f"{_rate(row, 'negatives_read_positive_rate')} | {_rate(row, 'positives_read_negative_rate')} | "
            f"{row['ece']:.4f} | {row['ece_temperature_1']:.4f} | {licence} |"
        )
    lean = strongest_lean(test_sets)
    if lean:
        lines.append("")
        lines.append(lean)
    if "test_sets_mean_accuracy" in metrics:
        lines.append("")
        mean = f"Unweighted mean accuracy over the test-only sets other than SST-2 dev: {metrics['test_sets_mean_accuracy']:.4f}"
        if "test_sets_mean_accuracy_with_sst2_dev" in metrics:
            mean += f" (with SST-2 dev: {metrics['test_sets_mean_accuracy_with_sst2_dev']:.4f})"
        lines.append(f"{mean}. Temperature {metrics['temperature']:.4f}.")
    if metrics.get("command"):
        lines.append(f"Measured by `{metrics['command']}`.")
    return "\n".join(lines)


def _rate(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.1%}" if isinstance(row.get(key), int | float) else "–"


def strongest_lean(test_sets: dict[str, Any]) -> str:
    """One sentence naming the set whose mistakes lean furthest one way ("" when no set has both rates)."""
    leans = {
        key: row["negatives_read_positive_rate"] - row["positives_read_negative_rate"]
        for key, row in test_sets.items()
        if isinstance(row.get("negatives_read_positive_rate"), int | float)
        and isinstance(row.get("positives_read_negative_rate"), int | float)
    }
    if not leans:
        return ""
    key = max(leans, key=lambda k: abs(leans[k]))
    row = test_sets[key]
    wrong, right = ("negative", "positive") if leans[key] > 0 else ("positive", "negative")
    return (
        f"Mistakes lean furthest one way on `{key}`: {row[f'{wrong}s_read_{right}_rate']:.1%} of its {wrong} "
        f"texts were read as {right}, against {row[f'{right}s_read_{wrong}_rate']:.1%} of its {right} texts "
        f"read as {wrong}."
    )


def render_sources_table(metrics: dict[str, Any]) -> str:
    """Markdown: one row per training source of the shipped recipe, with its files and terms."""
    lines = [
        "| training source | files (under ../shared/data) | rows drawn per epoch | licence / terms |",
        "| --- | --- | ---: | --- |",
    ]
    for source in metrics.get("training_sources") or []:
        files = ", ".join(f"`{f}`" for f in source["files"])
        per_epoch = f"{source['rows_per_epoch']:,}" if source.get("rows_per_epoch") else "all"
        lines.append(
            f"| `{source['key']}`: {source['description']} | {files} | {per_epoch} | {source['licence']} |"
        )
    return "\n".join(lines)


def _block(card: Path, start: str, end: str) -> str | None:
    match = re.search(
        re.escape(start) + r"\n(.*?)\n" + re.escape(end), card.read_text(encoding="utf-8"), re.S
    )
    return match.group(1) if match else None


def card_table(card: Path = CARD) -> str | None:
    return _block(card, START, END)


def card_sources(card: Path = CARD) -> str | None:
    return _block(card, SOURCES_START, SOURCES_END)


def update_card(metrics: dict[str, Any], card: Path = CARD) -> bool:
    """Rewrite the generated blocks (those the card holds); True when the card changed."""
    text = card.read_text(encoding="utf-8")
    new = text
    for start, end, render in (
        (START, END, render_domain_table),
        (SOURCES_START, SOURCES_END, render_sources_table),
    ):
        block = f"{start}\n{render(metrics)}\n{end}"
        new = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _, b=block: b, new, flags=re.S)
    if new != text:
        card.write_text(new, encoding="utf-8")
    return new != text
