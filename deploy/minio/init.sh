#!/bin/bash
# The link-signing principals of the bundled MinIO: docker-compose's `minio-init` runs this once, in
# the MinIO image (it ships `mc`), before airflow-init.
#
#   upload user   (CLEF_S3_UPLOAD_ACCESS_KEY_ID)    policy clef-upload:   s3:PutObject on <bucket>/*/submissions/*
#   download user (CLEF_S3_DOWNLOAD_ACCESS_KEY_ID)  policy clef-download: s3:GetObject on <bucket>/*/releases/* and */public/*
#
# The policies are upload-policy.json and download-policy.json beside this file, with @CLEF_BUCKET@
# replaced by the bucket's name. Presigned links carry their signer's access key id, and MinIO
# checks that user's policy when a participant uses the link: an upload link cannot read anything or
# write outside submissions/, a download link cannot read gold, staging or anyone's runs.
# Running it again updates the policies and secrets and changes nothing else.
set -euo pipefail

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${CLEF_BUCKET:?}"
: "${CLEF_S3_UPLOAD_ACCESS_KEY_ID:?}" "${CLEF_S3_UPLOAD_SECRET_ACCESS_KEY:?}"
: "${CLEF_S3_DOWNLOAD_ACCESS_KEY_ID:?}" "${CLEF_S3_DOWNLOAD_SECRET_ACCESS_KEY:?}"
here=$(dirname "$0")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mc alias set clef "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

# principal <access key id> <secret> <policy name> <policy file>
principal() {
  local user=$1 secret=$2 policy=$3 template text output
  template=$(<"$here/$4")
  text=${template//@CLEF_BUCKET@/$CLEF_BUCKET}
  printf '%s\n' "$text" >"$work/$policy.json"
  mc admin policy create clef "$policy" "$work/$policy.json" >/dev/null
  mc admin user add clef "$user" "$secret" >/dev/null
  # attaching a policy twice is refused with "already in effect": that is the state we want
  if ! output=$(mc admin policy attach clef "$policy" --user "$user" 2>&1) && [[ $output != *"already"* ]]; then
    echo "minio-init: cannot attach $policy to $user: $output" >&2
    return 1
  fi
  echo "minio-init: $user signs with policy $policy on bucket $CLEF_BUCKET"
}

principal "$CLEF_S3_UPLOAD_ACCESS_KEY_ID" "$CLEF_S3_UPLOAD_SECRET_ACCESS_KEY" clef-upload upload-policy.json
principal "$CLEF_S3_DOWNLOAD_ACCESS_KEY_ID" "$CLEF_S3_DOWNLOAD_SECRET_ACCESS_KEY" clef-download download-policy.json
