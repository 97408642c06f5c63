"""The generated blocks of models/speech/MODEL_CARD.md: the test-set table and the training run.

Both are rendered from metrics.json (which carries the record the training CLI wrote into the
weights), so no figure in the card is typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CARD_PATH = PACKAGE_DIR / "MODEL_CARD.md"
TABLE_START, TABLE_END = "<!-- test-sets:start -->", "<!-- test-sets:end -->"
TRAINING_START, TRAINING_END = "<!-- training:start -->", "<!-- training:end -->"
FIGURE_NAMES = {
    "accuracy": "accuracy",
    "wrongly_rejected_rate": "known word not answered (“not a word I know” or “no speech”)",
    "rejected_rate": "answered “not a word I know” (or “no speech”)",
    "answered_a_word_rate": "answered with a known word",
    "exact_match": "exact match",
    "speakers_all_right": "speakers with every clip right",
}
VALIDATION_NAMES = {
    "fsdd_val": "FSDD recordings 47–49 (the six training speakers)",
    "extra_val": "speech_commands_digits_extra train split, a fifth of its speakers",
    "words_val": "speech_commands_words, a fifth of its speakers (commands and other words)",
    "synth_val": "espeak-ng voices and other words kept out of training",
    "real_other_val": "non-words cut from the validation clips",
    "silence_val": "silence clips and background noise kept out of training",
    "all": "all validation clips",
}
VALIDATION_COLUMNS = (
    ("digit_accuracy", "digit accuracy"),
    ("digit_false_reject", "digits rejected"),
    ("command_accuracy", "command accuracy"),
    ("command_false_reject", "commands rejected"),
    ("other_rejected", "other words rejected"),
    ("silence_recognised", "noise not taken for a word"),
)


def render_test_sets(metrics: dict) -> str:
    """The card's per-test-set table, from metrics.json."""
    lines = ["| test set (never trained or tuned on) | n | figure | value |", "| --- | ---: | --- | ---: |"]
    for entry in metrics.get("test_sets", {}).values():
        for key, label in FIGURE_NAMES.items():
            if key in entry:
                n = (
                    f"{entry['speakers']} speakers"
                    if key == "speakers_all_right"
                    else f"{entry['n']} {entry['unit']}"
                )
                lines.append(f"| {entry['name']} | {n} | {label} | {entry[key]:.3f} |")
    return "\n".join(lines)


def _replace_card_block(card: Path, start_marker: str, end_marker: str, body: str) -> None:
    """Put `body` between the card's two markers (a card without them is left alone)."""
    text = card.read_text(encoding="utf-8")
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < 0:
        return
    card.write_text(text[: start + len(start_marker)] + "\n" + body + "\n" + text[end:], encoding="utf-8")


def update_card_table(metrics: dict, card: Path = CARD_PATH) -> None:
    _replace_card_block(card, TABLE_START, TABLE_END, render_test_sets(metrics))


def render_training(metrics: dict) -> str:
    """The card's training-run block, from the record the training CLI wrote into the weights."""
    training = metrics.get("training") or {}
    if not training:
        return "The shipped weights carry no training record."
    data = ", ".join(f"{name} {count:,}" for name, count in training.get("data", {}).items())
    repeats = ", ".join(f"{name} × {n}" for name, n in training.get("repeats", {}).items() if n != 1)
    lines = [
        f"- Command: `{training['command']}` (seeds: {json.dumps(training.get('seeds', {}))}).",
        f"- Clips per source: {data}; repeated per epoch (each copy augmented differently): {repeats or 'none'}.",
        f"- Training examples per epoch by class: {json.dumps(training.get('class_counts_per_epoch', {}))}.",
        f"- Wall time: {training.get('train_wall_s', float('nan')) / 60:.1f} min on {training.get('device', '?')}.",
        _threshold_line(metrics.get("reject_threshold", 0.0), training),
        *_reading_speed_lines(training.get("reading_speed")),
        "",
        "| validation set (carved from the training data) | "
        + " | ".join(n for _, n in VALIDATION_COLUMNS)
        + " |",
        "| --- |" + " ---: |" * len(VALIDATION_COLUMNS),
    ]
    for name, report in training.get("validation", {}).items():
        cells = [report.get(key) for key, _ in VALIDATION_COLUMNS]
        text = " | ".join("–" if value is None else f"{value:.3f}" for value in cells)
        lines.append(f"| {VALIDATION_NAMES.get(name, name)} | {text} |")
    return "\n".join(lines)


def _threshold_line(threshold: float, training: dict) -> str:
    sets = " and ".join(training.get("threshold_set_on", [])) or "all validation sets"
    budget = f"{training.get('max_false_reject', 0.0):.0%}"
    if threshold > 0:
        return (
            f"- “Not a word I know” threshold on the best known word's probability: {threshold:.2f}, the "
            f"highest that leaves at most {budget} of the known words of {sets} unanswered."
        )
    return (
        f"- “Not a word I know” threshold on the best known word's probability: none (0.00). The rule "
        f"takes the highest threshold that leaves at most {budget} of the known words of {sets} "
        "unanswered, and with no threshold at all more than that were already answered “other”, so "
        "only the `other` class rejects."
    )


def _reading_speed_lines(choice: dict | None) -> list[str]:
    if not choice:
        return []
    tried = ", ".join(
        f"{row['speed']:.2f} → {row['mean']:.3f}" for row in choice["rows"] if row.get("mean") is not None
    )
    made_by = f" by `{choice['command']}`" if choice.get("command") else ""
    return [
        f"- Reading speed: every clip is resampled to play at {choice['chosen']:.2f}× before the spectrogram, "
        f"chosen on validation{made_by} ({choice['rule']}). Speed → mean: {tried}."
    ]


def update_card_training(metrics: dict, card: Path = CARD_PATH) -> None:
    _replace_card_block(card, TRAINING_START, TRAINING_END, render_training(metrics))
