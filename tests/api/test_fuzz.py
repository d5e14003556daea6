"""schemathesis over the whole OpenAPI schema, in-process (ASGI), as an administrator: no answer may be a 5xx.

Each operation gets a bounded number of generated requests (valid ones by the schema, and some invalid ones), with a
fixed seed, so a run is repeatable. Left out: what would end this test's own session or lock accounts (logging in and
out, deleting or changing its own user or token) and the endless live-event stream.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi

from dialer.app import create_app
from dialer.auth.permissions import P
from dialer.config import Settings
from dialer.db import make_engine, make_sessionmaker
from tests.conftest import make_user, token_for

pytestmark = pytest.mark.slow

#: Generated requests per operation and mode (DIALER_FUZZ_EXAMPLES raises it for a longer local run).
EXAMPLES = int(os.environ.get("DIALER_FUZZ_EXAMPLES", "8"))
NEGATIVE_EXAMPLES = max(1, EXAMPLES // 3)
EXCLUDED = {
    "POST /api/auth/login",  # failed logins throttle and lock the login
    "POST /api/auth/logout",
    "DELETE /api/tokens/{token_id}",  # could revoke the test's own token
    "DELETE /api/users/{user_id}/tokens/{token_id}",
    "GET /live/events",  # a stream that never ends by itself
}


async def _administrator(db_url: str) -> tuple[int, str]:
    engine = make_engine(db_url, pool_size=1)
    try:
        holder: Any = SimpleNamespace(state=SimpleNamespace(sessionmaker=make_sessionmaker(engine)))
        user_id = await make_user(holder, "fuzzer", roles=("admin",), grants={p.value: True for p in P})
        return user_id, await token_for(holder, user_id)
    finally:
        await engine.dispose()


def _own(case: Any, user_id: int) -> bool:
    """Would the case change or delete the test's own user (deactivate it, take its roles away)?"""
    return (case.operation.path == "/api/users/{item_id}" and case.method.upper() in {"PATCH", "DELETE"}
            and (case.path_parameters or {}).get("item_id") == user_id)


def test_no_server_errors_anywhere(db_url: str, tmp_path: Path) -> None:
    user_id, token = asyncio.run(_administrator(db_url))
    app = create_app(Settings(database_url="", data_dir=tmp_path), database_url=db_url, prepare=False)
    app.state.rate_limiter = None  # thousands of requests in a few minutes from one token
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    requests = 0
    operations = 0
    failures: list[str] = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.label in EXCLUDED:
                continue
            operations += 1
            for mode, examples in ((GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
                strategy = operation.as_strategy(generation_mode=mode).filter(lambda c: not _own(c, user_id))

                @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
                @given(case=strategy)
                def call(case: Any) -> None:
                    nonlocal requests
                    response = case.call(headers=auth)
                    requests += 1
                    if response.status_code >= 500:
                        failures.append(f"{response.status_code} {case.as_curl_command(headers=auth)}\n"
                                        f"{response.text[:500]}")

                try:
                    call()
                except Unsatisfiable:  # no invalid request exists for an operation without parameters
                    continue
    finally:
        schemathesis_asgi.shutdown_lifespans()
    print(f"\nschemathesis: {requests} requests over {operations} operations, {len(failures)} server errors",
          file=sys.stderr)
    assert requests > operations * EXAMPLES // 2
    assert failures == [], "\n\n".join(failures[:20])
