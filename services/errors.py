"""Typed errors for bad user input.

Every service raises a subclass of `InputError` for input it cannot handle; its message is written
for the person who sent the input and is shown as is in the page and the CLI output. Anything else
that escapes a service is a bug.
"""


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
