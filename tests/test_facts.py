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


# ---- units stated in the text of services/ and pages/ ------------------------------------------------
SCANNED = ("app.py", "pages", "services")


def _scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = REPO_ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def _unit_facts() -> list[tuple[str, re.Pattern, set[float]]]:
    """(what, pattern whose group 1 is the number, the values the code holds for it)."""
    import torch

    from models.speech import SPEECH_BUNDLE, DigitRecognizer
    from services import audio_io, image_io

    features = SPEECH_BUNDLE.features
    frame_ms = 1000 * features.hop_length / features.sample_rate  # one spectrogram frame
    # the conv block's strided layer thins the frames the attention pools over
    pooled = int(DigitRecognizer.output_frames(torch.tensor(1000)))
    upload_limits = {audio_io.MAX_UPLOAD_BYTES / 2**20, image_io.MAX_UPLOAD_BYTES / 2**20}
    config = (REPO_ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    upload_limits |= {float(v) for v in re.findall(r"^maxUploadSize\s*=\s*(\d+)", config, re.MULTILINE)}
    number = r"(\d+(?:\.\d+)?)"
    return [
        ("sample rate", re.compile(number + r"\s?kHz"),
         {features.sample_rate / 1000, audio_io.MIN_SAMPLE_RATE / 1000, audio_io.MAX_SAMPLE_RATE / 1000}),
        ("mel bands", re.compile(number + r"\s?(?:mel\s)?bands"), {float(features.n_mels)}),
        # "10 ms frames" (spectrogram) or "20 ms frames" (the speech detector's frames, every HOP_S)
        ("frame length", re.compile(number + r"\s?ms frames?\b"), {frame_ms, 1000 * audio_io.FRAME_S}),
        ("frame hop", re.compile(r"every " + number + r"\s?ms\b"), {frame_ms, 1000 * audio_io.HOP_S}),
        ("attention step", re.compile(number + r"\s?ms step"), {frame_ms * 1000 / pooled}),
        ("pixel limit", re.compile(number + r"\s+megapixels"), {image_io.MAX_PIXELS / 1e6}),
        # sizes of uploads only (a line about uploads, images, audio or limits), not of downloads
        ("upload limit", re.compile(r"(?m)^(?=.*(?:upload|image|audio|limit)).*?\b" + number + r"\s?Mi?B\b"), upload_limits),
    ]  # fmt: skip


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else path.name


def _unit_mismatches(files: list[Path]) -> tuple[list[str], int]:
    facts, offenders, checked = _unit_facts(), [], 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        for what, pattern, allowed in facts:
            for match in pattern.finditer(text):
                checked += 1
                if not any(abs(float(match.group(1)) - value) < 1e-6 for value in allowed):
                    line = text.count("\n", 0, match.start()) + 1
                    offenders.append(
                        f"{_shown(path)}:{line}: {match.group(0)[match.start(1) - match.start() :]!r} ({what}; the code says "
                        f"{' or '.join(f'{v:g}' for v in sorted(allowed))})"
                    )
    return offenders, checked


def test_units_in_services_and_pages_match_the_code():
    """ "8 kHz", "40 bands", "10 ms frames", "20 MB": each stated figure is one the code holds."""
    offenders, checked = _unit_mismatches(_scanned_files())
    assert checked >= 5, f"only {checked} unit figures found: has the text moved out of {SCANNED}?"
    assert not offenders, "\n".join(offenders)


def test_a_wrong_unit_figure_is_caught(tmp_path):
    """The check above can fail: a page that says 16 kHz, 64 bands or 30 MB is named."""
    page = tmp_path / "page.py"
    page.write_text('CAPTION = "resampled to 16 kHz, 64 mel bands, 10 ms frames; uploads up to 30 MB"\n')
    offenders, checked = _unit_mismatches([page])
    assert checked == 4
    assert [entry.split(": ", 1)[1].split(" (")[0] for entry in offenders] == [
        "'16 kHz'",
        "'64 mel bands'",
        "'30 MB'",
    ]


# ---- measured figures retyped in services/ ---------------------------------------------------------
def _measured_figures() -> set[float]:
    """Every figure in the metrics files (rounded as they store them, mostly to 4 decimals)."""
    return set().union(*(_numbers(report.load_metrics(task)) for task in TASKS))


def _retyped(files: list[Path]) -> list[str]:
    import ast

    measured, offenders = _measured_figures(), []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for figure in re.findall(r"\b\d+\.\d{4,}\b", node.value):
                    if float(figure) in measured:
                        offenders.append(f"{_shown(path)}:{node.lineno}: {figure}")
    return offenders


def test_services_and_pages_do_not_retype_measured_figures():
    """A string in services/ or pages/ holding one of our metrics to 4 decimals (0.9951, 0.9132 ...) would
    go stale at the next evaluation: it must be read from metrics.json. Published figures of others, and
    3-decimal ones (too many chance matches among hundreds of metrics), are not flagged."""
    offenders = _retyped(_scanned_files())
    assert not offenders, "\n".join(offenders)


def test_a_retyped_metric_is_caught(tmp_path):
    rmse = report.load_metrics("recommend")["rmse"]
    page = tmp_path / "page.py"
    page.write_text(f'NOTE = f"RMSE {rmse:.4f} on MovieLens, LeNet-5 0.9905"\n')
    assert _retyped([page]) == [f"page.py:1: {rmse:.4f}"]
