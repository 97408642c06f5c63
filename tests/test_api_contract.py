"""The task table (services/tasks.py) against every layer that reads it: the contract cannot drift.

For each task: the service class, the HTTP client and the Ray whitelist offer exactly the typed
Protocol's methods with the same options and defaults; the API serves the routes the table names and
no /v1 route belongs to no task; preload, model cards and the `models` CLI cover the same tasks.
"""

from __future__ import annotations

import inspect

import pytest

from services import preload
from services.http_client import REMOTE_SERVICES
from services.model_cards import load_model_cards
from services.tasks import LOAD_ORDER, TASK_NAMES, TASKS


def _parameters(function) -> dict[str, tuple[str, object]]:
    """name → (kind, default) of a method's parameters after self."""
    signature = inspect.signature(function)
    return {
        name: (parameter.kind.name, parameter.default)
        for name, parameter in list(signature.parameters.items())[1:]
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }


@pytest.mark.parametrize("task", TASK_NAMES)
def test_the_service_offers_every_contract_method_with_the_same_options_and_defaults(task):
    spec = TASKS[task]
    service_type = spec.service_type()
    assert service_type.task == task
    assert spec.methods, "a task without public methods"
    for method in spec.methods:
        contract = _parameters(getattr(spec.protocol, method))
        offered = _parameters(getattr(service_type, method))
        # the service may take more options (e.g. the recommender's strict_ids), never fewer or others
        assert {name: offered.get(name) for name in contract} == contract, f"{task}.{method}"
        extra = {name for name, (_, default) in offered.items() if name not in contract}
        assert all(offered[name][1] is not inspect.Parameter.empty for name in extra), f"{task}.{method}"


@pytest.mark.parametrize("task", TASK_NAMES)
def test_the_http_client_mirrors_the_contract_exactly(task):
    spec = TASKS[task]
    remote = REMOTE_SERVICES[task]
    public = {name for name in dir(remote) if not name.startswith("_") and callable(getattr(remote, name))}
    assert public == set(spec.methods), task
    for method in spec.methods:
        assert _parameters(getattr(remote, method)) == _parameters(getattr(spec.protocol, method)), method


def test_every_layer_lists_the_same_tasks():
    assert set(REMOTE_SERVICES) == set(TASKS)
    assert sorted(LOAD_ORDER) == sorted(TASKS)
    assert set(preload._status) == set(TASKS)
    assert {card.task for card in load_model_cards()} == set(TASKS)
    from bench.load import BATCHED
    from bench.tasks import BENCHES
    from models.__main__ import TASKS as CLI_TASKS
    from models.report import ROWS

    assert tuple(CLI_TASKS) == TASK_NAMES
    assert tuple(BENCHES) == TASK_NAMES
    assert set(BATCHED) == {name for name, spec in TASKS.items() if spec.batched}
    assert sorted(row.task for row in ROWS) == sorted(TASKS)


def test_models_all_runs_every_task_on_its_own_dataset_folder(monkeypatch, tmp_path):
    import subprocess

    from models import __main__ as models_cli

    commands = []

    def record(command, check):
        commands.append(command[1:])
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(models_cli.subprocess, "run", record)
    assert models_cli.main(["evaluate", "all", "--data-dir", str(tmp_path)]) == 0
    assert commands == [
        ["-m", "models", "evaluate", task, "--data-dir", str(tmp_path / TASKS[task].data_dir)]
        for task in LOAD_ORDER
    ]
    assert models_cli.main(["evaluate", "all"]) == 2  # the data root is required


def test_the_api_serves_each_tasks_routes_and_no_route_without_a_task():
    from serve import api

    served = {path for path in api.app.openapi()["paths"] if path.startswith("/v1/")}
    named = {path for spec in TASKS.values() for path in spec.routes}
    assert named <= served, named - served
    shared = {path for path in served if path.startswith("/v1/models")}
    assert served - shared == named, (served - shared) ^ named


class _RecordingHandle:
    """A deployment handle that answers each call with what it received."""

    def __init__(self) -> None:
        self.received = []

    def __getattr__(self, endpoint):
        handle = self

        class Endpoint:
            @staticmethod
            def remote(*payload):
                handle.received.append((endpoint, payload))

                class Reply:
                    @staticmethod
                    def result(timeout_s):
                        return {"result": (endpoint, payload)}

                return Reply()

        return Endpoint()


def test_the_ray_deployments_are_the_tables():
    pytest.importorskip("ray", reason="ray[serve] is not installed")
    from serve import ray_app

    assert set(ray_app.TASK_DEPLOYMENTS) == set(TASKS)
    assert set(ray_app.BATCHED_TASKS) == {name for name, spec in TASKS.items() if spec.batched}


@pytest.mark.parametrize("task", TASK_NAMES)
def test_the_ray_proxy_forwards_every_contract_method_and_nothing_else(task):
    pytest.importorskip("ray", reason="ray[serve] is not installed")
    from serve import ray_app

    spec = TASKS[task]
    handle = _RecordingHandle()
    proxy = ray_app.DeploymentProxy(task, handle=handle)
    for method in spec.methods:
        answer = getattr(proxy, method)(["input"], explain=True)
        if method == "predict_batch" and spec.batched:  # merged with other callers' batches
            assert answer == ("batched_predict", ((["input"], {"explain": True}),)), method
        else:
            assert answer == ("call", (method, (["input"],), {"explain": True})), method
    assert len(handle.received) == len(spec.methods)
    for name in ("warm_up", "preprocess", "postprocess", "_run", "check_batch_size"):
        with pytest.raises(AttributeError):
            getattr(proxy, name)  # public on the service, perhaps, but not part of the contract


# ---- per-stage options (services/base.py) --------------------------------------------------------
class _Stages:
    """A service whose stages record the options each one received."""

    @staticmethod
    def build():
        from services.base import Service

        class Recording(Service):
            task = "vision"  # borrows vision's limits (top_k 1..10, batch 64)
            seen: list

            def preprocess(self, item, *, strict: bool = False):
                self.seen.append(("preprocess", {"strict": strict}))
                return item

            def _forward(self, prepared, explain: bool = False):
                self.seen.append(("forward", {"explain": explain}))
                return prepared

            def postprocess(self, prepared, output, top_k: int = 3, explain: bool = False):
                self.seen.append(("postprocess", {"top_k": top_k, "explain": explain}))
                return {"label": str(output), "confidence": 1.0, "top_k": [], "low_confidence": False}

            def info(self):
                return {}

            def self_test(self):
                return {}

        service = Recording()
        service.seen = []
        return service


def test_each_option_reaches_only_the_stages_that_name_it():
    from services.errors import InputError, InputTooLargeError

    service = _Stages.build()
    service.predict_batch([1, 2], top_k=2, explain=True, strict=True)
    assert ("preprocess", {"strict": True}) in service.seen
    assert ("forward", {"explain": True}) in service.seen
    assert ("postprocess", {"top_k": 2, "explain": True}) in service.seen
    with pytest.raises(InputError, match="no option 'colour'"):
        service.predict(1, colour="red")
    with pytest.raises(InputError, match="top_k must be from 1 to 10"):
        service.predict(1, top_k=11)
    with pytest.raises(InputTooLargeError):
        service.predict_batch(list(range(65)))


def test_a_batch_with_explanations_answers_as_one_by_one_calls():
    from services import registry
    from tests.test_api import comparable, image_bytes

    vision = registry.load("vision")
    items = [image_bytes(), b"not an image", image_bytes("print_5.jpg")]
    batch = vision.predict_batch(items, top_k=2, explain=True)
    assert "error" in batch[1]
    for item, result in zip(items[::2], batch[::2], strict=True):
        assert comparable(result) == comparable(vision.predict(item, top_k=2, explain=True))
        assert "saliency" in result["digits"][0]
