#!/usr/bin/env bash
# Runs the broken-variant catalog: every variant must be caught by its checks (see README.md).
# Needs the Maven repository already filled (it builds offline), e.g. by a prior `mvn -B verify`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec java mutants/RunCatalog.java "$@"
