package dev.handoff.nbd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * The PEM blocks of a file ({@code -----BEGIN TYPE-----}, base64, {@code -----END TYPE-----}), as
 * OpenSSL, GnuTLS's certtool and QEMU's documentation write them. Text outside the blocks (the
 * human-readable dump {@code openssl x509 -text} puts first) is ignored. Every failure is an
 * {@link IOException} whose message names the file and says what is wrong with it in one line.
 */
final class Pem {
    /** Credential files are small; a larger one is a mistake (a disk image given as a key, say). */
    static final long MAX_FILE_BYTES = 1 << 20;

    /** One block: its type (the words after BEGIN) and its decoded bytes (DER). */
    record Block(String type, byte[] der) {
    }

    private Pem() {
    }

    /** Reads every block of {@code file}; fails if there is none. */
    static List<Block> read(Path file) throws IOException {
        String text = readText(file);
        List<Block> blocks = new ArrayList<>();
        String[] lines = text.split("\\R");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (!line.startsWith("-----BEGIN ") || !line.endsWith("-----")) {
                continue;
            }
            String type = line.substring("-----BEGIN ".length(), line.length() - "-----".length());
            String end = "-----END " + type + "-----";
            StringBuilder base64 = new StringBuilder();
            boolean encrypted = false;
            int j = i + 1;
            for (; j < lines.length && !lines[j].strip().equals(end); j++) {
                String body = lines[j].strip();
                if (body.contains(":")) { // RFC 1421 headers: Proc-Type, DEK-Info
                    encrypted |= body.startsWith("Proc-Type:") && body.contains("ENCRYPTED");
                    continue;
                }
                base64.append(body);
            }
            if (j == lines.length) {
                throw new IOException(file + ": the PEM block '" + type + "' has no END line (truncated file?)");
            }
            if (encrypted || type.equals("ENCRYPTED PRIVATE KEY")) {
                throw new IOException(file + ": the private key is encrypted; give the key without a passphrase"
                        + " (protect it with the file's permissions instead)");
            }
            try {
                blocks.add(new Block(type, Base64.getMimeDecoder().decode(base64.toString())));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": the PEM block '" + type + "' is not valid base64");
            }
            i = j;
        }
        if (blocks.isEmpty()) {
            throw new IOException(file + ": not a PEM file (no -----BEGIN ...----- line)");
        }
        return blocks;
    }

    private static String readText(Path file) throws IOException {
        try {
            if (Files.isDirectory(file)) {
                throw new IOException(file + ": is a directory, expected a PEM file");
            }
            long size = Files.size(file);
            if (size > MAX_FILE_BYTES) {
                throw new IOException(file + ": " + size + " bytes is too large for a PEM credential file");
            }
            return new String(Files.readAllBytes(file), StandardCharsets.US_ASCII);
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such file", e);
        } catch (AccessDeniedException e) {
            throw new IOException(file + ": permission denied", e);
        }
    }
}
