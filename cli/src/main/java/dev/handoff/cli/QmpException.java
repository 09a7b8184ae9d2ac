package dev.handoff.cli;

/** A QMP error reply: {"error": {"class": CLASS, "desc": DESC}}, with QEMU's error classes. */
final class QmpException extends Exception {
    private static final long serialVersionUID = 1L;

    static final String GENERIC = "GenericError";
    static final String COMMAND_NOT_FOUND = "CommandNotFound";
    static final String DEVICE_NOT_ACTIVE = "DeviceNotActive";

    private final String errorClass;

    QmpException(String errorClass, String desc) {
        super(desc);
        this.errorClass = errorClass;
    }

    static QmpException generic(String desc) {
        return new QmpException(GENERIC, desc);
    }

    String errorClass() {
        return errorClass;
    }
}
