package dev.handoff.coordination;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** zk://HOST:PORT[,HOST:PORT...]/PATH, and the one-line reasons for what is not one. */
class ZkAddressTest {
    @Test
    void anEnsembleOfSeveralServersAndADeepPathParse() {
        ZkAddress a = ZkAddress.parse("zk://10.0.0.1:2181,zk2.example:2182,[::1]:2183/handoff/vm1-disk");
        assertThat(a.connectString()).isEqualTo("10.0.0.1:2181,zk2.example:2182,[::1]:2183");
        assertThat(a.path()).isEqualTo("/handoff/vm1-disk");
        assertThat(a.recordPath()).isEqualTo("/handoff/vm1-disk/record");
        assertThat(a.lockPath()).isEqualTo("/handoff/vm1-disk/lock");
        assertThat(a).hasToString("zk://10.0.0.1:2181,zk2.example:2182,[::1]:2183/handoff/vm1-disk");
    }

    @Test
    void aServerWithoutAPortMeansZooKeepersDefault() {
        assertThat(ZkAddress.parse("zk://zk1,zk2:3000/x").connectString()).isEqualTo("zk1:2181,zk2:3000");
    }

    @ParameterizedTest
    @ValueSource(strings = {"zk://h:1", "zk://h:1/", "zk:///x", "zk://h:0/x", "zk://h:65536/x", "zk://h:port/x",
        "zk://h:1,/x", "zk://h:1/x/", "zk://h:1//x", "zk://h:1/x/../y", "zk://h:1/x?session=3", "http://h:1/x",
        "zk://::1:2181/x", "zk://[::1/x", "zk://h$:1/x", "zk://h:1/x\u0001"})
    void whatIsNotAnAddressIsRefusedWithOneLine(String bad) {
        assertThatThrownBy(() -> ZkAddress.parse(bad)).isInstanceOf(IllegalArgumentException.class)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n").isNotBlank());
    }
}
