"""Movie recommendations: top-N for a known user or for a new user from a few ratings (fold-in),
explanations, similar movies, catalogue search, a 2-D map of the item space, and a popularity
fallback. One concern per module:

    inputs.py        ids, ratings, k, genre and whole requests → `Request` or a typed InputError
    catalogue.py     title search ("The Godfather" finds "Godfather, The"; no fuzzy matches)
    scoring.py       the weights as numpy arrays, fold-in, scores and the two-stage top-N
    explanations.py  why a pick: overall + your habit + the films you loved, adding up to the prediction
    history.py       existing users' ratings from the local MovieLens files (never shipped)
    item_map.py      the 2-D map of the films (PCA of the item factors)
    examples.py      the bundled hand-made rating profiles
    service.py       RecommendService (services.base.Service) and `load_service()`
    cli.py           `python -m services.recommend --rate "50:5,172:4" --k 10`
"""

from services.recommend.catalogue import display_title
from services.recommend.examples import EXAMPLES_DIR, example_inputs
from services.recommend.history import History
from services.recommend.inputs import (
    MAX_BATCH,
    MAX_ID_CHARS,
    MAX_K,
    MAX_QUERY_CHARS,
    MAX_RATE_CHARS,
    MAX_RATINGS,
    RATING_MAX,
    RATING_MIN,
    Request,
    parse_ratings,
)
from services.recommend.scoring import MIN_RATINGS_TO_RECOMMEND
from services.recommend.service import RecommendService, load_service

__all__ = [
    "EXAMPLES_DIR",
    "MAX_BATCH",
    "MAX_ID_CHARS",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "MAX_RATE_CHARS",
    "MAX_RATINGS",
    "MIN_RATINGS_TO_RECOMMEND",
    "RATING_MAX",
    "RATING_MIN",
    "History",
    "RecommendService",
    "Request",
    "display_title",
    "example_inputs",
    "load_service",
    "parse_ratings",
]
