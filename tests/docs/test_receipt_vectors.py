"""Every receipt reader says the same thing about every receipt text in tests/vectors/receipts.json:
chain/receipt.py (the CLI and the API), api/web/js/receipt.js (the web page, run here by node) and, for the
faults a JSON Schema can see, docs/receipt.schema.json. A refused receipt is refused with a message that
names the field at fault, in the same words in Python and in JavaScript."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from docs_support import DOCS, ROOT

from docchain.chain.errors import InvalidInput
from docchain.chain.receipt import MAX_BYTES, parse_receipt, read_receipt

VECTORS = ROOT / "tests" / "vectors"
CASES: list[dict[str, Any]] = json.loads((VECTORS / "receipts.json").read_text())
BY_NAME = {case["name"]: case for case in CASES}
NAMES = list(BY_NAME)
INVALID = [name for name in NAMES if not BY_NAME[name]["valid"]]
SCHEMA = jsonschema.Draft202012Validator(json.loads((DOCS / "receipt.schema.json").read_text()))


def python_verdict(data: str | bytes) -> dict[str, Any]:
    try:
        receipt = parse_receipt(data)
    except InvalidInput as exc:
        return {"valid": False, "message": str(exc)}
    return {"valid": True, "receipt": receipt.to_json()}


@pytest.fixture(scope="module")
def js() -> dict[str, dict[str, Any]]:
    """The JavaScript reader's verdicts, one node process for the whole corpus."""
    node = shutil.which("node")
    assert node, "node is installed with the repository's tools (package.json)"
    done = subprocess.run(
        [node, str(VECTORS / "run_js_reader.mjs")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(CASES)
    return dict(zip(NAMES, results, strict=True))


def test_the_corpus_is_what_its_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_receipts", VECTORS / "make_receipts.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render() == (VECTORS / "receipts.json").read_text(), "run tests/vectors/make_receipts.py"


def test_the_corpus_is_a_specification() -> None:
    assert len(NAMES) == len(CASES), "case names are unique"
    assert len(INVALID) >= 40
    for case in CASES:
        assert set(case) <= {"name", "text", "valid", "field", "schema", "note"}, case["name"]
        assert ("field" in case) != case["valid"], case["name"]
        assert ("note" in case) == ("schema" in case), f"{case['name']}: say why the schema cannot see it"
    # the base receipt is what build_receipt writes, byte for byte
    assert BY_NAME["as docchain writes it"]["text"] == parse_receipt(BY_NAME["as docchain writes it"]["text"]).dumps()


@pytest.mark.parametrize("name", NAMES)
def test_python_reader(name: str) -> None:
    case = BY_NAME[name]
    verdict = python_verdict(case["text"])
    assert verdict["valid"] == case["valid"], verdict.get("message")
    # the bytes of a file read the same as its text
    assert python_verdict(case["text"].encode("utf-8", "surrogatepass")) == verdict
    if case["valid"]:
        # what the reader accepts it writes back in the one form docchain writes, and reads again
        again = parse_receipt(json.dumps(verdict["receipt"]))
        assert again.to_json() == verdict["receipt"]
    else:
        assert case["field"] in verdict["message"]
        assert "\n" not in verdict["message"]


@pytest.mark.parametrize("name", NAMES)
def test_javascript_reader_agrees(name: str, js: dict[str, dict[str, Any]]) -> None:
    case = BY_NAME[name]
    python, text, raw = python_verdict(case["text"]), js[name]["text"], js[name]["bytes"]
    assert text["valid"] == case["valid"], text.get("message")
    assert raw == text, "the page reads a dropped file's bytes as it reads its text"
    if case["valid"]:
        # the page sends what it read to the API: Python's form, a deadline beyond 2^53 kept as a string
        deadline = python["receipt"]["eip712"]["message"]["deadline"]
        if deadline > 2**53 - 1:
            python["receipt"]["eip712"]["message"]["deadline"] = str(deadline)
        assert text["receipt"] == python["receipt"]
    else:
        assert case["field"] in text["message"]
        assert "\n" not in text["message"]
        if not python["message"].startswith("receipt is not valid JSON"):
            assert text["message"] == python["message"], "the same words in both readers"


@pytest.fixture
def long_integers() -> Iterator[None]:
    # one vector holds a 5,000-digit integer, which Python converts only with its limit lifted
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(limit)


@pytest.mark.parametrize("name", [n for n in NAMES if BY_NAME[n].get("schema", True)])
@pytest.mark.usefixtures("long_integers")
def test_the_schema_agrees_where_it_can_see(name: str) -> None:
    case = BY_NAME[name]
    errors = list(SCHEMA.iter_errors(json.loads(case["text"])))
    assert (not errors) == case["valid"], [e.message[:200] for e in errors]


def test_read_receipt_refuses_a_large_file_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "big.docchain.json"
    path.write_text(BY_NAME["one byte over 65536"]["text"])
    assert path.stat().st_size == MAX_BYTES + 1
    with pytest.raises(InvalidInput, match="larger than 65536 bytes"):
        read_receipt(path)
    path.write_text(BY_NAME["exactly 65536 bytes"]["text"])
    assert read_receipt(path).block_number == 7


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"\xef\xbb\xbf" + BY_NAME["as docchain writes it"]["text"].encode(), "not valid JSON"),
        (BY_NAME["as docchain writes it"]["text"].encode("utf-16"), "not UTF-8"),
        (b'{"docchainReceipt": 1, "document": "\xff"}', "not UTF-8"),
    ],
    ids=["byte-order mark", "UTF-16", "invalid UTF-8"],
)
def test_a_receipt_file_is_utf8_without_a_byte_order_mark(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "r.docchain.json"
    path.write_bytes(raw)
    with pytest.raises(InvalidInput, match=message):
        read_receipt(path)
