"""The README's model table, written from the metrics files (`python -m models readme`).

No figure in the README's model table is typed by hand: each comes from `models/<task>/metrics.json`
(written by `python -m models evaluate <task>`) or from the shipped weights file. `make evaluate` ends
by refreshing the table; tests/test_facts.py fails when the README and the metrics disagree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.tasks import TASKS

MODELS_DIR = Path(__file__).resolve().parent
README = MODELS_DIR.parent / "README.md"
START, END = "<!-- models:start -->", "<!-- models:end -->"


@dataclass(frozen=True)
class Figure:
    """One measured figure: where it lives in metrics.json and how the README names it."""

    key: str  # dotted path into metrics.json
    label: str  # printed before the value, e.g. "MNIST test accuracy"
    digits: int = 3  # decimals shown

    def render(self, metrics: dict[str, Any]) -> str | None:
        value = lookup(metrics, self.key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return f"{self.label} **{value:.{self.digits}f}**"


@dataclass(frozen=True)
class TaskRow:
    task: str
    offers: str  # what a visitor can do (prose, no figures)
    model: str  # prose, no figures
    data: str
    figures: tuple[Figure, ...]
    weights: str  # file name under models/<task>/

    @property
    def page(self) -> str:
        return TASKS[self.task].title


ROWS = (
    TaskRow(
        "vision",
        "upload photos, scans or phone pictures (HEIC too), take one with the camera, draw on a canvas; "
        "single digits and whole numbers, with boxes, the 28×28 the model saw and Grad-CAM",
        "CNN, Conv32-64-64 → Dense64 → Dense10 (batch norm, dropout); for numbers, the same network "
        "trained to tell one digit from several or part of one decides the cuts (`count.safetensors`)",
        "MNIST train (60k)",
        (
            Figure("accuracy", "MNIST test accuracy", 4),
            Figure("numbers.handwritten_photo.exact_match", "handwritten numbers exact", 3),
            Figure("numbers.printed_photo.exact_match", "printed numbers exact", 3),
            Figure("numbers.canvas.exact_match", "canvas numbers exact", 3),
        ),
        "cnn.safetensors",
    ),
    TaskRow(
        "nlp",
        "sentiment with per-word highlights and per-sentence readings (mixed opinions), similarity of two "
        "texts, extractive summary, CSV/TXT batch",
        "all-MiniLM-L6-v2 fine-tuned with a mean-pooled head (served by ONNX Runtime on CPU)",
        "SST-2 train and 11 open sets of reviews, tweets and Reddit comments",
        (
            Figure("accuracy", "SST-2 dev accuracy", 3),
            Figure("test_sets.opener_en_hotels.accuracy", "hotels", 3),
            Figure("test_sets.finegrained_product_reviews.accuracy", "products", 3),
            Figure("test_sets.airline_tweets.accuracy", "airline tweets", 3),
            Figure("test_sets.tweeteval_sentiment_test.accuracy", "TweetEval", 3),
            Figure("test_sets.dynasent_r1_test.accuracy", "DynaSent R1", 3),
            Figure("test_sets.dynasent_r2_test.accuracy", "DynaSent R2", 3),
            Figure("test_sets_mean_accuracy", "mean of the test-only sets but SST-2 dev", 3),
        ),
        "sentiment.safetensors",
    ),
    TaskRow(
        "speech",
        "record with the microphone, upload WAV/FLAC/OGG/MP3/M4A, click examples; digits, digit strings and "
        'ten voice commands with a live command demo; "not a word I know" for other words; waveform, '
        "features and frame importance",
        "a bidirectional GRU with attention pooling on torchaudio log-mel features: digits 0–9, ten commands, "
        "“other” and “silence”",
        "FSDD train (clips 5–46), the Speech Commands digits train split and word clips, espeak-ng voices, "
        "Speech Commands noise",
        (
            Figure("accuracy", "FSDD test accuracy", 3),
            Figure("test_sets.speech_commands_subset_digits.accuracy", "Speech Commands digits", 3),
            Figure("test_sets.speech_commands_subset_commands.accuracy", "commands", 3),
            Figure("test_sets.speech_commands_subset_other.rejected_rate", "other words rejected", 3),
            Figure("test_sets.speech_commands_digits_extra_test.accuracy", "digits extra test", 3),
            Figure("test_sets.digit_strings.exact_match", "3-digit strings exact", 3),
        ),
        "speech_gru.safetensors",
    ),
    TaskRow(
        "recommend",
        "pick a MovieLens user or rate a few films; recommendations with their own reasons, more like "
        "this, a 2-D map of the films",
        "biased matrix factorization trained by alternating least squares, PureSVD candidates",
        "MovieLens-100K",
        (
            Figure("rmse", "5-fold RMSE", 3),
            Figure("ndcg@10", "NDCG@10", 3),
        ),
        "mf.safetensors",
    ),
)


def lookup(metrics: dict[str, Any], dotted: str) -> Any:
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def load_metrics(task: str) -> dict[str, Any]:
    path = MODELS_DIR / task / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def parameter_count(task: str, weights: str) -> int | None:
    """Tensors stored in the shipped file (header only: nothing is loaded)."""
    path = MODELS_DIR / task / weights
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in entry["shape"]:
            count *= dim
        total += count
    return total


def weights_mb(task: str, weights: str) -> float | None:
    path = MODELS_DIR / task / weights
    return round(path.stat().st_size / 1e6, 1) if path.is_file() else None


def render_table() -> str:
    lines = [
        "| page | what you can do | model | data | measured (from metrics.json) |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS:
        metrics = load_metrics(row.task)
        figures = [text for figure in row.figures if (text := figure.render(metrics))]
        size = weights_mb(row.task, row.weights)
        model = row.model + (f"; `{row.weights}` {size} MB" if size is not None else "")
        lines.append(
            f"| **{row.page}** | {row.offers} | {model} | {row.data} | {'; '.join(figures) or 'not measured'} |"
        )
    lines.append(
        "| **Model cards** | data, licence, split, metrics, confusion matrices, limitations, the command "
        "behind each figure | | | |"
    )
    lines.append("| **API** | a copy-ready `curl` for every REST route, and a button that tries it | | | |")
    return "\n".join(lines)


def _section(text: str) -> re.Match[str] | None:
    return re.search(re.escape(START) + r"(.*?)" + re.escape(END), text, flags=re.DOTALL)


def readme_table(readme: Path = README) -> str | None:
    match = _section(readme.read_text(encoding="utf-8"))
    return match.group(1).strip("\n") if match else None


def update_readme(readme: Path = README) -> bool:
    """Rewrite the table between the markers; returns whether anything changed."""
    text = readme.read_text(encoding="utf-8")
    match = _section(text)
    if match is None:
        raise ValueError(f"{readme} has no {START} … {END} section")
    new = text[: match.start(1)] + "\n" + render_table() + "\n" + text[match.end(1) :]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


CARD_START, CARD_END = "<!-- metrics:start -->", "<!-- metrics:end -->"


def render_card_block(task: str) -> str:
    """The card's "Measured" table: every headline figure of the task, with the command behind it."""
    row = next(r for r in ROWS if r.task == task)
    metrics = load_metrics(task)
    lines = ["| figure | value |", "|---|---:|"]
    for figure in row.figures:
        value = lookup(metrics, figure.key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            lines.append(f"| {figure.label} (`{figure.key}`) | {value:.{figure.digits}f} |")
    params = parameter_count(task, row.weights)
    if params is not None:
        lines.append(f"| tensors stored in `{row.weights}` (values) | {params:,} |")
    command = metrics.get("command")
    if command:
        lines.append("")
        lines.append(f"Measured by `{command}` (figures read from `models/{task}/metrics.json`).")
    return "\n".join(lines)


def card_block(task: str) -> str | None:
    text = (MODELS_DIR / task / "MODEL_CARD.md").read_text(encoding="utf-8")
    match = re.search(re.escape(CARD_START) + r"(.*?)" + re.escape(CARD_END), text, flags=re.DOTALL)
    return match.group(1).strip("\n") if match else None


def update_card(task: str) -> bool:
    """Rewrite the card's block (appending a "Measured figures" section if it has none)."""
    path = MODELS_DIR / task / "MODEL_CARD.md"
    text = path.read_text(encoding="utf-8")
    block = f"{CARD_START}\n{render_card_block(task)}\n{CARD_END}"
    match = re.search(re.escape(CARD_START) + r".*?" + re.escape(CARD_END), text, flags=re.DOTALL)
    if match:
        new = text[: match.start()] + block + text[match.end() :]
    else:
        new = text.rstrip("\n") + "\n\n## Measured figures (generated)\n\n" + block + "\n"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
