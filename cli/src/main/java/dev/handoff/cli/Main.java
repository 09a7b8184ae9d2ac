package dev.handoff.cli;

import java.util.Arrays;
import picocli.CommandLine;

/** Entry point of {@code handoff}: runs the command line and exits with its documented code. */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        CommandWarmUp.startFor(args); // on the second CPU while this thread builds the command line
        CommandLine cli = commandLine(args);
        // After picocli's model, which logs nothing: CommandWarmUp meanwhile initialises java.util.logging.
        LogLines.install(System.err, debug());
        int code = cli.execute(args);
        System.out.flush();
        System.err.flush();
        System.exit(code);
    }

    /** Parses and runs {@code args}; returns the exit code (see {@link ExitCodes}). */
    static int run(String... args) {
        return commandLine(args).execute(args);
    }

    /** The command line for {@code args} with the handlers that turn its errors into exit codes. */
    private static CommandLine commandLine(String... args) {
        CommandLine cli = HandoffCli.commandLine(args);
        cli.setCaseInsensitiveEnumValuesAllowed(true);
        cli.setParameterExceptionHandler((ex, badArgs) -> {
            CommandLine c = ex.getCommandLine();
            System.err.println(c.getCommandSpec().qualifiedName() + ": " + oneLine(ex.getMessage()) + " (see '"
                    + c.getCommandSpec().qualifiedName() + " --help')");
            return ExitCodes.USAGE;
        });
        cli.setExecutionExceptionHandler((ex, c, parsed) -> {
            String name = c.getCommandSpec().qualifiedName();
            if (ex instanceof CliException ce) {
                System.err.println(name + ": " + oneLine(ce.getMessage()));
                if (debug() && ce.getCause() != null) {
                    ce.getCause().printStackTrace();
                }
                return ce.exitCode();
            }
            System.err.println(name + ": internal error: " + oneLine(String.valueOf(ex)));
            if (debug()) {
                ex.printStackTrace();
            }
            return ExitCodes.FAILED;
        });
        return cli;
    }

    /** The version from the jar's manifest, or "dev" when run from classes. */
    static String version() {
        String v = Main.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    private static boolean debug() {
        return System.getenv("HANDOFF_DEBUG") != null;
    }

    private static String oneLine(String message) {
        return message == null ? "" : String.join("; ", Arrays.stream(message.split("\\R")).map(String::strip)
                .filter(s -> !s.isEmpty()).toList());
    }
}
