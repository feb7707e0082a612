"""Object storage over boto3: the campaign bucket on MinIO, AWS S3 or (in tests and the demo) a moto server.

The client comes from :class:`S3Settings`, built from an Airflow connection's fields (``login``,
``password``, ``extra`` with ``endpoint_url`` and ``region_name``) or from environment variables,
so this module never imports Airflow. Transient faults (connection errors, throttling, 5xx) are
retried by botocore's "standard" retry mode with exponential backoff.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError

_CHUNK = 1024 * 1024


class StoreError(RuntimeError):
    """An object-store call failed; the message names the bucket, the key and the reason."""


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None
    region_name: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    max_attempts: int = 5

    @classmethod
    def from_connection(cls, *, bucket: str, login: str | None, password: str | None, extra: dict[str, Any] | None) -> "S3Settings":
        """From an Airflow ``aws`` connection's fields (the DAG layer reads the connection)."""
        extra = extra or {}
        return cls(
            bucket=extra.get("bucket", bucket),
            endpoint_url=extra.get("endpoint_url") or None,
            region_name=extra.get("region_name") or "us-east-1",
            access_key_id=login or extra.get("aws_access_key_id"),
            secret_access_key=password or extra.get("aws_secret_access_key"),
        )

    @classmethod
    def from_connection_json(cls, text: str, bucket: str) -> "S3Settings":
        """From the JSON form of an Airflow connection (``AIRFLOW_CONN_CLEF_S3``)."""
        data = json.loads(text)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return cls.from_connection(bucket=bucket, login=data.get("login"), password=data.get("password"), extra=extra)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "S3Settings":
        """From ``AIRFLOW_CONN_CLEF_S3`` if set, else ``CLEF_S3_ENDPOINT`` / ``AWS_*`` variables."""
        env = os.environ if environ is None else environ
        bucket = env.get("CLEF_BUCKET", "clef-campaign")
        if env.get("AIRFLOW_CONN_CLEF_S3", "").lstrip().startswith("{"):
            return cls.from_connection_json(env["AIRFLOW_CONN_CLEF_S3"], bucket)
        return cls(
            bucket=bucket,
            endpoint_url=env.get("CLEF_S3_ENDPOINT") or None,
            region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
            access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": self.max_attempts, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )


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


class ObjectStore:
    """The campaign bucket: reads, writes, create-once writes, listings, checksums and presigned links."""

    def __init__(self, settings: S3Settings, client=None):
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client or settings.client()

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        reason = _error_code(exc) if isinstance(exc, ClientError) else str(exc)
        where = self.settings.endpoint_url or "S3"
        return StoreError(f"cannot {action} s3://{self.bucket}/{key} at {where}: {reason or exc}")

    # --- bucket ---------------------------------------------------------------------------------

    def ensure_bucket(self, versioning: bool = True) -> None:
        """Create the bucket if needed and turn versioning on (run collection relies on it)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise self._fail("create bucket", "", exc) from None
        if versioning:
            self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    # --- writes ---------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream", metadata: dict[str, str] | None = None) -> str:
        """Write an object (overwriting); returns its version id (or "null" when unversioned)."""
        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata or {})
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("write", key, exc) from None
        return answer.get("VersionId", "null")

    def put_json(self, key: str, value: Any) -> str:
        return self.put_bytes(key, dump_json(value), content_type="application/json")

    def create_once(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Write ``key`` only if no object is there yet (``If-None-Match: *``); False if it existed."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
        except ClientError as exc:
            if _error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 412:
                return False
            raise self._fail("create", key, exc) from None
        except BotoCoreError as exc:
            raise self._fail("create", key, exc) from None
        return True

    def create_json_once(self, key: str, value: Any) -> bool:
        return self.create_once(key, dump_json(value), content_type="application/json")

    def copy(self, source_key: str, target_key: str, source_version: str | None = None) -> None:
        source: dict[str, str] = {"Bucket": self.bucket, "Key": source_key}
        if source_version and source_version != "null":
            source["VersionId"] = source_version
        try:
            self.client.copy_object(Bucket=self.bucket, Key=target_key, CopySource=source)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"copy {source_key} to", target_key, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("delete", key, exc) from None

    # --- reads ----------------------------------------------------------------------------------

    def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        kwargs = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        try:
            return self.client.get_object(**kwargs)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("read", key, exc) from None

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def download(self, key: str, path: str, version_id: str | None = None) -> None:
        extra = {"VersionId": version_id} if version_id and version_id != "null" else None
        try:
            self.client.download_file(self.bucket, key, str(path), ExtraArgs=extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("download", key, exc) from None

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("inspect", key, exc) from None
        return ObjectInfo(key, answer["ContentLength"], answer["LastModified"], answer["ETag"].strip('"'), answer.get("VersionId"))

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def sha256(self, key: str, version_id: str | None = None) -> str:
        """The sha256 of an object, streamed in 1 MiB chunks (runs may be large)."""
        kwargs = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        digest = hashlib.sha256()
        try:
            body = self.client.get_object(**kwargs)["Body"]
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("checksum", key, exc) from None
        return digest.hexdigest()

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every current object under ``prefix``, in key order."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], item["Size"], item["LastModified"], item["ETag"].strip('"'))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", prefix, exc) from None

    def list_keys(self, prefix: str) -> list[str]:
        return [info.key for info in self.list_objects(prefix)]

    def list_versions(self, prefix: str) -> list[ObjectInfo]:
        """Every version of every object under ``prefix`` (delete markers left out), oldest first per key."""
        paginator = self.client.get_paginator("list_object_versions")
        versions: list[ObjectInfo] = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Versions", []):
                    versions.append(
                        ObjectInfo(item["Key"], item["Size"], item["LastModified"], item["ETag"].strip('"'), item.get("VersionId"), item.get("IsLatest", False))
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list versions of", prefix, exc) from None
        # S3 lists each key's versions newest first; timestamps have only second resolution, so
        # keep the store's own order (reversed) rather than sorting by time.
        versions.reverse()
        versions.sort(key=lambda v: v.key)
        return versions

    # --- links ----------------------------------------------------------------------------------

    def presigned_get(self, key: str, expires_seconds: int) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds)

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
        try:
            return self.client.generate_presigned_post(self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_seconds)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("sign an upload form for", key, exc) from None

    def presigned_put(self, key: str, expires_seconds: int) -> str:
        """A URL a participant uploads to with ``curl -T FILE URL`` (no form encoding)."""
        return self.client.generate_presigned_url("put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds)


def dump_json(value: Any) -> bytes:
    """Stable JSON bytes (sorted keys) so that re-running a task writes identical objects."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
