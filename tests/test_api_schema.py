"""The OpenAPI schema tells the truth: requests generated from it by schemathesis, every check.

Schemathesis (pinned in requirements-dev.txt) builds schema-valid and schema-violating requests for
every operation of serve/api.py's app, sends them through the ASGI app in this process, and runs all
of its checks on each answer: no 5xx, only documented status codes and content types, answers that
match their documented schema, schema-valid requests accepted and schema-violating ones refused.
schemathesis.toml (read here as by `schemathesis run`) lists the statuses allowed beyond the tool's
defaults, with the reason for each. The example count is bounded so the module runs in about a minute.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (requirements-dev.txt)"
)

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402

from serve import api  # noqa: E402

EXAMPLES_PER_OPERATION = 25

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
schema = schemathesis.openapi.from_asgi("/openapi.json", api.create_app())


def test_every_check_runs():
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"positive_data_acceptance", "negative_data_rejection", "response_schema_conformance"} <= names
    assert {"status_code_conformance", "not_a_server_error", "ignored_auth"} <= names


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,  # the models answer in milliseconds to seconds on two shared cores
    suppress_health_check=list(HealthCheck),  # large generated bodies are the point, not a problem
)
def test_the_api_answers_as_its_schema_says(case):
    case.call_and_validate(checks=ALL_CHECKS)


def test_schemathesis_run_turns_off_only_the_generators_own_health_check():
    """`schemathesis run` (against uvicorn and Ray Serve) reads schemathesis.toml. Of Hypothesis' health
    checks it may turn off only `filter_too_much`, which judges the generator, not the API's answers."""
    from pathlib import Path

    from schemathesis.config import SchemathesisConfig

    config = SchemathesisConfig.from_path(Path(api.__file__).resolve().parents[1] / "schemathesis.toml")
    assert [str(check) for check in config.suppress_health_check] == ["filter_too_much"]
