"""A file a person names that never ends (a device, a pipe): its reported size is 0, so only a bounded read keeps
the CLI from reading until the machine runs out of memory. Each command that reads a named file refuses
``/dev/zero`` at once: in one line, exit 2 (bad input), or for verify in a verdict invalid at its receipt step.
The child's address space is capped so that a regression fails here instead of eating the host's memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ZERO = "/dev/zero"
HASH = "0x" + "11" * 32


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        # a receipt that cannot be read is the verdict's first step (INVALID at receipt, exit 1)
        (
            ["verify", "{doc}", "--receipt", ZERO, "--offline", "--trusted-block-hash", HASH],
            1,
            "receipt /dev/zero is larger than",
        ),
        (["receipt", "upgrade", ZERO, "--rpc", "http://127.0.0.1:9"], 2, "receipt /dev/zero is larger than"),
        (["receipt", "export", ZERO, "--vc"], 2, "receipt /dev/zero is larger than"),
        (["receipt", "import", ZERO, "-o", "{tmp}/out.json"], 2, "credential /dev/zero is larger than"),
        (["verify", "--certificate", ZERO], 2, "no such certificate: /dev/zero"),
        (
            ["keys", "import", "zero", "--key-file", ZERO, "--password-file", "{tmp}/pass"],
            2,
            "key file /dev/zero is larger than",
        ),
        (
            ["keys", "import", "zero", "--key-file", "{tmp}/key", "--password-file", ZERO],
            2,
            "password file /dev/zero is larger than",
        ),
    ],
    ids=["verify", "upgrade", "export", "import", "certificate", "key-file", "password-file"],
)
def test_a_file_that_never_ends_is_refused_in_one_line(tmp_path: Path, args: list[str], code: int, said: str) -> None:
    doc = tmp_path / "contract.txt"
    doc.write_bytes(b"terms")
    (tmp_path / "pass").write_text("secret\n")
    (tmp_path / "key").write_text("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n")
    argv = [a.format(doc=doc, tmp=tmp_path) for a in args]
    env = {**os.environ, "HOME": str(tmp_path), "DOCCHAIN_CONFIG_DIR": str(tmp_path / "config")}
    done = subprocess.run(
        [sys.executable, "-m", "docchain.client", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        preexec_fn=_cap_memory,
    )
    assert done.returncode == code, done.stdout + done.stderr
    if code == 1:  # a verdict: no error line, the refusal as the receipt step's reason
        assert done.stderr == "" and f"INVALID: Verification failed at step receipt: {ZERO}: {said}" in done.stdout
    else:
        assert done.stderr.strip().count("\n") == 0 and said in done.stderr, done.stderr
