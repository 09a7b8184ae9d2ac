package dev.handoff.cli;

import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The top-level {@code handoff} command. A new subcommand is one class plus one entry in
 * {@link #SUBCOMMANDS}; {@link #commandLine} registers them.
 */
@Command(name = "handoff", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT,
        versionProvider = HandoffCli.Version.class,
        usageHelpWidth = 100,
        description = {"Live block mirroring and ownership handoff, after QEMU's mirror job and BDRV_O_INACTIVE.",
            "Start with `handoff demo`."},
        exitCodeListHeading = "%nExit codes (every command):%n",
        exitCodeList = {
            " 0:done (mirror consistent: completed, or cancelled once READY; demo checks passed; owner command"
                    + " succeeded; serve stopped by quit)",
            " 1:job failed (I/O error with policy report), demo check failed, verify check failed, coordinator"
                    + " unreachable, internal error",
            " 2:usage: unknown option, missing or invalid argument, more memory than the JVM has, stop/enospc"
                    + " without --control",
            " 3:bad image: missing source, not raw, target size differs, target is the source, target not"
                    + " writable, socket path in a missing directory, the coordinator PATH belongs to another image,"
                    + " or a --bitmap that is damaged, of a newer version, of other images, or stale",
            " 4:busy: image or --bitmap locked by another process (QEMU or Handoff), owned by another holder,"
                    + " address in use",
            " 5:cancelled before the target was consistent",
            " 6:fenced: a newer owner took the image over (stale token or handle), or the coordinator session was lost",
            "130:interrupted (Ctrl-C); the target is left as is, consistent only if the message says so",
            "143:terminated (SIGTERM); the same as 130",
        },
        footer = {"%nEnvironment: HANDOFF_DEBUG=1 prints stack traces of internal errors."})
final class HandoffCli implements Callable<Integer> {
    /** The subcommands, in the order {@code handoff --help} lists them. */
    static final List<Class<?>> SUBCOMMANDS = List.of(
            DemoCommand.class,
            EnsembleDemoCommand.class,
            MirrorCommand.class,
            OwnerCommand.class,
            ServeCommand.class,
            VerifyCommand.class,
            CommandLine.HelpCommand.class);

    @Spec
    CommandSpec spec;

    /**
     * The command line for {@code args}. When {@code args[0]} names a subcommand other than
     * {@code help}, only that one is registered: picocli builds the model (options, usage texts)
     * of every command it registers, and building all of them is most of a command's start-up.
     * Anything else ({@code --help}, {@code help X}, no command, an unknown one) registers all,
     * so listings and errors name every command.
     */
    static CommandLine commandLine(String... args) {
        CommandLine cli = new CommandLine(new HandoffCli());
        Class<?> only = args.length == 0 ? null : subcommandNamed(args[0]);
        for (Class<?> c : only != null ? List.<Class<?>>of(only) : SUBCOMMANDS) {
            cli.addSubcommand(c);
        }
        return cli;
    }

    /** The subcommand class named {@code name}, or null for {@code help} and anything that names none. */
    static Class<?> subcommandNamed(String name) {
        for (Class<?> c : SUBCOMMANDS) {
            if (c != CommandLine.HelpCommand.class && c.getAnnotation(Command.class).name().equals(name)) {
                return c;
            }
        }
        return null;
    }

    @Override
    public Integer call() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required (demo, ensemble-demo, mirror, owner, serve, verify)");
    }

    /** Prints the version from the jar's manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"handoff " + Main.version()};
        }
    }
}
