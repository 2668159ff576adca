"""Schema-driven fuzzing (schemathesis) of both servers, as real processes, with an admin key: whatever a
client sends that the OpenAPI schema allows (and a good deal it does not: schemathesis also sends negative
cases), no answer may be a server error.

Bounded: `LLMFL_FUZZ_EXAMPLES` examples per operation (default 25; a few minutes for both servers). The
counts of requests sent and the statuses seen are printed at the end of the module (`-s` to see them).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from tests.support.accounts import bearer, issue_keys
from tests.support.servers import running_llmfl

EXAMPLES = int(os.environ.get("LLMFL_FUZZ_EXAMPLES", "25"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests every run: a failure found here is found again
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
SEEN: dict[str, Counter[int]] = {"serve": Counter(), "serve-model": Counter()}


@pytest.fixture(scope="module")
def fuzzed_services(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[dict[str, object]]:
    """`llmfl serve` and `llmfl serve-model` on one SQLite database and the tiny model, and an admin key."""
    folder = tmp_path_factory.mktemp("fuzz")
    database_url = f"sqlite:///{folder}/fuzz.db"
    keys = issue_keys(database_url)
    env = {
        "DATABASE_URL": database_url,
        "BASE_MODEL": str(tiny_model),
        "CHECKPOINT_DIR": str(folder / "checkpoints"),
        "EXPORTS_DIR": str(folder / "exports"),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    with (
        running_llmfl(["serve"], folder, env) as service,
        running_llmfl(["serve-model", "--watch-registry", "0"], folder, env) as model_server,
    ):
        yield {
            "serve": (service, schemathesis.openapi.from_url(f"{service}/openapi.json")),
            "serve-model": (model_server, schemathesis.openapi.from_url(f"{model_server}/openapi.json")),
            "headers": bearer(keys["admin"]),
        }
    for name, statuses in SEEN.items():
        print(f"\nfuzz {name}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")


@pytest.fixture(scope="module")
def service_schema(fuzzed_services: dict) -> object:
    return fuzzed_services["serve"][1]


@pytest.fixture(scope="module")
def model_server_schema(fuzzed_services: dict) -> object:
    return fuzzed_services["serve-model"][1]


service = schemathesis.pytest.from_fixture("service_schema")
model_server = schemathesis.pytest.from_fixture("model_server_schema")


def no_server_error(case: object, fuzzed_services: dict, name: str) -> None:
    base, _ = fuzzed_services[name]
    response = case.call(base_url=base, headers=fuzzed_services["headers"], timeout=120)  # type: ignore[attr-defined]
    SEEN[name][response.status_code] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:500]}"  # type: ignore[attr-defined]
    )


@service.parametrize()
@FUZZ_SETTINGS
def test_the_feedback_service_never_answers_a_server_error(case: object, fuzzed_services: dict) -> None:
    no_server_error(case, fuzzed_services, "serve")


@model_server.parametrize()
@FUZZ_SETTINGS
def test_the_inference_server_never_answers_a_server_error(case: object, fuzzed_services: dict) -> None:
    no_server_error(case, fuzzed_services, "serve-model")
