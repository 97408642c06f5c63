"""Recommendation page: rate a few movies (or pick a MovieLens user), get explained recommendations,
"more like this", and a 2-D map of the model's item space."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from pages.ui import cached_service, latency_caption, setup_page, user_facing_errors
from services.recommend import MAX_K, MIN_RATINGS_TO_RECOMMEND, example_inputs, parse_ratings

setup_page(
    "Recommendation",
    "🎬",
    "Movie recommendations from a matrix-factorisation model trained on 80,000 MovieLens-100K ratings. "
    "Rate a few films you know: the model places you in its latent taste space in milliseconds "
    "(no retraining) and explains each pick by the films you rated.",
)

FRESH, EXISTING = "Start fresh: rate some movies", "Be an existing MovieLens user"
ANY_GENRE = "Any genre"


@st.cache_data
def catalogue() -> pd.DataFrame:
    frame = pd.DataFrame(cached_service("recommend").catalogue())
    frame["label"] = frame["title"]
    return frame.set_index("id")


@st.cache_data
def item_map() -> pd.DataFrame:
    return pd.DataFrame(cached_service("recommend").item_map())


service = cached_service("recommend")
facts = service.info()
items = catalogue()
GENRE_OPTIONS = [ANY_GENRE] + sorted({g for genres in items["genres"] for g in genres if g != "unknown"})

if "rec_picked" not in st.session_state:
    st.session_state.rec_picked = []


def load_example(ratings: dict[int, float]) -> None:
    """Button callback: fill the picker and the sliders before the widgets are drawn."""
    st.session_state.rec_picked = list(ratings)
    for item_id, value in ratings.items():
        st.session_state[f"rec_rate_{item_id}"] = int(value)


with st.expander("About this model and its limits", icon=":material/info:"):
    st.markdown(
        f"""
**Model.** Biased matrix factorisation with an SVD++-style implicit term, 100 latent dimensions, written
in PyTorch and trained full-batch with Adam on MovieLens-100K fold `u1.base` (943 users, 1,682 films,
80,000 ratings from 1997–98). A predicted rating is *global mean + your bias + film bias + your vector · film vector*.

**Top-N in two stages.** A second, implicit-feedback model (PureSVD of *who rated what*, 20 dimensions)
proposes the films people with your viewing history watch; the rating model orders them by how much you
would like them. On held-out MovieLens ratings this finds more than four times as many of the films users went on to like
than ordering all films by predicted rating (precision@10 0.29 vs 0.06).

**New users (fold-in).** Your bias and vector are the regularised least-squares fit to your ratings
with every film's parameters fixed, so each prediction splits exactly into one share per rated film:
the explanation lists the largest shares.

**Limits.** The catalogue stops in 1998. Only films with at least {MIN_RATINGS_TO_RECOMMEND} training
ratings are recommended (fewer ratings give unreliable factors). With one or two ratings the model mostly
falls back on film quality (biases). Unknown ids or no usable ratings give a *popularity* list, clearly
flagged. MovieLens is research-only data: the app ships model parameters and film metadata, never ratings.
"""
    )

mode = st.radio("Who is watching?", [FRESH, EXISTING], horizontal=True, key="rec_mode")
left, right = st.columns([3, 1.2])
genre_choice = right.selectbox("Genre filter", GENRE_OPTIONS, key="rec_genre")
k = right.slider("How many recommendations", 5, min(20, MAX_K), 10, key="rec_k")
genre = None if genre_choice == ANY_GENRE else genre_choice

result = None
rated_ids: list[int] = []

if mode == FRESH:
    with left:
        st.subheader("Rate movies you have seen")
        examples = example_inputs()
        cols = st.columns(len(examples))
        for col, example in zip(cols, examples, strict=True):
            col.button(
                example["name"].replace("_", " ").capitalize(),
                help=example["description"],
                on_click=load_example,
                args=(example["ratings"],),
                width="stretch",
            )
        picked = st.multiselect(
            "Search by title (type to search, pick several)",
            options=list(items.index),
            format_func=lambda item_id: items.at[item_id, "label"],
            key="rec_picked",
            placeholder="e.g. Star Wars, Toy Story, Fargo…",
        )
        ratings: dict[int, float] = {}
        if picked:
            slider_cols = st.columns(3)
            for position, item_id in enumerate(picked):
                key = f"rec_rate_{item_id}"
                if key not in st.session_state:
                    st.session_state[key] = 4
                ratings[item_id] = slider_cols[position % 3].slider(
                    items.at[item_id, "title"], 1, 5, key=key, format="%d ★"
                )
        with st.expander("Or paste ratings as ITEM_ID:RATING pairs"):
            pasted = st.text_input("Ratings", key="rec_pasted", placeholder="50:5, 172:4, 288:1")
    with user_facing_errors("computing recommendations"):
        if pasted.strip():
            ratings = {**parse_ratings(pasted), **ratings}
        rated_ids = [i for i in ratings if i in items.index]
        if ratings:
            result = service.predict({"ratings": ratings, "k": k, "genre": genre})
        else:
            st.info("Pick and rate at least one movie (three or more work best) to get recommendations.")
else:
    with left:
        st.subheader("An existing MovieLens user")
        user_id = st.number_input(
            "User id", min_value=1, max_value=facts["n_users"], value=1, step=1, key="rec_user"
        )
    if not facts["has_history"]:
        st.info(
            "Existing users' ratings are MovieLens data, which may not be redistributed, so they are not shipped "
            "with the app, and the dataset is not on this machine (set `DEMO_DATA_DIR` to a MovieLens-100K folder). "
            "Choose **Start fresh** above to rate movies yourself.",
            icon=":material/lock:",
        )
    else:
        with user_facing_errors("loading the profile"):
            profile = service.user_profile(int(user_id))
            st.caption(
                f"User {profile['user_id']}: {profile['n_ratings']} ratings, mean {profile['mean_rating']:.2f} ★"
            )
            top_col, taste_col = st.columns([1.2, 1])
            with top_col:
                st.markdown("**Top-rated movies**")
                st.dataframe(
                    pd.DataFrame(profile["top_rated"])[["title", "rating", "genres"]],
                    hide_index=True,
                    width="stretch",
                )
            with taste_col:
                taste = pd.DataFrame(profile["genre_taste"])
                chart = (
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
                    .properties(height=max(200, 22 * len(taste)))
                )
                st.altair_chart(chart, width="stretch")
            rated_ids = [row["item_id"] for row in profile["top_rated"]]
    with user_facing_errors("computing recommendations"):
        result = service.predict({"user": int(user_id), "k": k, "genre": genre})

recommended_ids: list[int] = []
if result is not None:
    st.subheader("Recommended for you")
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
    for rank, rec in enumerate(result["recommendations"], start=1):
        recommended_ids.append(rec["item_id"])
        with st.container(border=True):
            title_col, score_col = st.columns([5, 1])
            title_col.markdown(f"**{rank}. {rec['title']}**  \n{', '.join(rec['genres'])}")
            score_col.metric("predicted", f"{rec['predicted_rating']:.1f} ★")
            if rec["because"]:
                reasons = ", ".join(
                    f"*{b['title']}* ({b['rating']:g}★, +{b['contribution']:.2f})" for b in rec["because"]
                )
                st.caption(f"Because you rated {reasons}")
            elif result["fallback"]:
                st.caption(f"Popular: rated by {rec['n_ratings']} MovieLens users")
    latency_caption(result["latency_ms"])
    if "fold_in_ms" in result:
        st.caption(f"Fold-in (solving your taste vector): {result['fold_in_ms']:.2f} ms")

st.divider()
st.subheader("More like this")
default_seed = recommended_ids[0] if recommended_ids else 50
options = list(items.index)
seed_item = st.selectbox(
    "Any movie",
    options,
    index=options.index(default_seed),
    format_func=lambda item_id: items.at[item_id, "label"],
    key="rec_similar",
)
with user_facing_errors("finding similar movies"):
    similar = service.similar_items(int(seed_item), k=8)
    for note in similar["notes"]:
        st.caption(note)
    st.dataframe(
        pd.DataFrame(similar["similar"])[["title", "similarity", "genres", "n_ratings"]],
        hide_index=True,
        width="stretch",
        column_config={
            "similarity": st.column_config.ProgressColumn(
                "cosine", min_value=0.0, max_value=1.0, format="%.2f"
            )
        },
    )

st.divider()
st.subheader("Map of the item space")
st.caption(
    "Each dot is a film (with at least "
    f"{MIN_RATINGS_TO_RECOMMEND} training ratings), placed by the first two principal components of its "
    "100-dimensional factor vector and coloured by its first listed genre. Films close together are liked by the "
    "same people. ◆ films you rated, ▲ your recommendations."
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
st.altair_chart((dots + marked).properties(height=480).interactive(), width="stretch")
