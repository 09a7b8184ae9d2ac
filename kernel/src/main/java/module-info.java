/**
 * Handoff's kernel: block devices, the mirror job and the ownership protocol (see the kernel's
 * README). It needs nothing beyond the JDK: {@code java.base}, {@code jdk.unsupported} for
 * {@code ExtendedOpenOption.DIRECT} ({@code FileDevice}'s {@code O_DIRECT}), and {@code jdk.jfr} for
 * its flight-recorder events ({@code CopyEvent}, {@code WriteBlockingEvent}, {@code JobStateEvent}). Only the API packages are exported;
 * {@code dev.handoff.example} (a runnable demo) is not. Other modules' checks reach inside through
 * the seams published in the kernel's test-jar ({@code MirrorProbe}, {@code OwnedImageProbe}),
 * never by reflection or by putting classes in these packages.
 */
module dev.handoff.kernel {
    requires jdk.unsupported;
    requires jdk.jfr;

    exports dev.handoff.device;
    exports dev.handoff.mirror;
    exports dev.handoff.ownership;
    exports dev.handoff.workload;
}
