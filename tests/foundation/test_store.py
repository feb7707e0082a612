"""The object-store layer against a real S3 endpoint (moto server) over HTTP."""
from __future__ import annotations

import hashlib
import urllib.request

import pytest

from include.campaign.layout import Layout, UnsafeKeyError, relative_path
from include.campaign.store import ObjectStore, S3Settings, StoreError


def test_written_object_is_read_back_over_http(store, s3_endpoint):
    key = Layout("demo").staging("topicto", "dev") + "data.json"
    store.put_json(key, {"hello": "world"})
    fresh = ObjectStore(store.settings)  # a second client: nothing cached
    assert fresh.get_json(key) == {"hello": "world"}
    assert fresh.settings.endpoint_url.startswith("http://127.0.0.1:")


def test_presigned_get_downloads_the_same_bytes(store):
    data = bytes(range(256)) * 100
    store.put_bytes("demo/releases/t/test/blob.bin", data)
    url = store.presigned_get("demo/releases/t/test/blob.bin", 600)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == data
    assert store.sha256("demo/releases/t/test/blob.bin") == hashlib.sha256(data).hexdigest()


def test_presigned_put_stores_an_upload(store):
    url = store.presigned_put("demo/submissions/t/team-1/run1.csv", 600)
    request = urllib.request.Request(url, data=b"ID,CUIs\n1,C1\n", method="PUT", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=10):
        pass
    assert store.get_bytes("demo/submissions/t/team-1/run1.csv") == b"ID,CUIs\n1,C1\n"


def test_second_create_once_write_is_refused(store):
    assert store.create_once("demo/outbox/x/y/z", b"first") is True
    assert store.create_once("demo/outbox/x/y/z", b"second") is False
    assert store.get_bytes("demo/outbox/x/y/z") == b"first"


def test_versions_are_listed_oldest_first(store):
    for body in (b"v1", b"v2", b"v3"):
        store.put_bytes("demo/submissions/t/team/run.csv", body)
    versions = store.list_versions("demo/submissions/t/team/")
    assert [store.get_bytes(v.key, v.version_id) for v in versions] == [b"v1", b"v2", b"v3"]
    assert versions[-1].is_latest and not versions[0].is_latest


def test_missing_object_and_dead_endpoint_give_clear_errors(store):
    assert store.head("demo/nothing") is None
    with pytest.raises(StoreError, match=r"cannot read s3://.*/demo/nothing at http://127\.0\.0\.1:\d+: NoSuchKey"):
        store.get_bytes("demo/nothing")
    dead = ObjectStore(S3Settings(bucket="b", endpoint_url="http://127.0.0.1:9", access_key_id="a", secret_access_key="b", max_attempts=1))
    with pytest.raises(StoreError, match=r"cannot write s3://b/k at http://127\.0\.0\.1:9"):
        dead.put_bytes("k", b"x")


def test_layout_refuses_keys_that_escape_their_prefix():
    layout = Layout("imageclef2025")
    assert layout.submissions("topicto", "team-7") == "imageclef2025/submissions/topicto/team-7/"
    assert layout.outbox("results", "results_release", "Ana@Example.org") == "imageclef2025/outbox/results/results_release/ana@example.org"
    for bad in ("../gold", "a/b", "", ".."):
        with pytest.raises(UnsafeKeyError):
            layout.submissions("topicto", bad)
    with pytest.raises(UnsafeKeyError):
        layout.releases("topicto", "train")


def test_a_key_under_a_prefix_becomes_a_local_path_only_if_it_stays_inside():
    prefix = "imageclef2025/gold/topicto/test/"
    assert relative_path(prefix, prefix + "images/a.png", "gold object") == "images/a.png"
    for bad in ("../x.csv", "images/../../x.csv", "/etc/passwd"):
        with pytest.raises(UnsafeKeyError, match="gold object .* has an unsafe name"):
            relative_path(prefix, prefix + bad, "gold object")


def test_settings_from_an_airflow_connection_json():
    settings = S3Settings.from_connection_json('{"conn_type": "aws", "login": "k", "password": "s", "extra": {"endpoint_url": "http://minio:9000"}}', bucket="clef")
    assert (settings.endpoint_url, settings.access_key_id, settings.secret_access_key, settings.bucket) == ("http://minio:9000", "k", "s", "clef")
    assert "s'" not in repr(settings)


def test_the_quick_listing_gives_what_the_listing_gives(store):
    keys = [f"demo/outbox/p/m/{n:03d}.json" for n in range(23)] + ["demo/outbox/p/a&b <c> 'd\" ü é+%20.json", "demo/outbox/p/with space/x.json"]
    for key in keys + ["demo/elsewhere.json"]:
        store.put_bytes(key, b'{"n": 1}')
    quick = store.scan("demo/outbox/", page_size=7)  # four pages
    assert quick == list(store.list_objects("demo/outbox/"))
    assert sorted(info.key for info in quick) == sorted(keys)
    assert store.scan("demo/nothing-here/") == []


def test_an_object_that_may_be_absent_costs_one_get(store):
    store.put_json("demo/present.json", {"here": True})
    calls = []
    store.client.meta.events.register("before-call.s3", lambda model, **kwargs: calls.append(model.name))
    assert store.get_json_or_none("demo/present.json") == {"here": True}
    assert store.get_json_or_none("demo/absent.json") is None
    assert calls == ["GetObject", "GetObject"]
    with pytest.raises(StoreError, match="NoSuchBucket"):
        ObjectStore(S3Settings(bucket="no-such-bucket-here", endpoint_url=store.settings.endpoint_url, access_key_id="k", secret_access_key="s")).scan("demo/")
