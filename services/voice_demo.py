"""The Speech page's live command demo: what each recognised word does, as a pure state machine.

A marker sits on a small grid: "up", "down", "left" and "right" move it one cell, and a number
right after a direction moves it that many cells ("right 3"). "stop" freezes it and "go" lets it move
again. "on" and "off" switch a lamp. "yes" and "no" answer a question about the grid, which the demo
checks and then replaces with the next one. Everything is immutable, so the page keeps one
`DemoState` in its session and replaces it with `apply_words(state, words)`.

No Streamlit here: the page only draws the state and the effects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GRID_SIZE = 5
DIRECTIONS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}
MAX_STEPS = 9  # the largest number a single digit can say
HISTORY_LENGTH = 8


def _question_truth(state: DemoState, question: int) -> bool:
    x, y = state.position
    facts = (
        state.lamp_on,  # "Is the lamp on?"
        y < GRID_SIZE // 2,  # "Is the marker in the top half?"
        x > GRID_SIZE // 2,  # "Is the marker right of the centre?"
        state.moving,  # "Can the marker move?"
        (x, y) == (GRID_SIZE // 2, GRID_SIZE // 2),  # "Is the marker in the centre?"
    )
    return facts[question % len(facts)]


QUESTIONS = (
    "Is the lamp on?",
    "Is the marker in the top half of the grid?",
    "Is the marker right of the centre column?",
    "Can the marker move (has it been told “go” rather than “stop”)?",
    "Is the marker in the centre cell?",
)


@dataclass(frozen=True)
class DemoState:
    position: tuple[int, int] = (GRID_SIZE // 2, GRID_SIZE // 2)  # (column, row); row 0 is the top
    moving: bool = True
    lamp_on: bool = False
    question: int = 0  # index into QUESTIONS
    score: tuple[int, int] = (0, 0)  # (right answers, questions answered)
    history: tuple[str, ...] = ()  # the latest effects, newest last

    @property
    def question_text(self) -> str:
        return QUESTIONS[self.question % len(QUESTIONS)]


def _move(state: DemoState, direction: str, steps: int) -> tuple[DemoState, str]:
    if not state.moving:
        return state, f"“{direction}”: the marker is stopped — say “go” first"
    dx, dy = DIRECTIONS[direction]
    x, y = state.position
    new_x = min(GRID_SIZE - 1, max(0, x + dx * steps))
    new_y = min(GRID_SIZE - 1, max(0, y + dy * steps))
    moved = abs(new_x - x) + abs(new_y - y)
    what = f"“{direction}”" + (f" × {steps}" if steps > 1 else "")
    if moved == 0:
        return state, f"{what}: already at the edge"
    effect = f"{what}: moved {moved} cell{'s' if moved > 1 else ''}"
    if moved < steps:
        effect += " (stopped at the edge)"
    return replace(state, position=(new_x, new_y)), effect


def _apply(state: DemoState, word: str, steps: int = 1) -> tuple[DemoState, str]:
    if word in DIRECTIONS:
        return _move(state, word, steps)
    if word == "go":
        return replace(
            state, moving=True
        ), "“go”: the marker can move" if not state.moving else "“go”: already moving"
    if word == "stop":
        return replace(state, moving=False), "“stop”: the marker is frozen"
    if word in ("on", "off"):
        lamp_on = word == "on"
        same = lamp_on == state.lamp_on
        return replace(
            state, lamp_on=lamp_on
        ), f"“{word}”: the lamp {'was already' if same else 'is now'} {word}"
    if word in ("yes", "no"):
        truth = _question_truth(state, state.question)
        right = (word == "yes") == truth
        good, asked = state.score
        verdict = "right" if right else f"not quite — the answer was “{'yes' if truth else 'no'}”"
        return (
            replace(state, question=state.question + 1, score=(good + int(right), asked + 1)),
            f"“{word}” to “{state.question_text}”: {verdict}",
        )
    return state, f"“{word}”: a number only moves the marker after a direction (“right 3”)"


def apply_words(state: DemoState, words: list[str]) -> tuple[DemoState, list[str]]:
    """Apply the recognised words in order; returns the new state and one effect line per action.

    A digit right after a direction is that direction's number of cells ("left 3"); the service
    joins a run of digits into one number, so "2 1" after a direction counts as 21 (kept to 9).
    """
    effects: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        steps = 1
        if word in DIRECTIONS and index + 1 < len(words) and words[index + 1].isdigit():
            steps = max(1, min(MAX_STEPS, int(words[index + 1])))
            index += 1
        state, effect = _apply(state, word, steps)
        effects.append(effect)
        index += 1
    history = (*state.history, *effects)[-HISTORY_LENGTH:]
    return replace(state, history=history), effects


def words_of(result: dict) -> list[str]:
    """The words of a speech-service result in the order spoken, a run of digits as one number
    (the service's own reading of it)."""
    label = result.get("label")
    return label.split() if label else []


def grid_rows(state: DemoState, marker: str = "●", empty: str = "·") -> list[str]:
    """The grid as text rows (for the page and for tests)."""
    rows = []
    for y in range(GRID_SIZE):
        rows.append(" ".join(marker if (x, y) == state.position else empty for x in range(GRID_SIZE)))
    return rows
