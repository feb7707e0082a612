"""The link signers' policies (deploy/minio/*-policy.json) on an S3 that enforces IAM: each principal can
do its one job and nothing else.

MinIO policies are IAM policy documents, so the same files are loaded, as inline user policies, into
a moto server that enforces IAM: ``INITIAL_NO_AUTH_ACTION_COUNT`` lets the first requests (creating
the bucket, the users and their keys) through unchecked and checks every request after them against
the caller's policies. It runs as its own process on loopback so that no other test's moto server
enforces anything.

What moto cannot do: check a presigned (query-string) request against IAM; with enforcement on it
answers such a request with a 500 (it looks for an ``Authorization`` header). So the principals act
here with header-signed requests, which S3 and MinIO authorise exactly as they authorise the same
principal's presigned link; ``test_link_signers.py`` shows that each kind of link carries its
principal's access key id.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.client import Config
from botocore.exceptions import ClientError

from include.campaign.store import ObjectStore, S3Settings, SigningKey
from devtools.devstack import free_port
from tests.deploy.deployment_files import PROJECT_ROOT

POLICY_DIR = PROJECT_ROOT / "deploy" / "minio"
BUCKET = "clef-policy-test"
CAMPAIGN = "imageclef2025"
ROOT = SigningKey("AKIAROOTCLEFTEST0001", "root-secret")  # not an IAM user: only lets the setup through
# Requests the server serves unchecked; the setup needs fewer, the rest are spent probing (below).
UNCHECKED_REQUESTS = 60
CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1})

OBJECTS = {
    "submissions": f"{CAMPAIGN}/submissions/caption-prediction/team-a/run-01",
    "releases": f"{CAMPAIGN}/releases/caption-prediction/test/images.zip",
    "public": f"{CAMPAIGN}/public/leaderboards/caption-prediction/leaderboard.html",
    "gold": f"{CAMPAIGN}/gold/caption-prediction/test/gold.csv",
    "staging": f"{CAMPAIGN}/staging/caption-prediction/test/images.zip",
    "registrations": f"{CAMPAIGN}/registrations/teams/team-a.json",
    "collected": f"{CAMPAIGN}/collected/caption-prediction/team-a/run-01",
}


def rendered_policy(name: str) -> str:
    """The policy file as deploy/minio/init.sh hands it to MinIO, for this test's bucket."""
    return (POLICY_DIR / name).read_text(encoding="utf-8").replace("@CLEF_BUCKET@", BUCKET)


def client(endpoint: str, service: str, key: SigningKey):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key.access_key_id,
                        aws_secret_access_key=key.secret_access_key, config=CONFIG)


def wait_until_up(endpoint: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto server at {endpoint} did not answer within {timeout} s")


def create_principal(iam, name: str, policy_file: str) -> SigningKey:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=rendered_policy(policy_file))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return SigningKey(key["AccessKeyId"], key["SecretAccessKey"])


def spend_unchecked_requests(s3) -> None:
    """Probe with an unknown key until the server starts refusing it: from then on IAM is enforced."""
    for _ in range(UNCHECKED_REQUESTS + 1):
        try:
            s3.head_bucket(Bucket=BUCKET)
        except ClientError:
            return
    raise AssertionError("the moto server never started enforcing IAM")


@pytest.fixture(scope="module")
def enforcing_s3(tmp_path_factory):
    """(endpoint, upload principal, download principal) on a moto server that enforces IAM."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto-iam") / "server.log").open("w")
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(UNCHECKED_REQUESTS))
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(endpoint, process)
        root_s3, iam = client(endpoint, "s3", ROOT), client(endpoint, "iam", ROOT)
        root_s3.create_bucket(Bucket=BUCKET)
        for key in OBJECTS.values():
            root_s3.put_object(Bucket=BUCKET, Key=key, Body=b"existing")
        upload = create_principal(iam, "clef-upload", "upload-policy.json")
        download = create_principal(iam, "clef-download", "download-policy.json")
        spend_unchecked_requests(client(endpoint, "s3", SigningKey("AKIAUNKNOWNPRINCIPAL", "nothing")))
        yield endpoint, upload, download
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def denied(action) -> bool:
    try:
        action()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in ("AccessDenied", "403")
    return False


def test_the_upload_principal_writes_runs_under_submissions(enforcing_s3):
    endpoint, upload, _ = enforcing_s3
    s3 = client(endpoint, "s3", upload)
    s3.put_object(Bucket=BUCKET, Key=f"{CAMPAIGN}/submissions/gans-detection/team-b/run-02", Body=b"a run")
    s3.put_object(Bucket=BUCKET, Key=OBJECTS["submissions"], Body=b"a new version")


@pytest.mark.parametrize("area", ["releases", "public", "gold", "staging", "registrations", "collected"])
def test_the_upload_principal_cannot_write_outside_submissions(enforcing_s3, area):
    endpoint, upload, _ = enforcing_s3
    s3 = client(endpoint, "s3", upload)
    assert denied(lambda: s3.put_object(Bucket=BUCKET, Key=OBJECTS[area], Body=b"overwritten")), f"upload principal wrote {area}/"


@pytest.mark.parametrize("area", list(OBJECTS))
def test_the_upload_principal_reads_nothing(enforcing_s3, area):
    endpoint, upload, _ = enforcing_s3
    s3 = client(endpoint, "s3", upload)
    assert denied(lambda: s3.get_object(Bucket=BUCKET, Key=OBJECTS[area])), f"upload principal read {area}/"
    assert denied(lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{CAMPAIGN}/"))


@pytest.mark.parametrize("area", ["releases", "public"])
def test_the_download_principal_reads_releases_and_public(enforcing_s3, area):
    endpoint, _, download = enforcing_s3
    assert client(endpoint, "s3", download).get_object(Bucket=BUCKET, Key=OBJECTS[area])["Body"].read()


@pytest.mark.parametrize("area", ["submissions", "gold", "staging", "registrations", "collected"])
def test_the_download_principal_cannot_read_anything_else(enforcing_s3, area):
    endpoint, _, download = enforcing_s3
    assert denied(lambda: client(endpoint, "s3", download).get_object(Bucket=BUCKET, Key=OBJECTS[area])), f"download principal read {area}/"


@pytest.mark.parametrize("area", list(OBJECTS))
def test_the_download_principal_writes_nothing(enforcing_s3, area):
    endpoint, _, download = enforcing_s3
    assert denied(lambda: client(endpoint, "s3", download).put_object(Bucket=BUCKET, Key=OBJECTS[area], Body=b"x")), f"download principal wrote {area}/"


def test_the_store_signs_each_kind_of_link_with_the_principal_whose_policy_allows_it(enforcing_s3):
    """The store's signing clients act as the configured principals: each may do what its links do."""
    endpoint, upload, download = enforcing_s3
    settings = S3Settings(bucket=BUCKET, endpoint_url=endpoint, access_key_id=ROOT.access_key_id, secret_access_key=ROOT.secret_access_key,
                          upload_signer=upload, download_signer=download)
    store = ObjectStore(settings)
    uploader, downloader = store.signing_client("upload"), store.signing_client("download")
    uploader.put_object(Bucket=BUCKET, Key=OBJECTS["submissions"], Body=b"through the upload signer")
    assert downloader.get_object(Bucket=BUCKET, Key=OBJECTS["releases"])["Body"].read() == b"existing"
    assert denied(lambda: uploader.get_object(Bucket=BUCKET, Key=OBJECTS["gold"]))
    assert denied(lambda: downloader.get_object(Bucket=BUCKET, Key=OBJECTS["gold"]))
    assert denied(lambda: downloader.put_object(Bucket=BUCKET, Key=OBJECTS["submissions"], Body=b"x"))


def test_the_policies_are_valid_iam_documents_naming_only_the_bucket_placeholder():
    for name in ("upload-policy.json", "download-policy.json"):
        document = json.loads((POLICY_DIR / name).read_text(encoding="utf-8"))
        assert document["Version"] == "2012-10-17"
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert all(not action.endswith("*") for action in statement["Action"]), f"{name}: a wildcard action"
            assert all(resource.startswith("arn:aws:s3:::@CLEF_BUCKET@/*/") for resource in statement["Resource"]), name


def test_the_aws_policies_in_the_docs_are_the_policy_files_for_the_default_bucket():
    for path in (PROJECT_ROOT / "README.md", PROJECT_ROOT / "docs" / "cluster.md"):
        text = path.read_text(encoding="utf-8")
        section = text[text.index("### Link signers on AWS"):]
        section = section[:section.index("\n### ", 1)]
        documented = [json.loads(block.split("```", 1)[0]) for block in section.split("```json\n")[1:]]
        expected = [json.loads((POLICY_DIR / name).read_text(encoding="utf-8").replace("@CLEF_BUCKET@", "clef-campaign"))
                    for name in ("upload-policy.json", "download-policy.json")]
        assert documented == expected, f"{path.name}: the AWS policies differ from deploy/minio/"
