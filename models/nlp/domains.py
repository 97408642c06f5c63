"""The sentiment sets beside SST-2, by role: what may be trained on, and what is only measured.

All paths are relative to the folder that holds the `sst2/` folder (for example ../shared/data), so
`--data-dir ../shared/data/sst2` finds everything else as its siblings. Roles follow the data README:
a *train* set may be trained on and used to choose between runs; a *test-only* set is read only to
report a figure, never to train, tune a threshold or temperature, or pick a run.

Validation is carved out of the train sets (a fixed share of each, by a seeded shuffle), so every
choice in the recipe (which epoch or soup of epochs ships, the temperature) is made on data of the
same kinds as the training data and none of the test sets.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LabelledTexts:
    """Sentences with 0/1 labels (0 = negative, 1 = positive) from one named source."""

    name: str
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: Sequence[int]) -> LabelledTexts:
        return LabelledTexts(self.name, [self.texts[i] for i in rows], [self.labels[i] for i in rows])


def read_label_sentence_tsv(path: Path, name: str | None = None) -> LabelledTexts:
    """A TSV with header `label<TAB>sentence` (the layout of every set here except SST-2)."""
    from models.nlp.scoring import read_labelled_tsv

    return LabelledTexts(name or path.stem, *read_labelled_tsv(path, label_first=True))


def read_sst2_tsv(path: Path, name: str = "sst2") -> LabelledTexts:
    """GLUE SST-2 keeps its own column order, `sentence<TAB>label`."""
    from models.nlp.scoring import read_sst2

    texts, labels = read_sst2(path)
    return LabelledTexts(name, texts, labels)


def concat(name: str, parts: Sequence[LabelledTexts]) -> LabelledTexts:
    return LabelledTexts(name, [t for p in parts for t in p.texts], [y for p in parts for y in p.labels])


@dataclass(frozen=True)
class TestOnlySet:
    """One test-only measurement: a key for metrics.json, a description and its files."""

    key: str
    description: str
    files: tuple[str, ...]  # relative to the data root; read together as one set
    licence: str = ""  # as its PROVENANCE.md states it

    def available(self, root: Path) -> bool:
        return all((root / f).is_file() for f in self.files)

    def load(self, root: Path) -> LabelledTexts:
        parts = [
            read_sst2_tsv(root / f, self.key) if f.startswith("sst2/") else read_label_sentence_tsv(root / f)
            for f in self.files
        ]
        return concat(self.key, parts)


# Every test-only sentiment set in ../shared/data, with the figure each one reports.
TEST_ONLY_SETS: tuple[TestOnlySet, ...] = (
    TestOnlySet(
        "sst2_dev",
        "GLUE SST-2 dev (movie-review sentences)",
        ("sst2/dev.tsv",),
        "none stated (SST/GLUE: research use, cite)",
    ),
    TestOnlySet(
        "opener_en_hotels",
        "OpeNER English hotel-review sentences, test file",
        ("opener_en_hotels/test.tsv",),
        "none stated (test-only; also a domain kept unseen)",
    ),
    TestOnlySet(
        "finegrained_product_reviews",
        "fine-grained product-review sentences, all five domains together",
        tuple(
            f"finegrained_product_reviews/{d}.tsv"
            for d in ("books", "dvds", "electronics", "music", "videogames")
        ),
        '"any friendly purpose", cite (doubtful for training: test-only)',
    ),
    TestOnlySet(
        "airline_tweets",
        "customer-service tweets about US airlines",
        ("airline_tweets/airline_tweets.tsv",),
        "CC BY-NC-SA 4.0 (non-commercial: test-only)",
    ),
    TestOnlySet(
        "dynasent_r1_test",
        "DynaSent round 1 test (hard Yelp sentences)",
        ("dynasent/r1_yelp_test.tsv",),
        "CC BY 4.0",
    ),
    TestOnlySet(
        "dynasent_r2_test",
        "DynaSent round 2 test (crowd-written, adversarial)",
        ("dynasent/r2_dynabench_test.tsv",),
        "CC BY 4.0",
    ),
    TestOnlySet(
        "tweeteval_sentiment_test",
        "TweetEval sentiment test tweets (positive/negative)",
        ("tweeteval_sentiment/test.tsv",),
        "released without restrictions; Twitter's terms apply (doubtful: test-only)",
    ),
)


@dataclass(frozen=True)
class TrainSource:
    """A set open for training: its files, the share held out for validation, and its sampling weight."""

    key: str
    files: tuple[str, ...]
    validation_share: float = 0.15
    description: str = ""
    licence: str = ""  # as the folder's PROVENANCE.md states it ("none stated" where it states none)
    # Extra files that are validation only (tsa_md ships its own dev split for that).
    validation_files: tuple[str, ...] = ()
    # Upper bound on the validation rows carved (None: `validation_share` of the rows, uncapped).
    validation_cap: int | None = None
    # Rows drawn per epoch, from a stream that walks through the source before repeating a row.
    # None: every row once.
    per_epoch: int | None = None
    # Whole multi-paragraph texts: trained on their first and last tokens (see models.nlp.scoring.head_and_tail).
    long_texts: bool = False


# The single mixed stage (models.nlp.train) from the base model: every set open for training, each
# drawn `per_epoch` rows an epoch. Sentences whose label is the whole review's stars (Yelp, Amazon Li 2018)
# are noisy and drawn less than their size; finance tweets label market direction, not the writer's
# mood, and are drawn least. Validation: 15 % of each source, at most 500 rows (SST-2: a held-out slice of
# train, `sst2_validation_rows`).
MIXED_SOURCES: tuple[TrainSource, ...] = (
    TrainSource(
        "yelp_sentences",
        ("yelp_sentences_shen2017/train.tsv",),
        description="Yelp review sentences, label from the review's stars (Shen et al. 2017)",
        licence="none stated (Yelp Dataset Challenge text; repository Apache-2.0)",
        validation_cap=500,
        per_epoch=3750,
    ),
    TrainSource(
        "goemotions",
        ("goemotions_sentiment/train.tsv",),
        description="Reddit comments, GoEmotions emotions mapped to positive/negative",
        licence="Apache-2.0",
        validation_cap=500,
        per_epoch=5600,
    ),
    TrainSource(
        "tweets",
        ("tweet_sentiment_extraction/train.tsv",),
        description="general tweets, crowd-labelled (Tweet Sentiment Extraction)",
        licence="CC BY 4.0",
        validation_cap=500,
        per_epoch=5600,
    ),
    TrainSource(
        "amazon_reviews",
        tuple(f"amazon_mdsd_blitzer2007/{d}.tsv" for d in ("books", "dvd", "electronics", "kitchen")),
        description="whole Amazon reviews: books, DVDs, electronics, kitchen (Blitzer et al. 2007)",
        licence="none stated",
        validation_cap=400,
        per_epoch=1500,
        long_texts=True,
    ),
    TrainSource(
        "finance_tweets",
        ("twitter_financial_news/train.tsv",),
        description="finance tweets, bullish = positive, bearish = negative (market direction)",
        licence="MIT",
        validation_cap=300,
        per_epoch=400,
    ),
    TrainSource(
        "amazon_sentences",
        ("amazon_sentences_li2018/train.tsv",),
        description="Amazon review sentences, label from the review's stars (Li et al. 2018)",
        licence="CC BY-SA 4.0",
        validation_cap=300,
        per_epoch=750,
    ),
    TrainSource(
        "hotel_reviews",
        ("hotel_reviews_515k_sample/train.tsv",),
        description="Booking.com hotel reviews, the liked / disliked boxes (515K sample)",
        licence="CC0",
        validation_cap=200,
        per_epoch=1000,
    ),
    TrainSource(
        "uci_reviews",
        tuple(f"uci_sentiment_sentences/{d}.tsv" for d in ("amazon", "yelp", "imdb")),
        description="UCI sentiment sentences from Amazon, Yelp and IMDb reviews",
        licence="CC BY 4.0",
        per_epoch=2500,
    ),
    TrainSource(
        "dynasent_r1_dev",
        ("dynasent/r1_yelp_dev.tsv",),
        description="DynaSent round 1 dev file (hard Yelp sentences)",
        licence="CC BY 4.0",
        per_epoch=3000,
    ),
    TrainSource(
        "dynasent_r2_dev",
        ("dynasent/r2_dynabench_dev.tsv",),
        description="DynaSent round 2 dev file (crowd-written, adversarial)",
        licence="CC BY 4.0",
        per_epoch=750,
    ),
    TrainSource(
        "tsa_md",
        ("tsa_md/train.tsv",),
        validation_share=0.0,
        validation_files=("tsa_md/dev.tsv",),
        description="crowd-written review sentences from many domains (dev file: validation)",
        licence="Apache-2.0",
        per_epoch=600,
    ),
)
# SST-2 rows drawn per epoch in the mixed stage (movie reviews: the largest single source).
MIXED_SST2_PER_EPOCH = 11000
SST2_TRAIN_SOURCE = TrainSource(
    "sst2",
    ("sst2/train.tsv",),
    description="GLUE SST-2 train, movie-review phrases (a held-out slice is validation)",
    licence="none stated (SST/GLUE: research use, cite)",
    per_epoch=MIXED_SST2_PER_EPOCH,
)


def normalise(text: str) -> str:
    """Lower-case, letters and digits only: the key that finds the same sentence written twice."""
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


def test_only_keys(root: Path) -> set[str]:
    """Normalised texts of every test-only set present under root (to keep them out of training)."""
    keys: set[str] = set()
    for test_set in TEST_ONLY_SETS:
        if test_set.available(root):
            keys.update(normalise(t) for t in test_set.load(root).texts)
    return keys


@dataclass
class DomainSplits:
    """The training rows of each source and the validation rows carved from each."""

    train: dict[str, LabelledTexts] = field(default_factory=dict)
    validation: dict[str, LabelledTexts] = field(default_factory=dict)
    dropped_as_test_overlap: dict[str, int] = field(default_factory=dict)
    sources: dict[str, TrainSource] = field(default_factory=dict)

    def limited(self, rows: int) -> DomainSplits:
        """The first `rows` rows of every part (tests and smoke runs)."""
        first = range(rows)
        return DomainSplits(
            {k: v.subset(first[: len(v)]) for k, v in self.train.items()},
            {k: v.subset(first[: len(v)]) for k, v in self.validation.items()},
            dict(self.dropped_as_test_overlap),
            dict(self.sources),
        )

    def only(self, *keys: str) -> DomainSplits:
        """The same rows restricted to the sources `keys` (a stage that trains on some of them)."""
        return DomainSplits(
            {k: v for k, v in self.train.items() if k in keys},
            {k: v for k, v in self.validation.items() if k in keys},
            {k: v for k, v in self.dropped_as_test_overlap.items() if k in keys},
            {k: v for k, v in self.sources.items() if k in keys},
        )


def _split(
    data: LabelledTexts, share: float, rng: random.Random, cap: int | None = None
) -> tuple[LabelledTexts, LabelledTexts]:
    order = list(range(len(data)))
    rng.shuffle(order)
    n_val = int(round(share * len(order)))
    if cap is not None:
        n_val = min(n_val, cap)
    return data.subset(order[n_val:]), data.subset(order[:n_val])


def load_multi_domain(
    root: Path,
    sources: Sequence[TrainSource] = MIXED_SOURCES,
    sst2_validation_rows: int = 600,
    seed: int = 13,
) -> DomainSplits:
    """Read each train source under root, drop rows that also occur in a test-only set, carve validation.

    SST-2 train is returned whole under "sst2" (the recipe samples from it each epoch) minus
    `sst2_validation_rows` held out as "sst2" validation.
    """
    rng = random.Random(seed)
    banned = test_only_keys(root)
    splits = DomainSplits()

    def clean(data: LabelledTexts) -> LabelledTexts:
        keep = [i for i, t in enumerate(data.texts) if normalise(t) not in banned]
        splits.dropped_as_test_overlap[data.name] = (
            splits.dropped_as_test_overlap.get(data.name, 0) + len(data) - len(keep)
        )
        return data.subset(keep)

    sst2 = clean(read_sst2_tsv(root / "sst2" / "train.tsv"))
    if not len(sst2):
        raise ValueError(
            f"{root / 'sst2' / 'train.tsv'}: no training rows left (all also occur in a test-only set)"
        )
    splits.train["sst2"], splits.validation["sst2"] = _split(sst2, sst2_validation_rows / len(sst2), rng)
    for source in sources:
        missing = [f for f in source.files + source.validation_files if not (root / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"training source {source.key}: missing {', '.join(missing)} under {root}"
            )
        data = clean(concat(source.key, [read_label_sentence_tsv(root / f) for f in source.files]))
        train_part, val_part = _split(data, source.validation_share, rng, source.validation_cap)
        if source.validation_files:
            extra = clean(
                concat(source.key, [read_label_sentence_tsv(root / f) for f in source.validation_files])
            )
            val_part = concat(source.key, [val_part, extra])
        splits.train[source.key], splits.validation[source.key] = train_part, val_part
        splits.sources[source.key] = source
    return splits
