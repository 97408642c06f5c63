"""Command line: one JSON line per request.

python -m services.recommend --user 1 --k 10
python -m services.recommend --rate "50:5,172:5,288:1" --k 10 [--genre Sci-Fi]
python -m services.recommend --similar 50 --k 10
python -m services.recommend --search "The Godfather"
"""

from __future__ import annotations

import argparse
import logging
import sys

from models.recommend import GENRES
from services.cli import run_per_input
from services.recommend.inputs import empty_ratings_error


def main(argv: list[str] | None = None) -> int:
    from services.recommend.service import load_service

    parser = argparse.ArgumentParser(
        prog="python -m services.recommend", description="Movie recommendations from MovieLens-100K."
    )
    parser.add_argument("--user", action="append", default=[], help="MovieLens user id (repeatable)")
    parser.add_argument(
        "--rate", action="append", default=[], help='"ITEM_ID:RATING,..." for a new user (repeatable)'
    )
    parser.add_argument(
        "--similar", action="append", default=[], help="movie id for 'more like this' (repeatable)"
    )
    parser.add_argument("--search", action="append", default=[], help="catalogue search text (repeatable)")
    parser.add_argument("--k", default="10")
    parser.add_argument("--genre", default=None, help=f"one of {', '.join(GENRES[1:])}")
    args = parser.parse_args(argv)
    if not (args.user or args.rate or args.similar or args.search):
        parser.error("give at least one --user, --rate, --similar or --search")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    service = load_service()
    inputs = (
        [f"user={v}" for v in args.user]
        + [f"rate={v}" for v in args.rate]
        + [f"similar={v}" for v in args.similar]
        + [f"search={v}" for v in args.search]
    )

    def handle(text: str) -> dict:
        kind, _, value = text.partition("=")
        if kind == "user":
            return service.predict({"user": value, "k": args.k, "genre": args.genre})
        if kind == "rate":
            if not value.strip():
                raise empty_ratings_error()
            return service.predict({"ratings": value, "k": args.k, "genre": args.genre})
        if kind == "search":
            return service.search(value)
        return service.similar_items(value, k=args.k, genre=args.genre)

    return run_per_input(inputs, handle, key="input")
