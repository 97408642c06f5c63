"""Input checks and parsing for the recommender: ids, ratings, k, genre, and whole requests.

Everything here is pure (no model): a request dict becomes a `Request` dataclass or raises a typed
`InputError` whose message is shown to the user as is. Ids must be whole numbers (anything else is
`UnknownIdError`); ratings go from 1 to 5 stars.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from models.recommend import GENRES
from services import limits
from services.errors import EmptyInputError, InputError, InputTooLargeError, UnknownIdError

RATING_MIN, RATING_MAX = limits.RECOMMEND.rating_min, limits.RECOMMEND.rating_max
MAX_RATINGS = limits.RECOMMEND.max_ratings  # ratings per request (a MovieLens user has at most 737)
MAX_K = limits.RECOMMEND.max_k  # recommendations per request
MAX_BATCH = limits.RECOMMEND.max_batch  # requests per predict_batch call
MAX_ID_CHARS = limits.RECOMMEND.max_id_chars  # an id given as text longer than this is refused before parsing
MAX_RATE_CHARS = 20_000  # length of a "ITEM:RATING,..." string
MAX_QUERY_CHARS = limits.RECOMMEND.max_query_chars  # catalogue search text
MAX_SEARCH_RESULTS = limits.RECOMMEND.max_search_results  # films per catalogue search
DEFAULT_K = limits.RECOMMEND.k

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")

RatingsInput = Mapping[Any, Any] | Iterable[tuple[Any, Any]] | str


def whole_number(value: Any, kind: str) -> int:
    """An id as int; bools, fractions, text that is not a whole number → UnknownIdError."""
    if isinstance(value, bool) or value is None:
        raise UnknownIdError(f"{kind} id must be a whole number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        raise UnknownIdError(f"{kind} id must be a whole number, got {value!r}")
    text = str(value).strip()
    # ASCII digits only: str.isdigit() also accepts '¹' or '٣', which int() then refuses.
    if len(text) > MAX_ID_CHARS or not _WHOLE_NUMBER.fullmatch(text):
        shown = text if len(text) <= MAX_ID_CHARS else text[:MAX_ID_CHARS] + "…"
        raise UnknownIdError(f"{kind} id must be a whole number, got '{shown}'")
    return int(text)


def check_rating(value: Any, item_id: int) -> float:
    try:
        rating = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"the rating for movie {item_id} must be a number from 1 to 5, got {value!r}"
        ) from None
    if not math.isfinite(rating) or not RATING_MIN <= rating <= RATING_MAX:
        raise InputError(f"ratings go from 1 to 5 stars; movie {item_id} was given {value!r}")
    return rating


def parse_ratings(text: str) -> dict[int, float]:
    """'50:5,172:4.5' → {50: 5.0, 172: 4.5}; malformed pairs raise InputError."""
    if len(text) > MAX_RATE_CHARS:
        raise InputTooLargeError(f"the ratings text is {len(text)} characters; the limit is {MAX_RATE_CHARS}")
    ratings: dict[int, float] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        item, sep, value = pair.partition(":")
        if not sep:
            raise InputError(f"'{pair[:40]}' is not ITEM_ID:RATING (e.g. 50:5)")
        item_id = whole_number(item, "movie")
        if item_id in ratings:
            raise InputError(f"movie {item_id} is rated twice")
        ratings[item_id] = check_rating(value, item_id)
    return ratings


def check_k(k: Any) -> int:
    try:
        k = whole_number(k, "k")
    except UnknownIdError:
        raise InputError(f"k must be a whole number from 1 to {MAX_K}") from None
    if not 1 <= k <= MAX_K:
        raise InputError(f"k must be from 1 to {MAX_K}, got {k}")
    return k


def check_genre(genre: Any) -> str | None:
    if genre is None or str(genre).strip() == "":
        return None
    lookup = {name.lower(): name for name in GENRES}
    name = lookup.get(str(genre).strip().lower())
    if name is None:
        raise InputError(f"unknown genre '{str(genre)[:40]}'; choose one of: {', '.join(GENRES[1:])}")
    return name


def check_ratings(ratings: RatingsInput) -> dict[int, float]:
    """{item_id: rating} from a mapping, (id, rating) pairs or an 'ID:RATING,...' string."""
    if isinstance(ratings, str):
        parsed = parse_ratings(ratings)
    else:
        if not isinstance(ratings, (Mapping, list, tuple)):
            raise InputError('ratings must be a mapping of movie id to rating, e.g. {"50": 5}')
        pairs = list(ratings.items()) if isinstance(ratings, Mapping) else list(ratings)
        if len(pairs) > MAX_RATINGS:
            raise InputTooLargeError(f"{len(pairs)} ratings were given; the limit is {MAX_RATINGS}")
        parsed = {}
        for pair in pairs:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InputError("each rating must be a (movie id, rating) pair")
            item, value = pair
            item_id = whole_number(item, "movie")
            if item_id in parsed:
                raise InputError(f"movie {item_id} is rated twice")
            parsed[item_id] = check_rating(value, item_id)
    if len(parsed) > MAX_RATINGS:
        raise InputTooLargeError(f"{len(parsed)} ratings were given; the limit is {MAX_RATINGS}")
    return parsed


def check_limit(limit: Any) -> int:
    try:
        limit = whole_number(limit, "limit")
    except UnknownIdError:
        raise InputError(f"limit must be a whole number from 1 to {MAX_SEARCH_RESULTS}") from None
    if not 1 <= limit <= MAX_SEARCH_RESULTS:
        raise InputError(f"limit must be from 1 to {MAX_SEARCH_RESULTS}, got {limit}")
    return limit


def check_query(query: Any) -> str:
    if not isinstance(query, str):
        raise InputError("the search text must be a string")
    if len(query) > MAX_QUERY_CHARS:
        raise InputTooLargeError(
            f"the search text is {len(query)} characters; the limit is {MAX_QUERY_CHARS}"
        )
    return query


Mode = Literal["fold-in", "trained", "fallback"]


@dataclass(frozen=True)
class Request:
    """A checked recommendation request, resolved against the catalogue and the user histories.

    mode: "fold-in" solves the user from `ratings`; "trained" uses the stored vector of `user_id`;
    "fallback" answers with the most-rated films because there is nothing personal to go on.
    """

    mode: Mode
    k: int
    genre: str | None
    ratings: dict[int, float] = field(default_factory=dict)  # known 1-based movie id → stars
    unknown_items: list[int] = field(default_factory=list)  # ids given that the catalogue lacks
    user_id: int | None = None
    history: str | None = None  # where a known user's ratings came from ("local dataset", "unavailable")
    reason: str | None = None  # why the popularity fallback answered


def request_fields(request: Any) -> tuple[str, Any, int, str | None]:
    """(kind, payload, k, genre) of a request dict with exactly one of 'user' or 'ratings'."""
    if not isinstance(request, Mapping):
        raise InputError(
            "a request is a JSON object with 'ratings' or 'user', e.g. {\"ratings\": {\"50\": 5}}"
        )
    kinds = [key for key in ("user", "ratings") if key in request]
    if len(kinds) != 1:
        raise InputError("each request needs exactly one of 'user' or 'ratings'")
    unexpected = sorted(set(map(str, request)) - {"user", "ratings", "k", "genre"})
    if unexpected:
        raise InputError(
            f"unexpected field(s) {', '.join(unexpected)[:80]}; allowed: user, ratings, k, genre"
        )
    k = request.get("k")
    return (
        kinds[0],
        request[kinds[0]],
        check_k(DEFAULT_K if k is None else k),
        check_genre(request.get("genre")),
    )


def empty_ratings_error() -> EmptyInputError:
    return EmptyInputError('no ratings were given; use "ITEM_ID:RATING,..." e.g. "50:5,172:4"')
