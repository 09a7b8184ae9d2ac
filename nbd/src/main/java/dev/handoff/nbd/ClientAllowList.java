package dev.handoff.nbd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.security.auth.x500.X500Principal;

/**
 * The client certificates a TLS server lets in, by subject distinguished name: QEMU's
 * {@code tls-authz} with an exact-match allow-list.
 *
 * <p>File format: one DN per line, e.g. {@code CN=backup-host,O=Example,C=GB}: in RFC 4514 order,
 * most specific attribute first, as {@code openssl x509 -noout -subject -nameopt RFC2253 -in
 * client-cert.pem} prints it (after {@code subject=}); or in the certificate's own order,
 * {@code C=GB,O=Example,CN=backup-host}, as QEMU's {@code authz} identities are written and as QEMU
 * logs a refused client. Blank lines and lines starting with {@code #} are ignored. Names are
 * compared as X.500 names: case and spacing of values do not matter; the attributes must be the
 * same, in one of the two orders.
 *
 * <p>Immutable; thread-safe.
 */
public final class ClientAllowList {
    /** Every name in both orders. */
    private final Set<X500Principal> allowed;
    private final String source;
    private final int size;

    private ClientAllowList(Set<X500Principal> allowed, String source, int size) {
        this.allowed = Set.copyOf(allowed);
        this.source = source;
        this.size = size;
    }

    /** Reads the allow-list in {@code file}; the message of a failure names the file and the line. */
    public static ClientAllowList load(Path file) throws IOException {
        List<String> lines;
        try {
            if (Files.isDirectory(file)) {
                throw new IOException(file + ": is a directory, expected a list of certificate names");
            }
            if (Files.size(file) > Pem.MAX_FILE_BYTES) {
                throw new IOException(file + ": too large for a list of certificate names");
            }
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such file", e);
        } catch (AccessDeniedException e) {
            throw new IOException(file + ": permission denied", e);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new IOException(file + ": not UTF-8 text", e);
        }
        Set<X500Principal> names = new LinkedHashSet<>();
        int count = 0;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            try {
                X500Principal name = parse(line);
                names.add(name);
                names.add(reversed(name));
                count++;
            } catch (IllegalArgumentException e) {
                throw new IOException(file + " line " + (i + 1) + ": not a distinguished name ('" + line + "'): "
                        + e.getMessage());
            }
        }
        return new ClientAllowList(names, file.toString(), count);
    }

    /** An allow-list of the given names (RFC 4514 strings). */
    public static ClientAllowList of(String... names) {
        Set<X500Principal> set = new LinkedHashSet<>();
        for (String n : names) {
            X500Principal name = parse(Objects.requireNonNull(n, "name"));
            set.add(name);
            set.add(reversed(name));
        }
        return new ClientAllowList(set, "the allow-list", names.length);
    }

    /** The same attributes in the opposite order: the other of the two ways a DN is written. */
    private static X500Principal reversed(X500Principal name) {
        try {
            List<Rdn> rdns = new ArrayList<>(new LdapName(name.getName(X500Principal.RFC2253)).getRdns());
            Collections.reverse(rdns);
            return new X500Principal(new LdapName(rdns).toString());
        } catch (InvalidNameException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    private static X500Principal parse(String name) {
        if (name.startsWith("subject=")) { // pasted from `openssl x509 -subject`
            name = name.substring("subject=".length()).strip();
        }
        return new X500Principal(name);
    }

    /** Whether a client whose certificate has subject {@code subject} may connect. */
    public boolean permits(X500Principal subject) {
        return allowed.contains(subject); // X500Principal.equals compares canonical forms
    }

    /** The number of names on the list (lines). */
    public int size() {
        return size;
    }

    /** Where the list came from (its file), for messages. */
    public String source() {
        return source;
    }

    @Override
    public String toString() {
        return "ClientAllowList[" + source + ", " + size + " names]";
    }
}
