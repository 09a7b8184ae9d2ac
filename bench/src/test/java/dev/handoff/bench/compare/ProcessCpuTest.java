package dev.handoff.bench.compare;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

@Timeout(60)
class ProcessCpuTest {
    /** A fio job process's stat line, its name holding a space and a ')'. utime 1234, stime 56. */
    private static final String STAT = "4242 (fio job) x) S 4241 4241 19769 0 -1 4194560 3054 36096 0 0 1234 56 37 14"
            + " 20 0 3 0 6556853 5124096 989 18446744073709551615 1 1 0 0 0 0 65536 4 1132560123 1 0 0 17 0 0 0 0 0 0";

    @Test
    void statTicksAreUtimePlusStimeCountedFromTheLastParenthesis() {
        assertThat(ProcessCpu.statTicks(STAT)).isEqualTo(1234 + 56);
    }

    @Test
    void aStatLineWithoutItsFieldsIsRefused() {
        assertThatThrownBy(() -> ProcessCpu.statTicks("4242 (fio) S 1 2")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ProcessCpu.statTicks("garbage")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void schedstatIsNanosecondsOnTheCpuFirst() {
        assertThat(ProcessCpu.schedstatNanos("352019 234830 2\n")).isEqualTo(352_019);
        assertThatThrownBy(() -> ProcessCpu.schedstatNanos("1 2")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void theClockTickIsReadFromTheAuxiliaryVector() {
        ByteBuffer b = ByteBuffer.allocate(4 * 16).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(6).putLong(4096);   // AT_PAGESZ
        b.putLong(17).putLong(100);   // AT_CLKTCK
        b.putLong(3).putLong(1234);   // AT_PHDR
        b.putLong(0).putLong(0);      // AT_NULL
        assertThat(ProcessCpu.clockTicks(b.array())).isEqualTo(100);
        ByteBuffer none = ByteBuffer.allocate(2 * 16).order(ByteOrder.LITTLE_ENDIAN);
        none.putLong(6).putLong(4096).putLong(0).putLong(0);
        assertThatThrownBy(() -> ProcessCpu.clockTicks(none.array())).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aWindowSumsEachThreadsNanosecondsAndCountsANewThreadFromZero() {
        ProcessCpu.Tree before = new ProcessCpu.Tree(0, Map.of(1L, 1_000_000_000L, 2L, 500_000_000L), 150, 100);
        ProcessCpu.Tree after = new ProcessCpu.Tree(2_000_000_000L,
                Map.of(1L, 1_700_000_000L, 2L, 500_000_001L, 3L, 250_000_000L), 245, 100);
        assertThat(after.secondsSince(before)).isCloseTo(0.950000001, within(1e-12));
    }

    @Test
    void aThreadThatExitedInTheWindowSendsItToTheTicks() {
        ProcessCpu.Tree before = new ProcessCpu.Tree(0, Map.of(1L, 1_000_000_000L, 2L, 500_000_000L), 150, 100);
        ProcessCpu.Tree after = new ProcessCpu.Tree(2_000_000_000L, Map.of(1L, 1_700_000_000L), 245, 100);
        assertThat(after.secondsSince(before)).isCloseTo(0.95, within(1e-12));
    }

    @Test
    void usagePerWindow() {
        ProcessCpu.Usage u = new ProcessCpu.Usage(2.0, 0.5, 2.5);
        assertThat(u.serverBusy()).isCloseTo(0.8, within(1e-12));
        assertThat(u.fioBusy()).isCloseTo(0.2, within(1e-12));
        assertThat(u.microsPerIo(10_000)).isCloseTo(100, within(1e-9)); // 1.0 CPU at 10,000 I/O a second
        assertThat(ProcessCpu.Usage.NONE.microsPerIo(10_000)).isNaN();
    }

    @Test
    void thisProcessIsSampledWithItsThreads() {
        ProcessCpu.Tree a = ProcessCpu.sample(ProcessHandle.current().pid());
        long x = 0;
        for (int i = 0; i < 50_000_000; i++) {
            x += i ^ (x >>> 3);
        }
        ProcessCpu.Tree b = ProcessCpu.sample(ProcessHandle.current().pid());
        assertThat(x).isNotZero();
        assertThat(a.threadNanos()).isNotEmpty();
        assertThat(b.nanoTime()).isGreaterThan(a.nanoTime());
        assertThat(b.secondsSince(a)).isPositive();
        assertThat(ProcessCpu.sample(Long.MAX_VALUE).threadNanos()).isEmpty(); // no such process
    }
}
