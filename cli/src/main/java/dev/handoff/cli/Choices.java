package dev.handoff.cli;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.SyncMode;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;
import picocli.CommandLine;

/**
 * Enum options spelled the way QEMU spells them on its command line and in QMP: lower case with
 * dashes ({@code write-blocking}), underscores and upper case also accepted.
 */
final class Choices {
    private Choices() {
    }

    /** {@code WRITE_BLOCKING} → {@code write-blocking}. */
    static String name(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    static <E extends Enum<E>> E parse(Class<E> type, String text, String what) {
        String wanted = text.trim().toUpperCase(Locale.ROOT).replace('-', '_');
        for (E e : type.getEnumConstants()) {
            if (e.name().equals(wanted)) {
                return e;
            }
        }
        throw new IllegalArgumentException("'" + text + "' is not a " + what + " (expected one of "
                + Arrays.stream(type.getEnumConstants()).map(Choices::name).collect(Collectors.joining(", ")) + ")");
    }

    private abstract static class EnumConverter<E extends Enum<E>> implements CommandLine.ITypeConverter<E> {
        private final Class<E> type;
        private final String what;

        EnumConverter(Class<E> type, String what) {
            this.type = type;
            this.what = what;
        }

        @Override
        public E convert(String value) {
            try {
                return parse(type, value, what);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    static final class CopyModes extends EnumConverter<CopyMode> {
        CopyModes() {
            super(CopyMode.class, "copy mode");
        }
    }

    static final class Policies extends EnumConverter<ErrorPolicy> {
        Policies() {
            super(ErrorPolicy.class, "error policy");
        }
    }

    static final class SyncModes extends EnumConverter<SyncMode> {
        SyncModes() {
            super(SyncMode.class, "sync mode");
        }
    }
}
