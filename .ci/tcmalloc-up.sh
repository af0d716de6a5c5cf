#!/usr/bin/env bash
# Install tcmalloc (gperftools' libtcmalloc_minimal, a Debian package), which the DAG preloads
# into its jobs with STCORE_MALLOC=tcmalloc (rules/common.smk), so that the tests run jobs under
# it and check that it changes no number.  As root; does nothing when the library is present.
set -euo pipefail
# (grep without -q reads all of ldconfig's output: no SIGPIPE under pipefail)
if ldconfig -p | grep libtcmalloc_minimal >/dev/null; then
    echo "tcmalloc-up: present"
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtcmalloc-minimal4 >/dev/null
ldconfig -p | grep libtcmalloc_minimal >/dev/null
echo "tcmalloc-up: installed"
