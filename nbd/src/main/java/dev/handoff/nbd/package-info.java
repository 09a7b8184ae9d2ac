/**
 * The NBD protocol for Handoff: {@link dev.handoff.nbd.NbdServer} exports any
 * {@link dev.handoff.device.BlockDevice} (a mirror job's guest device in particular), and
 * {@link dev.handoff.nbd.NbdDevice} is a {@code BlockDevice} backed by a remote export, usable as a
 * mirror target or source. Addresses are {@link dev.handoff.nbd.NbdAddress} ({@code unix:PATH},
 * {@code tcp:HOST:PORT}) and exports are named by {@link dev.handoff.nbd.NbdUri}
 * ({@code nbd+unix:///NAME?socket=PATH}, {@code nbd://HOST:PORT/NAME}, and over TLS
 * {@code nbds+unix://}, {@code nbds://}).
 *
 * <p>What is implemented, after the NBD protocol document: the fixed newstyle handshake with
 * {@code NBD_OPT_GO}, {@code NBD_OPT_INFO}, {@code NBD_OPT_LIST}, {@code NBD_OPT_ABORT},
 * {@code NBD_OPT_EXPORT_NAME}, {@code NBD_OPT_STARTTLS}, {@code NBD_OPT_STRUCTURED_REPLY},
 * {@code NBD_OPT_LIST_META_CONTEXT} and {@code NBD_OPT_SET_META_CONTEXT} with the one context
 * {@code base:allocation} (other options are declined with {@code NBD_REP_ERR_UNSUP}); the empty
 * export name as the default export when one is served; TLS in the protocol's FORCEDTLS mode with
 * X.509 credentials in QEMU's layout ({@link dev.handoff.nbd.TlsCredentials}) and a client
 * allow-list ({@link dev.handoff.nbd.ClientAllowList}); transmission with simple or structured
 * replies: READ (DF), WRITE (FUA), FLUSH, TRIM, WRITE_ZEROES (NO_HOLE, FAST_ZERO), CACHE,
 * BLOCK_STATUS (REQ_ONE), DISC. The server's block status is the exported device's allocation map
 * ({@link dev.handoff.device.BlockDevice#nextData}, {@code nextHole}). The client asks for simple
 * replies unless told to read the allocation map ({@link dev.handoff.nbd.NbdDevice.Options#allocationMap}):
 * then structured replies, base:allocation and block status. Not implemented: extended headers,
 * the oldstyle handshake, reconnection, TLS with pre-shared keys.
 *
 * <p>Wire layouts are drawn in {@code NbdWire}; the server's threading and budgets are described
 * at the top of {@code ServerConnection}, the client's at the top of {@code NbdDevice}. The
 * robustness checks and the broken variants they are shown to catch are in the mutant catalog
 * ({@code mutants/catalog.json}).
 */
package dev.handoff.nbd;
