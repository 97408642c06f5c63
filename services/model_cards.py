"""Model cards and measured metrics of every shipped model, as plain data for the cards page."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.tasks import TASKS

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

PERCENT, DECIMAL, COUNT, MILLISECONDS, SECONDS = "percent", "decimal", "count", "ms", "s"

# metrics.json key → (human name, one line on what it means, how to show the value). Every numeric
# key of every shipped metrics.json, and every column of its test-set table, must be listed here
# (tests/test_home_and_cards_pages.py): the page never shows a raw key.
METRIC_GLOSSARY: dict[str, tuple[str, str, str]] = {
    # shared
    "accuracy": ("Accuracy", "share of the test examples answered correctly", PERCENT),
    "n": ("Test examples", "how many examples were scored", COUNT),
    "n_test": ("Test examples", "how many recordings were scored", COUNT),
    "errors": ("Mistakes", "test examples answered wrongly", COUNT),
    # vision
    "macro_f1": (
        "Macro F1",
        "precision and recall balanced, averaged over the ten digits so each digit counts the same",
        DECIMAL,
    ),
    "accuracy_through_app_preprocessing": (
        "Accuracy through the app's image path",
        "the same test digits after the cropping and resizing an upload goes through",
        PERCENT,
    ),
    "pipeline_sample": ("Digits through the app's image path", "test images scored that way", COUNT),
    # language
    "temperature": (
        "Confidence temperature",
        "scores are divided by this before becoming confidences, fitted on validation data so that "
        "an 80 % answer is right about 80 % of the time",
        DECIMAL,
    ),
    "ece": (
        "Calibration error",
        "average gap between the confidence shown and how often such answers are right (0 is perfect)",
        DECIMAL,
    ),
    "ece_temperature_1": (
        "Calibration error, unadjusted",
        "the same gap with the raw confidences, before the temperature above",
        DECIMAL,
    ),
    "log_loss": (
        "Log loss",
        "penalty for confident mistakes (lower is better; 0.69 is a coin toss)",
        DECIMAL,
    ),
    "log_loss_temperature_1": ("Log loss, unadjusted", "the same penalty with the raw confidences", DECIMAL),
    "test_sets_mean_accuracy": (
        "Accuracy beyond the benchmark",
        "mean over the other test sets below, none of them trained or tuned on",
        PERCENT,
    ),
    "accuracy_int8_cpu": (
        "Accuracy of the compact CPU model",
        "the 8-bit ONNX model the app runs on a CPU, on the same test set",
        PERCENT,
    ),
    "latency_p50_ms": (
        "Time per sentence, typical",
        "median time to classify one sentence on this CPU",
        MILLISECONDS,
    ),
    "latency_p90_ms": (
        "Time per sentence, slow case",
        "9 in 10 sentences are classified faster than this",
        MILLISECONDS,
    ),
    # speech
    "accuracy_model_only": (
        "Accuracy of the model alone",
        "without the app's 'not a word I know' check, which turns away some unclear recordings",
        PERCENT,
    ),
    "reject_threshold": (
        "'Not a word I know' threshold",
        "below this confidence the app says it heard no known word rather than guess (0: only the "
        "network's own 'other' class turns words away)",
        DECIMAL,
    ),
    "test_sets_mean_accuracy_with_sst2_dev": (
        "Mean accuracy over the test sets, SST-2 dev included",
        "the same unweighted mean with the movie-review benchmark counted as one more set",
        PERCENT,
    ),
    "eval_seconds": ("Evaluation time", "wall time of the whole evaluation on this CPU", SECONDS),
    "rejected_rate": (
        "Answered 'not a word I know'",
        "share of words outside the vocabulary the app turned away (higher is better)",
        PERCENT,
    ),
    "answered_a_word_rate": (
        "Wrongly taken for a known word",
        "share of words outside the vocabulary the app took for a digit or command (lower is better)",
        PERCENT,
    ),
    "wrongly_rejected_rate": (
        "Known words turned away",
        "share of digits or commands the app answered 'not a word I know' (lower is better)",
        PERCENT,
    ),
    "negatives_read_positive_rate": (
        "Negative texts read as positive",
        "share of the negative texts the model called positive (lower is better)",
        PERCENT,
    ),
    "positives_read_negative_rate": (
        "Positive texts read as negative",
        "share of the positive texts the model called negative (lower is better)",
        PERCENT,
    ),
    "speakers": ("Speakers", "how many different voices the clips come from", COUNT),
    "speakers_all_right": (
        "Speakers read without a mistake",
        "share of the voices whose every clip was answered correctly",
        PERCENT,
    ),
    "exact_match": (
        "Whole numbers read exactly",
        "share of spoken digit strings read without any mistake",
        PERCENT,
    ),
    # recommendation
    "folds": (
        "Evaluation folds",
        "MovieLens' five standard train/test splits, each scored and averaged",
        COUNT,
    ),
    "rmse": (
        "Rating error (RMSE)",
        "typical distance between a predicted and the real rating, in stars (lower is better)",
        DECIMAL,
    ),
    "mae": (
        "Average rating error (MAE)",
        "mean distance between predicted and real rating, in stars",
        DECIMAL,
    ),
    "ndcg@10": (
        "Top-10 quality (NDCG@10)",
        "how high the films a viewer later rated 4★ or 5★ sit in their top 10 (1 is perfect)",
        DECIMAL,
    ),
    "precision@10": ("Hits in the top 10", "share of the 10 picks the viewer later rated 4★ or 5★", PERCENT),
    "recall@10": (
        "Loved films found",
        "share of the films a viewer later rated 4★ or 5★ that are in the top 10",
        PERCENT,
    ),
    "baseline_bias_rmse": (
        "Rating error of a simple baseline",
        "each film's average adjusted for each viewer's generosity, no taste: the model must beat this",
        DECIMAL,
    ),
    "baseline_global_mean_rmse": (
        "Rating error of one average for all",
        "every rating predicted as the overall average",
        DECIMAL,
    ),
    "mf_rating_order_ndcg@10": (
        "Top-10 quality, by predicted rating alone",
        "every film ordered by predicted rating: that favours little-seen films, which viewers had mostly "
        "never watched, so popularity beats it; the app first shortlists films people like you watched",
        DECIMAL,
    ),
    "reference_popularity_ndcg@10": (
        "Top-10 quality of 'most popular first'",
        "popular films are the ones viewers go on to watch, so this is a strong baseline; the shipped "
        "two-stage model (top-10 quality above) beats it",
        DECIMAL,
    ),
    "fold_in_ms_median": (
        "Time to place a new viewer",
        "median time to fit a viewer's taste from their ratings",
        MILLISECONDS,
    ),
    "fit_seconds_mean": ("Training time", "mean time to train on one fold on this CPU", SECONDS),
    "wall_seconds": ("Evaluation time", "wall time of the whole evaluation on this CPU", SECONDS),
}

# test-set key → human name (the model cards' "beyond the benchmark" table)
TEST_SET_NAMES: dict[str, str] = {
    "sst2_dev": "SST-2 dev (movie reviews, the benchmark)",
    "opener_en_hotels": "OpeNER hotel reviews",
    "finegrained_product_reviews": "Product reviews (5 domains)",
    "airline_tweets": "Airline customer tweets",
    "dynasent_r1_test": "DynaSent round 1 (Yelp)",
    "dynasent_r2_test": "DynaSent round 2 (crowd-written)",
    "tweeteval_sentiment_test": "TweetEval sentiment",
    "fsdd_test": "FSDD test speakers' clips (the benchmark)",
    "speech_commands_subset_digits": "Speech Commands digits (other voices)",
    "speech_commands_subset_commands": "Speech Commands voice commands (other voices)",
    "speech_commands_subset_known_words": "Speech Commands digits and commands together",
    "speech_commands_subset_other": "Speech Commands words outside the vocabulary",
    "speech_commands_digits_extra_test": "Speech Commands digits, held-out speakers",
    "digit_strings": "Spoken digit strings",
}


def humanise(key: str) -> str:
    """A readable stand-in for a key missing from the tables above ("dynasent_r1" → "Dynasent r1")."""
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def metric_name(key: str) -> str:
    return METRIC_GLOSSARY[key][0] if key in METRIC_GLOSSARY else humanise(key)


def format_metric(key: str, value: float) -> str:
    kind = METRIC_GLOSSARY.get(key, ("", "", DECIMAL))[2]
    if kind == PERCENT:
        return f"{value:.1%}"
    if kind == COUNT:
        return f"{value:,.0f}"
    if kind == MILLISECONDS:
        return f"{value:.1f} ms"
    if kind == SECONDS:
        return f"{value:.1f} s"
    return f"{value:.3f}"


_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


@dataclass(frozen=True)
class ModelCard:
    task: str
    title: str
    reproduce_command: str
    references: list[tuple[str, str]]
    markdown: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def confusion_matrix(self) -> tuple[list[str], list[list[int]]] | None:
        matrix = self.metrics.get("confusion_matrix")
        labels = self.metrics.get("labels")
        if not matrix or not labels:
            return None
        return [str(label) for label in labels], matrix

    def headline_metrics(self) -> dict[str, float]:
        """Top-level numeric figures from metrics.json (nested tables are left to the card text)."""
        return {
            key: float(value)
            for key, value in self.metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }

    def metric_rows(self) -> list[dict[str, str]]:
        """The headline figures as rows a person reads: name, value with its unit, what it means."""
        return [
            {
                "measure": metric_name(key),
                "value": format_metric(key, value),
                "meaning": METRIC_GLOSSARY.get(key, ("", "", ""))[1],
            }
            for key, value in self.headline_metrics().items()
        ]

    def test_set_rows(self) -> list[dict[str, str]]:
        """Per test set beyond the benchmark: one row, columns named and values formatted as above."""
        sets = self.metrics.get("test_sets")
        if not isinstance(sets, dict):
            return []
        rows = []
        for name, values in sets.items():
            if not isinstance(values, dict):
                continue
            row = {"test set": TEST_SET_NAMES.get(name, humanise(name))}
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    row[metric_name(key)] = format_metric(key, value)
            rows.append(row)
        return rows


def evaluate_command(task: str) -> str:
    """The command that reproduces a task's metrics.json from the shared data sets."""
    return f"python -m models evaluate {task} --data-dir ../shared/data/{TASKS[task].data_dir}"


def markdown_blocks(text: str) -> list[tuple[str, Any]]:
    """The card's Markdown cut into ("markdown", text) and ("table", (header, rows)) blocks, so a page can
    show the tables as tables that wrap (a Markdown table wider than a phone is cut off)."""
    blocks: list[tuple[str, Any]] = []
    prose: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        is_table = (
            line.lstrip().startswith("|")
            and index + 1 < len(lines)
            and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[index + 1]) is not None
            and "-" in lines[index + 1]
        )
        if not is_table:
            prose.append(line)
            index += 1
            continue
        if prose:
            blocks.append(("markdown", "\n".join(prose)))
            prose = []
        header = _cells(line)
        rows = []
        index += 2
        while index < len(lines) and lines[index].lstrip().startswith("|"):
            cells = _cells(lines[index])
            rows.append((cells + [""] * len(header))[: len(header)])
            index += 1
        blocks.append(("table", (header, rows)))
    if prose:
        blocks.append(("markdown", "\n".join(prose)))
    return blocks


def _cells(line: str) -> list[str]:
    """The cells of one Markdown table row (escaped pipes kept inside their cell)."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def load_model_cards(models_dir: Path = MODELS_DIR) -> list[ModelCard]:
    cards = []
    for task, spec in TASKS.items():
        folder = models_dir / task
        card_path = folder / "MODEL_CARD.md"
        if not card_path.is_file():
            continue
        markdown = _FRONT_MATTER.sub("", card_path.read_text(encoding="utf-8"))
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        # The command actually run, as the evaluation CLI recorded it, over the documented default.
        command = str(metrics.get("command") or evaluate_command(task))
        cards.append(ModelCard(task, spec.card_title, command, list(spec.references), markdown, metrics))
    return cards
