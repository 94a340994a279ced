"""The S3 backend: documents as objects ``<prefix><hex hash>`` in a bucket of any S3-compatible service (AWS,
MinIO, Ceph, R2, ...), through boto3.

**Writing.** The document streams through :class:`~docchain.api.storage.hashing.VerifyingReader` into boto3's
managed upload (``upload_fileobj``): one PUT below :data:`PART_SIZE`, a multipart upload above it. The object
appears under its key only when the PUT is sent or the multipart upload completed, and both happen only after
the reader reached the end of the stream, which it refuses to do unless the bytes hash to the document's
key; on that refusal (or any other error) s3transfer aborts the multipart upload, deleting its parts. So
nothing is ever visible under a document's key that does not hash to it, without the temporary object and
server-side copy that checking after the upload would need (which would also double the bucket's traffic),
and without S3's own SHA-256 checksums, which for multipart uploads cover the parts, not the whole object.
An upload cut short by a crash stays as an invisible incomplete multipart upload: a bucket lifecycle rule
(``AbortIncompleteMultipartUpload``) reclaims it.

**Memory.** A non-seekable source makes s3transfer hold each part in memory until it is sent: at most
:data:`PARTS_IN_MEMORY` parts, plus the one read meanwhile and the reader's copy of it, so an upload holds
about five parts at its peak whatever the document's size. Reads stream the object in
:data:`~docchain.api.storage.base.CHUNK` pieces.

**Errors.** botocore's errors become the storage errors: an unreachable endpoint, a timeout or a 5xx is
:class:`BackendUnavailable` (timeouts of seconds, few retries: the replication outbox retries later), a
missing object :class:`NotStored`, and what no retry can fix (unknown bucket, missing or refused
credentials, malformed endpoint) :class:`StorageMisconfigured` naming the ``DOCCHAIN_S3_*`` setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, NoReturn, TypeVar

import boto3
import botocore.exceptions as boto_errors
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from pydantic import SecretStr
from urllib3.exceptions import HTTPError as Urllib3Error

from docchain.api.storage.base import (
    CHUNK,
    BackendUnavailable,
    NotStored,
    Placement,
    StorageError,
    StorageMisconfigured,
)
from docchain.api.storage.hashing import VerifyingReader, verified

__all__ = ["S3Config", "S3Storage"]

NAME = "s3"
# S3's smallest part (but the last): parts are what an upload holds in memory; 10,000 of them reach 48 GiB
PART_SIZE = 5 << 20
PARTS_IN_MEMORY = 2  # read ahead of the uploads in flight; each holds a part in memory
UPLOAD_THREADS = 2  # parts in flight: on a loopback or LAN link two keep the wire busy, more only cost memory

AddressingStyle = Literal["auto", "path", "virtual"]
T = TypeVar("T")


@dataclass(frozen=True)
class S3Config:
    """Where the S3 backend keeps documents; the fields are the ``DOCCHAIN_S3_*`` settings (api/settings.py).

    ``endpoint_url`` unset means AWS itself; ``region`` unset lets boto3 take it from ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION`` / the config file. Credentials unset (both) likewise come from the standard AWS
    chain: the environment, ``~/.aws``, an instance or container role. ``addressing_style`` ``path`` puts the
    bucket in the URL's path, which MinIO and most self-hosted services expect."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = ""
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    addressing_style: AddressingStyle = "auto"
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 60.0
    max_attempts: int = 3  # per request, the first included: a dead endpoint is reported within seconds

    def __post_init__(self) -> None:
        if not self.bucket:
            raise StorageMisconfigured(NAME, "DOCCHAIN_S3_BUCKET", "the s3 backend needs a bucket")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise StorageMisconfigured(
                NAME,
                "DOCCHAIN_S3_ACCESS_KEY_ID" if self.access_key_id is None else "DOCCHAIN_S3_SECRET_ACCESS_KEY",
                "an access key id and its secret go together: set both, or neither to use the AWS credential chain",
            )


class S3Storage:
    """Implements :class:`~docchain.api.storage.base.Backend` on one bucket. Thread-safe (one boto3 client,
    which is): the API calls it from worker threads."""

    name = NAME

    def __init__(self, config: S3Config) -> None:
        self.config = config
        secret = config.secret_access_key.get_secret_value() if config.secret_access_key is not None else None
        self._session = boto3.session.Session(
            aws_access_key_id=config.access_key_id, aws_secret_access_key=secret, region_name=config.region
        )
        client_config = Config(
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            retries={"max_attempts": config.max_attempts, "mode": "standard"},
            s3={"addressing_style": config.addressing_style},
        )
        try:
            self._client: Any = self._session.client("s3", endpoint_url=config.endpoint_url, config=client_config)
        except ValueError as exc:  # botocore: "Invalid endpoint: ..."
            raise StorageMisconfigured(NAME, "DOCCHAIN_S3_ENDPOINT_URL", str(exc)) from exc
        except boto_errors.BotoCoreError as exc:
            raise StorageMisconfigured(NAME, "DOCCHAIN_S3_REGION", str(exc)) from exc
        self._transfer = TransferConfig(
            multipart_threshold=PART_SIZE,
            multipart_chunksize=PART_SIZE,
            max_concurrency=UPLOAD_THREADS,
            use_threads=True,
            preferred_transfer_client="classic",  # the CRT client (if awscrt is installed) has its own buffering
        )
        # s3transfer's own setting, which boto3's constructor does not take: the parts read ahead of the uploads
        self._transfer.max_in_memory_upload_chunks = PARTS_IN_MEMORY

    def key(self, doc_hash: bytes) -> str:
        return f"{self.config.prefix}{doc_hash.hex()}"

    def _where(self) -> str:
        return f"bucket {self.config.bucket!r}" + (
            f" at {self.config.endpoint_url}" if self.config.endpoint_url else ""
        )

    # ------------------------------------------------------------ Backend

    def check(self) -> None:
        """The credentials resolve and the bucket answers a HeadBucket with them."""
        if self._session.get_credentials() is None:
            raise StorageMisconfigured(
                NAME,
                "DOCCHAIN_S3_ACCESS_KEY_ID",
                "no S3 credentials: set DOCCHAIN_S3_ACCESS_KEY_ID and DOCCHAIN_S3_SECRET_ACCESS_KEY "
                "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile or role)",
            )
        self._call(lambda: self._client.head_bucket(Bucket=self.config.bucket), "reach")

    def put(self, doc_hash: bytes, stream: BinaryIO) -> Placement:
        key = self.key(doc_hash)
        reader = VerifyingReader(stream, doc_hash, block=CHUNK)
        self._call(
            lambda: self._client.upload_fileobj(
                reader,
                self.config.bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": doc_hash.hex()}},
                Config=self._transfer,
            ),
            f"store {key} in",
        )
        return Placement(NAME, key, reader.size)

    def open(self, doc_hash: bytes, placement: Placement) -> Iterator[bytes]:
        key = placement.locator
        response = self._call(
            lambda: self._client.get_object(Bucket=self.config.bucket, Key=key), f"read {key} from", key=key
        )
        return verified(NAME, doc_hash, self._body(response["Body"], key))

    def exists(self, doc_hash: bytes, placement: Placement) -> bool:
        key = placement.locator
        try:
            self._call(
                lambda: self._client.head_object(Bucket=self.config.bucket, Key=key), f"look up {key} in", key=key
            )
        except NotStored:
            return False
        return True

    def remove(self, doc_hash: bytes, placement: Placement) -> None:
        key = placement.locator  # S3 answers 204 for a missing key too
        self._call(lambda: self._client.delete_object(Bucket=self.config.bucket, Key=key), f"delete {key} from")

    # ------------------------------------------------------------ errors

    def _body(self, body: Any, key: str) -> Iterator[bytes]:
        """The object's bytes; a connection lost midway is :class:`BackendUnavailable` (the caller may read
        another copy), not a library error."""
        try:
            yield from body.iter_chunks(CHUNK)
        except (boto_errors.BotoCoreError, Urllib3Error, OSError) as exc:
            raise BackendUnavailable(NAME, f"reading {key} from {self._where()} failed: {exc}") from exc
        finally:
            body.close()

    def _call(self, call: Callable[[], T], doing: str, *, key: str | None = None) -> T:
        try:
            return call()
        except StorageError:
            raise
        except boto_errors.ClientError as exc:
            self._client_error(exc, doing, key)
        except (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError) as exc:
            raise StorageMisconfigured(
                NAME, "DOCCHAIN_S3_ACCESS_KEY_ID", f"cannot {doing} {self._where()}: {exc}"
            ) from exc
        except (boto_errors.NoRegionError, boto_errors.InvalidRegionError) as exc:
            raise StorageMisconfigured(NAME, "DOCCHAIN_S3_REGION", f"cannot {doing} {self._where()}: {exc}") from exc
        except (boto_errors.BotoCoreError, Urllib3Error, OSError) as exc:
            # EndpointConnectionError, timeouts, connections closed: down or unreachable for now
            raise BackendUnavailable(NAME, f"cannot {doing} {self._where()}: {exc}") from exc

    def _client_error(self, exc: boto_errors.ClientError, doing: str, key: str | None) -> NoReturn:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = f"cannot {doing} {self._where()}: {code or status} {error.get('Message', '')}".rstrip()
        if code == "NoSuchBucket" or (key is None and status == 404):  # HeadBucket answers a bare 404
            raise StorageMisconfigured(NAME, "DOCCHAIN_S3_BUCKET", f"no such bucket: {detail}") from exc
        if code in ("NoSuchKey", "NotFound") or status == 404:
            raise NotStored(NAME, f"no object {key} in {self._where()}") from exc
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403") or status == 403:
            raise StorageMisconfigured(NAME, "DOCCHAIN_S3_ACCESS_KEY_ID", f"credentials refused: {detail}") from exc
        if code == "AuthorizationHeaderMalformed":  # the request was signed for another region than the bucket's
            raise StorageMisconfigured(NAME, "DOCCHAIN_S3_REGION", detail) from exc
        if status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
            raise BackendUnavailable(NAME, detail) from exc
        raise StorageError(NAME, detail) from exc
