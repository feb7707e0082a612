#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own). Idempotent: apt-get runs only when /usr/bin/chromium is missing.
#
# Usage: scripts/install_chromium.sh
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then sudo=(sudo); else
        echo "install_chromium: need root (or sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
