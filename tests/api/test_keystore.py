"""The relayer's key from an encrypted keystore (DOCCHAIN_RELAYER_KEYSTORE + DOCCHAIN_RELAYER_PASSWORD_FILE).

Its scrypt costs ~256 MiB and ~1 s a time, and the API decrypted it three times at start (the start-up check,
the preflight, the app: 371 MiB peak, 3.8 s). It is decrypted once per service: by the API process, or with
``--workers`` by the supervisor alone (it hands the key to each worker over a pipe); the pipeline child gets
it from its parent the same way. The key is never logged, and never written in clear to disk nor put in a
process's arguments or environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from api_support import DEV_KEY, Api, Env, sqlite_only, submit_many
from eth_account import Account

PASSWORD = "correct horse battery staple"

pytestmark = sqlite_only  # how the key is decrypted and kept secret does not depend on the database


def _processes(root: int) -> list[int]:
    """``root`` and every descendant of it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def _peak_rss_mib(pid: int) -> float:
    status = dict(
        line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line
    )
    return int(status["VmHWM"].split()[0]) / 1024


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("keystore")
    store, password = directory / "relayer.json", directory / "password"
    store.write_text(json.dumps(Account.encrypt(DEV_KEY, PASSWORD)))  # eth_account's default: scrypt, n = 2^18
    password.write_text(PASSWORD + "\n")
    return store, password


# At CI size the two-worker case (a supervisor and two APIs: the most processes that could each decrypt) stands
# for both; one worker runs too at RELIABILITY_SCALE=full, within the CI budget.
@pytest.mark.parametrize("workers", [1, 2] if os.environ.get("RELIABILITY_SCALE") == "full" else [2])
def test_the_keystore_is_decrypted_once_and_the_key_stays_secret(
    env: Env, keystore: tuple[Path, Path], workers: int, tmp_path: Path
) -> None:
    log = tmp_path / "api.log.jsonl"
    server: Api = env.api(
        DOCCHAIN_RELAYER_KEYSTORE=str(keystore[0]),
        DOCCHAIN_RELAYER_PASSWORD_FILE=str(keystore[1]),
        DOCCHAIN_LOG_LEVEL="DEBUG",
        DOCCHAIN_LOG_FILE=str(log),
        DOCCHAIN_WORKERS=str(workers),
    )
    del server.env["DOCCHAIN_RELAYER_KEY"]
    server.log = tmp_path / "api.out"
    server.start()
    try:
        accepted = submit_many(server, env, 3)  # anchored: the pipeline child has the key too
        for sid, _, _ in accepted:
            server.wait_state(sid, ("anchored", "confirmed"))
        assert server.proc is not None
        first = server.proc.pid
        family = _processes(first)
        assert len(family) == 2 * workers + (1 if workers > 1 else 0)  # (supervisor,) API(s), their children
        print(f"\n--workers {workers}: peak RSS " + ", ".join(f"{_peak_rss_mib(p):.0f} MiB" for p in family))

        key = DEV_KEY[2:].lower()
        for pid in family:  # not in any process's arguments or environment
            for name in ("cmdline", "environ"):
                assert key not in Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace").lower()
    finally:
        assert server.stop() == 0

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    decrypted = [e for e in entries if e["msg"] == "relayer keystore decrypted"]
    assert len(decrypted) == 1, decrypted  # one scrypt for the whole service, whatever the processes
    assert decrypted[0]["pid"] == first  # the API, or the supervisor
    print(f"one decryption, {decrypted[0]['ms']} ms")
    on_disk = [log, tmp_path / "api.out", *env.data_dir.rglob("*")]
    if env.database_url.startswith("sqlite"):
        on_disk += Path(env.database_url.split(":///", 1)[1]).parent.glob("*")
    for path in on_disk:  # nor in clear on disk
        if path.is_file():
            assert key not in path.read_bytes().decode(errors="replace").lower(), path


@pytest.mark.parametrize("problem", ["wrong password", "no keystore"])
def test_a_keystore_that_cannot_be_read_is_one_line_and_status_2(
    env: Env, keystore: tuple[Path, Path], tmp_path: Path, problem: str
) -> None:
    password = tmp_path / "password"
    password.write_text("not the password\n" if problem == "wrong password" else PASSWORD)
    store = keystore[0] if problem == "wrong password" else tmp_path / "missing.json"
    server = env.api(DOCCHAIN_RELAYER_KEYSTORE=str(store), DOCCHAIN_RELAYER_PASSWORD_FILE=str(password))
    del server.env["DOCCHAIN_RELAYER_KEY"]
    done = subprocess.run(
        [sys.executable, "-m", "docchain.api", "--port", str(server.port)],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("docchain-api: "), done.stderr
    assert "Traceback" not in done.stderr
