"""pages.ui.cached: a service's bound method answered once per distinct input, signature kept."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from pages.ui import _cached_result, cached


class CountingService:
    task = "vision"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def predict(self, data: bytes, *, top_k: int = 3, explain: bool = False) -> dict[str, Any]:
        self.calls.append(("predict", (data, top_k, explain)))
        return {"label": data.decode(), "top_k": top_k, "explain": explain}

    def self_test(self) -> dict[str, Any]:
        self.calls.append(("self_test", ()))
        return {"label": "self"}


@pytest.fixture
def service() -> CountingService:
    _cached_result.clear()
    return CountingService()


def test_the_wrapper_keeps_the_methods_signature_and_name(service):
    wrapped = cached(service.predict)
    assert inspect.signature(wrapped) == inspect.signature(service.predict)
    assert wrapped.__name__ == "predict"


def test_a_repeated_input_is_answered_from_the_cache_and_a_new_one_is_not(service):
    first = cached(service.predict)(b"7", explain=True)
    again = cached(service.predict)(b"7", explain=True)
    assert first == again == {"label": "7", "top_k": 3, "explain": True}
    assert len(service.calls) == 1
    cached(service.predict)(b"7")  # other options: another entry
    cached(service.predict)(b"8", explain=True)  # other input: another entry
    assert [args for _, args in service.calls] == [(b"7", 3, True), (b"7", 3, False), (b"8", 3, True)]


def test_methods_of_one_service_do_not_share_entries(service):
    cached(service.predict)(b"1")
    cached(service.self_test)()
    assert [name for name, _ in service.calls] == ["predict", "self_test"]


def test_only_a_services_bound_method_is_accepted():
    with pytest.raises(TypeError, match="bound method"):
        cached(len)
