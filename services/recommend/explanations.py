"""Why a film was recommended, in numbers that add up to the prediction and films a person agrees with.

After fold-in a prediction splits exactly into four parts (models.recommend.mf.FoldIn):

    predicted(j) = (μ + b_j)                 how all viewers rate film j ("overall")
                 + b_u                       how generously this viewer rates in general ("your habit")
                 + Σ_i q_j · (W_i·t_i + y_i/√n)   one taste share per rated film i

Only films the viewer rated highly (RATED_HIGHLY stars or more) are ever named: the least-squares fit
also turns a *low* rating of a very different film into a positive share ("Das Boot because you rated
Titanic 2★"), which is arithmetic, not a reason a person believes. Such shares, and shares too small
to matter, are summed as "your other ratings". When the named films together move the pick by less
than MIN_PERSONAL stars the pick is explained plainly as popular and highly rated overall.

Every number is rounded to STAR_DECIMALS once; "your other ratings" takes the rounding remainder, so
the numbers shown add up exactly to the rounded prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.recommend import FoldIn
from services.recommend.catalogue import display_title

EXPLAIN_TOP = 3  # rated films named per pick
RATED_HIGHLY = 4.0  # stars: only films rated this or higher are named as a reason
MIN_SHARE = 0.05  # stars: a named film must lift the pick by at least this much
MIN_PERSONAL = 0.10  # stars: below this the named films together "move it little"
STAR_DECIMALS = 2
WELL_RATED = 3.5  # stars overall from which a film is called "highly rated"
SMALL_PERSONAL = "popular and highly rated overall; your ratings move it little"


@dataclass(frozen=True)
class Reason:
    item_id: int  # 1-based MovieLens id of the rated film
    title: str
    rating: float
    contribution: float  # stars this rated film adds to the pick's predicted rating
    share: float  # contribution as a fraction of the predicted rating

    def as_dict(self) -> dict:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "rating": self.rating,
            "contribution": self.contribution,
            "share": self.share,
        }


@dataclass(frozen=True)
class Explanation:
    """One pick's prediction split into parts a person can read; the parts add up to `predicted`."""

    overall: float  # μ + b_j: what viewers in general give this film
    habit: float  # b_u: how much higher or lower than others this viewer rates in general
    reasons: tuple[Reason, ...]  # the highly rated films that lift this pick most
    other_ratings: float  # every other rated film's share together (and the rounding remainder)
    predicted: float  # the model's prediction, unclipped, rounded to STAR_DECIMALS
    summary: str  # one plain sentence

    def as_dict(self) -> dict:
        return {
            "overall": self.overall,
            "habit": self.habit,
            "films": [reason.as_dict() for reason in self.reasons],
            "other_ratings": self.other_ratings,
            "predicted": self.predicted,
            "summary": self.summary,
        }


def taste_contributions(solution: FoldIn, candidate_factors: np.ndarray) -> np.ndarray:
    """(m, n): rated film i's share of candidate j's taste match q_j · z_u (the bias share left out)."""
    explicit = (candidate_factors @ solution.solve_weights[1:]) * solution.targets  # (m, n)
    return explicit + candidate_factors @ solution.implicit_rows.T  # (m, n)


def _stars(value: float) -> float:
    return round(float(value), STAR_DECIMALS)


def explain(
    solution: FoldIn,
    candidate_factors: np.ndarray,
    overall: np.ndarray,
    rated_items: Sequence[int],
    rated_values: Sequence[float],
    titles: Sequence[str],
    top: int = EXPLAIN_TOP,
) -> list[Explanation]:
    """One Explanation per candidate (rows of candidate_factors; overall[j] = μ + b_j of that row).

    rated_items are 0-based catalogue positions, in the order the solution was solved with.
    """
    candidate_factors = np.asarray(candidate_factors, dtype=np.float64)
    rated_values = np.asarray(rated_values, dtype=np.float64)
    if len(rated_items):
        shares = taste_contributions(solution, candidate_factors)  # (m, n)
    else:
        shares = np.zeros((len(candidate_factors), 0))
    habit = _stars(solution.bias)
    nameable = rated_values >= RATED_HIGHLY  # (n,)
    explanations = []
    for row, base in zip(shares, np.asarray(overall, dtype=np.float64), strict=True):
        predicted = _stars(base + float(solution.bias) + row.sum())
        candidates = [
            j for j in np.argsort(-row, kind="stable").tolist() if nameable[j] and row[j] >= MIN_SHARE
        ]
        named = candidates[:top]
        if sum(float(row[j]) for j in named) < MIN_PERSONAL:
            named = []
        reasons = tuple(
            Reason(
                item_id=int(rated_items[j]) + 1,
                title=str(titles[int(rated_items[j])]),
                rating=float(rated_values[j]),
                contribution=_stars(row[j]),
                share=round(float(row[j]) / predicted, 3) if predicted else 0.0,
            )
            for j in named
        )
        overall_stars = _stars(base)
        other = _stars(predicted - overall_stars - habit - sum(reason.contribution for reason in reasons))
        summary = _summary(reasons, other, overall_stars)
        explanations.append(Explanation(overall_stars, habit, reasons, other, predicted, summary))
    return explanations


def _summary(reasons: Sequence[Reason], other: float, overall: float) -> str:
    if reasons:
        return (
            "your high ratings of "
            + ", ".join(display_title(reason.title) for reason in reasons)
            + " lift it"
        )
    if other >= MIN_PERSONAL:
        return (
            f"your ratings together lift it by {other:.2f}★; no film you rated highly accounts for much of it"
        )
    if overall >= WELL_RATED:
        return SMALL_PERSONAL
    return f"viewers overall rate it {overall:.1f}★; your ratings move it little"
