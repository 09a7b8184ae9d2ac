package dev.handoff.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The top-level {@code handoff} command. A new subcommand is one class plus one entry in
 * {@code subcommands} below.
 */
@Command(name = "handoff", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT,
        versionProvider = HandoffCli.Version.class,
        usageHelpWidth = 100,
        description = {"Live block mirroring and ownership handoff, after QEMU's mirror job and BDRV_O_INACTIVE.",
            "Start with `handoff demo`."},
        subcommands = {
            DemoCommand.class,
            EnsembleDemoCommand.class,
            MirrorCommand.class,
            OwnerCommand.class,
            ServeCommand.class,
            VerifyCommand.class,
            CommandLine.HelpCommand.class,
        },
        exitCodeListHeading = "%nExit codes (every command):%n",
        exitCodeList = {
            " 0:done (mirror consistent: completed, or cancelled once READY; demo checks passed; owner command"
                    + " succeeded; serve stopped by quit)",
            " 1:job failed (I/O error with policy report), demo check failed, verify check failed, coordinator"
                    + " unreachable, internal error",
            " 2:usage: unknown option, missing or invalid argument, more memory than the JVM has, stop/enospc"
                    + " without --control",
            " 3:bad image: missing source, not raw, target size differs, target is the source, target not"
                    + " writable, socket path in a missing directory, or the coordinator PATH belongs to another image",
            " 4:busy: image locked by another process (QEMU or Handoff), owned by another holder, address in use",
            " 5:cancelled before the target was consistent",
            " 6:fenced: a newer owner took the image over (stale token or handle), or the coordinator session was lost",
            "130:interrupted (Ctrl-C); the target is left as is, consistent only if the message says so",
            "143:terminated (SIGTERM); the same as 130",
        },
        footer = {"%nEnvironment: HANDOFF_DEBUG=1 prints stack traces of internal errors."})
final class HandoffCli implements Callable<Integer> {
    @Spec
    CommandSpec spec;

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
