package dev.handoff.bench.compare;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/** Medians and number formatting for the comparison's tables. */
final class Stats {
    private Stats() {
    }

    /** Median of the finite values; NaN if there are none. */
    static double median(double... values) {
        double[] v = Arrays.stream(values).filter(Double::isFinite).sorted().toArray();
        if (v.length == 0) {
            return Double.NaN;
        }
        int m = v.length / 2;
        return v.length % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
    }

    static <T> double median(List<T> items, ToDoubleFunction<T> f) {
        return median(items.stream().mapToDouble(f).toArray());
    }

    static <T> double min(List<T> items, ToDoubleFunction<T> f) {
        return items.stream().mapToDouble(f).filter(Double::isFinite).min().orElse(Double.NaN);
    }

    static <T> double max(List<T> items, ToDoubleFunction<T> f) {
        return items.stream().mapToDouble(f).filter(Double::isFinite).max().orElse(Double.NaN);
    }

    static String f(String format, double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, format, v) : "-";
    }

    static String seconds(double v) {
        return f("%.2f", v);
    }

    static String ratio(double v) {
        return f("%.2f", v);
    }

    static String percent(double v) {
        return f("%.0f %%", 100 * v);
    }

    static String micros(double v) {
        if (!Double.isFinite(v)) {
            return "-";
        }
        return v >= 10_000 ? String.format(Locale.ROOT, "%.1f ms", v / 1000) : String.format(Locale.ROOT, "%.0f µs", v);
    }

    static String range(double lo, double hi, String unit) {
        return f("%.2f", lo) + "–" + f("%.2f", hi) + unit;
    }
}
