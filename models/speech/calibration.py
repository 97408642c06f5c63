"""Turning class probabilities into answers, and choosing the "not a word I know" threshold.

A clip's answer is the most probable class; it is rejected ("not a word I know") when that class is
"other", or when the best known word's probability is below the threshold; "silence" means no speech.
The threshold is the highest that keeps the known words of the real-voice validation sets wrongly
rejected at or below a target rate (test sets are never used).
"""

from __future__ import annotations

import numpy as np

from models.speech.data import N_WORDS, OTHER_INDEX, SILENCE_INDEX

MAX_FALSE_REJECT = 0.03  # known words of real validation voices rejected at most this often
# The rule fixed before the runs that picks between them (and between reading speeds): the mean of
# these real-voice validation figures, (validation set, figure of decision_report).
SELECTION_FIGURES = (
    ("fsdd_val", "digit_accuracy"),
    ("extra_val", "digit_accuracy"),
    ("words_val", "command_accuracy"),
    ("words_val", "other_rejected"),
)
THRESHOLD_GRID = np.round(np.arange(0.0, 0.96, 0.01), 2)


def decide(probs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best known word per clip, rejected as an unknown word, heard as silence), each (N,)."""
    best_word = probs[:, :N_WORDS].argmax(axis=1)
    winner = probs.argmax(axis=1)
    silence = winner == SILENCE_INDEX
    rejected = ~silence & ((winner == OTHER_INDEX) | (probs[:, :N_WORDS].max(axis=1) < threshold))
    return best_word, rejected, silence


def rejection_threshold(probs: np.ndarray, labels: np.ndarray, max_false_reject: float) -> float:
    """The highest threshold on the best known word's probability that keeps the share of known-word
    clips not answered with a word (rejected, or heard as silence) at or below `max_false_reject`."""
    is_word = labels < N_WORDS
    chosen = 0.0
    for threshold in THRESHOLD_GRID:
        _, rejected, silence = decide(probs, float(threshold))
        if (rejected | silence)[is_word].mean() <= max_false_reject:
            chosen = float(threshold)
    return chosen


def decision_report(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Known-word accuracy (a rejected word counts as wrong), false rejects, unknown words rejected,
    silence recognised, per kind of clip present in `labels`."""
    best_word, rejected, silence = decide(probs, threshold)
    answered_word = ~rejected & ~silence
    out: dict[str, float] = {}
    kinds = {
        "digit": labels < 10,
        "command": (labels >= 10) & (labels < N_WORDS),
    }
    for kind, mask in kinds.items():
        if mask.any():
            out[f"{kind}_accuracy"] = round(float(((best_word == labels) & answered_word)[mask].mean()), 4)
            out[f"{kind}_false_reject"] = round(float((~answered_word)[mask].mean()), 4)
    other = labels == OTHER_INDEX
    if other.any():
        out["other_rejected"] = round(float((~answered_word)[other].mean()), 4)
    quiet = labels == SILENCE_INDEX
    if quiet.any():
        out["silence_recognised"] = round(float((~answered_word)[quiet].mean()), 4)
    return out


def calibrate(
    set_probs: dict[str, np.ndarray], set_labels: dict[str, np.ndarray], real_sets: tuple[str, ...]
) -> tuple[float, dict[str, dict]]:
    """The threshold chosen on the real-voice sets among `real_sets`, and the decision report of every
    set under it, with "all" for every clip together."""
    real = [name for name in real_sets if name in set_probs]
    threshold = rejection_threshold(
        np.concatenate([set_probs[name] for name in real]),
        np.concatenate([set_labels[name] for name in real]),
        MAX_FALSE_REJECT,
    )
    validation = {
        name: decision_report(probs, set_labels[name], threshold) for name, probs in set_probs.items()
    }
    validation["all"] = decision_report(
        np.concatenate(list(set_probs.values())),
        np.concatenate([set_labels[n] for n in set_probs]),
        threshold,
    )
    return threshold, validation


def selection_figures(validation: dict[str, dict]) -> dict[str, float]:
    """The SELECTION_FIGURES present in `validation`, named "set figure"."""
    return {
        f"{name} {key}": validation[name][key]
        for name, key in SELECTION_FIGURES
        if key in validation.get(name, {})
    }


def selection_score(validation: dict[str, dict]) -> float | None:
    """The mean of the SELECTION_FIGURES present in `validation` (None when none is)."""
    figures = list(selection_figures(validation).values())
    return float(np.mean(figures)) if figures else None
