"""deploy/ensure_bucket.py against the moto S3 server on loopback: bucket made, versioned, idempotent."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3

from deploy.ensure_bucket import main
from devtools.devstack import create_bucket, s3_connection_json
from tests.deploy.deployment_files import PROJECT_ROOT


def environ_for(endpoint: str, bucket: str) -> dict[str, str]:
    connection = s3_connection_json(endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    return {"AIRFLOW_CONN_CLEF_S3": connection, "CLEF_BUCKET": bucket}


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def test_a_new_bucket_is_created_with_versioning(s3_endpoint, bucket_name, capsys):
    assert main(environ_for(s3_endpoint, bucket_name)) == 0
    assert s3_client(s3_endpoint).get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"
    assert f"s3://{bucket_name} at {s3_endpoint} is ready, versioning enabled." in capsys.readouterr().out


def test_an_existing_bucket_gets_versioning_and_keeps_its_objects(s3_endpoint, bucket_name):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket_name)
    client.put_object(Bucket=bucket_name, Key="imageclef2025/submissions/x/run.csv", Body=b"a")
    environ = environ_for(s3_endpoint, bucket_name)
    assert main(environ) == 0
    assert main(environ) == 0  # a restarted init changes nothing
    assert client.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"
    assert client.get_object(Bucket=bucket_name, Key="imageclef2025/submissions/x/run.csv")["Body"].read() == b"a"


def test_the_demo_makes_its_bucket_with_the_same_function(s3_endpoint, bucket_name):
    create_bucket(s3_endpoint, bucket_name)
    create_bucket(s3_endpoint, bucket_name)  # a second demo start on the same server changes nothing
    assert s3_client(s3_endpoint).get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"


def test_a_missing_or_broken_connection_is_one_clear_line(capsys):
    assert main({"CLEF_BUCKET": "b"}) == 1
    assert "AIRFLOW_CONN_CLEF_S3 must hold the `clef_s3` connection as JSON" in capsys.readouterr().err
    assert main({"AIRFLOW_CONN_CLEF_S3": '{"conn_type": "aws", "login": ', "CLEF_BUCKET": "b"}) == 1
    assert "AIRFLOW_CONN_CLEF_S3 is not valid JSON" in capsys.readouterr().err


def test_a_store_that_refuses_is_named_without_a_traceback(s3_endpoint, capsys):
    # A two-letter name is below S3's minimum: the store answers InvalidBucketName.
    assert main(environ_for(s3_endpoint, "ab")) == 1
    error = capsys.readouterr().err
    assert error.startswith("ensure_bucket: ") and "s3://ab" in error and s3_endpoint in error
    assert "InvalidBucketName" in error and "Traceback" not in error


def test_the_script_runs_as_airflow_init_runs_it(s3_endpoint, bucket_name):
    """`python deploy/ensure_bucket.py` with PYTHONPATH at the project root, as in the image."""
    environment = {**os.environ, **environ_for(s3_endpoint, bucket_name), "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "deploy" / "ensure_bucket.py")], env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "versioning enabled" in result.stdout
    assert json.loads(environment["AIRFLOW_CONN_CLEF_S3"])["extra"]["endpoint_url"] == s3_endpoint
