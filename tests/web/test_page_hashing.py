"""The page's SHA-256: streamed in slices through the WebAssembly SHA-256 vendored from npm (or the
JavaScript fallback), equal to hashlib's whatever the size, for a file chosen on the real page, in bounded
memory; the vendored file is npm's byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import pytest
from webstack import Pages

from bench.hashing import chromium_pids, peak_growth
from tests.storage import full_scale

ROOT = Path(__file__).resolve().parents[2]
NPM_PACKAGE = ROOT / "node_modules" / "hash-wasm"
NPM_FILE = "dist/sha256.umd.min.js"
VENDORED = ROOT / "api" / "web" / "js" / "hash-wasm-sha256.js"
MiB = 1 << 20
CHUNK = MiB  # api/web/js/sha256.js's CHUNK
WASM, JS = "WebAssembly SHA-256", "JavaScript SHA-256"  # api/web/js/sha256.js's names of its two engines


def vendored_text() -> str:
    """api/web/js/hash-wasm-sha256.js as built from the installed hash-wasm."""
    version = json.loads((NPM_PACKAGE / "package.json").read_text())["version"]
    library = (NPM_PACKAGE / NPM_FILE).read_text()
    return (
        f"// hash-wasm {version} (npm, MIT, (c) Dani Biro): its {NPM_FILE}, byte for byte between the BEGIN and\n"
        "// END lines, as an ES module for the page. The UMD wrapper takes its CommonJS branch when `exports` and\n"
        "// `module` exist, so the constant below receives the library instead of a global. The WebAssembly binary\n"
        "// travels inside, base64-encoded: no other file to serve. Made by `python tests/web/test_page_hashing.py\n"
        "// --vendor` from node_modules (package.json pins the version); a test holds it equal to that.\n"
        "const module = { exports: {} };\n"
        "const exports = module.exports;\n"
        f"// ---- BEGIN hash-wasm/{NPM_FILE} ----\n"
        f"{library}\n"
        f"// ---- END hash-wasm/{NPM_FILE} ----\n"
        "export const { createSHA256 } = module.exports;\n"
    )


def test_vendored_hash_wasm_is_npms() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["hash-wasm"]
    if not NPM_PACKAGE.exists():
        pytest.skip("hash-wasm is not installed (npm ci)")
    assert json.loads((NPM_PACKAGE / "package.json").read_text())["version"] == pinned
    assert VENDORED.read_text() == vendored_text(), "stale: python tests/web/test_page_hashing.py --vendor"


def pattern(n: int) -> bytes:
    return bytes((i * 31 + 7) & 0xFF for i in range(n))


SIZES = [0, 1, 55, 56, 63, 64, 65, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 3 * MiB + 5]


@pytest.mark.browser
def test_page_sha256_equals_hashlib(pages: Pages) -> None:
    """Both engines, through the file's byte stream and through File.slice (a browser whose Blob streams
    have no BYOB reader), across SHA-256's padding boundaries and the page's read chunks."""
    page = pages.open("verify")
    got = page.evaluate(
        """async ([sizes, engines]) => {
          const m = await import('/js/sha256.js');
          const out = [];
          for (const n of sizes) {
            const data = new Uint8Array(n);
            for (let i = 0; i < n; i++) data[i] = (i * 31 + 7) & 0xff;
            const blob = new Blob([data]);
            // no byte stream: getReader({mode: "byob"}) throws, as in a browser without them
            const sliced = { size: n, slice: (a, b) => blob.slice(a, b), stream: () => new ReadableStream() };
            const row = [];
            for (const engine of engines) {
              for (const file of [blob, sliced]) {
                const seen = [];
                const r = await m.hashFile(file, { engine, onProgress: (f, phase) => seen.push([f, phase]) });
                row.push([r.hash, r.method, seen.at(-1)]);
              }
            }
            const chosen = await m.hashFile(blob);
            row.push([chosen.hash, chosen.method, null]);
            out.push(row);
          }
          return out;
        }""",
        [SIZES, [WASM, JS]],
    )
    for n, row in zip(SIZES, got, strict=True):
        expected = "0x" + hashlib.sha256(pattern(n)).hexdigest()
        methods = [WASM, WASM, JS, JS, WASM]  # by default, WebAssembly: the page's policy lets it compile
        assert [r[:2] for r in row] == [[expected, m] for m in methods], n
        assert all(r[2] == [1, "done"] for r in row[:4]), n
    assert not pages.errors


@pytest.mark.browser
def test_a_chosen_file_is_hashed_on_the_page(pages: Pages, tmp_path: Path) -> None:
    path = tmp_path / "report.bin"
    path.write_bytes(os.urandom(3 * CHUNK + 5))
    page = pages.open("verify")
    page.set_input_files("#verify-file", str(path))
    code = page.locator(".hash-out code")
    code.wait_for()
    assert code.inner_text() == "0x" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"with {WASM} in" in page.locator(".hash-out").inner_text()


# every text the page's progress label takes, in order
PROGRESS_LOG = """() => {
  window.progressLog = [];
  new MutationObserver(() => {
    const label = document.querySelector(".progress:not([hidden]) .progress-label");
    if (label && label.textContent !== window.progressLog.at(-1)) window.progressLog.push(label.textContent);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
}"""
PROGRESS = re.compile(r"hashing (\d+)% of [\d.]+ [KMG]i?B")


@pytest.mark.browser
@pytest.mark.parametrize(
    "size",
    [
        64 * MiB,
        pytest.param(1 << 30, marks=pytest.mark.skipif(not full_scale(), reason="1 GiB: RELIABILITY_SCALE=full")),
    ],
    ids=["64MiB", "1GiB"],
)
def test_the_page_hashes_in_bounded_memory(pages: Pages, tmp_path: Path, size: int) -> None:
    """No Chromium process grows its peak resident set by more than 48 MiB while the page hashes a file,
    whatever its size: the page reads into the same two 1 MiB buffers (a fresh ArrayBuffer per File.slice
    would pile up until the garbage collector ran)."""
    path = tmp_path / "big.bin"
    expected = hashlib.sha256()
    with open(path, "wb") as out:
        block = os.urandom(MiB)
        for _ in range(size // MiB):
            out.write(block)
            expected.update(block)
    page = pages.open("verify")
    code = page.locator(".hash-out code")
    page.evaluate(PROGRESS_LOG)
    with peak_growth(chromium_pids()) as growth:
        page.set_input_files("#verify-file", str(path))
        code.wait_for(timeout=600_000)
    assert code.inner_text() == "0x" + expected.hexdigest()
    shown = [int(m.group(1)) for text in page.evaluate("window.progressLog") if (m := PROGRESS.fullmatch(text))]
    assert shown and shown == sorted(shown) and shown[0] == 0, f"the bar: {shown}"
    worst = max(growth.values())
    assert worst <= 48 * MiB, f"hashing {size} B grew a Chromium process by {worst / MiB:.1f} MiB"


if __name__ == "__main__" and sys.argv[1:] == ["--vendor"]:
    VENDORED.write_text(vendored_text())
