package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The repository's ./handoff launcher runs the jar this build made (no rebuild: it is newer than the sources). */
class LauncherIT {
    private static final long TIMEOUT_SECONDS = 300;

    @TempDir
    Path dir;

    @Test
    void launcherRunsTheShadedJar() throws Exception {
        Run r = launch(Map.of(), "--version");
        assertThat(r.exit).as(r.output).isZero();
        assertThat(r.output).contains("handoff " + System.getProperty("handoff.version", ""));
        assertThat(Files.isRegularFile(Cli.jar())).isTrue();
    }

    /**
     * The launcher's memory options (a small starting heap, its own collector) keep the copy
     * buffers' limit where the JVM's defaults put it: a {@code --buf-size} as large as the JVM's
     * default maximum heap (which is its default direct-memory limit) still mirrors, twice that is
     * refused with the one-line error, and a heap maximum of the user's own still bounds it.
     */
    @Test
    void theLaunchersMemoryOptionsKeepTheJvmsDefaultBufSizeLimit() throws Exception {
        long defaultLimit = jvmDefaultMaxHeap();
        Path src = dir.resolve("src.img");
        byte[] data = new byte[4 << 20];
        new Random(17).nextBytes(data);
        Files.write(src, data);
        long large = defaultLimit / (64 << 10) * (64 << 10); // a multiple of the granularity

        Run ok = launch(Map.of(), "mirror", src.toString(), dir.resolve("a.img").toString(), "--progress", "none",
                "--buf-size", Long.toString(large));
        assertThat(ok.exit).as(ok.output).isZero();
        assertThat(Files.readAllBytes(dir.resolve("a.img"))).isEqualTo(data);

        Run tooLarge = launch(Map.of(), "mirror", src.toString(), dir.resolve("b.img").toString(), "--progress", "none",
                "--buf-size", Long.toString(2 * large));
        assertThat(tooLarge.exit).as(tooLarge.output).isEqualTo(ExitCodes.USAGE);
        assertThat(tooLarge.output).contains("is more than this JVM's").contains("-XX:MaxDirectMemorySize");
        assertThat(dir.resolve("b.img")).doesNotExist();

        // HANDOFF_JAVA_OPTS overrides: a collector of one's own starts (the JVM refuses two), and a
        // heap maximum of one's own bounds the direct memory again, as under plain java -jar.
        Run ownCollector = launch(Map.of("HANDOFF_JAVA_OPTS", "-XX:+UseParallelGC"), "mirror", src.toString(),
                dir.resolve("c.img").toString(), "--progress", "none", "--buf-size", Long.toString(large));
        assertThat(ownCollector.exit).as(ownCollector.output).isZero();
        Run ownHeap = launch(Map.of("HANDOFF_JAVA_OPTS", "-Xmx64m"), "mirror", src.toString(),
                dir.resolve("d.img").toString(), "--progress", "none", "--buf-size", "1G");
        assertThat(ownHeap.exit).as(ownHeap.output).isEqualTo(ExitCodes.USAGE);
        assertThat(ownHeap.output).contains("--buf-size 1 GiB is more than this JVM's");
    }

    /**
     * {@code --json} through the launcher prints JSON lines only on stdout, whatever JVM options it
     * adds (as root, the thread-priority flags of the copier after READY: the JVM's warnings about
     * them, for a user who passes them, go to stderr).
     */
    @Test
    void aMirrorsJsonOutputThroughTheLauncherIsJsonLinesOnly() throws Exception {
        Path src = dir.resolve("src.img");
        byte[] data = new byte[1 << 20];
        new Random(18).nextBytes(data);
        Files.write(src, data);
        Path root = Cli.jar().getParent().getParent().getParent();
        ProcessBuilder pb = new ProcessBuilder("bash", root.resolve("handoff").toString(), "mirror", src.toString(),
                dir.resolve("dst.img").toString(), "--json", "--progress", "none")
                .directory(dir.toFile()).redirectError(dir.resolve("stderr.txt").toFile());
        pb.environment().remove("HANDOFF_JAVA_OPTS");
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();
        String err = Files.readString(dir.resolve("stderr.txt"));
        assertThat(p.exitValue()).as(out + err).isZero();
        assertThat(out.lines().toList()).as(err).isNotEmpty()
                .allSatisfy(line -> assertThat(line).startsWith("{").endsWith("}"));
        assertThat(Files.readAllBytes(dir.resolve("dst.img"))).isEqualTo(data);
    }

    /** The JVM's default MaxHeapSize on this machine: its default direct-memory limit too. */
    private static long jvmDefaultMaxHeap() throws IOException, InterruptedException {
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+PrintFlagsFinal", "-version").redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();
        Matcher m = Pattern.compile("\\bMaxHeapSize\\s*=\\s*(\\d+)").matcher(out);
        assertThat(m.find()).as(out).isTrue();
        return Long.parseLong(m.group(1));
    }

    private record Run(int exit, String output) {
    }

    private Run launch(Map<String, String> env, String... args) throws IOException, InterruptedException {
        Path root = Cli.jar().getParent().getParent().getParent();
        Path launcher = root.resolve("handoff");
        assertThat(launcher).isExecutable();
        List<String> command = new ArrayList<>(List.of("bash", launcher.toString()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).directory(dir.toFile());
        pb.environment().remove("HANDOFF_JAVA_OPTS");
        pb.environment().putAll(env);
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the launcher did not exit within " + TIMEOUT_SECONDS + " s: " + out);
        }
        return new Run(p.exitValue(), out);
    }
}
