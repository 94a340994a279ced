"""The S3 backend: documents as objects ``<prefix><hex hash>`` in a bucket of any S3-compatible service (AWS,
MinIO, Ceph, R2, ...), through boto3.

**Writing.** The document streams through :class:`~docchain.api.storage.hashing.VerifyingReader`: one PUT
when it fits in :data:`PART_SIZE`, a multipart upload otherwise. An object appears under its key only when
the PUT is sent or the multipart upload is completed, and both happen only once the reader has reached the
end of the stream, which it refuses to do unless the bytes hash to the document's key; on that refusal (or
any other error) the multipart upload is aborted, deleting its parts. So nothing ever becomes visible under a
document's key that does not hash to it, without the temporary object and server-side copy that checking
after the upload would need (twice the bucket's traffic), and without S3's own checksums, which for a
multipart upload cover SHA-256 only part by part. An upload cut short by a crash stays as an invisible
incomplete multipart upload, which a bucket lifecycle rule (``AbortIncompleteMultipartUpload``) reclaims.

**Memory.** The parts are sent from a small loop rather than boto3's ``upload_fileobj``: with a non-seekable
source, s3transfer reads parts ahead of its upload threads and holds each until it is sent (up to its
read-ahead, the parts in flight and the one being read), whereas this loop reads a part only when one of its
:data:`UPLOAD_THREADS` slots is free, so an upload holds at most that many parts, the one being read
included, whatever the document's size. Reads stream the object in :data:`~docchain.api.storage.base.CHUNK`
pieces.

**Errors.** botocore's errors become the storage errors: an unreachable endpoint, a timeout or a 5xx is
:class:`BackendUnavailable` (timeouts of seconds, few retries: the replication outbox retries later), a
missing object :class:`NotStored`, and what no retry can fix (unknown bucket, missing or refused
credentials, malformed endpoint) :class:`StorageMisconfigured` naming the ``DOCCHAIN_S3_*`` setting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, NoReturn, TypeVar

import boto3
import botocore.exceptions as boto_errors
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
UPLOAD_THREADS = 4  # parts in memory at once: sent while the next one is read

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
        # botocore adds CRC32 checksums to uploads unless configured not to (request_checksum_calculation):
        # a multipart upload then declares the algorithm at its start and lists each part's checksum at its end
        calculation = self._client.meta.config.request_checksum_calculation
        self._checksum = "CRC32" if calculation == "when_supported" else None

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
        reader = VerifyingReader(stream, doc_hash)
        metadata = {"sha256": doc_hash.hex()}
        if reader.fits(PART_SIZE):  # the whole document is read, and it hashed right: one request
            self._call(
                lambda: self._client.put_object(
                    Bucket=self.config.bucket, Key=key, Body=reader.read(), Metadata=metadata
                ),
                f"store {key} in",
            )
        else:
            self._multipart(key, reader, metadata)
        return Placement(NAME, key, reader.size)

    def _multipart(self, key: str, reader: VerifyingReader, metadata: dict[str, str]) -> None:
        """Upload the document in parts to ``key``, completing the upload only once the reader has reached
        the end of the stream (so the bytes hashed to the key); abort it, deleting the parts, otherwise."""
        bucket = self.config.bucket
        checksum = {"ChecksumAlgorithm": self._checksum} if self._checksum else {}
        created = self._call(
            lambda: self._client.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata, **checksum),
            f"start uploading {key} to",
        )
        upload_id: str = created["UploadId"]
        try:
            parts = self._parts(key, upload_id, reader)
            self._call(
                lambda: self._client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
                f"complete {key} in",
            )
        except BaseException:
            with contextlib.suppress(StorageError):  # the bucket's lifecycle rule reclaims it otherwise
                self._call(
                    lambda: self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id),
                    f"abort the upload of {key} to",
                )
            raise

    def _parts(self, key: str, upload_id: str, reader: VerifyingReader) -> list[dict[str, Any]]:
        """Send the parts, :data:`UPLOAD_THREADS` at a time; a part is read only once a slot is free, so no more
        than that many parts are in memory, the one being read included."""
        done: list[dict[str, Any]] = []
        with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="s3-upload") as pool:
            sending: set[Future[dict[str, Any]]] = set()
            number, body = 1, reader.read(PART_SIZE)
            while body:
                sending.add(pool.submit(self._part, key, upload_id, number, body))
                body = b""
                while len(sending) >= UPLOAD_THREADS:
                    finished, sending = wait(sending, return_when=FIRST_COMPLETED)
                    done += [future.result() for future in finished]
                body = reader.read(PART_SIZE)
                number += 1
            done += [future.result() for future in sending]
        return sorted(done, key=lambda part: int(part["PartNumber"]))

    def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        checksum = {"ChecksumAlgorithm": self._checksum} if self._checksum else {}
        sent = self._call(
            lambda: self._client.upload_part(
                Bucket=self.config.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **checksum
            ),
            f"store part {number} of {key} in",
        )
        part = {"PartNumber": number, "ETag": sent["ETag"]}
        if self._checksum and f"Checksum{self._checksum}" in sent:
            part[f"Checksum{self._checksum}"] = sent[f"Checksum{self._checksum}"]
        return part

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
