"""deploy/minio/init.sh, the script docker-compose's minio-init runs, executed by bash.

No MinIO binary can be installed here, so `mc` is a small stand-in on PATH that keeps MinIO's state
(policies, users, attachments) in a folder and answers like mc does, including refusing a second
attachment with "already in effect". What is checked is the script's own work: which users and
policies it creates from .env's values, that each policy file reaches MinIO with the bucket's name
filled in, that a second run succeeds without changing anything, and that a missing value stops it.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deployment_files import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "deploy" / "minio" / "init.sh"

# `mc` as far as init.sh uses it, with its state in $MC_STATE.
FAKE_MC = r"""#!/bin/bash
set -euo pipefail
state=$MC_STATE
echo "$*" >>"$state/calls"
case "$1 ${2:-} ${3:-}" in
  "alias set clef") echo "$5 $6" >"$state/alias" ;;
  "admin policy create") cp "$6" "$state/policy-$5.json" ;;
  "admin user add") echo "$6" >"$state/user-$5" ;;
  "admin policy attach")
    if [[ -e "$state/attached-$7-$5" ]]; then
      echo "mc: <ERROR> Unable to make user/group policy association. The specified policy change is already in effect." >&2
      exit 1
    fi
    [[ -e "$state/user-$7" ]] || { echo "mc: <ERROR> user $7 does not exist" >&2; exit 1; }
    touch "$state/attached-$7-$5" ;;
  *) echo "fake mc: unexpected $*" >&2; exit 2 ;;
esac
"""

ENVIRONMENT = {
    "MINIO_URL": "http://minio:9000", "MINIO_ROOT_USER": "root-user", "MINIO_ROOT_PASSWORD": "root-password",
    "CLEF_BUCKET": "lab-campaigns",
    "CLEF_S3_UPLOAD_ACCESS_KEY_ID": "clefupload01", "CLEF_S3_UPLOAD_SECRET_ACCESS_KEY": "upload-secret-value",
    "CLEF_S3_DOWNLOAD_ACCESS_KEY_ID": "clefdownload01", "CLEF_S3_DOWNLOAD_SECRET_ACCESS_KEY": "download-secret-value",
}


@pytest.fixture
def minio(tmp_path) -> dict:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "mc").write_text(FAKE_MC)
    (bin_dir / "mc").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "MC_STATE": str(state), **ENVIRONMENT}
    return {"env": env, "state": state}


def run_init(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_creates_both_signers_with_their_policies_for_the_bucket(minio):
    result = run_init(minio["env"])
    assert result.returncode == 0, result.stderr
    state = minio["state"]
    assert (state / "alias").read_text().split() == ["root-user", "root-password"]
    assert (state / "user-clefupload01").read_text().strip() == "upload-secret-value"
    assert (state / "user-clefdownload01").read_text().strip() == "download-secret-value"
    assert (state / "attached-clefupload01-clef-upload").exists() and (state / "attached-clefdownload01-clef-download").exists()
    for policy, source in (("clef-upload", "upload-policy.json"), ("clef-download", "download-policy.json")):
        sent = json.loads((state / f"policy-{policy}.json").read_text())
        template = (PROJECT_ROOT / "deploy" / "minio" / source).read_text()
        assert sent == json.loads(template.replace("@CLEF_BUCKET@", "lab-campaigns"))
        assert all(resource.startswith("arn:aws:s3:::lab-campaigns/") for statement in sent["Statement"] for resource in statement["Resource"])
    assert "clefupload01 signs with policy clef-upload on bucket lab-campaigns" in result.stdout


def test_a_second_run_succeeds_and_changes_nothing(minio):
    assert run_init(minio["env"]).returncode == 0
    before = {path.name: path.read_bytes() for path in minio["state"].iterdir() if path.name != "calls"}
    second = run_init(minio["env"])
    assert second.returncode == 0, second.stderr
    assert {path.name: path.read_bytes() for path in minio["state"].iterdir() if path.name != "calls"} == before


def test_a_failing_mc_call_stops_the_script(minio):
    (minio["state"] / "user-clefupload01").mkdir()  # the stand-in cannot record the user: its "user add" fails
    result = run_init(minio["env"])
    assert result.returncode != 0
    assert not (minio["state"] / "attached-clefupload01-clef-upload").exists(), "no policy attached after the failure"
    assert not (minio["state"] / "user-clefdownload01").exists(), "it stopped at the first failure"


@pytest.mark.parametrize("missing", ["CLEF_S3_UPLOAD_SECRET_ACCESS_KEY", "CLEF_S3_DOWNLOAD_ACCESS_KEY_ID", "CLEF_BUCKET"])
def test_a_missing_value_stops_it_before_any_change(minio, missing):
    env = {key: value for key, value in minio["env"].items() if key != missing}
    result = run_init(env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert not (minio["state"] / "calls").exists(), "nothing was sent to MinIO"


def test_the_script_is_executable_in_the_repository():
    assert os.access(SCRIPT, os.X_OK)
    assert Path(SCRIPT).read_text().startswith("#!/bin/bash\n")
