#!/usr/bin/env bash
# Start-up cost of two builds of `handoff`, A B: `handoff --help`, a 64 MiB and a 1 GiB
# `mirror --json --progress none` (end to end: process start to exit), each jar with its own AppCDS
# archive made as the launcher makes it (the class lists of a 4 MiB training mirror and of --help,
# archived by a static -Xshare:dump) and run with the launcher's options (C1 only, the serial
# collector, an 8 MiB initial heap, -Xlog:disable). Rounds alternate the order (A B, then B A).
# Prints, per case and jar, the median and range of wall time and of CPU time (user + system), and
# the load average at the start and end. Images in /dev/shm, deleted after.
#
#   bench/startup-ab.sh JAR_A JAR_B [ROUNDS]      # default 6 rounds
#   flock -x /tmp/bench.lock bench/startup-ab.sh ../main/cli/target/handoff.jar cli/target/handoff.jar 8   # main checked out beside this one; the lock keeps builds off a measurement
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 JAR_A JAR_B [ROUNDS]" >&2; exit 2; }
rounds="${3:-6}"
work="$(mktemp -d /dev/shm/handoff-startup-ab-XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/A" "$work/B"
cp "$1" "$work/A/handoff.jar"
cp "$2" "$work/B/handoff.jar"
head -c 4M /dev/urandom > "$work/train.img"
head -c 64M /dev/urandom > "$work/small.img"
head -c 1G /dev/urandom > "$work/big.img"
for v in A B; do
  jar="$work/$v/handoff.jar"
  java -XX:DumpLoadedClassList="$work/$v/mirror.lst" -Xlog:disable -jar "$jar" mirror "$work/train.img" \
    "$work/$v/t.img" --progress none --json >/dev/null 2>&1
  java -XX:DumpLoadedClassList="$work/$v/help.lst" -Xlog:disable -jar "$jar" --help >/dev/null 2>&1
  awk '!seen[$0]++' "$work/$v/mirror.lst" "$work/$v/help.lst" > "$work/$v/classes.lst"
  java -Xshare:dump -XX:SharedClassListFile="$work/$v/classes.lst" -XX:SharedArchiveFile="$work/$v/handoff.jsa" \
    -Xlog:disable -cp "$jar" >/dev/null 2>&1
  rm -f "$work/$v/t.img"
done
results="$work/results.txt"
: > "$results"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then order=(A B); else order=(B A); fi
  for c in help mirror-64M mirror-1G; do
    for v in "${order[@]}"; do
      case "$c" in
        help) args=(--help) ;;
        mirror-64M) rm -f "$work/t.img"; args=(mirror "$work/small.img" "$work/t.img" --progress none --json) ;;
        mirror-1G) rm -f "$work/t.img"; args=(mirror "$work/big.img" "$work/t.img" --progress none --json) ;;
      esac
      /usr/bin/time -f "%e %U %S" -o "$work/time.txt" java -XX:SharedArchiveFile="$work/$v/handoff.jsa" \
        -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xms8m -Xlog:disable -Xlog:all=warning:stderr \
        -jar "$work/$v/handoff.jar" "${args[@]}" >/dev/null 2>"$work/run.log" || { cat "$work/run.log" >&2; exit 1; }
      read -r wall user sys < "$work/time.txt"
      echo "$c $v $wall $(echo "$user + $sys" | bc)" >> "$results"
    done
  done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$results" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
print(f"{'case':<12} {'jar':<4} {'wall s median (min-max)':<26} {'CPU s median (min-max)':<26} {'wall B-A':>9}")
for case in ("help", "mirror-64M", "mirror-1G"):
    med = {}
    for v in ("A", "B"):
        w = [float(r[2]) for r in rows if r[0] == case and r[1] == v]
        c = [float(r[3]) for r in rows if r[0] == case and r[1] == v]
        med[v] = statistics.median(w)
        diff = f"{med['B'] - med['A']:+.3f}" if v == "B" else ""
        print(f"{case:<12} {v:<4} {statistics.median(w):6.3f} ({min(w):.2f}-{max(w):.2f}){'':<8} "
              f"{statistics.median(c):6.3f} ({min(c):.2f}-{max(c):.2f}){'':<8} {diff:>9}")
PY
