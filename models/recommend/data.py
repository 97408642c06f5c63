"""MovieLens-100K readers: ratings (`u.data`, `uN.base`, `uN.test`) and item metadata (`u.item`).

The rating files are research-only data that may not be redistributed: they are read from a local
data folder and never written into the repository. Only item metadata (id, title, year, genres) is
shipped beside the weights.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The 19 genre flags of u.item, in the order of u.genre.
GENRES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
N_USERS = 943
N_ITEMS = 1682
RELEVANT_RATING = 4.0  # top-N protocol: a test rating of 4 or 5 marks a relevant item
ARCHIVE_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Ratings:
    """Explicit ratings with 0-based user and item indices (MovieLens id minus one)."""

    users: np.ndarray  # (N,) int64
    items: np.ndarray  # (N,) int64
    ratings: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.ratings)


def read_ratings(path: str | Path) -> Ratings:
    """Read a tab-separated `user item rating timestamp` file (u.data, uN.base, uN.test)."""
    table = np.loadtxt(path, dtype=np.int64, delimiter="\t", ndmin=2)
    return Ratings(users=table[:, 0] - 1, items=table[:, 1] - 1, ratings=table[:, 2].astype(np.float32))


def read_items(data_dir: str | Path) -> list[dict]:
    """Item metadata from u.item (Latin-1): id, title, year, genres (names of the set flags)."""
    rows = []
    text = Path(data_dir, "u.item").read_text(encoding="latin-1")
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        flags = [int(flag) for flag in fields[5:24]]
        genres = [name for name, flag in zip(GENRES, flags, strict=True) if flag]
        rows.append(
            {"id": int(fields[0]), "title": fields[1], "year": _year(fields[1], fields[2]), "genres": genres}
        )
    return rows


def _year(title: str, release_date: str) -> int | None:
    match = re.search(r"\((\d{4})\)\s*$", title) or re.search(r"(\d{4})$", release_date)
    return int(match.group(1)) if match else None


def require_data_dir(data_dir: str | None) -> Path:
    """The folder holding u.data, with a clear message when it is missing.

    Without --data-dir we look beside the checkout (../shared/data/movielens-100k); we never
    download at run time in the app, and the archive's licence forbids shipping it.
    """
    folder = Path(data_dir) if data_dir else default_data_dir()
    if folder is None or not (folder / "u.data").is_file():
        raise SystemExit(
            f"MovieLens-100K not found at {folder}. Download and unzip {ARCHIVE_URL} "
            "(research use only, no redistribution) and pass --data-dir ml-100k."
        )
    return folder


def default_data_dir() -> Path | None:
    """The local MovieLens folder: $DEMO_DATA_DIR (the folder itself or its parent), else ../shared/data."""
    candidates = []
    env = os.environ.get("DEMO_DATA_DIR")
    if env:
        candidates += [Path(env), Path(env) / "movielens-100k"]
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "movielens-100k")
    for folder in candidates:
        if (folder / "u.data").is_file() and (folder / "u.item").is_file():
            return folder
    return None
