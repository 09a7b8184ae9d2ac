package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The start-up warm-up of {@code mirror} and {@code demo}: its steps, and its failures, which change nothing. */
@Timeout(60)
class CommandWarmUpTest {
    @TempDir
    Path dir;

    @Test
    void everyStepRunsInThisJvm() {
        List<Runnable> steps = new ArrayList<>(CommandWarmUp.STEPS);
        steps.add(0, () -> CommandWarmUp.annotations(MirrorCommand.class));
        Captured r = Captured.run(() -> CommandWarmUp.run(steps));
        assertThat(r.exit()).isEqualTo(steps.size());
        assertThat(r.out()).isEmpty();
        assertThat(r.err()).isEmpty();
    }

    @Test
    void aFailingStepIsDroppedQuietlyAndTheNextOnesStillRun() {
        AtomicInteger ran = new AtomicInteger();
        List<Runnable> steps = List.of(
                () -> {
                    throw new IllegalStateException("boom");
                },
                ran::incrementAndGet,
                () -> {
                    throw new NoClassDefFoundError("com/example/Missing");
                },
                () -> {
                    throw new StackOverflowError();
                },
                ran::incrementAndGet);
        Captured r = Captured.run(() -> CommandWarmUp.run(steps));
        assertThat(r.exit()).as("steps that ended without throwing").isEqualTo(2);
        assertThat(ran).hasValue(2);
        assertThat(r.out()).isEmpty();
        assertThat(r.err()).isEmpty();
    }

    /**
     * A mirror's output and exit code are those of a run without a warm-up when the warm-up fails at
     * every step at the same time (here: steps that throw, on their own thread, as the command runs).
     */
    @Test
    void aMirrorPrintsTheSameEventsAndExitsTheSameWhileItsWarmUpFails() throws Exception {
        Path source = dir.resolve("a.img");
        byte[] data = new byte[1 << 20];
        new Random(7).nextBytes(data);
        Files.write(source, data);

        Path target = dir.resolve("b.img");
        Captured plain = Captured.run(() -> Main.run("mirror", source.toString(), target.toString(), "--json", "--progress",
                "none"));
        Files.delete(target);

        AtomicInteger failures = new AtomicInteger();
        Thread warmUp = new Thread(() -> {
            for (int i = 0; i < 200; i++) {
                failures.addAndGet(5 - CommandWarmUp.run(List.of(
                        () -> {
                            throw new IllegalStateException("boom");
                        },
                        () -> {
                            throw new OutOfMemoryError("warm-up");
                        },
                        () -> {
                            throw new ExceptionInInitializerError("warm-up");
                        },
                        () -> {
                            throw new NoClassDefFoundError("com/example/Missing");
                        },
                        () -> {
                            throw new RuntimeException(new Exception("nested"));
                        })));
            }
        }, "failing-warm-up");
        Captured warmed = Captured.run(() -> {
            warmUp.start();
            return Main.run("mirror", source.toString(), target.toString(), "--json", "--progress", "none");
        });
        warmUp.join();

        assertThat(failures).hasValue(1000);
        assertThat(warmed.exit()).as(warmed.toString()).isEqualTo(plain.exit()).isZero();
        assertThat(events(warmed.out())).isEqualTo(events(plain.out())).isNotEmpty();
        assertThat(timeless(warmed.err())).isEqualTo(timeless(plain.err())).contains("is a consistent copy of");
        assertThat(Files.readAllBytes(target)).isEqualTo(data);
    }

    /** Messages without their times ("[  0.07s]", "done in 0.08 s"). */
    private static String timeless(String text) {
        return text.replaceAll("[0-9]+\\.[0-9]+ ?s", "T s");
    }

    /** The event lines without their timestamps. */
    private static List<String> events(String jsonLines) {
        return jsonLines.lines().map(l -> l.replaceAll("\"timestamp\":\\{[^}]*\\},", "")).toList();
    }
}
