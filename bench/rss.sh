#!/usr/bin/env bash
# Resident memory of `handoff mirror` by image size: a sparse image (holes only) and one whose first
# GiB is random data (the rest holes), at 1 GiB and at 1 TiB, so both sizes copy the same bytes and
# only the device size (the dirty bitmap, 1 bit per 64 KiB chunk: 2 MiB at 1 TiB) differs. Each case
# runs --rounds times, interleaved; prints the peak RSS (`/usr/bin/time` %M) of each run and the
# median per case, with the load average.
#
#   bench/rss.sh [--rounds N] [--work DIR] [--java-opts 'OPTS']   (default 5 rounds, /dev/shm)
#
# --java-opts goes to the launcher as HANDOFF_JAVA_OPTS (e.g. '-XX:+UseSerialGC -Xmx64m').
# Needs cli/target/handoff.jar (mvn -B -pl cli -am package -DskipTests); runs the `handoff` launcher.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=5 work=/dev/shm opts=
while (($#)); do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --java-opts) opts=$2; shift 2 ;;
        *) echo "rss: unknown option $1 (--rounds N, --work DIR, --java-opts OPTS)" >&2; exit 2 ;;
    esac
done
[[ -f $here/../cli/target/handoff.jar ]] || { echo "rss: cli/target/handoff.jar missing: mvn -B -pl cli -am package -DskipTests" >&2; exit 2; }
dir=$(mktemp -d "$work/rss-XXXXXX")
trap 'rm -rf "$dir"' EXIT
head -c $((1 << 30)) /dev/urandom > "$dir/data"
for size in 1G 1T; do
    truncate -s "$size" "$dir/sparse-$size"
    truncate -s "$size" "$dir/data-$size"
    dd if="$dir/data" of="$dir/data-$size" bs=1M conv=notrunc status=none
done
rm "$dir/data"
"$here/../handoff" --help >/dev/null # makes the launcher's AppCDS archive, if stale, outside the measured runs
echo "case round load1 rss_kib wall_s${opts:+ (HANDOFF_JAVA_OPTS=$opts)}"
for ((r = 0; r < rounds; r++)); do
    for c in sparse-1G sparse-1T data-1G data-1T; do
        rm -f "$dir/target"
        load=$(cut -d' ' -f1 /proc/loadavg)
        HANDOFF_JAVA_OPTS=$opts /usr/bin/time -f '%M %e' -o "$dir/time" "$here/../handoff" mirror "$dir/$c" "$dir/target" --progress none >/dev/null
        read -r rss wall < "$dir/time"
        echo "$c $r $load $rss $wall"
    done
done | tee "$dir/results"
echo
med() { grep "^$1 " "$dir/results" | awk '{ print $4 }' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for kind in sparse data; do
    small=$(med "$kind-1G") big=$(med "$kind-1T")
    awk -v k="$kind" -v s="$small" -v b="$big" 'BEGIN { printf "%-6s median peak RSS: 1 GiB %d KiB, 1 TiB %d KiB, ratio %.2f\n", k, s, b, b / s }'
done
