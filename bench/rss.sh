#!/usr/bin/env bash
# Resident memory of `handoff mirror` by image size: a sparse image (holes only) and one whose first
# GiB is random data (the rest holes), at 1 GiB and at 1 TiB, so both sizes copy the same bytes and
# only the device size (the dirty bitmap, 1 bit per 64 KiB chunk: 2 MiB at 1 TiB) differs. Each case
# runs --rounds times, interleaved; prints the peak RSS (`/usr/bin/time` %M) of each run and the
# median per case, with the load average.
#
#   bench/rss.sh [--rounds N] [--work DIR] [--java-opts 'OPTS']...   (default 5 rounds, /dev/shm)
#
# --java-opts goes to the launcher as HANDOFF_JAVA_OPTS (e.g. '-XX:+UseSerialGC -Xmx64m'). Given more
# than once, each is one setting, and every round runs every case under every setting, interleaved
# (A B A B); `--java-opts ''` is the launcher's own options. '-XX:+UseG1GC -Xmx6g' is the launcher
# before it set any memory option (the JVM's collector and heap; a heap maximum of one's own turns
# the launcher's memory options off).
# Needs cli/target/handoff.jar (mvn -B -pl cli -am package -DskipTests); runs the `handoff` launcher.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=5 work=/dev/shm settings=()
while (($#)); do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --java-opts) settings+=("$2"); shift 2 ;;
        *) echo "rss: unknown option $1 (--rounds N, --work DIR, --java-opts OPTS)" >&2; exit 2 ;;
    esac
done
((${#settings[@]})) || settings=("")
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
for ((s = 0; s < ${#settings[@]}; s++)); do
    echo "setting $s: HANDOFF_JAVA_OPTS='${settings[s]}'"
done
echo "case setting round load1 rss_kib wall_s"
for ((r = 0; r < rounds; r++)); do
    for c in sparse-1G sparse-1T data-1G data-1T; do
        for ((s = 0; s < ${#settings[@]}; s++)); do
            rm -f "$dir/target"
            load=$(cut -d' ' -f1 /proc/loadavg)
            HANDOFF_JAVA_OPTS=${settings[s]} /usr/bin/time -f '%M %e' -o "$dir/time" "$here/../handoff" mirror "$dir/$c" \
                "$dir/target" --progress none >/dev/null
            read -r rss wall < "$dir/time"
            echo "$c $s $r $load $rss $wall"
        done
    done
done | tee "$dir/results"
echo
col() { awk -v c="$1" -v s="$2" -v k="$3" '$1 == c && $2 == s { print $k }' "$dir/results" | sort -n; }
med() { awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for ((s = 0; s < ${#settings[@]}; s++)); do
    for kind in sparse data; do
        small=$(col "$kind-1G" "$s" 5 | med) big=$(col "$kind-1T" "$s" 5 | med)
        wall=$(col "$kind-1T" "$s" 6 | med) lo=$(col "$kind-1T" "$s" 6 | head -1) hi=$(col "$kind-1T" "$s" 6 | tail -1)
        awk -v s="$s" -v k="$kind" -v a="$small" -v b="$big" -v w="$wall" -v lo="$lo" -v hi="$hi" 'BEGIN {
            printf "setting %s %-6s median peak RSS: 1 GiB %d KiB, 1 TiB %d KiB, ratio %.2f; 1 TiB wall %s s (%s-%s)\n",
                s, k, a, b, b / a, w, lo, hi }'
    done
done
