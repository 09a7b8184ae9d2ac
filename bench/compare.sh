#!/usr/bin/env bash
# Side-by-side comparison: Handoff vs QEMU's mirror job (qemu-storage-daemon blockdev-mirror) vs
# cp + sync on one 1 GiB random raw image in the page cache, with and without a guest writing
# through each one's NBD export. Prints medians and ratios; docs/BENCHMARKS.md explains the table.
#
#   bench/compare.sh                      # the full run (about 12-20 minutes on 2 cores after the build)
#   bench/compare.sh --rounds 3 --nbd-rounds 1 --write-sizes 4096   # a shorter one
#   bench/compare.sh --only bulk          # no NBD part
#   bench/compare.sh --only tls           # only the cost of TLS on the NBD exports (fio, QD1 and QD16)
#   bench/compare.sh --only fio           # fio (nbd engine) as the guest of both mirrors (bench/fio/guest.fio)
#   bench/compare.sh --report out.txt     # also write the output to a file
#
# Builds the command-line jar and the benchmark jar first (Maven), and installs QEMU's tools
# (qemu-utils, qemu-system-common) with apt-get if they are missing. Everything it starts is
# stopped and every file it writes is deleted when it ends, also on Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v qemu-storage-daemon >/dev/null 2>&1 || ! command -v qemu-img >/dev/null 2>&1; then
  echo "compare: installing qemu-utils and qemu-system-common (qemu-img, qemu-storage-daemon)..." >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y -q qemu-utils qemu-system-common >&2 \
    || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q qemu-utils qemu-system-common >&2; }
fi
if ! command -v fio >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  echo "compare: installing fio (its nbd engine is the guest of the fio and TLS parts) and openssl..." >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y -q fio openssl >&2 \
    || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q fio openssl >&2; }
fi
command -v mvn >/dev/null 2>&1 || { echo "compare: Maven (mvn) is needed to build the jars" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "compare: Java 17 or newer is needed" >&2; exit 1; }

echo "compare: building cli/target/handoff.jar and bench/target/benchmarks.jar..." >&2
(cd "$root" && mvn -q -B -pl cli,bench -am package -DskipTests -Djcstress.skip=true) >&2

exec java -cp "$root/bench/target/benchmarks.jar" dev.handoff.bench.compare.Compare \
  --handoff-jar "$root/cli/target/handoff.jar" --fio-job "$root/bench/fio/guest.fio" "$@"
