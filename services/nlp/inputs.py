"""Input checks and file parsing for the language service: what text is accepted, and how it is cut.

Everything here is plain Python (no torch): the pages use `read_batch_file` and the limits directly,
and every public service call runs its text through `validate_text` first. Sizes are checked before
anything else, so a huge input is refused in constant time.
"""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from services import limits
from services.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    NothingFoundError,
    UnsupportedFormatError,
)

# ---- documented limits -------------------------------------------------------------------------
MAX_CHARS = limits.TEXT.max_chars  # longest text accepted by sentiment, similarity and summary (characters)
MAX_UPLOAD_BYTES = limits.TEXT.max_upload_bytes  # batch file (CSV/TXT) size limit
MAX_BATCH_TEXTS = limits.TEXT.max_batch  # rows in one batch file
MAX_SUMMARY_SENTENCES = limits.TEXT.max_summary_sentences  # sentences considered by the summariser
MAX_NONPRINTABLE_SHARE = 0.05  # more control/replacement characters than this -> binary junk
# The command line scores whole labelled test files (11,541 airline tweets), so its limits are wider
# than an upload's; the texts still go through the same checks one by one.
CLI_MAX_FILE_BYTES = 20_000_000
CLI_MAX_TEXTS = 100_000

TEXT_COLUMNS = ("text", "sentence", "review", "content", "comment")

_ENGLISH_HINTS = frozenset(  # common English function words: real English prose is ~40 % these
    "the a an and or but is are was were be been being it its this that these those i me my you your he him his "
    "she her we our they them their of to in on for with not no at by from as so very too just have has had do "
    "does did will would can could should there what which who when where how all more most some any one if then "
    "than also only about into over after up out".split()
)
_FOREIGN_HINTS = frozenset(  # frequent function words of Spanish, French, German, Italian, Portuguese, Dutch
    "de la el los las y del que en por con muy una un es le les et est une il elle pas des du au sur pour avec "
    "der die das und ist nicht mit für ein eine sehr auch aber war ich sie wir che di è il della non per sono "
    "um uma não os como mais foi het een niet ook van".split()
)
_TAG_RE = re.compile(r"<[^<>]{0,500}>")
_SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|\n\s*")


# ---- validation -----------------------------------------------------------------------------------
def validate_text(text: Any) -> tuple[str, list[str]]:
    """Check one text; returns (text to model, notes). Raises an InputError for unusable input.

    Size is checked first, so a huge input is refused in constant time.
    """
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_CHARS * 4:
            raise InputTooLargeError(f"The text is too long: the limit is {MAX_CHARS:,} characters.")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptInputError("This does not look like text (it is not valid UTF-8).") from err
    if not isinstance(text, str):
        raise UnsupportedFormatError("Please send text (a string).")
    if len(text) > MAX_CHARS:
        raise InputTooLargeError(
            f"The text has {len(text):,} characters; the limit is {MAX_CHARS:,}. Please shorten it or split it."
        )
    if not text.strip():
        raise EmptyInputError("Please enter some text: the input is empty.")
    junk = sum(
        1
        for ch in text
        if ch == "\ufffd" or (unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\n\r\t")
    )
    if junk / len(text) > MAX_NONPRINTABLE_SHARE:
        raise CorruptInputError(
            "This looks like binary data, not text "
            f"({junk / len(text):.0%} of the characters are control or unreadable characters)."
        )
    notes: list[str] = []
    if _TAG_RE.search(text):
        stripped = html.unescape(_TAG_RE.sub(" ", text))
        if not stripped.strip():
            raise NothingFoundError("The input holds only markup tags and no text to read.")
        notes.append("HTML/XML tags were removed before reading the text.")
        text = stripped
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        raise NothingFoundError(
            "There are no words to read here (only emoji, digits, symbols or punctuation). "
            "The model reads English words; please type a sentence."
        )
    non_latin = sum(1 for ch in letters if ord(ch) > 0x24F)
    words = re.findall(r"[^\W\d_]+", text.lower())
    if non_latin / len(letters) > 0.3:
        notes.append(
            "This text looks mostly non-English (non-Latin script). The model was trained on English reviews "
            "only, so the answer below is a guess."
        )
    elif words and (
        sum(word in _FOREIGN_HINTS for word in words)
        >= max(2, sum(word in _ENGLISH_HINTS for word in words) + 1)
        or (len(words) >= 12 and sum(word in _ENGLISH_HINTS for word in words) / len(words) < 0.1)
    ):
        notes.append(
            "This text may not be English. The model was trained on English reviews only, "
            "so treat the answer with caution."
        )
    return text, notes


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of `text`, whitespace excluded, verbatim order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(text):
        end = match.end()
        piece = text[start:end]
        if piece.strip():
            left = start + (len(piece) - len(piece.lstrip()))
            right = start + len(piece.rstrip())
            spans.append((left, right))
        start = end
    if text[start:].strip():
        piece = text[start:]
        spans.append((start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip())))
    return spans


def read_batch_file(
    data: bytes,
    filename: str = "texts.txt",
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_texts: int = MAX_BATCH_TEXTS,
) -> list[str]:
    """Texts from an uploaded CSV (a text column) or TXT (one text per line). Size checked first."""
    return read_labelled_file(data, filename, max_bytes, max_texts).texts


@dataclass(frozen=True)
class TextFile:
    """The texts of a batch file, and their 0/1 labels when the file has a `label` column."""

    texts: list[str]
    labels: list[int] | None = None


def read_labelled_file(
    data: bytes,
    filename: str = "texts.txt",
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_texts: int = MAX_BATCH_TEXTS,
) -> TextFile:
    """A batch file, CSV, TSV (by extension) or TXT; a `label` column of 0/1 (or negative/positive)
    is kept so the command line can score a labelled test file."""
    if len(data) > max_bytes:
        raise InputTooLargeError(
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB."
        )
    if not data.strip():
        raise EmptyInputError("The file is empty.")
    if b"\x00" in data[:4096]:
        raise UnsupportedFormatError("This file looks binary. Please upload a UTF-8 .csv or .txt file.")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorruptInputError(
            "The file is not valid UTF-8 text. Please save it as UTF-8 and try again."
        ) from err
    labels: list[str] | None = None
    if filename.lower().endswith((".csv", ".tsv")):
        try:
            rows = list(_table_reader(content, tab_separated=filename.lower().endswith(".tsv")))
        except csv.Error as err:
            raise CorruptInputError(f"The file could not be read as a table: {err}.") from err
        rows = [row for row in rows if any(cell.strip() for cell in row)]
        if not rows:
            raise EmptyInputError("The file has no rows.")
        header = [cell.strip().lower() for cell in rows[0]]
        column = next((header.index(name) for name in TEXT_COLUMNS if name in header), None)
        if column is None:
            if len(header) == 1:  # a single unnamed column: every row is a text
                column, body = 0, rows
            else:
                raise UnsupportedFormatError(
                    f"The file needs a column named one of {', '.join(TEXT_COLUMNS)} "
                    f"(found: {', '.join(header[:8])})."
                )
        else:
            body = rows[1:]
        body = [row for row in body if column < len(row) and row[column].strip()]
        texts = [row[column] for row in body]
        if "label" in header and column != header.index("label"):
            at = header.index("label")
            labels = [row[at].strip().lower() if at < len(row) else "" for row in body]
    else:
        texts = content.splitlines()
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise EmptyInputError("The file holds no texts.")
    if len(texts) > max_texts:
        raise InputTooLargeError(f"The file has {len(texts):,} texts; the limit is {max_texts:,} per batch.")
    return TextFile(texts, _label_ids(labels) if labels is not None else None)


def _table_reader(content: str, tab_separated: bool):
    """CSV as Excel writes it; TSV as the data sets are written: a quote is just a character there
    (a review may open with one), so quoting is off."""
    if tab_separated:
        return csv.reader(io.StringIO(content), delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(io.StringIO(content))


_LABEL_IDS = {"0": 0, "1": 1, "negative": 0, "positive": 1}


def _label_ids(labels: list[str]) -> list[int] | None:
    """0/1 labels, or None (the column is ignored) when any value is something else."""
    if not labels or any(label not in _LABEL_IDS for label in labels):
        return None
    return [_LABEL_IDS[label] for label in labels]


# ---- opinion units: sentences, or the clauses of a single sentence ------------------------------------
MAX_READINGS = 40  # sentences (or clauses) read one by one; a longer text gets readings for the first 40
# Words that turn a sentence from one opinion to another: "great food but rude staff".
_CONTRAST_RE = re.compile(
    r"[,;]?\s+\b(?:but|however|although|though|whereas|while|yet|except)\b[,]?\s+", re.I
)
# A sentence that opens with a concession puts the other opinion after its first comma:
# "Although the room was tiny, the staff were lovely."
_CONCESSION_RE = re.compile(r"^(?:although|though|even though|while|despite|whilst)\b[^,;]*[,;]\s*", re.I)
_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_DETERMINERS = frozenset("a an the this that these those my our your his her its their very so".split())
MAX_LIST_PIECE_WORDS = 5  # "great food, rude staff": a comma list of short verdicts
MAX_LIST_SENTENCE_WORDS = 16


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without surrounding whitespace and separators."""
    while start < end and (text[start].isspace() or text[start] in ",;:-–—"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:-–—"):
        end -= 1
    return start, end


def split_clauses(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the opinion-bearing parts of the sentence text[start:end], or [] when the
    sentence reads as one opinion.

    Three shapes are cut, in this order: a leading concession ("Although X, Y" -> X | Y), a contrastive
    conjunction ("X but Y", "X, however Y" -> X | Y, the conjunction dropped), and a short comma list of
    verdicts ("great food, rude staff" -> each item). Every part must hold at least two words, so a
    comma inside "A gorgeous, moving film" is left alone. A heuristic, not a parser: it is there to show
    the per-part readings, and the whole text is always classified as well.
    """
    end = len(text) if end is None else end
    sentence = text[start:end]

    def keep(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        spans = [_trimmed(text, start + s, start + e) for s, e in spans]
        return spans if len(spans) >= 2 and all(len(_words(text[s:e])) >= 2 for s, e in spans) else []

    concession = _CONCESSION_RE.match(sentence)
    if concession:
        head = sentence[: concession.end()]
        first_word = _WORD_RE.search(head)
        cut = keep(
            [(first_word.end() if first_word else 0, concession.end()), (concession.end(), len(sentence))]
        )
        if cut:
            return cut
    pieces, cursor = [], 0
    for match in _CONTRAST_RE.finditer(sentence):
        pieces.append((cursor, match.start()))
        cursor = match.end()
    if pieces:
        cut = keep([*pieces, (cursor, len(sentence))])
        if cut:
            return cut
    words = _words(sentence)
    if "," in sentence or ";" in sentence:
        parts, cursor = [], 0
        for match in re.finditer(r"[,;]", sentence):
            parts.append((cursor, match.start()))
            cursor = match.end()
        parts.append((cursor, len(sentence)))
        parts = [p for p in parts if sentence[p[0] : p[1]].strip()]
        short_verdicts = all(
            2 <= len(_words(sentence[s:e])) <= MAX_LIST_PIECE_WORDS
            and sum(w not in _DETERMINERS for w in _words(sentence[s:e])) >= 2
            for s, e in parts
        )
        if short_verdicts and len(words) <= MAX_LIST_SENTENCE_WORDS:
            return keep(parts)
    return []


@dataclass(frozen=True)
class OpinionUnits:
    """The parts of a text read one by one: its sentences, or the clauses of its only sentence."""

    kind: str  # "sentence" or "clause"; meaningless when `spans` is empty
    spans: list[tuple[int, int]]
    truncated: int = 0  # units beyond MAX_READINGS that were not read


def opinion_units(text: str) -> OpinionUnits:
    """Sentences when the text has more than one, else the clauses of its sentence (maybe none)."""
    sentences = split_sentences(text)
    if len(sentences) > 1:
        return OpinionUnits("sentence", sentences[:MAX_READINGS], max(0, len(sentences) - MAX_READINGS))
    if sentences:
        return OpinionUnits("clause", split_clauses(text, *sentences[0])[:MAX_READINGS])
    return OpinionUnits("clause", [])
