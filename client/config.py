"""Where each setting comes from: a command-line flag, else its environment variable, else the config
file, else the built-in default — in that order.

Typer resolves flag > env (every option declares ``envvar``); the options default to ``None`` so that
:meth:`Config.pick` can fall back to the config file (``config.toml`` in the user config directory,
or ``$DOCCHAIN_CONFIG_DIR``) and then to the default here.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from docchain.client.errors import UsageError

APP = "docchain"
CONFIG_FILE = "config.toml"

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

    def pick(self, name: str, flag_or_env: T | None) -> Any:
        """The flag/env value if given, else the config file's, else the default."""
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
        return DEFAULTS[name]


def normalise_url(url: str, what: str) -> str:
    """Validate a base URL before any network call."""
    from urllib.parse import urlsplit

    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{what} must be an http(s) URL such as http://127.0.0.1:8000, got {url!r}")
    return url
