#!/usr/bin/env bash
# Fuzzes one target for fuzz.duration (properties/pom.xml; FUZZ_DURATION=60s overrides it) in a JVM
# of its own, on the classes and class path a prior build left in properties/target (`mvn -B verify`,
# or `mvn -B -pl properties -am package -DskipTests`). It does what
#   mvn -B -pl properties verify -Pfuzz -Dtest='MirrorFuzzTest#mirror'
# does (JAZZER_FUZZ=1, jazzer.max_duration, surefire's JVM flags and JUnit timeout, this folder as
# the working directory, so the generated corpus lands in .cifuzz-corpus/ and a crash in the
# target's src/test/resources/<package>/<Class>Inputs/<method>/ folder), without Maven's start-up,
# a build, or the install that the Maven run needs first.
# Usage: properties/fuzz.sh MirrorFuzzTest#mirror   (MirrorFuzzTest#bitmap, OwnershipFuzzTest#ownership)
# Exits 0 when the target ran its time without a crash, 1 on a crash, 2 when it did not run.
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -ne 1 ] || [[ "$1" != *#* ]]; then
  echo "usage: properties/fuzz.sh CLASS#METHOD, e.g. MirrorFuzzTest#mirror" >&2
  exit 2
fi
class=${1%%#*}
method=${1#*#}
source=$(find src/test/java -name "$class.java" | head -n 1)
if [ -z "$source" ]; then
  echo "no fuzz target class $class under properties/src/test/java" >&2
  exit 2
fi
fqcn=$(echo "${source#src/test/java/}" | sed 's:\.java$::; s:/:.:g')
if [ ! -f target/test-classpath.txt ] || [ ! -f "target/test-classes/${fqcn//.//}.class" ]; then
  echo "properties is not built: run mvn -B -pl properties -am package -DskipTests first" >&2
  exit 2
fi
duration=${FUZZ_DURATION:-$(sed -n 's:.*<fuzz.duration>\(.*\)</fuzz.duration>.*:\1:p' pom.xml)}
export JAZZER_FUZZ=1
exec java -Djava.io.tmpdir=target -XX:-OmitStackTraceInFastThrow -Djazzer.max_duration="$duration" \
  -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --disable-ansi-colors \
  --details=summary --fail-if-no-tests \
  --config=junit.jupiter.execution.timeout.default=2m --config=junit.jupiter.execution.timeout.mode=enabled \
  --select-class="$fqcn" --include-methodname="\Q$fqcn\E[#.]\Q$method\E(\(.*)?"
