"""One invocation's state, carried as Click's ``ctx.obj``: the global options as given, where each came
from, the output, and how settings resolve (flag or environment, then ``config.toml``, then what
``docchain up`` recorded, then the built-in default).

A new :class:`CliContext` is made for every invocation (tests run many in one process), so nothing
carries over from one command to the next.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docchain.client import config, keys
from docchain.client.config import Config, StackRecord, normalise_url
from docchain.client.output import Output

if TYPE_CHECKING:
    from docchain.client.api_client import ApiClient

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_RANK = {"DEFAULT": 0, "DEFAULT_MAP": 0, "PROMPT": 1, "ENVIRONMENT": 1, "COMMANDLINE": 2}


@dataclass
class CliContext:
    argv: tuple[str, ...] = ()
    api: str | None = None
    rpc: str | None = None  # the first --rpc: the node of every command that talks to one
    rpcs: tuple[str, ...] = ()  # every --rpc, in order: the nodes `verify --offline` asks about its block
    config_dir: Path | None = None
    data_dir: Path | None = None
    timeout: float | None = None
    retries: int | None = None
    json: bool = False
    verbose: bool = False
    sources: dict[str, str] = field(default_factory=dict)
    out: Output = field(default_factory=Output)
    _config: Config | None = field(default=None, repr=False)

    @classmethod
    def start(cls, argv: tuple[str, ...]) -> CliContext:
        """A new invocation. --json and --verbose are guessed from the words as written until parsing has
        ended, so that an error found while parsing (an unknown option) is reported in the right form."""
        json_mode = "--json" in argv or os.environ.get("DOCCHAIN_JSON", "").strip().lower() in _TRUE
        return cls(argv=argv, json=json_mode, verbose="--verbose" in argv or "-v" in argv, out=Output(json_mode))

    def set(self, name: str, value: Any, source: str) -> None:
        """A global option's value from ``source`` (a Click parameter source's name), unless a stronger
        source gave it already: the command line beats the environment; a default sets nothing."""
        rank = _RANK.get(source, 0)
        if rank == 0 or rank < _RANK.get(self.sources.get(name, "DEFAULT"), 0):
            return
        if name == "rpc":  # repeatable: a list (Click splits DOCCHAIN_RPC at whitespace)
            # URLs before the command and after it on one command line add up; the command line replaces
            # the environment's
            before = self.rpcs if source == "COMMANDLINE" == self.sources.get(name) else ()
            self.rpcs = (*before, *(value or ()))
            value = self.rpcs[0] if self.rpcs else None
        setattr(self, name, value)
        self.sources[name] = source
        if name == "json":
            self.out.json_mode = bool(value)
        elif name == "config_dir":
            self._config = None

    def explicit(self, name: str) -> bool:
        """Whether the option ``name`` was written on the command line (not taken from the environment)."""
        return self.sources.get(name) == "COMMANDLINE"

    # ------------------------------------------------------------------ places

    @property
    def config_path(self) -> Path:
        return self.config_dir if self.config_dir is not None else config.config_dir()

    @property
    def data_path(self) -> Path:
        """--data-dir / DOCCHAIN_DATA_DIR, else the one the running stack recorded, else the user data dir."""
        if self.data_dir is None and os.environ.get("DOCCHAIN_DATA_DIR") is None:
            record = self.recorded()
            if record is not None and record.data_dir:
                return Path(record.data_dir)
        return config.data_dir(self.data_dir)

    @property
    def keys_dir(self) -> Path:
        return self.config_path / "keys"

    @property
    def trusted_deployments(self) -> Path:
        """Where the registries this user's stack deployed are recorded as the ones to trust."""
        return self.config_path / config.DEPLOYMENTS_FILE

    @property
    def config(self) -> Config:
        """``config.toml`` of the config dir, read once; a malformed one is a usage error (exit 2)."""
        if self._config is None:
            self._config = Config.load(self.config_path)
        return self._config

    def recorded(self) -> StackRecord | None:
        return config.read_stack(self.config_path)

    # ------------------------------------------------------------------ settings

    def api_url(self) -> str:
        record = self.recorded()
        value = self.config.pick("api", self.api, None if record is None else record.api)
        return normalise_url(str(value), "the API URL (--api / DOCCHAIN_API)")

    def rpc_url(self) -> str:
        record = self.recorded()
        value = self.config.pick("rpc", self.rpc, None if record is None else record.rpc)
        return normalise_url(str(value), "the RPC URL (--rpc / DOCCHAIN_RPC)")

    def timeout_s(self) -> float:
        return float(self.config.pick("timeout", self.timeout))

    def retries_n(self) -> int:
        return int(self.config.pick("retries", self.retries))

    def api_client(self) -> ApiClient:
        from docchain.client.api_client import ApiClient

        return ApiClient(self.api_url(), timeout=self.timeout_s(), retries=self.retries_n())

    def signing_key(self, key: str | None, password_file: Path | None) -> keys.SigningKey:
        """The key to sign with, checked before any network call: the name exists, and a password given
        by file or environment opens it. A password that must be typed is asked later, by
        :meth:`~docchain.client.keys.SigningKey.unlock`, once the API or node has answered."""
        name = keys.default_key_name(self.config.pick("key", key), self.keys_dir)
        return keys.SigningKey.open(name, password_file, self.keys_dir)
