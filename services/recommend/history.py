"""Existing users' rating histories, read from the local MovieLens files (never shipped with the app)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from models.recommend.data import read_ratings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class History:
    """Existing users' ratings, read from the local dataset (never shipped); arrays are read-only."""

    items: Mapping[int, np.ndarray]  # 0-based user index → 0-based item indices
    ratings: Mapping[int, np.ndarray]  # 0-based user index → ratings


def load_history(data_dir: Path | None) -> History | None:
    if data_dir is None:
        return None
    try:
        table = read_ratings(data_dir / "u.data")
    except (OSError, ValueError):
        logger.warning("could not read %s; existing-user histories unavailable", data_dir / "u.data")
        return None
    order = np.lexsort((table.items, table.users))
    users, items, ratings = table.users[order], table.items[order], table.ratings[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    item_map, rating_map = {}, {}
    for chunk_users, chunk_items, chunk_ratings in zip(
        np.split(users, bounds), np.split(items, bounds), np.split(ratings, bounds), strict=True
    ):
        chunk_items.setflags(write=False)
        chunk_ratings.setflags(write=False)
        item_map[int(chunk_users[0])] = chunk_items
        rating_map[int(chunk_users[0])] = chunk_ratings
    logger.info("existing-user histories from %s (%d users)", data_dir, len(item_map))
    return History(MappingProxyType(item_map), MappingProxyType(rating_map))
