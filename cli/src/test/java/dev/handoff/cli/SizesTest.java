package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SizesTest {
    @Test
    void parsesBinarySuffixesAndRates() {
        assertThat(Sizes.parse("512")).isEqualTo(512);
        assertThat(Sizes.parse("64K")).isEqualTo(64 << 10);
        assertThat(Sizes.parse("64KiB")).isEqualTo(64 << 10);
        assertThat(Sizes.parse("16m")).isEqualTo(16 << 20);
        assertThat(Sizes.parse("1G")).isEqualTo(1L << 30);
        assertThat(Sizes.parse("2T")).isEqualTo(2L << 40);
        assertThat(Sizes.parse("10M/s")).isEqualTo(10 << 20);
        assertThat(Sizes.parse("100B")).isEqualTo(100);
        assertThat(Sizes.parse("0")).isZero();
    }

    @Test
    void rejectsWhatIsNotASize() {
        for (String bad : new String[] {"", "-1", "1.5M", "abc", "K", "12X", "99999999999T", "9223372036854775808"}) {
            assertThatThrownBy(() -> Sizes.parse(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void formatsForPeople() {
        assertThat(Sizes.format(100)).isEqualTo("100 B");
        assertThat(Sizes.format(64 << 10)).isEqualTo("64 KiB");
        assertThat(Sizes.format(3L << 29)).isEqualTo("1.5 GiB");
        assertThat(Sizes.format(256L << 20)).isEqualTo("256 MiB");
    }
}
