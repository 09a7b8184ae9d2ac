/**
 * Test support: {@link dev.handoff.fs.CrashFileSystem}, a {@code java.nio.file} file system that
 * keeps, at a simulated power loss, only what was synced (file contents at their last
 * {@code force}, directory entries at the directory's last {@code force}), and can cut the code
 * under test off after any number of file system calls. Code that persists state in files (the
 * ownership record today; a persistent write-intent bitmap, a journal) is tested against it
 * through plain {@code Path}s, with no seam in production code. Published with the kernel's
 * test-jar for the other modules' tests (the simulator, issue-specific crash tests).
 */
package dev.handoff.fs;
