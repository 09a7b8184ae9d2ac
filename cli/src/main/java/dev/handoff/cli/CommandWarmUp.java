package dev.handoff.cli;

import java.lang.reflect.Field;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.logging.LogManager;
import picocli.CommandLine;

/**
 * Start-up work of a command that runs a mirror job ({@code mirror}, {@code demo}), done on a
 * second thread while the main thread builds picocli's model of the command line. Each step is
 * work the command did on its main thread, in sequence, before its job could start: picocli's
 * annotations of the command (parsed once per JVM, with a proxy class defined per annotation type),
 * {@code java.util.logging}'s set-up (which {@link LogLines} then replaces), the management beans
 * that {@link DirectMemory} reads, Jackson's ObjectMapper and the serializers of the job's events
 * ({@link Json#warmUp}, about 400 classes: 60–70 ms on its own), the JDK's {@link SecureRandom}
 * (drawn once by the kernel's temporary copy of its native library) and the formatter of the
 * closing line. docs/BENCHMARKS.md, "Start-up of the command", round 5, has the A B measurement.
 *
 * <p>Rules, so that it can only change how soon a command gets there: each step only loads and
 * initialises what the command would anyway, prints nothing, opens no file, starts no job and
 * allocates no direct memory (a tiny in-memory job, as {@link MirrorWarmUp} runs for {@code serve},
 * would hold copy buffers that {@link JobLauncher#checkMemory} then counts against the user's job).
 * A step that fails is dropped without a word and the next runs: the command meets the same failure
 * on its own thread and reports it as it would have. The main thread never waits for this thread
 * (no join, no latch): only where the JVM or the JDK lets one thread initialise what both use (a
 * class, a cache built once) does it wait for that step to finish. The thread is a daemon: the JVM's
 * exit does not wait for it.
 */
final class CommandWarmUp {
    /** The steps, in the order the command needs their work. */
    static final List<Runnable> STEPS = List.of(
            LogManager::getLogManager,
            DirectMemory::available,
            Json::warmUp,
            SecureRandom::new,
            () -> String.format(Locale.ROOT, "%.2f s", 0.5));

    private CommandWarmUp() {
    }

    /** Starts {@link #STEPS} on a daemon thread if {@code args} run a mirror job; returns at once. */
    static void startFor(String... args) {
        if (args.length == 0 || !(args[0].equals("mirror") || args[0].equals("demo"))) {
            return;
        }
        for (String a : args) {
            if (a.equals("-h") || a.equals("--help") || a.equals("-V") || a.equals("--version")) {
                return; // only usage or version text: nothing here would be used
            }
        }
        Class<?> command = HandoffCli.subcommandNamed(args[0]);
        List<Runnable> steps = new ArrayList<>();
        steps.add(() -> annotations(command));
        steps.addAll(STEPS);
        Thread t = new Thread(() -> run(steps), "command-warm-up");
        t.setDaemon(true);
        t.start();
    }

    /**
     * Reads the annotations of {@code command}, of its fields and of its mixins' fields, as picocli
     * will to build the command's model: the JVM parses each once and keeps it, and defines a proxy
     * class per annotation type the first time it meets one.
     */
    static void annotations(Class<?> command) {
        command.getAnnotations();
        for (Field f : command.getDeclaredFields()) {
            f.getAnnotations();
            if (f.isAnnotationPresent(CommandLine.Mixin.class)) {
                for (Field m : f.getType().getDeclaredFields()) {
                    m.getAnnotations();
                }
            }
        }
    }

    /** Runs {@code steps} in order on this thread; returns how many ended without throwing. */
    static int run(List<Runnable> steps) {
        int done = 0;
        for (Runnable step : steps) {
            try {
                step.run();
                done++;
            } catch (Throwable e) { // a warm-up only: the command meets and reports its own failures
                // dropped: see the class comment
            }
        }
        return done;
    }
}
