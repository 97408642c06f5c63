"""Facts have one source: the README's model table and the model cards' headline figures must match
the metrics files, and pages may not carry figures typed by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models import report

REPO_ROOT = Path(__file__).resolve().parents[1]
TASKS = ("vision", "speech", "nlp", "recommend")
FRONT_MATTER_METRIC = re.compile(r"\{type:\s*([\w@.\-]+),\s*value:\s*([0-9.]+)\}")


def _numbers(value) -> set[float]:
    """Every number anywhere in a metrics.json structure."""
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_numbers(v) for v in value)) if value else set()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {float(value)}
    return set()


def test_readme_model_table_is_rendered_from_the_metrics_files():
    assert report.readme_table() == report.render_table(), "run `python -m models readme`"


def test_readme_table_changes_when_a_metric_changes(tmp_path, monkeypatch):
    """The check above can fail: a different figure in metrics.json gives a different table."""
    fake_models = tmp_path / "models"
    for task in TASKS:
        (fake_models / task).mkdir(parents=True)
        metrics = report.load_metrics(task)
        if task == "vision":
            metrics["accuracy"] = 0.1234
        (fake_models / task / "metrics.json").write_text(json.dumps(metrics))
    before = report.render_table()
    monkeypatch.setattr(report, "MODELS_DIR", fake_models)
    after = report.render_table()
    assert "**0.1234**" in after and after != before


@pytest.mark.parametrize("task", TASKS)
def test_model_card_figures_come_from_metrics(task):
    assert report.card_block(task) == report.render_card_block(task), "run `python -m models readme`"
    card = (REPO_ROOT / "models" / task / "MODEL_CARD.md").read_text(encoding="utf-8")
    front = card.split("---", 2)[1] if card.startswith("---") else ""
    known = _numbers(report.load_metrics(task))
    for name, value in FRONT_MATTER_METRIC.findall(front):  # model-index figures, where a card has them
        assert any(abs(float(value) - k) < 5e-5 for k in known), f"{task}: {name}={value} not in metrics.json"


@pytest.mark.parametrize("task", TASKS)
def test_metrics_record_the_command_actually_run(task):
    command = report.load_metrics(task).get("command", "")
    assert command.startswith("python -m models evaluate " + task), command


def test_pages_carry_no_hand_typed_figures():
    """Accuracies, parameter counts and feature names come from info()/metrics, not from page text."""
    hand_typed = re.compile(r"\b0\.\d{3,}\b|\b\d{2,3}\s?k parameters|\bMFCC\b")
    offenders = []
    for path in [REPO_ROOT / "app.py", REPO_ROOT / "home.py", *sorted((REPO_ROOT / "pages").rglob("*.py"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if hand_typed.search(line) and "noqa: figure" not in line:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
