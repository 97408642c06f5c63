"""The REST API's request and error models, generated from the services' own limits (services/limits.py).

The OpenAPI schema of serve/api.py is built from these: every constraint a request model states (list
lengths, ranges, one of 'ratings' or 'user', movie ids as written, required files) is one the service
enforces too, and every route documents its error answers with the one `ErrorResponse` model, so a
client generated from the schema is right on the error paths (schemathesis checks it in the suite).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from services.limits import MAX_ARRAY_SIDE, NPY_MEDIA_TYPE, RECOMMEND, TEXT
from services.recommend.inputs import GENRES

NPY_HEADER_ROOM = 4096  # a .npy header is at most a few hundred bytes


# ---- errors -----------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    type: str = Field(
        description="the error's class, e.g. UnknownIdError, InputTooLargeError, InvalidRequest"
    )
    message: str = Field(description="what went wrong, written for the person who sent the request")


class ErrorResponse(BaseModel):
    """The one error shape of every route (and of a bad item inside a batch's results)."""

    error: ErrorDetail


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    reasons = {
        400: "the body could not be parsed (e.g. a broken multipart body)",
        401: "API_KEY is set on the server and the request's key is missing or wrong",
        404: "an unknown task, user or film, or a user profile whose rating files are not on this server",
        413: "a body or batch over the limits",
        422: "an invalid request, or input the model cannot handle",
        500: "a bug; logged on the server, answered without details",
    }
    return {status: {"model": ErrorResponse, "description": reasons[status]} for status in statuses}


# Every /v1 route may answer these; routes add 404 where an id or task names a resource.
COMMON_ERRORS = _documented(400, 401, 413, 422, 500)
NOT_FOUND = _documented(404)

# ---- the drawing canvas's pixels ----------------------------------------------------------------
NPY_BODY = {
    "required": True,
    "content": {
        media_type: {
            "schema": {
                "type": "string",
                "format": "binary",
                "maxLength": MAX_ARRAY_SIDE * MAX_ARRAY_SIDE * 4 + NPY_HEADER_ROOM,
                "description": "the bytes `numpy.save` writes (format 1.0–3.0, allow_pickle=False)",
            }
        }
        # the body is read as bytes whatever its content type; the page sends application/x-npy
        for media_type in (NPY_MEDIA_TYPE, "application/octet-stream")
    },
    "description": "a NumPy .npy file (no pickled objects) of one uint8 or float array shaped (H, W) grey, "
    f"(H, W, 3) RGB or (H, W, 4) RGBA, each side 8 to {MAX_ARRAY_SIDE} pixels; in Python: "
    "`buf = io.BytesIO(); numpy.save(buf, pixels, allow_pickle=False)` and send `buf.getvalue()` "
    f"with `Content-Type: {NPY_MEDIA_TYPE}`",
}


# ---- JSON field types: no more lenient than the schema says ------------------------------------
def _json_integer(value: Any) -> Any:
    # pydantic's lax mode would take true or "42" for an integer; JSON Schema's integer is neither
    # (31.0 is one, and is accepted)
    if isinstance(value, bool | str):
        raise ValueError("should be a JSON integer")
    return value


WholeNumber = Annotated[int, BeforeValidator(_json_integer)]
Flag = Annotated[bool, Field(strict=True)]


# ---- language ----------------------------------------------------------------------------------
# One text that the service refuses (empty, binary, no words) is a 422; inside /v1/sentiment's list
# it is an error entry in its own slot.
Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT.max_chars)]


class SentimentRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # word highlights cost about a second per text: at most TEXT.max_explained texts with explain
        json_schema_extra={
            "if": {"properties": {"explain": {"const": True}}, "required": ["explain"]},
            "then": {"properties": {"texts": {"maxItems": TEXT.max_explained}}},
        },
    )
    texts: list[str] = Field(
        min_length=1,
        max_length=TEXT.max_batch,
        description="one or many texts; a text the model cannot read gets an error in its own slot",
    )
    explain: Flag = Field(False, description=f"word highlights (at most {TEXT.max_explained} texts)")


class SimilarityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: Text
    b: Text


class SummaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text
    sentences: WholeNumber = Field(
        TEXT.summary_sentences, ge=1, le=TEXT.max_summary_sentences, description="sentences in the summary"
    )


# ---- recommendations ---------------------------------------------------------------------------
Genre = Literal[tuple(GENRES)]  # type: ignore[valid-type]
# written without leading zeros, so that two keys never name the same film ("7" and "07")
MovieId = Annotated[str, StringConstraints(pattern=rf"^(0|[1-9][0-9]{{0,{RECOMMEND.max_id_chars - 1}}})$")]
Stars = Annotated[float, Field(ge=RECOMMEND.rating_min, le=RECOMMEND.rating_max, strict=True)]
K_FIELD = Field(RECOMMEND.k, ge=1, le=RECOMMEND.max_k, description="recommendations to return")
GENRE_FIELD = Field(None, description="only films of this genre")


class RatingsRequest(BaseModel):
    """Films for a new user, from their ratings."""

    model_config = ConfigDict(extra="forbid")
    ratings: dict[MovieId, Stars] = Field(
        min_length=1,
        max_length=RECOMMEND.max_ratings,
        description="a new user's ratings, {movie id: 1–5 stars}",
        examples=[{"50": 5, "172": 4.5}],
        json_schema_extra={"additionalProperties": False},  # every key is a movie id
    )
    k: WholeNumber = K_FIELD
    genre: Genre | None = GENRE_FIELD


class UserRequest(BaseModel):
    """Films for a MovieLens-100K user (an unknown user is a 404)."""

    model_config = ConfigDict(extra="forbid")
    user: WholeNumber = Field(description="a MovieLens-100K user id", examples=[42])
    k: WholeNumber = K_FIELD
    genre: Genre | None = GENRE_FIELD


# exactly one of 'ratings' or 'user': each model forbids the other's field
RecommendRequest = RatingsRequest | UserRequest


def as_service_request(request: RatingsRequest | UserRequest) -> dict[str, Any]:
    return request.model_dump()


class RecommendBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[RecommendRequest] = Field(max_length=RECOMMEND.max_batch)
