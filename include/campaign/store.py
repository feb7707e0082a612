"""Object storage over boto3: the campaign bucket on MinIO, AWS S3 or (in tests and the demo) a moto server.

The client comes from :class:`S3Settings`, built from an Airflow connection's fields (``login``,
``password``, ``extra`` with ``endpoint_url`` and ``region_name``) or from environment variables,
so this module never imports Airflow.

Every wait is bounded: a connection must open within ``connect_timeout`` seconds and every read
of an answer must progress within ``read_timeout`` seconds; transient faults (connection errors,
throttling, 5xx) are retried by botocore's "standard" retry mode, ``max_attempts`` tries in all,
with exponential backoff. A call that still fails raises :class:`StoreError` naming the action,
the object, the endpoint and the reason in plain words: no botocore or s3transfer exception leaves
this module.

Presigned links are signed with their own principals where the settings name them: upload links
with one that may only write ``<campaign>/submissions/``, download links with one that may only read
``<campaign>/releases/`` and ``<campaign>/public/`` (deploy/minio/ holds the policies). A link carries
its signer's access key id, and S3 checks the signer's policy when the link is used, so a link can
never reach beyond what its principal may do. Without such a principal the main credentials sign,
with a warning in the log.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator
from xml.etree import ElementTree

import boto3
import urllib3
from boto3.exceptions import Boto3Error
from botocore.client import Config
from botocore.compat import unquote_str
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

_CHUNK = 1024 * 1024
# What the store's calls may raise underneath; each becomes a StoreError.
_S3_FAULTS = (ClientError, BotoCoreError, Boto3Error)
# Faults while a GET's body streams in: botocore does not retry these, the store does.
_STREAM_FAULTS = (HTTPClientError, IncompleteReadError)  # read timeouts, resets, broken streams
log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """An object-store call failed; the message names the bucket, the key and the reason."""


class ObjectMissing(StoreError):
    """A read of a key that holds no object (``NoSuchKey``)."""


# --- settings ------------------------------------------------------------------------------------

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 3
# Connections kept per client: readers that fetch many small objects side by side (the Campaigns
# page uses 16 threads) would otherwise wait for botocore's default pool of 10.
MAX_POOL_CONNECTIONS = 32
# Requests one caller may have in flight at once (put_many, get_many_or_none): within the pool above.
PARALLEL_REQUESTS = 8
# connection extra field -> environment variable, for the bounds on every call
_BOUND_SOURCES = {
    "connect_timeout": "CLEF_S3_CONNECT_TIMEOUT",
    "read_timeout": "CLEF_S3_READ_TIMEOUT",
    "max_attempts": "CLEF_S3_MAX_ATTEMPTS",
}


def _bounds(extra: dict[str, Any], env) -> dict[str, Any]:
    """connect/read timeouts and attempts from the connection extra, else the environment, else defaults."""
    bounds: dict[str, Any] = {}
    for name, variable in _BOUND_SOURCES.items():
        value = extra.get(name)
        if value in (None, ""):
            value = env.get(variable)
        if value in (None, ""):
            continue
        try:
            number = int(value) if name == "max_attempts" else float(value)
        except (TypeError, ValueError):
            raise StoreError(f"S3 setting {name} (connection extra or {variable}) must be a number, got {value!r}") from None
        if number <= 0:
            raise StoreError(f"S3 setting {name} (connection extra or {variable}) must be positive, got {value!r}")
        bounds[name] = number
    return bounds


@dataclass(frozen=True)
class SigningKey:
    """Access key of a principal that signs one kind of presigned link."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


# link kind -> (connection extra fields, environment variables) holding its signer's key id and secret
SIGNER_SOURCES = {
    "upload": (("upload_access_key_id", "upload_secret_access_key"), ("CLEF_S3_UPLOAD_ACCESS_KEY_ID", "CLEF_S3_UPLOAD_SECRET_ACCESS_KEY")),
    "download": (("download_access_key_id", "download_secret_access_key"), ("CLEF_S3_DOWNLOAD_ACCESS_KEY_ID", "CLEF_S3_DOWNLOAD_SECRET_ACCESS_KEY")),
}


def _signers(extra: dict[str, Any], env) -> dict[str, SigningKey | None]:
    """``upload_signer`` and ``download_signer`` from the connection extra, else the environment."""
    found: dict[str, SigningKey | None] = {}
    for kind, (fields, variables) in SIGNER_SOURCES.items():
        key_id, secret = (extra.get(fields[0]) or env.get(variables[0]), extra.get(fields[1]) or env.get(variables[1]))
        found[f"{kind}_signer"] = SigningKey(key_id, secret) if key_id and secret else None
    return found


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None
    region_name: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    # bounds on every call (connection extra ``connect_timeout``/``read_timeout``/``max_attempts``
    # or CLEF_S3_CONNECT_TIMEOUT / CLEF_S3_READ_TIMEOUT / CLEF_S3_MAX_ATTEMPTS)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    # principals that sign presigned links (None: the main credentials sign, with a warning)
    upload_signer: SigningKey | None = None
    download_signer: SigningKey | None = None

    @classmethod
    def from_connection(cls, *, bucket: str, login: str | None, password: str | None, extra: dict[str, Any] | None, environ=None) -> "S3Settings":
        """From an Airflow ``aws`` connection's fields (the DAG layer reads the connection).

        The link signers come from the extra (``upload_access_key_id`` ...) or else from the
        environment (``CLEF_S3_UPLOAD_ACCESS_KEY_ID`` ..., see :data:`SIGNER_SOURCES`)."""
        extra = extra or {}
        return cls(
            bucket=extra.get("bucket", bucket),
            endpoint_url=extra.get("endpoint_url") or None,
            region_name=extra.get("region_name") or "us-east-1",
            access_key_id=login or extra.get("aws_access_key_id"),
            secret_access_key=password or extra.get("aws_secret_access_key"),
            **_bounds(extra, os.environ if environ is None else environ),
            **_signers(extra, os.environ if environ is None else environ),
        )

    @classmethod
    def from_connection_json(cls, text: str, bucket: str, environ=None) -> "S3Settings":
        """From the JSON form of an Airflow connection (``AIRFLOW_CONN_CLEF_S3``)."""
        data = json.loads(text)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return cls.from_connection(bucket=bucket, login=data.get("login"), password=data.get("password"), extra=extra, environ=environ)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "S3Settings":
        """From ``AIRFLOW_CONN_CLEF_S3`` if set, else ``CLEF_S3_ENDPOINT`` / ``AWS_*`` variables."""
        env = os.environ if environ is None else environ
        bucket = env.get("CLEF_BUCKET", "clef-campaign")
        if env.get("AIRFLOW_CONN_CLEF_S3", "").lstrip().startswith("{"):
            return cls.from_connection_json(env["AIRFLOW_CONN_CLEF_S3"], bucket, environ=env)
        return cls(
            bucket=bucket,
            endpoint_url=env.get("CLEF_S3_ENDPOINT") or None,
            region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
            access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            **_bounds({}, env),
            **_signers({}, env),
        )

    def client_config(self) -> Config:
        """Signature, path-style addressing, and the bounds on every call."""
        return Config(
            signature_version="s3v4",
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},  # tries in all, the first included
            s3={"addressing_style": "path"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )

    def client(self):
        try:
            return boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region_name,
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
                config=self.client_config(),
            )
        except (*_S3_FAULTS, ValueError) as exc:
            raise StoreError(f"cannot make an S3 client for {self.endpoint_url or 'AWS S3'}: {exc}") from None


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: Any  # aware datetime from the store's own clock
    etag: str
    version_id: str | None = None
    is_latest: bool = True


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_missing(exc: ClientError) -> bool:
    """Whether S3 answered that the key holds no object (GET says ``NoSuchKey``, HEAD just 404)."""
    return _error_code(exc) in ("404", "NoSuchKey", "NotFound")


def _http_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def explain(exc: BaseException, settings: S3Settings) -> str:
    """The reason a call failed, in words an organizer can act on (and how often it was tried)."""
    attempts = f" (after {settings.max_attempts} attempt(s))"
    if isinstance(exc, ConnectTimeoutError):
        return f"no connection within {settings.connect_timeout:g} s, is the endpoint up and reachable?{attempts}"
    if isinstance(exc, ReadTimeoutError):
        return f"no answer within {settings.read_timeout:g} s, the endpoint accepted the connection but hangs{attempts}"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect, connection refused or host unreachable{attempts}"
    if isinstance(exc, (ResponseStreamingError, IncompleteReadError)):
        return f"the connection broke while the object was being read{attempts}"
    if isinstance(exc, HTTPClientError):
        return f"the connection was closed or reset{attempts}"
    if isinstance(exc, ClientError):
        code, status = _error_code(exc), _http_status(exc)
        if status and status >= 500:
            named = f" {code}" if code and code != str(status) else ""
            return f"the endpoint answered HTTP {status}{named}{attempts}"
        return code or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _explain_http(exc: Exception, settings: S3Settings) -> str:
    """:func:`explain`'s words for a urllib3 failure (the quick listing's, :meth:`ObjectStore.scan`)."""
    reason = getattr(exc, "reason", None) or exc  # MaxRetryError carries the last failure
    attempts = f" (after {settings.max_attempts} attempt(s))"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a subclass of ConnectTimeoutError
        return f"cannot connect, connection refused or host unreachable{attempts}"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return f"no connection within {settings.connect_timeout:g} s, is the endpoint up and reachable?{attempts}"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return f"no answer within {settings.read_timeout:g} s, the endpoint accepted the connection but hangs{attempts}"
    return f"the connection was closed or reset{attempts}"


class ObjectStore:
    """The campaign bucket: reads, writes, create-once writes, listings, checksums and presigned links."""

    def __init__(self, settings: S3Settings, client=None):
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client or settings.client()
        self._signing_clients: dict[str, Any] = {}
        self._pool = urllib3.PoolManager(maxsize=MAX_POOL_CONNECTIONS)  # scan()'s connections

    def _fail(self, action: str, key: str, exc: BaseException) -> StoreError:
        where = self.settings.endpoint_url or "S3"
        return StoreError(f"cannot {action} s3://{self.bucket}/{key} at {where}: {explain(exc, self.settings)}")

    @contextmanager
    def _guard(self, action: str, key: str):
        """Turn whatever boto3 raises inside the block into a :class:`StoreError`."""
        try:
            yield
        except _S3_FAULTS as exc:
            raise self._fail(action, key, exc) from None

    def _read_streamed(self, action: str, key: str, version_id: str | None, consume: Callable[[Any], Any]) -> Any:
        """GET an object and hand its body to ``consume``; a body that breaks off is fetched again.

        botocore retries a request until its headers arrive, not a body that stops or breaks
        halfway, so the whole GET is repeated here, up to ``max_attempts`` times in all.
        """
        kwargs = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        for attempt in range(1, self.settings.max_attempts + 1):
            try:  # botocore has retried the request itself already
                body = self.client.get_object(**kwargs)["Body"]
            except ClientError as exc:
                error = ObjectMissing if _is_missing(exc) else StoreError
                raise error(str(self._fail(action, key, exc))) from None
            except _S3_FAULTS as exc:
                raise self._fail(action, key, exc) from None
            try:
                return consume(body)
            except _STREAM_FAULTS as exc:
                if attempt == self.settings.max_attempts:
                    raise self._fail(action, key, exc) from None
            except _S3_FAULTS as exc:
                raise self._fail(action, key, exc) from None
            finally:
                body.close()
        raise AssertionError("unreachable")

    # --- bucket ---------------------------------------------------------------------------------

    def ensure_bucket(self, versioning: bool = True) -> None:
        """Create the bucket if needed and turn versioning on (run collection relies on it)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _http_status(exc) not in (403, 404) and _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._fail("inspect bucket", "", exc) from None
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise self._fail("create bucket", "", exc) from None
            except _S3_FAULTS as exc:
                raise self._fail("create bucket", "", exc) from None
        except _S3_FAULTS as exc:
            raise self._fail("inspect bucket", "", exc) from None
        if versioning:
            with self._guard("turn on versioning of", ""):
                self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def versioning_status(self) -> str | None:
        """The bucket's versioning status ("Enabled", "Suspended"), or None if it was never turned on."""
        with self._guard("read the versioning of", ""):
            return self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")

    # --- writes ---------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream", metadata: dict[str, str] | None = None) -> str:
        """Write an object (overwriting); returns its version id (or "null" when unversioned)."""
        with self._guard("write", key):
            answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata or {})
        return answer.get("VersionId", "null")

    def put_json(self, key: str, value: Any) -> str:
        return self.put_bytes(key, dump_json(value), content_type="application/json")

    def put_many(self, objects: dict[str, tuple[bytes, str]]) -> None:
        """Write several objects (key -> (bytes, content type)) side by side: one request each, their
        round trips overlapped on a few threads. The first failure is raised once all have ended."""
        self._side_by_side(lambda item: self.put_bytes(item[0], item[1][0], content_type=item[1][1]), list(objects.items()))

    def create_once(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Write ``key`` only if no object is there yet (``If-None-Match: *``); False if it existed."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
        except ClientError as exc:
            if _error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or _http_status(exc) == 412:
                return False
            raise self._fail("create", key, exc) from None
        except _S3_FAULTS as exc:
            raise self._fail("create", key, exc) from None
        return True

    def create_json_once(self, key: str, value: Any) -> bool:
        return self.create_once(key, dump_json(value), content_type="application/json")

    def copy(self, source_key: str, target_key: str, source_version: str | None = None) -> None:
        source: dict[str, str] = {"Bucket": self.bucket, "Key": source_key}
        if source_version and source_version != "null":
            source["VersionId"] = source_version
        with self._guard(f"copy {source_key} to", target_key):
            self.client.copy_object(Bucket=self.bucket, Key=target_key, CopySource=source)

    def delete(self, key: str) -> None:
        with self._guard("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    # --- reads ----------------------------------------------------------------------------------

    def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        return self._read_streamed("read", key, version_id, lambda body: body.read())

    def get_bytes_at_most(self, key: str, limit: int) -> bytes:
        """The object's bytes, but never more than ``limit + 1`` of them (so a caller sees it is larger).

        The body is streamed and closed after ``limit + 1`` bytes: an object replaced by a huge one
        after it was listed costs no more than the limit to refuse.
        """
        return self._read_streamed("read", key, None, lambda body: body.read(limit + 1))

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def get_many_or_none(self, keys: list[str]) -> list[bytes | None]:
        """The bytes of each key (None where it holds no object), read side by side, in the order asked."""
        def read(key: str) -> bytes | None:
            try:
                return self.get_bytes(key)
            except ObjectMissing:
                return None

        return self._side_by_side(read, keys)

    def _side_by_side(self, call: Callable[[Any], Any], items: list) -> list:
        if len(items) <= 1:
            return [call(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(items))) as pool:
            futures = [pool.submit(call, item) for item in items]
        return [future.result() for future in futures]  # every call has ended; the first error is raised

    def get_json_or_none(self, key: str) -> Any | None:
        """The object's JSON, or None when the key holds no object: one GET, no HEAD before it."""
        try:
            return self.get_json(key)
        except ObjectMissing:
            return None

    def read_chunks(self, key: str, reader: Callable[[Iterator[bytes]], Any], version_id: str | None = None) -> Any:
        """``reader(chunks)`` over the object's 1 MiB chunks; returns what it returns.

        A body that breaks off is read again from the start with a fresh call of ``reader``, so
        ``reader`` must keep its state (a digest, say) in its own call.
        """
        return self._read_streamed("read", key, version_id, lambda body: reader(iter(lambda: body.read(_CHUNK), b"")))

    def download(self, key: str, path: str, version_id: str | None = None) -> None:
        extra = {"VersionId": version_id} if version_id and version_id != "null" else None
        with self._guard("download", key):
            self.client.download_file(self.bucket, key, str(path), ExtraArgs=extra)

    def download_with_sha256(self, key: str, path, version_id: str | None = None) -> str:
        """Stream an object to ``path`` in one GET, hashing it on the way (no second read)."""

        def write(body) -> str:
            digest = hashlib.sha256()
            with open(path, "wb") as handle:
                for chunk in iter(lambda: body.read(_CHUNK), b""):
                    digest.update(chunk)
                    handle.write(chunk)
            return digest.hexdigest()

        return self._read_streamed("download", key, version_id, write)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise self._fail("inspect", key, exc) from None
        except _S3_FAULTS as exc:
            raise self._fail("inspect", key, exc) from None
        return ObjectInfo(key, answer["ContentLength"], answer["LastModified"], answer["ETag"].strip('"'), answer.get("VersionId"))

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def sha256(self, key: str, version_id: str | None = None) -> str:
        """The sha256 of an object, streamed in 1 MiB chunks (runs may be large)."""

        def digest_of(body) -> str:
            digest = hashlib.sha256()
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
            return digest.hexdigest()

        return self._read_streamed("checksum", key, version_id, digest_of)

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every current object under ``prefix``, in key order."""
        with self._guard("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], item["Size"], item["LastModified"], item["ETag"].strip('"'))

    def scan(self, prefix: str, page_size: int = 1000) -> list[ObjectInfo]:
        """What :meth:`list_objects` gives, for listings of thousands of keys (the Campaigns page's).

        botocore's XML parser spends about a millisecond of CPU per listed key (timestamps, shapes,
        hooks): the Mail tab's 2,300 outbox markers cost it more than the server took to list them.
        Here each page is fetched through a listing URL the client presigns (so signing is boto3's),
        with the store's timeouts and bounded retries, and parsed with ElementTree. A page that
        ElementTree cannot read (a key with characters XML 1.0 forbids) falls back to
        :meth:`list_objects` for the whole prefix."""
        found: list[ObjectInfo] = []
        token = None
        while True:
            root = self._listing_page(prefix, token, page_size)
            if root is None:
                return list(self.list_objects(prefix))
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            # botocore asks for URL-encoded keys (EncodingType=url) and decodes them; so does this
            decode = unquote_str if root.findtext(f"{ns}EncodingType") == "url" else str
            for item in root.iterfind(f"{ns}Contents"):
                found.append(ObjectInfo(decode(item.findtext(f"{ns}Key")), int(item.findtext(f"{ns}Size") or 0),
                                        _iso_moment(item.findtext(f"{ns}LastModified")), (item.findtext(f"{ns}ETag") or "").strip('"')))
            token = root.findtext(f"{ns}NextContinuationToken")
            if root.findtext(f"{ns}IsTruncated") != "true" or not token:
                return found

    def _listing_page(self, prefix: str, token: str | None, page_size: int):
        """One ListObjectsV2 page as an ElementTree root (None when it is not well-formed XML)."""
        params = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": page_size, **({"ContinuationToken": token} if token else {})}
        with self._guard("list", prefix):
            url = self.client.generate_presigned_url("list_objects_v2", Params=params, ExpiresIn=300)
        retries = urllib3.Retry(total=self.settings.max_attempts - 1, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504), raise_on_status=False)
        timeout = urllib3.Timeout(connect=self.settings.connect_timeout, read=self.settings.read_timeout)
        try:
            answer = self._pool.request("GET", url, retries=retries, timeout=timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise StoreError(f"cannot list s3://{self.bucket}/{prefix} at {self.settings.endpoint_url or 'S3'}: {_explain_http(exc, self.settings)}") from None
        if answer.status != 200:
            code = re.search(rb"<Code>([^<]{1,100})</Code>", answer.data)
            named = f" {code.group(1).decode(errors='replace')}" if code else ""
            reason = (f"the endpoint answered HTTP {answer.status}{named} (after {self.settings.max_attempts} attempt(s))" if answer.status >= 500
                      else named.strip() or f"HTTP {answer.status}")
            raise StoreError(f"cannot list s3://{self.bucket}/{prefix} at {self.settings.endpoint_url or 'S3'}: {reason}")
        try:
            return ElementTree.fromstring(answer.data)
        except ElementTree.ParseError:
            return None

    def list_keys(self, prefix: str) -> list[str]:
        return [info.key for info in self.list_objects(prefix)]

    def list_folders(self, prefix: str) -> list[str]:
        """The names of the "folders" directly under ``prefix`` (common prefixes, without the slash)."""
        names = []
        with self._guard("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                names += [common["Prefix"][len(prefix):].rstrip("/") for common in page.get("CommonPrefixes", [])]
        return names

    def list_versions(self, prefix: str) -> list[ObjectInfo]:
        """Every version of every object under ``prefix`` (delete markers left out), oldest first per key."""
        versions: list[ObjectInfo] = []
        with self._guard("list versions of", prefix):
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Versions", []):
                    versions.append(
                        ObjectInfo(item["Key"], item["Size"], item["LastModified"], item["ETag"].strip('"'), item.get("VersionId"), item.get("IsLatest", False))
                    )
        # S3 lists each key's versions newest first; timestamps have only second resolution, so
        # keep the store's own order (reversed) rather than sorting by time.
        versions.reverse()
        versions.sort(key=lambda v: v.key)
        return versions

    # --- links ----------------------------------------------------------------------------------

    def presigned_get(self, key: str, expires_seconds: int) -> str:
        """A download link, signed by the download principal (read-only on releases/ and public/)."""
        with self._guard("sign a download link for", key):
            return self.signing_client("download").generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds)

    def presigned_post(self, key: str, max_bytes: int, expires_seconds: int, redirect_url: str | None = None) -> dict[str, Any]:
        """A browser form upload to exactly ``key``, refused by S3 or MinIO above ``max_bytes``.

        Returns ``{"url": ..., "fields": {...}}``; the signed policy holds the bucket, the key (an
        exact match: the uploader cannot choose another) and ``content-length-range`` 1..max_bytes.
        """
        fields: dict[str, str] = {}
        conditions: list[Any] = [["content-length-range", 1, int(max_bytes)]]
        if redirect_url:
            fields["success_action_redirect"] = redirect_url
            conditions.append({"success_action_redirect": redirect_url})
        with self._guard("sign an upload form for", key):  # signed by the upload principal, as presigned_put
            return self.signing_client("upload").generate_presigned_post(self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_seconds)

    def presigned_put(self, key: str, expires_seconds: int) -> str:
        """A URL a participant uploads to with ``curl -T FILE URL`` (no form encoding), signed by the
        upload principal (write-only on submissions/)."""
        with self._guard("sign an upload link for", key):
            return self.signing_client("upload").generate_presigned_url("put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds)

    def signing_client(self, kind: str):
        """The client that signs ``kind`` ("upload" or "download") links: the kind's own principal
        if the settings name one, else the main client (logged as a warning, once per store)."""
        if kind not in self._signing_clients:
            signer = getattr(self.settings, f"{kind}_signer")
            if signer is None:
                fields, variables = SIGNER_SOURCES[kind]
                log.warning("%s links for s3://%s are signed with the store's main credentials: no %s principal is configured "
                            "(connection extra %s/%s or %s/%s); a leaked link's signer can then do anything those credentials can",
                            kind.capitalize(), self.bucket, kind, *fields, *variables)
                self._signing_clients[kind] = self.client
            else:
                principal = replace(self.settings, access_key_id=signer.access_key_id, secret_access_key=signer.secret_access_key,
                                    upload_signer=None, download_signer=None)
                self._signing_clients[kind] = principal.client()
        return self._signing_clients[kind]


def _iso_moment(text: str | None):
    """A listing's ``LastModified`` (``2026-12-01T13:22:41.000Z``) as an aware datetime."""
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def dump_json(value: Any) -> bytes:
    """Stable JSON bytes (sorted keys) so that re-running a task writes identical objects."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
