#!/usr/bin/env bash
# Install R and its mclust package (Debian packages) for the test that checks the R-free
# mclust against R's own on the same rows (tests/test_mclust.py); rpy2 comes from the
# project's `r` extra.  As root; does nothing when R's mclust already loads.
set -euo pipefail
if command -v Rscript >/dev/null && Rscript -e 'library(mclust)' >/dev/null 2>&1; then
    echo "r-up: R with mclust present"
    exit 0
fi
apt-get update -qq
# r-base-dev: R's headers and a compiler, which building rpy2 needs.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq r-base-core r-base-dev r-cran-mclust >/dev/null
Rscript -e 'library(mclust); cat("r-up: mclust", as.character(packageVersion("mclust")), "\n")'
