"""The Speech page's command demo state machine (services.voice_demo): pure, no Streamlit."""

from __future__ import annotations

from services.voice_demo import GRID_SIZE, QUESTIONS, DemoState, apply_words, grid_rows, words_of


def test_directions_move_the_marker_and_stop_at_the_edges():
    state, effects = apply_words(DemoState(), ["up", "left"])
    assert state.position == (GRID_SIZE // 2 - 1, GRID_SIZE // 2 - 1)
    assert effects == ["“up”: moved 1 cell", "“left”: moved 1 cell"]
    state, effects = apply_words(state, ["up", "up", "up"])
    assert state.position[1] == 0
    assert effects[-1] == "“up”: already at the edge"


def test_a_number_after_a_direction_moves_that_many_cells():
    state, effects = apply_words(DemoState(), ["right", "3"])
    assert state.position == (GRID_SIZE - 1, GRID_SIZE // 2)
    assert effects == ["“right” × 3: moved 2 cells (stopped at the edge)"]
    state, effects = apply_words(DemoState(), ["7"])
    assert state == replace_history(DemoState(), effects) and "after a direction" in effects[0]


def replace_history(state: DemoState, effects: list[str]) -> DemoState:
    from dataclasses import replace

    return replace(state, history=tuple(effects))


def test_stop_freezes_and_go_releases_the_marker():
    state, effects = apply_words(DemoState(), ["stop", "down", "go", "down"])
    assert state.position == (GRID_SIZE // 2, GRID_SIZE // 2 + 1)
    assert "say “go” first" in effects[1] and state.moving


def test_on_and_off_switch_the_lamp():
    state, _ = apply_words(DemoState(), ["on"])
    assert state.lamp_on
    state, effects = apply_words(state, ["on", "off"])
    assert not state.lamp_on and "already" in effects[0]


def test_yes_and_no_answer_the_question_and_are_checked():
    state = DemoState()
    assert state.question_text == QUESTIONS[0] == "Is the lamp on?"
    state, effects = apply_words(state, ["no"])  # the lamp starts off: "no" is right
    assert state.score == (1, 1) and effects[0].endswith("right")
    assert state.question_text == QUESTIONS[1]
    state, effects = apply_words(state, ["yes"])  # the marker starts in the middle row: not the top half
    assert state.score == (1, 2) and "the answer was “no”" in effects[0]


def test_history_keeps_the_latest_effects_only():
    state = DemoState()
    for _ in range(6):
        state, _ = apply_words(state, ["on", "off"])
    assert len(state.history) == 8 and state.history[-1] == "“off”: the lamp is now off"


def test_words_of_a_service_result_and_the_grid_text():
    assert words_of({"label": "go 42 stop"}) == ["go", "42", "stop"]
    assert words_of({"label": None, "reason": "not a word I know"}) == []
    rows = grid_rows(DemoState())
    assert len(rows) == GRID_SIZE and rows[GRID_SIZE // 2].split()[GRID_SIZE // 2] == "●"
    assert sum(row.count("●") for row in rows) == 1
