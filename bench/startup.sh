#!/usr/bin/env bash
# Start-up cost of the `handoff` command, A B interleaved: `handoff --help`, a 64 MiB mirror and a
# 1 GiB mirror (end to end: process start to exit), each with the JVM's defaults, with C1 only
# (-XX:TieredStopAtLevel=1), with an AppCDS archive of the jar's classes (-XX:SharedArchiveFile,
# made here as the launcher makes it: the class lists of a training mirror and of --help
# (-XX:DumpLoadedClassList), archived by -Xshare:dump with the jar on the class path; a static
# archive, which unlike JDK 17's dynamic one also holds picocli's Java 5 classes), with both, and
# with both plus the launcher's memory options (the serial collector, a heap that starts at 8 MiB,
# the direct-memory limit at the JVM's default maximum heap): `launcher`, what `./handoff mirror`
# runs today. Prints,
# per case and setting, the median and range of wall time and of CPU time (user + system; the
# better figure on a shared machine), with the load average at the start of each round.
#
#   bench/startup.sh [ROUNDS] [SETTING...]   # default 5 rounds, every setting; images in /dev/shm
#   bench/startup.sh 7 cds+c1 launcher       # the collector's effect alone, A B
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-5}"
shift || true
jar="$root/cli/target/handoff.jar"
[ -f "$jar" ] || (cd "$root" && mvn -q -B -pl cli -am package -DskipTests) >&2
work="$(mktemp -d /dev/shm/handoff-startup-XXXXXX)"
trap 'rm -rf "$work"' EXIT
head -c 64M /dev/urandom > "$work/small.img"
head -c 1G /dev/urandom > "$work/big.img"
jsa="$work/handoff.jsa"
# The training runs: the classes a mirror and --help load, archived by a static dump (as ./handoff does).
java -XX:DumpLoadedClassList="$work/mirror.lst" -jar "$jar" mirror "$work/small.img" "$work/train.img" --progress none \
  >/dev/null 2>"$work/train.log" || { cat "$work/train.log" >&2; exit 1; }
java -XX:DumpLoadedClassList="$work/help.lst" -jar "$jar" --help >/dev/null 2>"$work/train.log" \
  || { cat "$work/train.log" >&2; exit 1; }
awk '!seen[$0]++' "$work/mirror.lst" "$work/help.lst" > "$work/classes.lst"
java -Xshare:dump -XX:SharedClassListFile="$work/classes.lst" -XX:SharedArchiveFile="$jsa" -cp "$jar" \
  >"$work/train.log" 2>&1 || { cat "$work/train.log" >&2; exit 1; }
rm -f "$work/train.img"
ls -la "$jsa" >&2

declare -A opts=(
  [default]=""
  [c1]="-XX:TieredStopAtLevel=1"
  [cds]="-XX:SharedArchiveFile=$jsa"
  [cds+c1]="-XX:SharedArchiveFile=$jsa -XX:TieredStopAtLevel=1"
  [launcher]="-XX:SharedArchiveFile=$jsa -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xms8m -XX:MaxDirectMemorySize=$(( ($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024 / 4 + 2097151) / 2097152 * 2 ))m"
)
settings=(default c1 cds cds+c1 launcher)
if (($#)); then
  for s in "$@"; do [ -n "${opts[$s]+x}" ] || { echo "startup: unknown setting $s (${settings[*]})" >&2; exit 2; }; done
  settings=("$@")
fi
cases=(help mirror-64M mirror-1G)
results="$work/results.txt"
: > "$results"
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for c in "${cases[@]}"; do
    for s in "${settings[@]}"; do
      case "$c" in
        help) args=(--help) ;;
        mirror-64M) rm -f "$work/t.img"; args=(mirror "$work/small.img" "$work/t.img" --progress none) ;;
        mirror-1G) rm -f "$work/t.img"; args=(mirror "$work/big.img" "$work/t.img" --progress none) ;;
      esac
      # shellcheck disable=SC2086
      /usr/bin/time -f "%e %U %S" -o "$work/time.txt" java ${opts[$s]} -jar "$jar" "${args[@]}" >/dev/null 2>"$work/run.log" \
        || { cat "$work/run.log" >&2; exit 1; }
      read -r wall user sys < "$work/time.txt"
      echo "$c $s $wall $(echo "$user + $sys" | bc)" >> "$results"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$results" "${settings[@]}" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
settings = sys.argv[2:]
print(f"{'case':<12} {'setting':<8} {'wall s median (min-max)':<26} {'CPU s median (min-max)':<26} {'CPU vs ' + settings[0]:>14}")
for case in ("help", "mirror-64M", "mirror-1G"):
    base = None
    for s in settings:
        w = [float(r[2]) for r in rows if r[0] == case and r[1] == s]
        c = [float(r[3]) for r in rows if r[0] == case and r[1] == s]
        mc = statistics.median(c)
        base = base or mc
        print(f"{case:<12} {s:<8} {statistics.median(w):5.2f} ({min(w):.2f}-{max(w):.2f}){'':<10} "
              f"{mc:5.2f} ({min(c):.2f}-{max(c):.2f}){'':<10} {mc / base:13.2f}x")
PY
