"""Catalogue search: find films by what people type, never by a guess.

MovieLens stores "The Godfather" as "Godfather, The (1972)" and some films under two titles
("Seven (Se7en) (1995)"). Titles and queries are normalised the same way (article moved to the
front, accents and punctuation dropped, lower case), and a film matches when the query is a phrase
inside its title, or, failing that, when every query word starts a word of the title. There is no
fuzzy matching: "Star Wars" never finds "Dr. Strangelove", and "Matrix" finds nothing because the
catalogue ends in 1998 (`catalogue_scope`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# Articles MovieLens moves to the end of a title ("Postino, Il", "Cité des enfants perdus, La").
_ARTICLES = "The|A|An|Les|La|Le|L'|Il|El|Das|Die|Der|Den|Det|Lo|Gli|I"
_TRAILING_ARTICLE = re.compile(rf"^(?P<title>.+), (?P<article>{_ARTICLES})$")
_YEAR = re.compile(r"\s*\((?P<year>\d{4})\)\s*$")
_ALTERNATE = re.compile(r"\s*\(([^()]*)\)")


def _article_first(segment: str) -> str:
    match = _TRAILING_ARTICLE.match(segment.strip())
    if not match:
        return segment.strip()
    article = match["article"]
    return f"{article}{match['title']}" if article.endswith("'") else f"{article} {match['title']}"


def normalise(text: str) -> str:
    """Lower-case words without accents or punctuation: 'Cité, La' → 'la cite'."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = text.replace("&", " and ")
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def display_title(title: str) -> str:
    """'Godfather: Part II, The (1974)' → 'The Godfather: Part II (1974)' (how people write it)."""
    year = _YEAR.search(title)
    body = title[: year.start()] if year else title
    alternates = _ALTERNATE.findall(body)
    main = _ALTERNATE.sub("", body)
    text = _article_first(main)
    if alternates:
        text += "".join(f" ({_article_first(alt)})" for alt in alternates)
    return f"{text} ({year['year']})" if year else text


def search_key(title: str) -> str:
    """Normalised words of the display title, year included: 'the godfather part ii 1974'."""
    return normalise(display_title(title))


@dataclass(frozen=True)
class CatalogueIndex:
    """Search keys of every film, built once with the service."""

    keys: tuple[str, ...]  # normalised display title with its year, one per film, in catalogue order
    keys_without_year: tuple[str, ...]
    popularity: tuple[int, ...]  # training rating counts, to order equally good matches

    @classmethod
    def build(cls, titles: Sequence[str], popularity: Sequence[int]) -> CatalogueIndex:
        keys = tuple(search_key(title) for title in titles)
        bare = tuple(normalise(display_title(_YEAR.sub("", title))) for title in titles)
        return cls(keys, bare, tuple(int(n) for n in popularity))

    def search(self, query: str, limit: int) -> list[int]:
        """Catalogue positions matching `query`, best first: exact title, title prefix, phrase inside
        the title, then every word starting a title word; equally good matches by popularity."""
        wanted = normalise(display_title(query.strip()))
        if not wanted or limit < 1:
            return []
        words = wanted.split()
        ranked: list[tuple[int, int, int]] = []  # (tier, -popularity, position)
        for position, (key, bare) in enumerate(zip(self.keys, self.keys_without_year, strict=True)):
            padded = f" {key} "
            if wanted in (key, bare):
                tier = 0
            elif key.startswith(wanted + " "):
                tier = 1
            elif f" {wanted} " in padded:
                tier = 2
            elif wanted in key:
                tier = 3
            elif all(f" {word}" in padded for word in words):
                tier = 4
            else:
                continue
            ranked.append((tier, -self.popularity[position], position))
        ranked.sort()
        return [position for _, _, position in ranked[:limit]]
