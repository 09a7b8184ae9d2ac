#!/usr/bin/env bash
# Draws the NBD WRITE latency histogram of a `handoff serve --jfr FILE` recording, one curve per
# window of its mirror job (alone, copy, after READY), and where each window's time went, as a PNG
# (dev.handoff.bench.jfr.LatencyHistogram); prints the figures it drew.
#
#   bench/jfr-histogram.sh serve.jfr latency.png ['TITLE']
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 2 ] || { echo "usage: bench/jfr-histogram.sh RECORDING.jfr OUT.png [TITLE]" >&2; exit 2; }
jar="$root/bench/target/benchmarks.jar"
if [ ! -f "$jar" ]; then
  echo "jfr-histogram: building bench/target/benchmarks.jar..." >&2
  (cd "$root" && mvn -q -B -pl bench -am package -DskipTests -Djcstress.skip=true) >&2
fi
exec java -Djava.awt.headless=true -cp "$jar" dev.handoff.bench.jfr.LatencyHistogram "$@"
