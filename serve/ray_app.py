"""Ray Serve: the REST API of serve/api.py on a Ray cluster, one deployment per task.

    make serve          # serve/cluster.py: ray start --head (unless RAY_ADDRESS is set), serve deploy
    make serve-stop     # serve shutdown, and ray stop if `make serve` started the cluster

Each task runs in its own deployment (`vision`, `speech`, `nlp`, `recommend`) whose replicas build the
same service the Streamlit pages and the REST API use (`registry.load(task)`), so every model loads
once per replica, in `__init__`, before Serve routes traffic to it. Vision, speech and sentiment go
through `@serve.batch`: requests that arrive together, from any number of HTTP clients, are merged
into one `predict_batch` call, i.e. one forward pass. The batch sizes actually formed are recorded per
replica and answered, summed over all replicas, at `GET /v1/stats`.

The ingress (`api`) is the FastAPI app of serve/api.py, unchanged: its route handlers get the task
services from `api.set_service_provider`, which here hands out `DeploymentProxy` objects with the
services' public methods; each call becomes a request to the task's deployment through a handle. So
the same routes, results and error shapes answer on Ray as in-process. A replica that dies while it
answers (a crash, a lost node) is answered with 503 `ServiceUnavailable`, which a client may retry;
Serve starts a replacement.

serve/config.yaml sets replicas (or autoscaling bounds), CPUs/GPUs per replica and the batching
parameters; `build_application(options)` applies the same settings for tests and `make loadtest`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.handle import DeploymentHandle

from serve import api
from serve.cluster import APP_NAME, CONFIG_PATH, REPO_ROOT
from services import registry
from services.errors import InputError, error_entry, raise_error_entry
from services.tasks import TASKS, TaskSpec

logger = logging.getLogger(__name__)

INGRESS_NAME = "api"
BATCHED_TASKS = tuple(name for name, spec in TASKS.items() if spec.batched)
CALL_TIMEOUT_S = 120.0  # a handle call that takes longer has lost its replica; fail instead of hanging
STATUS_TIMEOUT_S = 10.0
DEFAULT_BATCH = {"max_batch_size": 16, "batch_wait_timeout_s": 0.005}


# ---- task deployments --------------------------------------------------------------------------
def _replica_facts(task: str) -> dict[str, Any]:
    context = ray.get_runtime_context()
    return {
        "task": task,
        "replica": serve.get_replica_context().replica_id.unique_id,
        "node_id": context.get_node_id(),
        "actor_id": context.get_actor_id(),
        "pid": os.getpid(),
    }


class TaskReplica:
    """One replica of a task: the in-process service, loaded once, answering handle calls."""

    task: str

    def __init__(self) -> None:
        started = time.perf_counter()
        self.service = registry.load(self.task)
        logger.info("%s replica loaded its model in %.1f s", self.task, time.perf_counter() - started)

    def describe(self) -> dict[str, Any]:
        return _replica_facts(self.task) | {"max_batch": getattr(self.service, "max_batch", None)}

    def call(self, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Run one public method; an InputError travels back as data so its type and message survive."""
        if method not in TASKS[self.task].methods:  # the typed contract's methods, nothing else
            raise AttributeError(f"{self.task} has no public method {method!r}")
        try:
            return {"result": getattr(self.service, method)(*args, **kwargs)}
        except InputError as err:
            return error_entry(err)


class BatchedTaskReplica(TaskReplica):
    """A task whose `predict_batch` calls, from many requests at once, merge into one forward pass.

    `batched_predict` receives one `(items, options)` pair per handle call; pairs with the same
    options are concatenated, run in chunks of the service's `max_batch`, and split back per call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forward_sizes: collections.Counter[int] = collections.Counter()
        self.calls_per_batch: collections.Counter[int] = collections.Counter()
        self.reconfigure(DEFAULT_BATCH)

    def reconfigure(self, user_config: Mapping[str, Any]) -> None:
        # user_config in serve/config.yaml: changed batching takes effect without restarting replicas
        settings = DEFAULT_BATCH | dict(user_config or {})
        self.batched_predict.set_max_batch_size(int(settings["max_batch_size"]))
        self.batched_predict.set_batch_wait_timeout_s(float(settings["batch_wait_timeout_s"]))

    @serve.batch(max_batch_size=DEFAULT_BATCH["max_batch_size"], batch_wait_timeout_s=0.005)
    async def batched_predict(self, calls: list[tuple[list[Any], dict[str, Any]]]) -> list[dict[str, Any]]:
        self.calls_per_batch[len(calls)] += 1
        replies: list[dict[str, Any]] = [{"result": []} for _ in calls]
        groups: dict[str, list[int]] = collections.defaultdict(list)
        for index, (items, options) in enumerate(calls):
            try:  # each call's own limits (batch size, explanations), before calls are merged
                self.service.check_batch_size(len(items), bool(options.get("explain")))
            except InputError as err:
                replies[index] = error_entry(err)
                continue
            groups[json.dumps(options, sort_keys=True, default=str)].append(index)
        for indices in groups.values():
            options = calls[indices[0]][1]
            items = [item for index in indices for item in calls[index][0]]
            owners = [index for index in indices for _ in calls[index][0]]
            results: list[dict[str, Any]] = []
            chunk_size = getattr(self.service, "max_batch", None) or max(len(items), 1)
            if options.get("explain"):  # merged calls may each be within the explanation limit
                chunk_size = min(chunk_size, getattr(TASKS[self.task].limits, "max_explained", chunk_size))
            try:
                for start in range(0, len(items), chunk_size):
                    chunk = items[start : start + chunk_size]
                    self.forward_sizes[len(chunk)] += 1
                    # in a thread: the event loop keeps queueing the next requests during the forward
                    results.extend(await asyncio.to_thread(self.service.predict_batch, chunk, **options))
            except InputError as err:  # a refusal of the whole call (e.g. an option out of range)
                for index in indices:
                    replies[index] = error_entry(err)
                continue
            for owner, result in zip(owners, results, strict=True):
                replies[owner]["result"].append(result)
        return replies

    def batch_stats(self) -> dict[str, Any]:
        return _replica_facts(self.task) | {
            "forward_sizes": dict(self.forward_sizes),
            "calls_per_batch": dict(self.calls_per_batch),
            "max_batch_size": self.batched_predict._get_max_batch_size(),
            "batch_wait_timeout_s": self.batched_predict._get_batch_wait_timeout_s(),
        }


def _task_deployment(spec: TaskSpec) -> serve.Deployment:
    """One deployment per row of the task table; batched tasks merge concurrent calls."""
    base = BatchedTaskReplica if spec.batched else TaskReplica
    replica = type(f"{spec.name.capitalize()}Replica", (base,), {"task": spec.name, "__module__": __name__})
    globals()[replica.__name__] = replica  # importable by name, as Ray's workers expect a class to be
    return serve.deployment(
        name=spec.name,
        max_ongoing_requests=64 if spec.batched else 32,  # serve/config.yaml may override
        ray_actor_options={"num_cpus": 0.4},
    )(replica)


TASK_DEPLOYMENTS = {name: _task_deployment(spec) for name, spec in TASKS.items()}


# ---- the ingress: serve/api.py's routes over the task deployments -------------------------------
def _result(reply: Mapping[str, Any]) -> Any:
    raise_error_entry(reply)
    return reply["result"]


class DeploymentProxy:
    """The public methods of one task's service, each answered by the task's deployment."""

    def __init__(self, task: str, handle: DeploymentHandle) -> None:
        self.task = task
        self._handle = handle

    def __repr__(self) -> str:
        return f"<DeploymentProxy {self.task}>"

    def predict_batch(self, items: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        if self.task in BATCHED_TASKS:
            reply = self._handle.batched_predict.remote((list(items), options)).result(
                timeout_s=CALL_TIMEOUT_S
            )
            return _result(reply)
        return self._call("predict_batch", (list(items),), options)

    def _call(self, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        reply = self._handle.call.remote(method, tuple(args), dict(kwargs)).result(timeout_s=CALL_TIMEOUT_S)
        return _result(reply)

    def __getattr__(self, name: str) -> Any:
        if name in TASKS[self.task].methods:
            return lambda *args, **kwargs: self._call(name, args, kwargs)
        raise AttributeError(f"{self.task} has no public method {name!r}")


def merge_batch_stats(replica_stats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-replica counters (JSON turns their int keys into strings) summed into one histogram."""
    forward_sizes: collections.Counter[int] = collections.Counter()
    calls_per_batch: collections.Counter[int] = collections.Counter()
    for stats in replica_stats:
        forward_sizes.update({int(size): count for size, count in stats.get("forward_sizes", {}).items()})
        calls_per_batch.update({int(size): count for size, count in stats.get("calls_per_batch", {}).items()})
    forwards = sum(forward_sizes.values())
    items = sum(size * count for size, count in forward_sizes.items())
    return {
        "forwards": forwards,
        "items": items,
        "mean_forward_size": round(items / forwards, 2) if forwards else None,
        "max_forward_size": max(forward_sizes) if forwards else None,
        "forward_sizes": {str(size): forward_sizes[size] for size in sorted(forward_sizes)},
        "calls_per_batch": {str(size): calls_per_batch[size] for size in sorted(calls_per_batch)},
    }


async def _replica_gone(_: Request, err: Exception) -> JSONResponse:
    logger.warning("a replica was lost while answering: %s", type(err).__name__)
    return JSONResponse(
        {
            "error": {
                "type": "ServiceUnavailable",
                "message": "the model replica answering this request stopped; Serve is replacing it, "
                "please retry",
            }
        },
        status_code=503,
        headers={"Retry-After": "1"},
    )


@serve.deployment(name=INGRESS_NAME, max_ongoing_requests=128, ray_actor_options={"num_cpus": 0.2})
@serve.ingress()
class ApiIngress:
    """serve/api.py's FastAPI app; its routes reach the models through the task deployments."""

    def __init__(self, **handles: DeploymentHandle) -> None:
        self.handles = handles
        self.proxies = {task: DeploymentProxy(task, handle) for task, handle in handles.items()}
        # One ingress per process (a replica is a Ray actor), so the module-level provider is ours.
        api.set_service_provider(self.proxies.__getitem__, self.model_status)

    def model_status(self, task: str) -> dict[str, Any]:
        try:
            facts = self.handles[task].describe.remote().result(timeout_s=STATUS_TIMEOUT_S)
        except Exception as err:  # noqa: BLE001 - /health must answer even when a deployment does not
            return {"state": "failed", "error": f"{type(err).__name__}: {err}"[:300]}
        return {"state": "ready", "served_by": "ray-serve", "replica": facts["replica"]}

    def stats(self) -> dict[str, Any]:
        tasks: dict[str, Any] = {}
        for task, handle in self.handles.items():
            method = "batch_stats" if task in BATCHED_TASKS else "describe"
            # a replica that just died (and is being replaced) answers with an exception: skip it
            answers = handle.broadcast(method).results(timeout_s=STATUS_TIMEOUT_S, return_exceptions=True)
            replicas = [answer for answer in answers if isinstance(answer, dict)]
            tasks[task] = {"replicas": replicas, "unreachable_replicas": len(answers) - len(replicas)}
            if task in BATCHED_TASKS:
                tasks[task] |= merge_batch_stats(replicas)
        return {"backend": "ray-serve", "tasks": tasks}

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = api.create_app()

        def stats():  # no return annotation: FastAPI cannot resolve a postponed one on a closure
            return api.respond(self.stats())

        app.add_api_route(
            "/v1/stats",
            stats,
            methods=["GET"],
            response_model=None,
            responses=api.COMMON_ERRORS,
            dependencies=api.STRICT_QUERY,
            tags=["serving"],
            summary="Replicas per task, the nodes they run on, and the batch sizes each batched task formed",
        )
        app.add_exception_handler(RayActorError, _replica_gone)
        return app


def deployment_options(config_path: Path = CONFIG_PATH) -> dict[str, dict[str, Any]]:
    """Each deployment's settings from serve/config.yaml, keyed by deployment name."""
    config = yaml.safe_load(config_path.read_text())
    (application,) = [entry for entry in config["applications"] if entry["name"] == APP_NAME]
    return {
        entry["name"]: {k: v for k, v in entry.items() if k != "name"} for entry in application["deployments"]
    }


def build_application(options: Mapping[str, Mapping[str, Any]] | None = None) -> serve.Application:
    """The app with per-deployment `.options(...)` (as in serve/config.yaml) applied."""
    options = options or {}
    handles = {
        task: deployment.options(**options.get(task, {})).bind()
        for task, deployment in TASK_DEPLOYMENTS.items()
    }
    return ApiIngress.options(**options.get(INGRESS_NAME, {})).bind(**handles)


app = build_application()  # `serve deploy serve/config.yaml` imports this; the YAML sets the options


__all__ = [
    "APP_NAME",
    "REPO_ROOT",
    "app",
    "build_application",
    "deployment_options",
    "merge_batch_stats",
    "DeploymentProxy",
]
