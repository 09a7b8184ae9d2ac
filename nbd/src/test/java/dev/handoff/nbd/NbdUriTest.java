package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class NbdUriTest {

    @Test
    void parsesUnixUris() {
        NbdUri uri = NbdUri.parse("nbd+unix:///disk0?socket=/run/a/nbd.sock");
        assertThat(uri.exportName()).isEqualTo("disk0");
        assertThat(uri.address()).isEqualTo(NbdAddress.unix(Path.of("/run/a/nbd.sock")));
        assertThat(NbdUri.parse(uri.toString())).isEqualTo(uri);
        assertThat(uri.toString()).as("QEMU wants the empty authority").isEqualTo("nbd+unix:///disk0?socket=/run/a/nbd.sock");
        assertThat(new NbdUri(NbdAddress.tcp(5), "d").toString()).isEqualTo("nbd://127.0.0.1:5/d");
        NbdUri odd = new NbdUri(NbdAddress.unix(Path.of("/tmp/a&b c.sock")), "x");
        assertThat(NbdUri.parse(odd.toString())).isEqualTo(odd);
    }

    @Test
    void parsesTcpUrisWithDefaultPortAndIpv6() {
        assertThat(NbdUri.parse("nbd://127.0.0.1:10810/d")).isEqualTo(new NbdUri(NbdAddress.tcp(10810), "d"));
        assertThat(NbdUri.parse("nbd://localhost/d").address()).isEqualTo(NbdAddress.tcp("localhost", 10809));
        assertThat(NbdUri.parse("nbd://[::1]:99/x").address()).isEqualTo(NbdAddress.tcp("::1", 99));
        assertThat(NbdUri.parse("nbd://127.0.0.1:5").exportName()).isEmpty();
    }

    @Test
    void decodesPercentEscapesAndRoundTrips() {
        NbdUri uri = NbdUri.parse("nbd+unix:///my%20disk?socket=/tmp/s");
        assertThat(uri.exportName()).isEqualTo("my disk");
        assertThat(NbdUri.parse(uri.toString())).isEqualTo(uri);
        NbdUri tcp = new NbdUri(NbdAddress.tcp(7), "a/b c");
        assertThat(NbdUri.parse(tcp.toString())).isEqualTo(tcp);
    }

    @Test
    void parsesTlsUrisAndTheirHostName() {
        NbdUri tcp = NbdUri.parse("nbds://127.0.0.1:10810/d");
        assertThat(tcp).isEqualTo(new NbdUri(NbdAddress.tcp(10810), "d").withTls());
        assertThat(tcp.verifiedHostname()).isEqualTo("127.0.0.1");
        assertThat(tcp.toString()).isEqualTo("nbds://127.0.0.1:10810/d");
        NbdUri unix = NbdUri.parse("nbds+unix:///d?socket=/run/s");
        assertThat(unix.tls()).isTrue();
        assertThat(unix.verifiedHostname()).as("a unix socket has no host: the CA is the check").isNull();
        NbdUri named = NbdUri.parse("nbds+unix:///d?socket=/run/s&tls-hostname=nbd.example");
        assertThat(named.verifiedHostname()).isEqualTo("nbd.example");
        assertThat(NbdUri.parse(named.toString())).isEqualTo(named);
        NbdUri overridden = NbdUri.parse("nbds://10.0.0.5/d?tls-hostname=nbd.example");
        assertThat(overridden.verifiedHostname()).isEqualTo("nbd.example");
        assertThat(NbdUri.parse(overridden.toString())).isEqualTo(overridden);
        assertThat(NbdUri.isNbdUri("nbds+unix:///d?socket=/s")).isTrue();
    }

    @Test
    void refusesWhatItCannotServe() {
        assertThatThrownBy(() -> NbdUri.parse("nbds://127.0.0.1/x?tls-certificates=/etc/pki"))
                .hasMessageContaining("--tls-creds");
        assertThatThrownBy(() -> NbdUri.parse("nbd://127.0.0.1/x?tls-hostname=h")).hasMessageContaining("unexpected parameter");
        assertThatThrownBy(() -> NbdUri.parse("nbds://127.0.0.1/x?tls-hostname=")).hasMessageContaining("empty tls-hostname");
        assertThatThrownBy(() -> NbdUri.parse("nbd+unix:///x")).hasMessageContaining("socket=");
        assertThatThrownBy(() -> NbdUri.parse("nbd+unix:///x?socket=/s&tls=on")).hasMessageContaining("unexpected parameter");
        assertThatThrownBy(() -> NbdUri.parse("http://x/y")).hasMessageContaining("scheme");
        assertThatThrownBy(() -> NbdUri.parse("/tmp/file.img")).hasMessageContaining("no scheme");
        assertThat(NbdUri.isNbdUri("nbd+unix:///x?socket=/s")).isTrue();
        assertThat(NbdUri.isNbdUri("/images/a.img")).isFalse();
    }

    @Test
    void parsesAddresses() {
        assertThat(NbdAddress.parse("unix:/tmp/s")).isEqualTo(NbdAddress.unix(Path.of("/tmp/s")));
        assertThat(NbdAddress.parse("tcp:10809")).isEqualTo(NbdAddress.tcp(10809));
        assertThat(NbdAddress.parse("tcp:0.0.0.0:1")).isEqualTo(NbdAddress.tcp("0.0.0.0", 1));
        assertThat(NbdAddress.parse("127.0.0.1:5")).isEqualTo(NbdAddress.tcp(5));
        assertThat(NbdAddress.parse("tcp:[::1]:5")).isEqualTo(NbdAddress.tcp("::1", 5));
        assertThat(NbdAddress.tcp(5).toString()).isEqualTo("tcp:127.0.0.1:5");
        assertThatThrownBy(() -> NbdAddress.parse("nonsense")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> NbdAddress.parse("tcp:70000")).isInstanceOf(IllegalArgumentException.class);
    }
}
