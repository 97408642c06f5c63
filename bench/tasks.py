"""Per task: single-request latency and batch throughput of the service, after warm-up.

The tasks are services/tasks.py's, in its order: each needs a `bench_<task>(options)` here, and a task
without one fails this module's import (so a new task cannot be left out of the bench silently).
`TASKS`, read by the cold loads and the report, is `BENCHES`'s keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.tasks import TASK_NAMES


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False  # fewer repeats: a smoke run
    data_dir: Path | None = None  # MovieLens-100K, for the comparison with Surprise on u1
    scaling: str = "reuse"  # the recommender cost curve: "reuse" | "measure" | "skip" (comparisons.py)


SENTENCES = [
    "A gorgeous, moving film with a superb cast.",
    "Dull, predictable and far too long.",
    "The plot is thin but the performances carry it.",
    "I would not watch this again.",
    "an utterly charming and funny family comedy",
    "It is a mess from start to finish, with no redeeming qualities whatsoever.",
    "Surprisingly good.",
    "The director has crafted a tense, intelligent thriller that rewards patience.",
]

# The batch figure uses 32 different texts: a batch of repeats would measure the service's
# deduplication of identical rows rather than the model. Mixed domains and lengths, as in a real file.
BATCH_SENTENCES = SENTENCES + [
    "Check-in took two minutes and the room was spotless.",
    "The battery died after a week and support never answered my emails.",
    "Great food, rude staff.",
    "Flight delayed three hours with no explanation from the crew.",
    "This blender crushes ice like nothing else I have owned.",
    "Meh.",
    "The hotel was fine, nothing special, but the breakfast was excellent.",
    "I returned it the next day.",
    "Best pizza in town, and the delivery was faster than promised.",
    "The sequel tries hard, yet it never finds the charm of the first film.",
    "Comfortable seats, friendly crew, and we landed early!",
    "Do not buy this phone case; it cracked on the first drop.",
    "An absolute joy to read from the first page to the last.",
    "The waiter forgot our order twice and the soup arrived cold.",
    "Solid build quality, though the manual is useless.",
    "Loved every minute.",
    "The room smelled of smoke and the air conditioning rattled all night long, which ruined our stay.",
    "Shipping was quick and the headphones sound amazing for the price.",
    "Not worth the money.",
    "The plot twists kept me guessing until the very end, and the score is wonderful.",
    "Customer service resolved my problem in five minutes.",
    "Terrible app: it crashes every time I open the camera.",
    "The staff went out of their way to make our anniversary special.",
    "It works, I guess.",
]


def bench_vision(options: BenchOptions) -> dict:
    quick = options.quick
    from bench.timing import latency_ms, throughput
    from services import vision

    service = vision.load_service()
    examples = vision.example_inputs()
    images = [Path(e["path"]).read_bytes() for e in examples]
    batch = [images[i % len(images)] for i in range(64)]
    # A phone-style photo of a handwritten 4-digit number, end to end: decode, find and cut the
    # digits, one forward pass, the result (issue 14's goal: p50 ≤ 30 ms on the 2-core CPU).
    number = next(Path(e["path"]).read_bytes() for e in examples if e["label"] == "4233")
    return {
        "single": latency_ms(lambda: service.predict(images[0]), repeats=30 if quick else 200),
        "batch": throughput(lambda: service.predict_batch(batch), len(batch), repeats=3 if quick else 10),
        "number_photo_4_digits": latency_ms(lambda: service.predict(number), repeats=20 if quick else 100),
        "unit": "images",
    }


def bench_speech(options: BenchOptions) -> dict:
    quick = options.quick
    from bench.timing import latency_ms, throughput
    from services import speech

    service = speech.load_service()
    clips = [Path(e["path"]).read_bytes() for e in speech.example_inputs() if e["kind"] == "digit"]
    batch = [clips[i % len(clips)] for i in range(32)]
    return {
        "single": latency_ms(lambda: service.predict(clips[0]), repeats=20 if quick else 100),
        "batch": throughput(lambda: service.predict_batch(batch), len(batch), repeats=3 if quick else 8),
        "unit": "clips",
    }


def bench_nlp(options: BenchOptions) -> dict:
    from bench.comparisons import nlp_vs_pipeline
    from services import nlp

    service = nlp.load_service()
    # Our figures come from the same run as the pipeline's: the two alternate call by call.
    return nlp_vs_pipeline(service, SENTENCES[0], BATCH_SENTENCES, options.quick)


def bench_recommend(options: BenchOptions) -> dict:
    """Serving figures, then the comparison with Surprise on u1 and the cost curve (bench.comparisons)."""
    from bench.comparisons import compare_with_surprise, recommender_cost_curve
    from bench.timing import latency_ms, throughput
    from services import recommend

    quick, data_dir = options.quick, options.data_dir
    service = recommend.load_service()
    profile = recommend.example_inputs()[0]["ratings"]
    users = [{"user": user, "k": 10} for user in range(1, 101)]
    result = {
        "single": latency_ms(lambda: service.predict({"user": 42, "k": 10}), repeats=30 if quick else 200),
        "fold_in": latency_ms(
            lambda: service.predict({"ratings": profile, "k": 10}), repeats=30 if quick else 200
        ),
        "batch": throughput(lambda: service.predict_batch(users), len(users), repeats=3 if quick else 10),
        "unit": "users",
    }
    if data_dir is not None and (data_dir / "u1.base").is_file():
        result["vs_surprise"] = compare_with_surprise(data_dir, repeats=1 if quick else 3)
    else:
        result["vs_surprise"] = {"skipped": f"MovieLens not found at {data_dir}"}
    curve = recommender_cost_curve(quick, options.scaling)
    if curve is not None:
        result["scaling"] = curve
    return result


def _benches() -> dict[str, Callable[[BenchOptions], dict]]:
    functions = {task: globals().get(f"bench_{task}") for task in TASK_NAMES}
    missing = [f"bench_{task}" for task, function in functions.items() if function is None]
    if missing:
        raise ImportError(
            f"bench/tasks.py has no {', '.join(missing)}: every task of services/tasks.py needs one"
        )
    return functions


BENCHES: dict[str, Callable[[BenchOptions], dict]] = _benches()
TASKS = tuple(BENCHES)
