package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading credentials from QEMU's directory layout: every key format OpenSSL writes, and one clear
 * line naming the file for each way a directory can be wrong.
 */
@Timeout(60)
class TlsCredentialsTest {
    @TempDir
    Path dir;

    private final TestPki pki = TestPki.get();

    @Test
    void loadsServerAndClientCredentialsInEveryKeyFormat() throws Exception {
        TlsCredentials server = TlsCredentials.server(pki.server());     // EC key in SEC 1 form
        TlsCredentials clientA = TlsCredentials.client(pki.clientA());   // EC key in PKCS#8
        TlsCredentials clientB = TlsCredentials.client(pki.clientB());   // RSA key in PKCS#1
        assertThat(server.role()).isEqualTo(TlsCredentials.Role.SERVER);
        assertThat(TlsFailure.subject(server.certificate())).isEqualTo("CN=localhost,O=Handoff tests");
        assertThat(TlsFailure.subject(clientA.certificate())).isEqualTo(TestPki.CLIENT_A);
        assertThat(TlsFailure.subject(clientB.certificate())).isEqualTo(TestPki.CLIENT_B);
        assertThat(TlsCredentials.client(pki.server()).hasCertificate()).as("one directory, both roles").isTrue();
        assertThat(TlsCredentials.client(pki.noClientCertificate()).hasCertificate()).isFalse();
    }

    @Test
    void aMissingDirectoryOrFileIsNamed() throws Exception {
        assertThatThrownBy(() -> TlsCredentials.server(dir.resolve("nope")))
                .isInstanceOf(IOException.class).hasMessageContaining("nope: no such directory");
        assertThatThrownBy(() -> TlsCredentials.server(pki.clientA()))
                .hasMessage(pki.clientA().resolve("server-cert.pem") + ": no such file");
        assertThatThrownBy(() -> TlsCredentials.client(dir))
                .hasMessage(dir.resolve("ca-cert.pem") + ": no such file");
        copy(pki.clientA(), "ca-cert.pem", "client-cert.pem");
        assertThatThrownBy(() -> TlsCredentials.client(dir))
                .hasMessageStartingWith(dir.resolve("client-key.pem") + ": no such file");
    }

    @Test
    void anUnreadableOrNonPemFileIsNamed() throws Exception {
        copy(pki.server(), "ca-cert.pem", "server-cert.pem");
        Files.createDirectory(dir.resolve("server-key.pem"));
        assertThatThrownBy(() -> TlsCredentials.server(dir)).hasMessage(dir.resolve("server-key.pem") + ": is a directory,"
                + " expected a PEM file");
        Files.delete(dir.resolve("server-key.pem"));
        Files.writeString(dir.resolve("server-key.pem"), "this is not a key\n");
        assertThatThrownBy(() -> TlsCredentials.server(dir)).hasMessage(dir.resolve("server-key.pem")
                + ": not a PEM file (no -----BEGIN ...----- line)");
        Files.writeString(dir.resolve("server-key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n");
        assertThatThrownBy(() -> TlsCredentials.server(dir)).hasMessageContaining("has no END line");
        Files.writeString(dir.resolve("server-key.pem"), "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n");
        assertThatThrownBy(() -> TlsCredentials.server(dir)).hasMessageContaining("not a usable private key");

    }

    @Test
    void anUnreadableKeyIsNamed() throws Exception {
        copy(pki.server(), "ca-cert.pem", "server-cert.pem", "server-key.pem");
        TlsCredentials.server(dir);
        Files.setPosixFilePermissions(dir.resolve("server-key.pem"), PosixFilePermissions.fromString("---------"));
        Assumptions.assumeFalse(Files.isReadable(dir.resolve("server-key.pem")), "root reads any file");
        assertThatThrownBy(() -> TlsCredentials.server(dir)).hasMessage(dir.resolve("server-key.pem") + ": permission denied");
    }

    @Test
    void aKeyThatDoesNotBelongToItsCertificateIsRefused() {
        assertThatThrownBy(() -> TlsCredentials.server(pki.mismatchedServerKey()))
                .hasMessage(pki.mismatchedServerKey().resolve("server-key.pem")
                        + ": this key does not belong to the certificate in server-cert.pem");
    }

    @Test
    void anExpiredCertificateIsRefused() {
        assertThatThrownBy(() -> TlsCredentials.server(pki.expiredServer()))
                .hasMessageStartingWith(pki.expiredServer().resolve("server-cert.pem") + ": the certificate expired on ");
        assertThatThrownBy(() -> TlsCredentials.client(pki.expiredClient()))
                .hasMessageStartingWith(pki.expiredClient().resolve("client-cert.pem") + ": the certificate expired on ");
    }

    @Test
    void aCertificateNotSignedByTheCaIsRefused() {
        assertThatThrownBy(() -> TlsCredentials.client(pki.rogueClient()))
                .hasMessageStartingWith(pki.rogueClient().resolve("client-cert.pem")
                        + ": not signed by the certificate authority in ca-cert.pem");
    }

    @Test
    void aCertificateForTheOtherRoleIsRefused() throws Exception {
        copy(pki.server(), "ca-cert.pem");
        Files.copy(pki.server().resolve("client-cert.pem"), dir.resolve("server-cert.pem"));
        Files.copy(pki.server().resolve("client-key.pem"), dir.resolve("server-key.pem"));
        assertThatThrownBy(() -> TlsCredentials.server(dir)).hasMessage(dir.resolve("server-cert.pem")
                + ": the certificate is not for TLS servers (its extended key usage lacks serverAuth)");
    }

    @Test
    void anEncryptedKeyIsRefusedWithAHint() throws Exception {
        copy(pki.server(), "ca-cert.pem", "server-cert.pem");
        Files.writeString(dir.resolve("server-key.pem"), "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                + "-----END ENCRYPTED PRIVATE KEY-----\n");
        assertThatThrownBy(() -> TlsCredentials.server(dir)).hasMessage(dir.resolve("server-key.pem")
                + ": the private key is encrypted; give the key without a passphrase (protect it with the file's"
                + " permissions instead)");
    }

    @Test
    void anAllowListIsReadLineByLineAndComparesNamesCanonically() throws Exception {
        Path file = dir.resolve("allow");
        Files.writeString(file, "# backup hosts\n\n" + TestPki.CLIENT_A + "\n  subject=cn=CLIENT-B, o=Handoff tests  \n");
        ClientAllowList list = ClientAllowList.load(file);
        assertThat(list.size()).isEqualTo(2);
        assertThat(list.permits(new javax.security.auth.x500.X500Principal(TestPki.CLIENT_B))).isTrue();
        assertThat(list.permits(new javax.security.auth.x500.X500Principal("CN=client-c,O=Handoff tests"))).isFalse();
        assertThat(list.permits(new javax.security.auth.x500.X500Principal("O=Handoff tests,CN=client-a")))
                .as("QEMU's order, the certificate's, is the same name").isTrue();
        assertThat(list.permits(new javax.security.auth.x500.X500Principal("CN=client-a,O=Handoff tests,C=GB")))
                .as("an attribute more is another name").isFalse();
        Files.writeString(file, TestPki.CLIENT_A + "\nnot a name\n");
        assertThatThrownBy(() -> ClientAllowList.load(file)).hasMessageStartingWith(file + " line 2: not a distinguished"
                + " name ('not a name')");
        assertThatThrownBy(() -> ClientAllowList.load(dir.resolve("none"))).hasMessage(dir.resolve("none") + ": no such file");
    }

    private void copy(Path from, String... names) throws IOException {
        for (String n : names) {
            Files.copy(from.resolve(n), dir.resolve(n));
        }
    }
}
