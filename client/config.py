"""Where each setting comes from: a command-line flag, else its environment variable, else the config
file, else what ``docchain up`` recorded, else the built-in default — in that order.

Typer resolves flag > env (every option declares ``envvar``); the options default to ``None`` so that
:meth:`Config.pick` can fall back to the config file (``config.toml`` in the user config directory,
or ``$DOCCHAIN_CONFIG_DIR``), then to the stack record (``stack.json`` beside it) and then to the
default here.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from docchain.client.errors import UsageError

APP = "docchain"
CONFIG_FILE = "config.toml"
STACK_FILE = "stack.json"
DEPLOYMENTS_FILE = "deployments.json"

DEFAULTS: dict[str, Any] = {
    "api": "http://127.0.0.1:8000",
    "rpc": "http://127.0.0.1:8545",
    "timeout": 10.0,
    "retries": 3,
    "confirmations": 1,
    "key": None,
    "registry": None,
    "node": "anvil",
    "host": "127.0.0.1",
    "port": 8000,
    "node_port": 8545,
}
"""Every key the config file may hold, with its default."""

T = TypeVar("T")


def config_dir() -> Path:
    env = os.environ.get("DOCCHAIN_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP))


def data_dir(flag: Path | None = None) -> Path:
    """The embedded stack's data (node state, deployments, database, documents)."""
    if flag is not None:
        return flag
    env = os.environ.get("DOCCHAIN_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP))


def keys_dir() -> Path:
    return config_dir() / "keys"


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @classmethod
    def load(cls, directory: Path | None = None) -> Config:
        path = (directory or config_dir()) / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the config file {path}: {exc}") from exc
        values = {k.replace("-", "_"): v for k, v in values.items()}
        unknown = set(values) - set(DEFAULTS)
        if unknown:
            raise UsageError(
                f"unknown setting(s) in {path}: {', '.join(sorted(unknown))} (known: {', '.join(sorted(DEFAULTS))})"
            )
        return cls(values, path)

    def pick(self, name: str, flag_or_env: T | None, recorded: Any = None) -> Any:
        """The flag/env value if given, else the config file's, else ``recorded`` (what the running stack
        recorded), else the default."""
        if flag_or_env is not None:
            return flag_or_env
        if name in self.values:
            value = self.values[name]
            default = DEFAULTS[name]
            if (
                default is not None
                and not isinstance(value, type(default))
                and not (isinstance(default, float) and isinstance(value, int))
            ):
                raise UsageError(f"{self.source}: {name} must be a {type(default).__name__}, got {value!r}")
            return value
        if recorded is not None:
            return recorded
        return DEFAULTS[name]


@dataclass(frozen=True)
class StackRecord:
    """The addresses a ``docchain up`` (or ``node up`` / ``serve``) serves, so that later commands find
    a stack on other ports without being told."""

    api: str | None
    rpc: str | None
    data_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"api": self.api, "rpc": self.rpc, "dataDir": self.data_dir}


def read_stack(directory: Path) -> StackRecord | None:
    """The record in ``directory``, if any. An unreadable one counts as none: it only ever supplies
    defaults, and the commands name the address they tried when it does not answer."""
    try:
        data = json.loads((directory / STACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    fields = {k: data.get(k) if isinstance(data.get(k), str) else None for k in ("api", "rpc", "dataDir")}
    return StackRecord(fields["api"], fields["rpc"], fields["dataDir"])


def record_stack(directory: Path, *, api: str | None = None, rpc: str | None = None, data: Path | None = None) -> Path:
    """Record the URLs a stack serves (keeping the other one, when only one is given), atomically."""
    old = read_stack(directory)
    record = StackRecord(
        api if api is not None else (old.api if old else None),
        rpc if rpc is not None else (old.rpc if old else None),
        str(data) if data is not None else (old.data_dir if old else None),
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STACK_FILE
    tmp = path.with_name(f".{STACK_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(record.to_json(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def normalise_url(url: str, what: str) -> str:
    """Validate a base URL before any network call."""
    from urllib.parse import urlsplit

    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced IPv6 bracket: as malformed as any other
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{what} must be an http(s) URL such as http://127.0.0.1:8000, got {url!r}")
    return url
