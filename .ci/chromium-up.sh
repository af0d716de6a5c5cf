#!/usr/bin/env bash
# Install Debian's chromium, with which tests/test_report_page.py opens the report's first page in a
# real headless browser and reads the summary table from the live DOM.  As root; does nothing when
# a chromium is present.
set -euo pipefail
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    echo "chromium-up: present"
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
echo "chromium-up: installed"
