"""docker-compose.yml, checked statically (no Docker engine runs here): it is valid Compose, every image
is pinned, and every DOCCHAIN_* variable it sets is one that the code reads.

The Compose Specification schema is vendored beside this file: ``compose-spec.json`` is the copy bundled
in check-jsonschema 0.39.0 (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, taken from
github.com/compose-spec/compose-spec, Apache-2.0, see ``compose-spec.LICENSE``); its SHA-256 is pinned
below so an edit to it is deliberate.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: dict[str, str] | None = None) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` substitution, recursively."""
    env = env or {}
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in env and (env[name] or not (op or "").startswith(":")):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return ""

    return _VAR.sub(one, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as Compose sees it with no variables set (every default applies)."""
    return interpolate(raw)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# ------------------------------------------------------------------------------------- structure


def test_schema_is_the_vendored_one() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


@pytest.mark.parametrize("form", ["as written", "interpolated"])
def test_compose_file_validates_against_the_compose_specification(
    form: str, raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(raw if form == "as written" else compose)]
    assert errors == []


def test_the_schema_does_reject_a_malformed_service(compose: dict[str, Any]) -> None:
    """Guards against a schema so loose that anything passes."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    broken = {
        **compose,
        "services": {**compose["services"], "api": {**compose["services"]["api"], "dependson": []}},
    }
    assert not validator.is_valid(broken)


def test_the_stack_has_its_parts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"ganache", "anvil", "deploy", "api", "postgres"} <= set(services)
    assert "profiles" not in services["ganache"], "ganache is the default node: `docker compose up` runs it"
    assert services["anvil"]["profiles"] == ["anvil"]
    api = services["api"]
    deps = api["depends_on"]
    assert deps["ganache"]["condition"] == "service_healthy"
    assert deps["anvil"] == {"condition": "service_healthy", "required": False}
    assert deps["deploy"]["condition"] == "service_completed_successfully"
    assert deps["postgres"]["condition"] == "service_healthy"
    for name in ("ganache", "anvil", "api", "postgres"):
        assert "healthcheck" in services[name] or name == "api", f"{name} needs a healthcheck"
    assert services["deploy"]["restart"] == "no"


def test_chain_state_database_and_documents_live_on_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    named = set(compose["volumes"])

    def mounts(service: str) -> dict[str, str]:
        out = {}
        for spec in services[service].get("volumes", []):
            source, target = spec.split(":")[:2]
            out[target] = source
        return out

    ganache_args = services["ganache"]["command"]
    db_path = next(a.split("=", 1)[1] for a in ganache_args if a.startswith("--database.dbPath="))
    assert mounts("ganache")[db_path] in named
    assert any(a.startswith("--chain.chainId=") for a in ganache_args), "the chain id is fixed"
    assert any(a.startswith("--wallet.mnemonic=") for a in ganache_args), "deterministic accounts"

    anvil_args = services["anvil"]["command"]
    state = next(a.split("=", 1)[1] for a in anvil_args if a.startswith("--state="))
    assert mounts("anvil")[str(Path(state).parent)] in named
    assert any(a.startswith("--chain-id=") for a in anvil_args)

    api_env = environment(services["api"])
    assert mounts("api")[api_env["DOCCHAIN_DATA_DIR"]] in named
    assert mounts("api")[api_env["DOCCHAIN_STORAGE_DIR"]] in named
    assert mounts("postgres")["/var/lib/postgresql/data"] in named
    # The deploy step records deployments.json where the API looks for it.
    deploy_env = environment(services["deploy"])
    assert deploy_env["DOCCHAIN_DATA_DIR"] == api_env["DOCCHAIN_DATA_DIR"]
    assert mounts("deploy")[deploy_env["DOCCHAIN_DATA_DIR"]] == mounts("api")[api_env["DOCCHAIN_DATA_DIR"]]
    assert deploy_env["DOCCHAIN_RPC"] == api_env["DOCCHAIN_RPC_URL"]


def test_the_api_runs_the_documented_command(compose: dict[str, Any]) -> None:
    assert compose["services"]["api"]["command"] == [
        "python",
        "-m",
        "docchain.api",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert compose["services"]["deploy"]["command"][:2] == ["docchain", "deploy"]


def test_api_uses_postgresql_through_asyncpg(compose: dict[str, Any]) -> None:
    url = environment(compose["services"]["api"])["DOCCHAIN_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in url


# ------------------------------------------------------------------------------------- images


def _images(compose: dict[str, Any]) -> dict[str, str]:
    return {name: svc["image"] for name, svc in compose["services"].items() if "image" in svc}


def test_every_image_is_pinned_to_a_version(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    for name, svc in raw["services"].items():
        assert "image" in svc, f"{name}: no image"
        assert "$" not in svc["image"], f"{name}: the image must not come from a variable"
    for name, image in _images(compose).items():
        ref = image.split("@", 1)[0]
        repo, _, tag = ref.rpartition(":")
        assert repo and "/" not in tag, f"{name}: {image} has no explicit tag"
        assert tag != "latest" and tag not in {"stable", "nightly", "edge", "main", "master"}, f"{name}: {image}"
        assert re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"


def test_node_images_match_the_pinned_npm_node_tools(compose: dict[str, Any]) -> None:
    """The compose nodes are the same releases the test suite runs (package.json)."""
    pins = json.loads((ROOT / "package.json").read_text())["dependencies"]
    images = _images(compose)
    assert images["ganache"] == f"trufflesuite/ganache:v{pins['ganache']}"
    assert images["anvil"] == f"ghcr.io/foundry-rs/foundry:v{pins['@foundry-rs/anvil']}"


# ------------------------------------------------------------------------------------- environment


def settings_env_names() -> set[str]:
    from docchain.api.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    assert prefix == "DOCCHAIN_"
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def cli_env_names(command: tuple[str, ...]) -> set[str]:
    """Environment variables a `docchain` sub-command reads: its options' envvars, plus the ones the
    client reads directly (config/data directories, password)."""
    import typer

    from docchain.client.cli import app

    cmd: Any = typer.main.get_command(app)
    for part in command:
        cmd = cmd.commands[part]  # a (typer-flavoured) click group
    names = {p.envvar for p in cmd.params if isinstance(p.envvar, str)}
    for source in (ROOT / "client").glob("*.py"):
        names |= set(re.findall(r"""environ(?:\.get)?[\[(]\s*["'](DOCCHAIN_[A-Z0-9_]+)""", source.read_text()))
    return names


def test_api_environment_is_exactly_settings_fields(compose: dict[str, Any]) -> None:
    env = {k for k in environment(compose["services"]["api"]) if k.startswith("DOCCHAIN_")}
    unknown = env - settings_env_names()
    assert not unknown, f"docker-compose.yml sets variables api/settings.py does not read: {sorted(unknown)}"


def test_api_environment_is_accepted_by_settings(
    raw: dict[str, Any], compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values, not only names: the compose environment builds a valid Settings (types, cross-checks)."""
    from docchain.api.settings import Settings

    for name in list(__import__("os").environ):
        if name.startswith("DOCCHAIN_"):
            monkeypatch.delenv(name)
    env = environment(compose["services"]["api"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert str(settings.data_dir) == env["DOCCHAIN_DATA_DIR"]
    assert settings.resolved_database_url == env["DOCCHAIN_DATABASE_URL"]
    assert settings.relayer_key is None, "the relayer key comes from the keystore, never in plain text"
    assert settings.relayer_keystore is not None and settings.relayer_password_file is not None
    assert settings.chain_id is None  # CHAIN_ID unset: DOCCHAIN_CHAIN_ID is empty, any chain is accepted
    monkeypatch.setenv(
        "DOCCHAIN_CHAIN_ID",
        interpolate(raw["services"]["api"]["environment"]["DOCCHAIN_CHAIN_ID"], {"CHAIN_ID": "1337"}),
    )
    assert Settings(_env_file=None).chain_id == 1337  # type: ignore[call-arg]


def test_dockerfile_environment_is_settings_fields() -> None:
    text = (ROOT / "Dockerfile").read_text()
    env = set(re.findall(r"\b(DOCCHAIN_[A-Z0-9_]+)=", text))
    assert env, "the image sets its data and storage directories"
    assert env <= settings_env_names()


def test_deploy_environment_is_read_by_docchain_deploy(compose: dict[str, Any]) -> None:
    env = {k for k in environment(compose["services"]["deploy"]) if k.startswith("DOCCHAIN_")}
    unknown = env - cli_env_names(("deploy",))
    assert not unknown, f"`docchain deploy` does not read {sorted(unknown)}"


def test_no_plain_text_private_key_anywhere_in_compose(raw: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert "RELAYER_KEY:" not in text and "RELAYER_KEY=" not in text
    assert not re.search(r"\b(0x)?[0-9a-fA-F]{64}\b", text), "a 32-byte hex value (a private key?) in compose"


def test_relayer_secrets_are_wired(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = environment(services["api"])
    secret_files = {f"/run/secrets/{s}" for s in services["api"]["secrets"]}
    assert env["DOCCHAIN_RELAYER_PASSWORD_FILE"] in secret_files
    keys_mount = next(v for v in services["api"]["volumes"] if v.split(":")[1] == "/etc/docchain/keys")
    assert keys_mount.endswith(":ro")
    assert Path(env["DOCCHAIN_RELAYER_KEYSTORE"]).parent == Path("/etc/docchain/keys")
    # The deploy step unlocks the same keystore through the CLI's key directory.
    deploy_env = environment(services["deploy"])
    assert Path(deploy_env["DOCCHAIN_CONFIG_DIR"]) / "keys" / f"{deploy_env['DOCCHAIN_KEY']}.json" == Path(
        env["DOCCHAIN_RELAYER_KEYSTORE"]
    )
    assert deploy_env["DOCCHAIN_PASSWORD_FILE"] == env["DOCCHAIN_RELAYER_PASSWORD_FILE"]
    # The host files of the default (dev) configuration exist.
    assert (ROOT / compose["secrets"]["relayer_password"]["file"]).is_file()
    host_keys = keys_mount.split(":")[0]
    assert (ROOT / host_keys / "relayer.json").is_file()


def test_dev_keystore_is_the_public_dev_account_of_the_nodes_mnemonic(compose: dict[str, Any]) -> None:
    """The default keystore unlocks with the default password to dev account #0 of the test mnemonic,
    which both nodes fund: a published key, for the local chain only."""
    from eth_account import Account

    password = (ROOT / compose["secrets"]["relayer_password"]["file"]).read_text().splitlines()[0]
    keystore = json.loads((ROOT / "docker/dev/keys/relayer.json").read_text())
    key = Account.decrypt(keystore, password)
    assert Account.from_key(key).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    mnemonic = "test test test test test test test test test test test junk"
    assert f"--wallet.mnemonic={mnemonic}" in compose["services"]["ganache"]["command"]
    assert f"--mnemonic={mnemonic}" in compose["services"]["anvil"]["command"]


# ------------------------------------------------------------------------------------- document storage


def test_documents_are_replicated_over_local_minio_and_ipfs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api_env = environment(services["api"])
    assert api_env["DOCCHAIN_STORAGE"] == "local,s3,ipfs"
    deps = services["api"]["depends_on"]
    assert deps["ipfs"]["condition"] == "service_healthy"
    assert deps["bucket"]["condition"] == "service_completed_successfully"
    assert services["bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    named = set(compose["volumes"])
    for name, data in (("minio", "/data"), ("ipfs", "/data/ipfs")):
        assert "healthcheck" in services[name], f"{name} needs a healthcheck"
        assert any(v.split(":")[1] == data and v.split(":")[0] in named for v in services[name]["volumes"])
    # the API reaches MinIO and kubo's RPC API by service name; the bucket is the one the one-shot makes
    assert api_env["DOCCHAIN_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert f"docchain/{api_env['DOCCHAIN_S3_BUCKET']}" in services["bucket"]["command"][0]
    assert api_env["DOCCHAIN_IPFS_API_URL"] == "http://ipfs:5001"
    # the same credentials on both sides, from the same variables
    minio_env = environment(services["minio"])
    assert (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"]) == (
        api_env["DOCCHAIN_S3_ACCESS_KEY_ID"],
        api_env["DOCCHAIN_S3_SECRET_ACCESS_KEY"],
    )


def test_storage_admin_endpoints_are_not_published(compose: dict[str, Any]) -> None:
    """MinIO and kubo's RPC API administer the stored documents: only the API reaches them (network
    `backend`); the host sees kubo's gateway on loopback, and its swarm port for other IPFS nodes."""
    services = compose["services"]
    assert "ports" not in services["minio"]
    published = [str(p) for p in services["ipfs"]["ports"]]
    assert not any(p.endswith(":5001") for p in published)
    assert "127.0.0.1:8080:8080" in published
    assert "backend" in services["minio"]["networks"] and "backend" in services["ipfs"]["networks"]
    assert compose["networks"]["backend"]["internal"] is True


def test_kubo_image_is_the_release_the_tests_run() -> None:
    from tests.storage.kubo import KUBO_VERSION

    assert yaml.safe_load(COMPOSE.read_text())["services"]["ipfs"]["image"] == f"ipfs/kubo:{KUBO_VERSION}"


def test_compose_storage_settings_build_the_replicated_set(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Values, not only names: the API's storage settings build its three backends (nothing contacted)."""
    from docchain.api.settings import Settings
    from docchain.api.storage.replicas import build

    for name in list(__import__("os").environ):
        if name.startswith("DOCCHAIN_"):
            monkeypatch.delenv(name)
    for name, value in environment(compose["services"]["api"]).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DOCCHAIN_DATA_DIR", str(tmp_path / "data"))  # not the container's paths
    monkeypatch.setenv("DOCCHAIN_STORAGE_DIR", str(tmp_path / "documents"))
    replicas = build(Settings(_env_file=None))  # type: ignore[call-arg]
    assert replicas.names == ["local", "s3", "ipfs"]
