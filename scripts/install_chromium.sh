#!/usr/bin/env bash
# Installs Debian's chromium, which the web demo's browser test drives through
# Playwright (Playwright's own browser download is not used), unless present.
set -euo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium
