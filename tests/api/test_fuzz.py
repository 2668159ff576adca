"""Schema-driven fuzzing (schemathesis) of both servers, as real processes, with an admin key: whatever a
client sends that the OpenAPI schema allows, and what it does not (schemathesis's negative cases), no answer
may be a server error.

Bounded: `LLMFL_FUZZ_EXAMPLES` examples per operation and mode (default 20; a few minutes for both servers).
Each test prints the requests it sent and the statuses it saw (`-s` shows them); every operation that gave a
5xx is listed in the failure, with the request that did it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.accounts import bearer, issue_keys
from tests.support.servers import running_llmfl

EXAMPLES = int(os.environ.get("LLMFL_FUZZ_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def fuzzed_services(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[dict[str, str]]:
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
        yield {"serve": service, "serve-model": model_server, "key": keys["admin"]}


def fuzz(base: str, key: str) -> tuple[Counter[int], list[str]]:
    """Every operation of the server's schema, positive and negative cases: (statuses seen, failures)."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,  # the same requests every run: a failure found here is found again
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def check(case: schemathesis.Case) -> None:
                try:
                    response = case.call(base_url=base, session=session, headers=bearer(key), timeout=120)
                except requests.RequestException as error:  # no answer at all is worse than a 500
                    raise AssertionError(f"no answer: {type(error).__name__}") from None
                statuses[response.status_code] += 1
                assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"

            try:
                check()
            except AssertionError as error:  # hypothesis has shrunk it to the simplest failing request
                failures.append(f"{operation.label} ({mode.value}): {str(error).splitlines()[0]}")
            except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
                continue
    return statuses, failures


@pytest.mark.parametrize("server", ["serve", "serve-model"])
def test_no_request_gets_a_server_error(fuzzed_services: dict[str, str], server: str) -> None:
    statuses, failures = fuzz(fuzzed_services[server], fuzzed_services["key"])
    print(f"\nfuzz {server}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) > 0
    assert not failures, "server errors:\n" + "\n".join(failures)
