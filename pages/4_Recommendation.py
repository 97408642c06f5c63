"""Recommendation page: find films and rate them (or pick a MovieLens user), get recommendations that
each carry their own reasons, "more like this", and a 2-D map of the model's item space."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from pages.ui import (
    CHART_MIN_HEIGHT,
    cached,
    latency_caption,
    recommend_service,
    result_actions,
    scroll_into_view_on_phone,
    setup_page,
    shared_input,
    user_facing_errors,
)
from services.recommend import (
    MAX_K,
    MIN_RATINGS_TO_RECOMMEND,
    RATING_MAX,
    display_title,
    example_inputs,
    parse_ratings,
)

setup_page(
    "Recommendation",
    "🎬",
    "Rate a few films you know: a matrix-factorisation model trained on MovieLens-100K places you in its "
    "taste space in milliseconds (no retraining) and says which of your ratings pull each pick up.",
)

FRESH, EXISTING = "Rate films myself", "Be an existing MovieLens user"
ANY_GENRE = "Any genre"
STARS = [1, 2, 3, 4, 5]
MATCHES_SHOWN = 6

service = recommend_service()
facts = service.info()
SCOPE = facts["catalogue_scope"]  # "MovieLens-100K: films up to 1998"


@st.cache_data
def catalogue() -> pd.DataFrame:
    return pd.DataFrame(recommend_service().catalogue()).set_index("item_id")


@st.cache_data
def item_map() -> pd.DataFrame:
    return pd.DataFrame(recommend_service().item_map())


def star_label(stars: int) -> str:
    return f"{stars}★"


items = catalogue()
GENRE_OPTIONS = [ANY_GENRE] + sorted({g for genres in items["genres"] for g in genres if g != "unknown"})

if "rec_ratings" not in st.session_state:  # {movie id: stars}: only what the viewer chose explicitly
    shared = shared_input("ratings")
    try:
        st.session_state.rec_ratings = {
            item: int(round(value))
            for item, value in parse_ratings(shared or "").items()
            if item in items.index
        }
    except ValueError:  # a damaged shared link: start empty rather than fail
        st.session_state.rec_ratings = {}


def set_rating(item_id: int, stars: int | None) -> None:
    ratings = st.session_state.rec_ratings
    if stars is None:
        ratings.pop(item_id, None)
    else:
        ratings[item_id] = int(stars)
        st.session_state[f"rec_rate_{item_id}"] = int(stars)


def rate_match(item_id: int) -> None:
    """A star clicked beside a search match: add the film with that rating and clear the search."""
    set_rating(item_id, st.session_state.get(f"rec_new_{item_id}"))
    st.session_state.pop(f"rec_new_{item_id}", None)
    st.session_state.rec_query = ""


def change_rating(item_id: int) -> None:
    """Clicking the chosen star again clears it, which removes the film."""
    set_rating(item_id, st.session_state.get(f"rec_rate_{item_id}"))


def load_example(ratings: dict[int, float]) -> None:
    st.session_state.rec_examples_loaded = st.session_state.get("rec_examples_loaded", 0) + 1
    st.session_state.rec_ratings = {}
    for item_id, value in ratings.items():
        set_rating(item_id, int(value))


def clear_ratings() -> None:
    st.session_state.rec_ratings = {}


def ratings_text(ratings: dict[int, float]) -> str:
    return ",".join(f"{item}:{value:g}" for item, value in ratings.items())


with st.expander("About this model and its limits", icon=":material/info:"):
    metrics = facts["metrics"]  # every figure of the evaluation run (the service's info)
    st.markdown(
        f"""
**Model.** Biased matrix factorisation, {facts["features"]["n_factors"]} latent dimensions, trained by
alternating least squares on {facts["data"]}. A predicted rating is *global mean + your bias + film bias +
your vector · film vector*; 5-fold RMSE {metrics.get("rmse", float("nan")):.3f} stars.
**Top-N in two stages:** an implicit model of *who watched what* proposes films people with your
history watch, and the rating model orders them (5-fold NDCG@10 {metrics.get("ndcg@10", float("nan")):.3f}).
**Your taste** is the regularised least-squares fit to your ratings with every film fixed, so each
prediction splits exactly into how viewers rate the film, how generously you rate, and one share per
film you rated. Under each pick only films you rated 4★ or 5★ are named, each with the stars it adds;
the shares of your other ratings are summed, and the parts add up to the prediction. When the films
you loved move a pick by less than 0.1★ it is explained as popular and highly rated overall.

**Measured against simple baselines** (same 5 folds): a film's average rating adjusted for the viewer
(bias only) has RMSE {metrics.get("baseline_bias_rmse", float("nan")):.3f}, one global average
{metrics.get("baseline_global_mean_rmse", float("nan")):.3f}; recommending the most popular films
reaches NDCG@10 {metrics.get("reference_popularity_ndcg@10", float("nan")):.3f}. So the model's personal
touch is real but modest in RMSE. **No test outside MovieLens-100K:** these figures are for 1990s
MovieLens raters rating films up to 1998; other viewers and newer catalogues were never measured.

**Limits.** {SCOPE}. Only films with at least {MIN_RATINGS_TO_RECOMMEND} training ratings are
recommended. With one or two ratings the model mostly falls back on film quality. Unknown ids or no
usable ratings give a clearly flagged *popularity* list. MovieLens is research-only data: the app ships
model parameters and film metadata, never ratings.
"""
    )

mode_col, genre_col, k_col = st.columns([2.2, 1, 1])
mode = mode_col.radio("Who is watching?", [FRESH, EXISTING], horizontal=True, key="rec_mode")
genre_choice = genre_col.selectbox("Genre filter", GENRE_OPTIONS, key="rec_genre")
k = k_col.slider("How many picks", 5, min(20, MAX_K), 10, key="rec_k")
genre = None if genre_choice == ANY_GENRE else genre_choice

result = None
rated_ids: list[int] = []
rated_stars: dict[int, float] = {}  # the viewer's ratings, for "more like this"
share: dict[str, str] | None = None

if mode == FRESH:
    search_col, rated_col = st.columns([1.1, 1], gap="large")
    with search_col:
        query = st.text_input(
            "Find a film",
            key="rec_query",
            placeholder="e.g. The Godfather, Toy Story, Fargo",
            help="Type a title and press Enter. Nothing is added until you click a rating.",
        )
        st.caption(f":material/movie: {SCOPE}. Search, then click a rating to add the film.")
        if query.strip():
            with user_facing_errors("searching the catalogue"):
                found = service.search(query, limit=MATCHES_SHOWN + 1)
                for match in found["matches"][:MATCHES_SHOWN]:
                    item_id = match["item_id"]
                    label = f"**{match['display_title']}** · {', '.join(match['genres'])}"
                    if item_id in st.session_state.rec_ratings:
                        st.markdown(f"{label}  \nrated {star_label(st.session_state.rec_ratings[item_id])}")
                    else:
                        st.segmented_control(
                            label,
                            STARS,
                            format_func=star_label,
                            key=f"rec_new_{item_id}",
                            on_change=rate_match,
                            args=(item_id,),
                        )
                if len(found["matches"]) > MATCHES_SHOWN:
                    st.caption("More films match: type more of the title.")
                for note in found["notes"]:
                    st.info(note[:1].upper() + note[1:], icon=":material/search_off:")
        st.caption("Or start from an example profile:")
        for column, example in zip(st.columns(3), example_inputs(), strict=True):
            column.button(
                example["name"].replace("_", " ").capitalize(),
                help=example["description"],
                on_click=load_example,
                args=(example["ratings"],),
                width="stretch",
            )
    with rated_col:
        ratings: dict[int, float] = {}
        st.markdown("**Your ratings**")
        if not st.session_state.rec_ratings:
            st.caption("None yet.")
        for item_id, stars in list(st.session_state.rec_ratings.items()):
            key = f"rec_rate_{item_id}"
            if key not in st.session_state:
                st.session_state[key] = stars
            st.segmented_control(
                items.at[item_id, "display_title"],
                STARS,
                format_func=star_label,
                key=key,
                on_change=change_rating,
                args=(item_id,),
            )
            ratings[item_id] = float(stars)
        if ratings:
            st.button("Clear all", on_click=clear_ratings, icon=":material/delete:")
            st.caption("Click the chosen rating again to remove a film.")
        with st.expander("Paste ratings as ITEM_ID:RATING pairs"):
            pasted = st.text_input("Ratings", key="rec_pasted", placeholder="50:5, 172:4, 288:1")
    with user_facing_errors("computing recommendations"):
        if pasted.strip():
            ratings = {**parse_ratings(pasted), **ratings}
        rated_ids = [i for i in ratings if i in items.index]
        rated_stars = {i: ratings[i] for i in rated_ids}
        if ratings:
            result = cached(service.predict)({"ratings": ratings, "k": k, "genre": genre})
            share = {"ratings": ratings_text(ratings)}
        else:
            st.info(
                "Search for a film you have seen and click a rating (three or more work best), "
                "or load an example profile.",
                icon=":material/star:",
            )
else:
    user_id = st.number_input(
        "MovieLens user id", min_value=1, max_value=facts["n_users"], value=1, step=1, key="rec_user"
    )
    if not facts["has_history"]:
        st.info(
            "Existing users' ratings are MovieLens data, which may not be redistributed, so they are not shipped "
            "with the app, and the dataset is not on this machine (set `DEMO_DATA_DIR` to a MovieLens-100K folder). "
            f"Choose **{FRESH}** above to rate films yourself.",
            icon=":material/lock:",
        )
    else:
        with user_facing_errors("loading the profile"), st.expander("Their ratings and genre taste"):
            profile = service.user_profile(int(user_id))
            st.caption(
                f"User {profile['user_id']}: {profile['n_ratings']} ratings, mean {profile['mean_rating']:.2f} ★"
            )
            top_col, taste_col = st.columns([1.2, 1])
            top_col.dataframe(
                pd.DataFrame(profile["top_rated"])[["display_title", "rating"]],
                hide_index=True,
                width="stretch",
                column_config={"display_title": "top-rated films"},
            )
            taste = pd.DataFrame(profile["genre_taste"])
            taste_col.altair_chart(
                alt.Chart(taste, title="Genre taste")
                .mark_bar(cornerRadiusEnd=3)
                .encode(
                    x=alt.X("n_rated:Q", title="films rated"),
                    y=alt.Y("genre:N", sort="-x", title=None),
                    color=alt.Color(
                        "mean_rating:Q", title="mean ★", scale=alt.Scale(scheme="purples", domain=[1, 5])
                    ),
                    tooltip=["genre", "n_rated", alt.Tooltip("mean_rating:Q", format=".2f")],
                )
                .properties(height=max(CHART_MIN_HEIGHT, 22 * len(taste))),
                width="stretch",
            )
            rated_ids = [row["item_id"] for row in profile["top_rated"]]
            rated_stars = {row["item_id"]: row["rating"] for row in profile["top_rated"]}
    with user_facing_errors("computing recommendations"):
        result = cached(service.predict)({"user": int(user_id), "k": k, "genre": genre})


def signed(stars: float) -> str:
    return f"{'−' if stars < 0 else '+'}{abs(stars):.2f}★"


def explanation_lines(explanation: dict) -> str:
    """The pick's reason in words, then its prediction split into parts that add up to it."""
    films = explanation["films"]
    if films:
        words = "Because you rated " + ", ".join(
            f"*{display_title(film['title'])}* {film['rating']:g}★ ({signed(film['contribution'])}, "
            f"{film['share']:.0%} of the prediction)"
            for film in films
        )
    else:
        words = explanation["summary"][:1].upper() + explanation["summary"][1:]
    habit = explanation["habit"]
    habit_words = "you rate higher than most" if habit >= 0 else "you rate lower than most"
    parts = [f"{explanation['overall']:.2f}★ how viewers rate it", f"{signed(habit)} {habit_words}"]
    parts += [f"{signed(film['contribution'])} {display_title(film['title'])}" for film in films]
    parts.append(f"{signed(explanation['other_ratings'])} your {'other ' if films else ''}ratings")
    breakdown = " · ".join(parts) + f" = {explanation['predicted']:.2f}★"
    if explanation["predicted"] > RATING_MAX:
        breakdown += f" (shown as {RATING_MAX:g}★, the top of the scale)"
    return f"{words}.  \n   :gray[{breakdown}]"


recommended_ids: list[int] = []
results_box = st.container(key="rec_result")
picks_tab, similar_tab, map_tab = results_box.tabs(
    ["Recommended for you", "More like this", "Map of the films"]
)

with picks_tab:
    if result is None:
        st.caption("Your picks appear here.")
    else:
        if result["fallback"] == "popularity":
            st.warning(
                f"Popular films shown instead of personal picks: {result['reason']}.",
                icon=":material/trending_up:",
            )
        if result.get("unknown_items"):
            st.caption(f"Ignored unknown movie ids: {', '.join(map(str, result['unknown_items']))}")
        for note in result["notes"]:
            if not note.startswith(("popular films instead", "ignored unknown")):
                st.caption(note)
        if not result["recommendations"]:
            st.info("No film matches this genre filter; try another genre.")
        lines = []
        for rank, rec in enumerate(result["recommendations"], start=1):
            recommended_ids.append(rec["item_id"])
            line = f"{rank}. **{rec['display_title']}** · {rec['predicted_rating']:.1f}★ predicted"
            if rec.get("explanation"):
                line += f"  \n   {explanation_lines(rec['explanation'])}"
            elif result["fallback"]:
                line += f" · rated by {rec['n_ratings']} MovieLens users"
            lines.append(line)
        st.markdown("\n".join(lines))
        latency_caption(result["latency_ms"])
        if "fold_in_ms" in result:
            st.caption(f"Fold-in (solving your taste vector): {result['fold_in_ms']:.2f} ms")
        result_actions(result, share=share, key="recommend")
        # On a phone the search and the ratings fill the first screens: bring the picks up when they first
        # appear and when an example profile is loaded, not on every star (that would pull the visitor
        # away from the search while they rate a few films).
        with results_box:
            scroll_into_view_on_phone(
                "rec_result", f"{mode}:{st.session_state.get('rec_examples_loaded', 0)}:{share is not None}"
            )

with similar_tab:
    options = list(items.index)
    # Start on the film the viewer rated highest (the better known one on a tie); with no ratings, ask.
    favourite = max(
        rated_stars, key=lambda item_id: (rated_stars[item_id], items.at[item_id, "n_ratings"]), default=None
    )
    if favourite != st.session_state.get("rec_similar_favourite"):  # a new favourite: start on it again
        st.session_state.rec_similar_favourite = favourite
        st.session_state.rec_similar = favourite
    seed_item = st.selectbox(
        "Films closest to",
        options,
        index=None,
        placeholder="Choose a film you like",
        format_func=lambda item_id: items.at[item_id, "display_title"],
        key="rec_similar",
    )
    if seed_item is None:
        st.caption("Choose a film, or rate a few films: this tab then starts on your favourite.")
    else:
        with user_facing_errors("finding similar movies"):
            similar = service.similar_items(int(seed_item), k=8)
            for note in similar["notes"]:
                st.caption(note)
            st.caption(
                "Closest in the model's taste space, weighted by how many MovieLens viewers rated both films: "
                "a pair few people compared ranks lower."
            )
            st.dataframe(
                pd.DataFrame(similar["similar"])[["display_title", "similarity", "support", "genres"]],
                hide_index=True,
                width="stretch",
                column_config={
                    "display_title": st.column_config.TextColumn("film", width="medium"),
                    "similarity": st.column_config.ProgressColumn(
                        "similarity", min_value=0.0, max_value=1.0, format="%.2f", width="small"
                    ),
                    "support": st.column_config.NumberColumn(
                        "rated both", help="MovieLens viewers who rated both films", width="small"
                    ),
                },
            )

with map_tab:
    st.caption(
        f"Each dot is a film with at least {MIN_RATINGS_TO_RECOMMEND} training ratings, placed by the first two "
        f"principal components of its {facts['features']['n_factors']}-dimensional factor vector and coloured by "
        "its first listed genre. Films close together are liked by the same people. ◆ films you rated, "
        "▲ your picks."
    )
    points = item_map()
    points["role"] = "other"
    points.loc[points["item_id"].isin(rated_ids), "role"] = "rated"
    points.loc[points["item_id"].isin(recommended_ids), "role"] = "recommended"
    base = alt.Chart(points).encode(
        x=alt.X("x:Q", title="component 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="component 2", axis=alt.Axis(labels=False, ticks=False)),
        tooltip=["title", "genre", "n_ratings"],
    )
    dots = (
        base.transform_filter(alt.datum.role == "other")
        .mark_circle(size=28, opacity=0.45)
        .encode(color=alt.Color("genre:N", title="first genre", scale=alt.Scale(scheme="tableau20")))
    )
    marked = (
        base.transform_filter(alt.datum.role != "other")
        .mark_point(filled=True, size=190, stroke="black", strokeWidth=1)
        .encode(
            shape=alt.Shape(
                "role:N",
                scale=alt.Scale(domain=["rated", "recommended"], range=["diamond", "triangle-up"]),
                title="you",
            ),
            color=alt.Color("genre:N"),
        )
    )
    st.altair_chart((dots + marked).properties(height=420).interactive(), width="stretch")
