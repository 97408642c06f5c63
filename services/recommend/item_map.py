"""The 2-D map of the films: PCA of the item factors, one small SVD in numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from services.recommend.scoring import ModelArrays


def build_item_map(arrays: ModelArrays, items: Sequence[Mapping], eligible: np.ndarray) -> tuple:
    """Every film placed by the first two principal components of its factor vector (PCA fitted on the
    films with enough ratings); read-only rows."""
    # PCA by one small SVD in numpy: importing scikit-learn for it cost ~5 s of every cold start.
    factors = arrays.item_factors
    fitted = factors[eligible]
    mean = fitted.mean(axis=0)
    _, _, components = np.linalg.svd(fitted - mean, full_matrices=False)
    components = components[:2]
    # One sign per axis, as scikit-learn chooses it: the largest loading of each axis is positive.
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    coords = (factors - mean) @ (components * signs[:, None]).T
    rows = []
    for index, item in enumerate(items):
        genres = [g for g in item["genres"] if g != "unknown"]
        rows.append(
            MappingProxyType(
                {
                    "item_id": int(item["id"]),
                    "title": str(item["title"]),
                    "x": round(float(coords[index, 0]), 4),
                    "y": round(float(coords[index, 1]), 4),
                    "genre": genres[0] if genres else "unknown",
                    "n_ratings": int(arrays.counts[index]),
                }
            )
        )
    return tuple(rows)
