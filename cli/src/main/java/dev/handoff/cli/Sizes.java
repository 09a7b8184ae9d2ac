package dev.handoff.cli;

import java.util.Locale;
import picocli.CommandLine;

/**
 * Byte sizes and rates on the command line: a number with an optional binary suffix, as QEMU's
 * tools take them: {@code 512}, {@code 64K}, {@code 64KiB}, {@code 16M}, {@code 1G}, {@code 2T};
 * rates may end in {@code /s} ({@code 10M/s}).
 */
final class Sizes {
    private Sizes() {
    }

    /** Parses a size; throws {@link IllegalArgumentException} with a message naming the input. */
    static long parse(String text) {
        String s = text.trim();
        if (s.endsWith("/s")) {
            s = s.substring(0, s.length() - 2).trim();
        }
        String lower = s.toLowerCase(Locale.ROOT);
        int shift = 0;
        String digits = lower;
        String[][] suffixes = {{"kib", "10"}, {"mib", "20"}, {"gib", "30"}, {"tib", "40"}, {"k", "10"}, {"m", "20"},
            {"g", "30"}, {"t", "40"}, {"b", "0"}};
        for (String[] suffix : suffixes) {
            if (lower.endsWith(suffix[0])) {
                digits = lower.substring(0, lower.length() - suffix[0].length()).trim();
                shift = Integer.parseInt(suffix[1]);
                break;
            }
        }
        if (digits.isEmpty() || !digits.chars().allMatch(Character::isDigit)) {
            throw new IllegalArgumentException("'" + text + "' is not a size (a whole number of bytes, optionally"
                    + " with a suffix K, M, G or T, e.g. 64K)");
        }
        long value;
        try {
            value = Long.parseLong(digits);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is too large");
        }
        if (value > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("'" + text + "' is too large");
        }
        return value << shift;
    }

    /** A size for people: {@code 256 MiB}, {@code 1.5 GiB}, {@code 4 KiB}, {@code 100 B}. */
    static String format(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (Math.abs(v) >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        if (u == 0 || v == Math.rint(v)) {
            return String.format(Locale.ROOT, "%d %s", (long) v, units[u]);
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** Converts option values with {@link #parse}. */
    static final class Converter implements CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            try {
                return parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
