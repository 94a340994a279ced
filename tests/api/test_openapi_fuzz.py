"""Schemathesis over the whole OpenAPI document, against the real service (``python -m docchain.api`` on
127.0.0.1, a real anvil, SQLite and PostgreSQL).

Every operation gets the document's examples, the boundary values of each parameter and body field (the
coverage phase: -1, 2^63, a 30-digit number, 1e400, empty, huge and non-ASCII strings, wrong types, a method
the path lacks), generated requests, and sequences that follow the document's links. No answer may be a 5xx
or contradict the document: its status, content type, body and headers must be those declared for the
operation; a request the document calls invalid must be refused (4xx); a method the path lacks is 405 with
an Allow header naming the methods it has.

Schemathesis runs as its CLI (``schemathesis run``): its pytest plugin's lazy schemas do not load under
pytest 9. Bounded in examples per operation (25), time per request (10 s; a long-poll is held at most 0.2 s
here) and in all (4 minutes, far above the ~1 minute a run takes); ``--seed`` draws the same requests on
every run, so a failure in CI reproduces on a laptop with the command it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys

from api_support import Env

# The document does not depend on the database, but PostgreSQL refuses inputs SQLite takes (a NUL in a text,
# integers beyond 32 or 64 bits), so the CI-size run fuzzes that one (tests/api/conftest.py); the full size both.
CI_BACKEND = "postgres"
MAX_EXAMPLES = 25  # per operation and phase; the coverage phase's boundary values come on top
SEED = 19
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "allow_header_conformance",
)


def test_every_operation_answers_as_documented(env: Env) -> None:
    # writes open (no API keys), so bodies reach validation; long-polls answer within 0.2 s
    server = env.api(DOCCHAIN_LONGPOLL_MAX_S="0.2", DOCCHAIN_LOG_LEVEL="WARNING").start()
    report = env.tmp / "schemathesis"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    try:
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=240,
            cwd=env.tmp,  # its .hypothesis/ directory goes there, not into the repository
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"},
        )
    finally:
        server.stop()
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"schemathesis found failures:\n{output[-30000:]}"
    assert "No issues found" in output or " passed" in output, output[-5000:]
