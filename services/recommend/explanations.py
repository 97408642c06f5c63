"""Why a film was recommended: the rated films that pull *this* pick up.

After fold-in the personal part of a prediction splits exactly into one share per rated film
(models.recommend.mf.FoldIn.contributions): share(j, i) = w_i·t_i + q_j · (W_i·t_i + y_i/√n).
The first term, rated film i's pull on the user's bias, is the same for every candidate j, so it
says nothing about why j in particular was picked; ranking reasons by it names the film with the
largest rating surprise (often Star Wars) under every pick. The reasons therefore use only the
per-item part, q_j · (W_i·t_i + y_i/√n): how much rated film i's share of the taste vector lines
up with candidate j. Each pick gets its own reasons, and the shares still add up exactly to the
taste part of its prediction, q_j · z_u.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.recommend import FoldIn

EXPLAIN_TOP = 3  # rated films listed per explanation
MIN_CONTRIBUTION = 0.005  # stars; smaller shares round to +0.00 and explain nothing


@dataclass(frozen=True)
class Reason:
    item_id: int  # 1-based MovieLens id of the rated film
    title: str
    rating: float
    contribution: float  # stars this rated film adds to the pick's predicted rating

    def as_dict(self) -> dict:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "rating": self.rating,
            "contribution": round(self.contribution, 3),
        }


def taste_contributions(solution: FoldIn, candidate_factors: np.ndarray) -> np.ndarray:
    """(m, n): rated film i's share of candidate j's taste match q_j · z_u (the bias share left out)."""
    explicit = (candidate_factors @ solution.solve_weights[1:]) * solution.targets  # (m, n)
    return explicit + candidate_factors @ solution.implicit_rows.T  # (m, n)


def explain(
    solution: FoldIn,
    candidate_factors: np.ndarray,
    rated_items: Sequence[int],
    rated_values: Sequence[float],
    titles: Sequence[str],
    top: int = EXPLAIN_TOP,
) -> list[list[Reason]]:
    """For each candidate (rows of candidate_factors), the up-to-`top` rated films that raise it most.

    rated_items are 0-based catalogue positions, in the order the solution was solved with.
    """
    if len(candidate_factors) == 0 or len(rated_items) == 0:
        return [[] for _ in range(len(candidate_factors))]
    shares = taste_contributions(solution, np.asarray(candidate_factors))  # (m, n)
    reasons = []
    for row in shares:
        picked = []
        for j in np.argsort(-row, kind="stable")[:top].tolist():
            if float(row[j]) < MIN_CONTRIBUTION:
                break
            index = int(rated_items[j])
            picked.append(Reason(index + 1, str(titles[index]), float(rated_values[j]), float(row[j])))
        reasons.append(picked)
    return reasons
