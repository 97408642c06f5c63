"""Typed errors for bad user input.

Every service raises a subclass of `InputError` for input it cannot handle; its message is written
for the person who sent the input and is shown as is in the page and the CLI output. Anything else
that escapes a service is a bug.

Across a process or network boundary an error travels as an entry, `{"error": {"type", "message"}}`
(`error_entry`), and becomes the same exception again on the other side (`raise_error_entry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class InputError(ValueError):
    """Input the service cannot handle; `str(err)` is a message fit to show the user."""


class UnsupportedFormatError(InputError):
    """The bytes are not in a format this service can decode."""


class CorruptInputError(InputError):
    """The format was recognised but the content is damaged or truncated."""


class EmptyInputError(InputError):
    """Nothing to work on: zero bytes, empty text, no ratings."""


class InputTooLargeError(InputError):
    """Beyond a documented limit (bytes, pixels, seconds, characters)."""


class NothingFoundError(InputError):
    """Valid input that holds nothing to recognise: a blank image, silence."""


class UnknownIdError(InputError):
    """A user or item id that the model has never seen."""


class NotOnThisMachineError(InputError):
    """Valid input whose answer needs data this machine does not hold (MovieLens' rating files, which
    may not be redistributed): the request is fine, the resource is not here."""


def error_entry(err: InputError) -> dict[str, Any]:
    """The per-item error shape shared by predict_batch, the CLIs and the REST API."""
    return {"error": {"type": type(err).__name__, "message": str(err)}}


def error_class(name: str) -> type[InputError]:
    """The InputError subclass an error entry names; InputError itself for any other name (e.g. the
    API's "InvalidRequest": a body the API refused came from the caller)."""
    found = globals().get(name)
    if isinstance(found, type) and issubclass(found, InputError):
        return found
    return InputError


def raise_error_entry(entry: Mapping[str, Any]) -> None:
    """`{"error": {"type", "message"}}` back into the exception that made it (the one way, for every
    transport); anything else returns."""
    error = entry.get("error") if isinstance(entry, Mapping) else None
    if isinstance(error, Mapping):
        raise error_class(str(error.get("type", "")))(str(error.get("message", "")))
