#!/usr/bin/env bash
# The QD1 guest's share during Handoff's bulk copy, by copier setting, in one `handoff serve` per
# setting: fio (nbd engine) writes 4 KiB at random at queue depth 1 in windows that alternate
# between the job paused (alone) and the job copying (at full speed, or at a speed limit), A B A B
# in the same warm process, so the alone window and the copy window see the same JIT state and the
# same neighbours. One SCHED_IDLE busy loop per CPU keeps the CPUs out of idle in both windows
# (docs/BENCHMARKS.md, "fio as the guest"). Prints one line per window and the medians per setting.
#
#   bench/guest-share.sh [--size BYTES] [--reps N] [--window S] [--max-copy 65536,262144,1048576]
#                        [--modes background,write-blocking] [--speeds 0,268435456] [--buf-size BYTES]
#                        [--work DIR]
#
# The bytes of copies in flight are bounded by max(--buf-size, the setting's max-copy): the default
# --buf-size 16 MiB lets the copier run as many copies as it has threads; --buf-size 65536 leaves one
# copy in flight at a time for every --max-copy. --speeds 0 is the copy at full speed.
#
# Needs fio with the nbd engine, python3, and cli/target/handoff.jar (mvn -B -pl cli -am package).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jar="$here/../cli/target/handoff.jar"
[[ -f $jar ]] || { echo "guest-share: $jar missing: mvn -B -pl cli -am package -DskipTests" >&2; exit 2; }
command -v fio >/dev/null || { echo "guest-share: fio missing (apt-get install fio)" >&2; exit 2; }
exec python3 - "$jar" "$@" <<'PY'
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

jar, args = sys.argv[1], sys.argv[2:]
opt = {"--size": str(3 << 30), "--reps": "5", "--window": "1", "--max-copy": "65536,262144,1048576",
       "--modes": "background,write-blocking", "--speeds": "0,268435456", "--work": "/dev/shm",
       "--buf-size": str(16 << 20)}
for i in range(0, len(args), 2):
    if args[i] not in opt or i + 1 >= len(args):
        sys.exit("guest-share: unknown option or missing value: " + args[i])
    opt[args[i]] = args[i + 1]
size, reps, window = int(opt["--size"]), int(opt["--reps"]), float(opt["--window"])
max_copies = [int(x) for x in opt["--max-copy"].split(",")]
buf_size = int(opt["--buf-size"])
modes, speeds = opt["--modes"].split(","), [int(x) for x in opt["--speeds"].split(",")]
work = tempfile.mkdtemp(prefix="guest-share-", dir=opt["--work"])
procs = []

def cleanup(*_):
    for p in procs:
        if p.poll() is None:
            p.kill()
    shutil.rmtree(work, ignore_errors=True)
signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))

class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.f.readline()  # greeting
        self.run("qmp_capabilities")
    def run(self, cmd, **a):
        self.f.write(json.dumps({"execute": cmd, "arguments": a}) + "\n")
        self.f.flush()
        while True:
            m = json.loads(self.f.readline())
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise RuntimeError(cmd + ": " + m["error"]["desc"])

def fio(uri, depth, seconds):
    out = subprocess.run(["fio", "--name=g", "--ioengine=nbd", "--uri=" + uri, "--bs=4k", "--rw=randwrite",
                          "--iodepth=%d" % depth, "--time_based=1", "--runtime=%gs" % seconds, "--norandommap=1",
                          "--randrepeat=0", "--lat_percentiles=1", "--output-format=json"],
                         check=True, capture_output=True, text=True).stdout
    w = json.loads(out[out.index("{"):])["jobs"][0]["write"]
    pct = w["lat_ns"].get("percentile", {})
    return w["iops"], pct.get("50.000000", 0) / 1e3, pct.get("99.000000", 0) / 1e3

def wait_for(path, p):
    for _ in range(600):
        if os.path.exists(path):
            return
        if p.poll() is not None:
            sys.exit("guest-share: handoff serve exited with %d" % p.returncode)
        time.sleep(0.05)
    sys.exit("guest-share: no socket " + path)

t0 = time.time()
try:
    src = os.path.join(work, "src.img")
    with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
        block = r.read(64 << 20)
        for i in range(size // len(block)):
            w.write(block[i % 7:] + block[:i % 7])  # no two 64 MiB pieces alike
    spinners = [subprocess.Popen(["chrt", "--idle", "0", "sh", "-c", "while :; do :; done"])
                for _ in range(os.cpu_count())]
    procs += spinners
    rows = []
    def start(mode, mc):
        """A fresh `handoff serve` with its job paused before the bulk copy, warmed up by fio at QD16."""
        dst, nbd, ctl = (os.path.join(work, n) for n in ("dst.img", "nbd.sock", "ctl.sock"))
        for f in (dst, nbd, ctl):
            if os.path.exists(f):
                os.remove(f)
        serve = subprocess.Popen(["java", "-jar", jar, "serve", src, "--nbd", "unix:" + nbd, "--control", ctl,
                                  "--mirror-to", dst, "--copy-mode", mode, "--granularity", "65536",
                                  "--buf-size", str(max(mc, buf_size)), "--max-copy", str(mc), "--speed", "1"],
                                 stdout=subprocess.DEVNULL)
        procs.append(serve)
        wait_for(ctl, serve)
        wait_for(nbd, serve)
        q = Qmp(ctl)
        for _ in range(600):  # the control socket answers before the job runs
            try:
                q.run("block-job-pause", device="mirror0")
                break
            except RuntimeError:
                time.sleep(0.05)
        q.run("block-job-set-speed", device="mirror0", speed=0)
        uri = "nbd+unix:///disk?socket=" + nbd
        fio(uri, 16, 5)  # warm-up (JIT), unmeasured
        return serve, q, uri

    def stop(serve, q):
        q.run("block-job-cancel", device="mirror0", force=True)
        serve.terminate()
        serve.wait()

    rows = []
    print("mode max-copy window rep load1 iops p50_us p99_us (image written at %.0f s)" % (time.time() - t0), flush=True)
    windows = ["alone"] + ["copy@%d" % s for s in speeds]
    for mode in modes:
        for mc in max_copies:
            serve, q, uri = start(mode, mc)
            for rep in range(reps):
                # enough left to copy for this rep's copy windows (1 GiB/s unlimited, with a margin)?
                need = sum(3 * window * (s if s > 0 else 1 << 30) for s in speeds)
                if q.run("query-block-jobs")[0]["dirty-bytes"] < need:
                    stop(serve, q)
                    serve, q, uri = start(mode, mc)
                for wname in windows:
                    load = os.getloadavg()[0]
                    if wname != "alone":
                        q.run("block-job-set-speed", device="mirror0", speed=int(wname[5:]))
                        q.run("block-job-resume", device="mirror0")
                    iops, p50, p99 = fio(uri, 1, window)
                    if wname != "alone":
                        q.run("block-job-pause", device="mirror0")
                        j = q.run("query-block-jobs")[0]
                        if j["ready"] or j["dirty-bytes"] == 0:
                            sys.exit("guest-share: the copy ended inside a window: use a larger --size")
                    rows.append((mode, mc, wname, rep, load, iops, p50, p99))
                    print("%s %d %s %d %.1f %.0f %.0f %.0f" % rows[-1], flush=True)
            stop(serve, q)
    print("\nmedians over %d reps (kept = median of each rep's copy IOPS / the same rep's alone IOPS)" % reps)
    print("| mode | max-copy | window | IOPS | kept | p50 µs | p99 µs | load |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for mode in modes:
        for mc in max_copies:
            sel = [r for r in rows if r[0] == mode and r[1] == mc]
            alone = {r[3]: r[5] for r in sel if r[2] == "alone"}
            for wname in ["alone"] + ["copy@%d" % s for s in speeds]:
                w = [r for r in sel if r[2] == wname]
                kept = statistics.median(r[5] / alone[r[3]] for r in w if alone[r[3]] > 0)
                print("| %s | %d | %s | %.0f | %.0f %% | %.0f | %.0f | %.1f–%.1f |" % (
                    mode, mc, wname, statistics.median(r[5] for r in w), 100 * kept,
                    statistics.median(r[6] for r in w), statistics.median(r[7] for r in w),
                    min(r[4] for r in w), max(r[4] for r in w)))
finally:
    cleanup()
PY
