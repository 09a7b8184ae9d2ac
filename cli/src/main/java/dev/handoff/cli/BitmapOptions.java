package dev.handoff.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --bitmap FILE} and {@code --restart}, the persistent write-intent bitmap of {@code mirror}
 * and {@code serve --mirror-to} (DESIGN §2.10; {@link ResumeBitmap} does the work).
 */
final class BitmapOptions {
    @Option(names = "--bitmap", paramLabel = "FILE", description = "Keep the job's write-intent bitmap in FILE: after a"
            + " crash, kill -9 or power loss the same command finds it, resumes and copies again only the regions that"
            + " may differ. Created when absent; removed once the copy completes; kept by an interrupted or failed job.")
    Path file;

    @Option(names = "--restart", description = "With --bitmap: discard what FILE holds and copy everything again.")
    boolean restart;

    boolean present() {
        return file != null;
    }

    void validate() throws CliException {
        if (restart && file == null) {
            throw new CliException(ExitCodes.USAGE, "--restart discards a --bitmap FILE: give the bitmap to discard");
        }
        if (file != null && Files.isDirectory(file)) {
            throw new CliException(ExitCodes.USAGE, "--bitmap " + file + " is a directory: give a file");
        }
        if (file != null && file.toAbsolutePath().getParent() != null
                && !Files.isDirectory(file.toAbsolutePath().getParent())) {
            throw new CliException(ExitCodes.USAGE, "--bitmap " + file + ": the directory "
                    + file.toAbsolutePath().getParent() + " does not exist");
        }
    }
}
