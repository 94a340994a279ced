"""The API's configuration: one pydantic-settings class, every field an env var ``DOCCHAIN_<NAME>``.

There is no default secret: the relayer key comes from ``DOCCHAIN_RELAYER_KEY`` or from an encrypted
keystore (``DOCCHAIN_RELAYER_KEYSTORE`` + ``DOCCHAIN_RELAYER_PASSWORD_FILE``); the embedded dev stack
passes anvil's well-known dev key explicitly.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from docchain.api.lifecycle import Anchoring
from docchain.chain.errors import InvalidInput

log = logging.getLogger("docchain.api.settings")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCCHAIN_", env_file=".env", extra="ignore")

    _relayer_key: bytes | None = PrivateAttr(None)  # once read (see relayer_private_key)

    rpc_url: str = Field("http://127.0.0.1:8545", description="Ethereum JSON-RPC endpoint")
    chain_id: int | None = Field(
        None, ge=1, description="expected chain id: refuse to bind to a node of another chain; unset: any"
    )
    data_dir: Path = Field(Path("./.docchain"), description="deployments.json, SQLite database, stored documents")
    database_url: str | None = Field(None, description="SQLAlchemy async URL; default SQLite (WAL) in data_dir")
    storage_dir: Path | None = Field(None, description="content-addressed document store; default data_dir/documents")
    # Where stored documents are kept (README, "Choosing storage"): the first backend holds a document before
    # its submission is accepted, the others receive copies through the replication outbox.
    storage: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["local"],
        description="comma-separated backends (local, s3, ipfs); the first holds a document before it is accepted",
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, R2, ...); unset: AWS")
    s3_bucket: str | None = Field(None, description="bucket of the s3 backend (required when it is used)")
    s3_region: str | None = Field(None, description="bucket region; unset: AWS_REGION / AWS_DEFAULT_REGION")
    s3_prefix: str = Field("", description="key prefix of stored documents in the bucket")
    s3_access_key_id: str | None = Field(None, description="unset: the standard AWS variables and config files")
    s3_secret_access_key: SecretStr | None = Field(None, description="goes with DOCCHAIN_S3_ACCESS_KEY_ID")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="bucket in the path or in the host name (MinIO: path)"
    )
    ipfs_api_url: str = Field("http://127.0.0.1:5001", description="kubo's HTTP RPC API (never expose it publicly)")
    ipfs_gateway_url: str | None = Field(None, description="an IPFS gateway, shown to clients for reading by CID")
    # below the CLI's patience for an upload (client/api_client.py UPLOAD_TIMEOUT_S): a hung first backend is
    # answered 503 while the client still waits, not after it gave up and resent
    ipfs_timeout_s: float = Field(15.0, gt=0, description="kubo RPC calls: connect and idle read timeout")
    relayer_key: SecretStr | None = Field(None, description="hex private key of the relayer (pays gas)")
    relayer_keystore: Path | None = Field(None, description="encrypted JSON keystore of the relayer")
    relayer_password_file: Path | None = Field(None, description="file holding the keystore's password")
    registry_address: str | None = Field(None, description="registry address; default from deployments.json")
    deployment_block: int | None = Field(None, description="where the indexer starts when registry_address is set")
    envelopes_address: str | None = Field(
        None, description="the envelopes contract beside DOCCHAIN_REGISTRY_ADDRESS; default from deployments.json"
    )
    confirmations: int = Field(2, ge=1, le=1000, description="blocks on top of an anchor before it is confirmed")
    batch_size: int = Field(200, ge=1, le=500, description="submissions per registerBatch transaction")
    batch_interval_ms: int = Field(200, ge=1, description="flush a partial batch after this long")
    anchoring: Anchoring = Field(
        Anchoring.DIRECT,
        description="how a submission that names no anchoring goes on chain: direct (its own record) or merkle "
        "(a leaf of a tree whose root alone is written)",
    )
    # A root costs the same gas whatever the tree's size; the bound keeps one tree's rows, proofs and the
    # transaction that writes them to a size one database commit holds comfortably.
    merkle_max_leaves: int = Field(1024, ge=1, le=100_000, description="close a Merkle tree at this many leaves")
    merkle_max_wait_ms: int = Field(
        2000, ge=1, description="or once its oldest pending leaf has waited this long (milliseconds)"
    )
    poll_interval_ms: int = Field(200, ge=10, description="indexer / receipt polling period while busy")
    head_poll_ms: int = Field(2000, ge=10, description="idle: how often the node's latest block is read")
    idle_poll_s: float = Field(
        10.0, gt=0, description="idle: the safety poll of the outbox and the index, should a wake-up be lost"
    )
    reread_s: float = Field(
        2.0, gt=0, description="long-polls and event streams re-read the database this often, should a wake-up be lost"
    )
    resend_after_s: float = Field(30.0, gt=0, description="re-broadcast a sent transaction not mined after this")
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1, description="upload size limit (413 above)")
    # Each part of a request has its own bound (docs/operations.md, "Limits"), so that neither a slow client
    # nor a large field holds a connection, memory or the database's disk for long.
    max_metadata_bytes: int = Field(
        16 * 1024, ge=2, le=1024 * 1024, description="metadata limit: its canonical JSON in bytes (413 above)"
    )
    # nginx's client_header_timeout: long enough for a client whose process is busy (a load test's 240
    # connections on a saturated host took over 10 s to send a first byte), short enough to bound a trickle
    header_timeout_s: float = Field(
        60.0, gt=0, description="a request's line and headers must arrive within this (408, then closed)"
    )
    body_timeout_s: float = Field(
        120.0, gt=0, description="a request's body must arrive within this once its headers have (408, then closed)"
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated keys required (X-API-Key) on write endpoints; empty: open"
    )
    # The relayer pays gas for every relayed write (POST /v1/documents, /v1/revocations): limits per client
    # (its API key, or its address where keys are off) and per signer, as hosted relayers set them. The
    # defaults are far above one person's or one application's use; 0 turns a limit off.
    key_rate_per_minute: int = Field(600, ge=0, description="relayed writes per minute per API key (client address)")
    key_burst: int = Field(0, ge=0, description="writes a key may send at once (token bucket); 0: the per-minute rate")
    key_daily_quota: int = Field(10_000, ge=0, description="new relayed writes per UTC day per API key")
    signer_rate_per_minute: int = Field(60, ge=0, description="new relayed writes per minute per signer")
    signer_burst: int = Field(0, ge=0, description="a signer's burst (token bucket); 0: the per-minute rate")
    signer_daily_quota: int = Field(1_000, ge=0, description="new relayed writes per UTC day per signer")
    relayer_min_balance_wei: int = Field(
        10**16, ge=0, description="below this balance (wei) relayed writes are refused (503); 0: never"
    )
    log_file: Path | None = Field(None, description="JSON log file, in addition to stdout")
    log_level: str = Field("INFO")
    max_fee_cap_gwei: float | None = Field(None, description="cap on maxFeePerGas")
    longpoll_max_s: float = Field(60.0, gt=0)
    otel: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry (to the globally configured providers); off by default: "
        "its per-request check of the providers costs ~6.5 us even with none configured",
    )
    workers: int = Field(1, ge=1, le=64, description="API processes serving the port (python -m docchain.api)")
    pipeline: Literal["process", "inline", "off"] = Field(
        "process", description="where the anchoring worker and indexer run: child process, in-process, or not here"
    )

    # ------------------------------------------------------------ envelope notifications (api/notifications/)
    public_url: str | None = Field(
        None,
        description="the web page's address as people reach it (signing links in e-mails, envelope links); "
        "unset: the address the request came to",
    )
    webhook_allow_private: bool = Field(
        False, description="accept webhook URLs on loopback or private addresses (tests, a receiver on this host)"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=60, description="one webhook delivery attempt's whole timeout")
    webhooks_per_envelope: int = Field(
        8, ge=1, le=100, description="webhooks one envelope may have: each is called once per change, and retried"
    )
    mail_interval_s: float = Field(
        3600.0,
        ge=0,
        description="the least time between two e-mails (invitation or reminder) to one signer of an envelope",
    )
    smtp_host: str | None = Field(None, description="SMTP server for invitations and reminders; unset: no e-mail")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_from: str | None = Field(None, description="the From address of invitations and reminders")
    smtp_starttls: bool = Field(True, description="upgrade the SMTP connection with STARTTLS before sending")
    smtp_user: str | None = Field(None, description="SMTP login (with DOCCHAIN_SMTP_PASSWORD); unset: none")
    smtp_password: SecretStr | None = Field(None, description="goes with DOCCHAIN_SMTP_USER")
    smtp_timeout_s: float = Field(15.0, gt=0, le=120, description="one SMTP conversation's socket timeout")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [k.strip() for k in text.split(",") if k.strip()]
        return value

    @field_validator("storage", mode="before")
    @classmethod
    def _split_storage(cls, value: object) -> object:
        # checked when the backends are built (api/storage/replicas.py), with a message naming the setting
        if isinstance(value, str):
            return [name.strip().lower() for name in value.split(",") if name.strip()]
        return value

    @field_validator(
        "s3_endpoint_url",
        "s3_bucket",
        "s3_region",
        "s3_access_key_id",
        "s3_secret_access_key",
        "ipfs_gateway_url",
        "smtp_host",
        "smtp_from",
        "smtp_user",
        "smtp_password",
        "public_url",
        "envelopes_address",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # ``NAME=`` (an env file's placeholder, compose's ``${X:-}``) sets nothing: half an S3 key pair given
        # that way is then refused, naming the missing half, instead of signing with an empty secret
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("chain_id", mode="before")
    @classmethod
    def _empty_chain_id(cls, value: object) -> object:
        # ``DOCCHAIN_CHAIN_ID=`` (docker-compose's ``${CHAIN_ID:-}`` when CHAIN_ID is unset) means "any chain"
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _relayer_source(self) -> Settings:
        if self.relayer_keystore is not None and self.relayer_password_file is None:
            raise ValueError("DOCCHAIN_RELAYER_KEYSTORE needs DOCCHAIN_RELAYER_PASSWORD_FILE")
        return self

    @model_validator(mode="after")
    def _smtp_complete(self) -> Settings:
        if self.smtp_host is not None and self.smtp_from is None:
            raise ValueError("DOCCHAIN_SMTP_HOST needs DOCCHAIN_SMTP_FROM (the invitations' sender)")
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("DOCCHAIN_SMTP_USER and DOCCHAIN_SMTP_PASSWORD go together")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'docchain.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "documents"

    @property
    def spool_dir(self) -> Path:
        """Sealed documents waiting for their IPFS copy, and documents read back before they are served."""
        return self.data_dir / "spool"

    def relayer_private_key(self) -> bytes:
        """The relayer's key, read once per process; :class:`InvalidInput` when none is configured (there is no
        default). A keystore's scrypt costs ~256 MiB and ~1 s a time: the start-up check, the preflight and the
        app each asked for the key, three decryptions (371 MiB peak, 3.8 s)."""
        if self._relayer_key is None:
            self._relayer_key = self._read_relayer_key()
        return self._relayer_key

    def given_relayer_key(self, key: bytes) -> None:
        """The key as another process of this service read it (``--workers``: the supervisor decrypted the
        keystore and hands the key over a pipe), so this one needs no decryption of its own."""
        self._relayer_key = key

    def _read_relayer_key(self) -> bytes:
        if self.relayer_key is not None:
            from docchain.chain.values import parse_hex

            return parse_hex(self.relayer_key.get_secret_value(), length=32, what="DOCCHAIN_RELAYER_KEY")
        if self.relayer_keystore is not None and self.relayer_password_file is not None:
            from eth_account import Account

            password = self.relayer_password_file.read_text().rstrip("\n")
            started = time.perf_counter()
            key = bytes(Account.decrypt(json.loads(self.relayer_keystore.read_text()), password))
            # counted by tests/api/test_keystore.py; never the key, nor anything derived from it
            ms = round((time.perf_counter() - started) * 1000)
            log.debug("relayer keystore decrypted", extra={"pid": os.getpid(), "ms": ms})
            return key
        raise InvalidInput(
            "no relayer key: set DOCCHAIN_RELAYER_KEY or DOCCHAIN_RELAYER_KEYSTORE + DOCCHAIN_RELAYER_PASSWORD_FILE"
        )


def setting_problems(exc: ValidationError) -> list[str]:
    """One line per bad setting, in the words an operator typed: the environment variable (the field's name is
    pydantic's), the value given and what is allowed."""
    lines = []
    for error in exc.errors():
        allowed = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "it must be")
        if not error["loc"]:  # a rule across settings: its message names the variables
            lines.append(allowed)
            continue
        variable = f"{Settings.model_config.get('env_prefix', '')}{error['loc'][0]}".upper()
        value = error.get("input")
        given = f"{value!r:.60}" if isinstance(value, str) else f"{value!s:.60}"
        lines.append(f"{variable}={given} is not allowed: {allowed}")
    return lines
