package dev.handoff.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code handoff ensemble-demo}: ownership across hosts on a local three-server ZooKeeper
 * ensemble, every claim checked. Two holder processes ({@code handoff owner ... --coordinator})
 * stand for two hosts that share one image:
 * <ol>
 *   <li>host-a activates (epoch 1) and writes;</li>
 *   <li>host-a hands the image to host-b while the ensemble's leader is killed (epoch 2);
 *       host-a is refused while host-b holds it;</li>
 *   <li>host-b is stopped (SIGSTOP, a pause longer than its session timeout); host-a takes the
 *       image back once the ensemble expired host-b's session (epoch 3) and writes; host-b
 *       resumes, tries to write, and gets nothing acknowledged: it is fenced.</li>
 * </ol>
 * Exits 0 if every check passed, 1 with the reason otherwise.
 */
@Command(name = "ensemble-demo", sortOptions = false, usageHelpWidth = 100,
        description = {"Hand an image over between two holder processes through a local three-server ZooKeeper"
                + " ensemble (--coordinator), killing the leader during the handoff and pausing a holder past its"
                + " session timeout; check that the epochs only grow and that the paused holder gets nothing"
                + " acknowledged. No arguments needed; exits 0 only if every check passed."},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {
            " 0:every check passed",
            " 1:a check failed (the reason is printed)",
            " 2:usage error"})
final class EnsembleDemoCommand implements Callable<Integer> {
    private static final long MIB = 1 << 20;

    @Option(names = "--session-timeout", paramLabel = "DURATION", defaultValue = "4s",
            description = "The holders' ZooKeeper session timeout: how long the paused holder's lock outlives"
                    + " its last contact (default: ${DEFAULT-VALUE}; the demo's servers grant 1s to 10s).")
    String sessionTimeout;

    @Option(names = "--keep", description = "Keep the work directory (image, server logs and data).")
    boolean keep;

    private final PrintStream out = System.out;
    private final List<String[]> summary = new ArrayList<>();
    private final List<String> failures = new ArrayList<>();
    private final long t0 = System.nanoTime();

    @Override
    public Integer call() throws Exception {
        CoordinatorOptions timeout = new CoordinatorOptions();
        timeout.sessionTimeout = sessionTimeout;
        Duration session = timeout.timeout();
        if (session.toMillis() < 2L * LocalEnsemble.TICK_MILLIS || session.toMillis() > 20L * LocalEnsemble.TICK_MILLIS) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--session-timeout': the demo's servers"
                    + " grant 1s to 10s");
        }
        Path work = Files.createTempDirectory("handoff-ensemble-demo-");
        try {
            run(work, session);
        } finally {
            if (keep) {
                out.println("work directory kept: " + work);
            } else {
                deleteTree(work);
            }
        }
        printSummary();
        return failures.isEmpty() ? ExitCodes.OK : ExitCodes.FAILED;
    }

    private void run(Path work, Duration session) throws Exception {
        Path image = work.resolve("shared.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(64 * MIB);
        }
        out.println("1. a local ZooKeeper ensemble: 3 servers, each its own JVM, tick " + LocalEnsemble.TICK_MILLIS + " ms");
        try (LocalEnsemble zk = LocalEnsemble.start(work, Duration.ofSeconds(90))) {
            LocalEnsemble.Server leader = zk.leader(Duration.ofSeconds(30));
            String coordinator = "zk://" + zk.connectString() + "/handoff/demo/shared";
            out.println("   servers " + zk.connectString() + "; leader: server " + leader.id);
            out.println("   image " + image + " (64 MiB), ownership under " + coordinator);
            out.println("   two holders, host-a and host-b (two processes standing for two hosts), session timeout "
                    + session.toMillis() + " ms: a holder cut off acknowledges nothing after "
                    + session.toMillis() * 6 / 10 + " ms");
            String[] common = {"--coordinator", coordinator, "--session-timeout", session.toMillis() + "ms"};

            out.println();
            out.println("2. host-a activates and writes");
            try (Holder a = Holder.start("host-a", image, "activate", common)) {
                String first = a.next();
                say("host-a", "activate", first);
                check("host-a active with epoch 1", first.startsWith("ok ACTIVE epoch=1"), first);
                String wrote = a.send("write 0 1M");
                say("host-a", "write 0 1M", wrote);

                out.println();
                out.println("3. hand the image over to host-b, killing the ensemble's leader meanwhile");
                a.sendOnly("prepare");
                zk.kill(leader);
                String prepared = a.next();
                for (int i = 0; i < 10 && !prepared.startsWith("ok"); i++) { // an election may outlast host-a's lease
                    Thread.sleep(500);
                    prepared = a.send("prepare");
                }
                say("host-a", "prepare", prepared);
                LocalEnsemble.Server next = zk.leader(Duration.ofSeconds(30));
                out.println("   leader server " + leader.id + " killed (SIGKILL) during the handoff; server " + next.id
                        + " leads now");
                String token = prepared.contains("token=") ? prepared.substring(prepared.indexOf("token=") + 6) : "?";
                Holder b = Holder.start("host-b", image, "accept", concat(common, "--token", token));
                try {
                    String accepted = b.next();
                    say("host-b", "accept " + token, accepted);
                    check("handoff through a leader fail-over", accepted.startsWith("ok ACTIVE epoch=2"),
                            "host-a prepared " + token + ", host-b " + accepted);
                    check("host-a's acknowledged write seen by host-b", region(image, 0, MIB, (byte) 1),
                            "1 MiB at 0 holds host-a's bytes");
                    String refused = a.send("activate");
                    say("host-a", "activate", refused);
                    check("host-a refused while host-b holds it", refused.startsWith("refused busy"), shorten(refused));

                    out.println();
                    out.println("4. host-b stopped (SIGSTOP) past its session timeout; host-a takes the image back");
                    b.signal("STOP");
                    long stopped = System.nanoTime();
                    b.sendOnly("write 2M 1M"); // read by host-b only once it resumes
                    String back = activateWhenFree(a, Duration.ofSeconds(60));
                    long took = System.nanoTime() - stopped;
                    say("host-a", "activate", back + String.format(Locale.ROOT, " (%.1f s after host-b stopped)", took / 1e9));
                    check("host-a back with epoch 3 once host-b's session expired", back.startsWith("ok ACTIVE epoch=3"),
                            back);
                    String wrote3 = a.send("write 1M 1M");
                    say("host-a", "write 1M 1M", wrote3);
                    b.signal("CONT");
                    String late = b.nextOrEnd(Duration.ofSeconds(30));
                    int code = b.waitFor();
                    String fate = late.equals("EOF") ? "exited " + code + ": " + shorten(b.stderr())
                            : shorten(late) + (code >= 0 ? "; exited " + code : "");
                    say("host-b", "resumed: write 2M 1M", fate);
                    boolean nothingAcknowledged = !late.startsWith("ok") && region(image, 2 * MIB, MIB, (byte) 0);
                    check("paused host-b got nothing acknowledged", nothingAcknowledged,
                            nothingAcknowledged ? "its write was refused (" + (code == ExitCodes.FENCED
                                    ? "session lost mid-command, exit 6" : "fenced") + "); 1 MiB at 2M untouched" : fate);
                } finally {
                    b.close();
                }
                String status = a.send("status");
                say("host-a", "status", status);
                check("record after the takeover", status.endsWith("record=3:host-a:unclean"), status);
                say("host-a", "quit", a.send("quit"));
                a.waitFor();
            }
            out.println();
            out.println("5. handoff owner status shared.img " + String.join(" ", common));
            Cli status = Cli.run(LocalEnsemble.javaCommand(concat(new String[] {Main.class.getName(), "owner", "status",
                    image.toString()}, common)));
            status.stdout().lines().forEach(l -> out.println("   " + l));
            check("epochs only grew", status.stdout().contains("epoch 3, owner host-a, clean"), "1 -> 2 -> 3, clean at the end");
        }
    }

    private String activateWhenFree(Holder a, Duration timeout) throws IOException, InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (true) {
            String r = a.send("activate");
            if (!r.startsWith("refused busy") || System.nanoTime() - end > 0) {
                return r;
            }
            Thread.sleep(200);
        }
    }

    /* ---- holders ---- */

    /** A {@code handoff owner ...} process: commands on stdin, one answer line each. */
    private static final class Holder implements AutoCloseable {
        private final Process process;
        private final Writer stdin;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        private final StringBuffer err = new StringBuffer();

        private Holder(Process process) {
            this.process = process;
            this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
            Thread o = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        lines.add(line);
                    }
                } catch (IOException ignored) {
                    // ended
                }
                lines.add("EOF");
            }, "ensemble-demo-holder");
            o.setDaemon(true);
            o.start();
            Thread e = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        err.append(line).append('\n');
                    }
                } catch (IOException ignored) {
                    // ended
                }
            }, "ensemble-demo-holder-err");
            e.setDaemon(true);
            e.start();
        }

        static Holder start(String owner, Path image, String verb, String... options) throws IOException {
            List<String> args = new ArrayList<>(List.of("-Xmx96m", Main.class.getName(), "owner", verb, image.toString(),
                    "--owner", owner));
            args.addAll(List.of(options));
            return new Holder(new ProcessBuilder(LocalEnsemble.javaCommand(args.toArray(String[]::new))).start());
        }

        String next() throws InterruptedException {
            String line = lines.poll(60, TimeUnit.SECONDS);
            if (line == null) {
                throw new IllegalStateException("a holder did not answer within 60 s; stderr: " + err);
            }
            return line.equals("EOF") ? "EOF: " + err.toString().strip() : line;
        }

        /** The next line, or "EOF" if the process ended first. */
        String nextOrEnd(Duration timeout) throws InterruptedException {
            String line = lines.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return line == null ? "(no answer)" : line;
        }

        void sendOnly(String command) throws IOException {
            stdin.write(command + "\n");
            stdin.flush();
        }

        String send(String command) throws IOException, InterruptedException {
            sendOnly(command);
            return next();
        }

        String stderr() {
            return err.toString().strip();
        }

        void signal(String sig) throws IOException, InterruptedException {
            Process kill = new ProcessBuilder("kill", "-" + sig, String.valueOf(process.pid())).inheritIO().start();
            kill.waitFor(10, TimeUnit.SECONDS);
        }

        int waitFor() throws InterruptedException {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                return -1;
            }
            return process.exitValue();
        }

        @Override
        public void close() throws IOException, InterruptedException {
            if (process.isAlive()) {
                signal("CONT");
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    /** A finished {@code handoff} run. */
    private record Cli(int exit, String stdout) {
        static Cli run(List<String> command) throws IOException, InterruptedException {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String outText = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
            return new Cli(p.exitValue(), outText);
        }
    }

    /* ---- checks and output ---- */

    /** Whether {@code length} bytes at {@code offset} of the image all hold {@code value}. */
    private static boolean region(Path image, long offset, long length, byte value) throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate((int) length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) {
                // read on
            }
            for (int i = 0; i < length; i++) {
                if (b.get(i) != value) {
                    return false;
                }
            }
            return true;
        }
    }

    private void say(String who, String what, String answer) {
        StringBuilder dots = new StringBuilder(" ");
        while (who.length() + what.length() + dots.length() < 34) {
            dots.append('.');
        }
        out.printf(Locale.ROOT, "[%5.1fs] %s: %s%s %s%n", (System.nanoTime() - t0) / 1e9, who, what, dots, shorten(answer));
        out.flush();
    }

    private void check(String name, boolean ok, String result) {
        summary.add(new String[] {name, ok ? "ok" : "FAILED", result});
        if (!ok) {
            failures.add(name + ": " + result);
        }
    }

    private void printSummary() {
        out.println();
        int w = summary.stream().mapToInt(r -> r[0].length()).max().orElse(10);
        out.println(String.format(Locale.ROOT, "%-" + w + "s  %-6s %s", "check", "", "result"));
        for (String[] r : summary) {
            out.println(String.format(Locale.ROOT, "%-" + w + "s  %-6s %s", r[0], r[1], r[2]));
        }
        out.println();
        if (failures.isEmpty()) {
            out.println(String.format(Locale.ROOT, "ensemble demo passed in %.1f s", (System.nanoTime() - t0) / 1e9));
        } else {
            out.flush();
            System.err.println("handoff ensemble-demo: FAILED: " + failures.get(0));
        }
        out.flush();
    }

    private static String shorten(String s) {
        String one = s.replace('\n', ' ').replaceAll(" image=\\S+ pid=\\d+", "").strip();
        return one.length() > 160 ? one.substring(0, 157) + "..." : one;
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = new String[a.length + b.length];
        System.arraycopy(a, 0, r, 0, a.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    private static void deleteTree(Path work) {
        try (Stream<Path> s = Files.walk(work)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            System.err.println("handoff ensemble-demo: could not remove " + work + ": " + e.getMessage());
        }
    }
}
