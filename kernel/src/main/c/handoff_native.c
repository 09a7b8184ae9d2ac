/*
 * The few Linux calls Java's FileChannel does not offer, for dev.handoff.device.LinuxFiles:
 * SEEK_DATA / SEEK_HOLE (where a sparse file's data is), fallocate (punch a hole, zero a range),
 * and a block device's BLKDISCARD / BLKZEROOUT ioctls. Each works on the file descriptor of an
 * open FileChannel, never on a descriptor of its own: POSIX record locks (QEMU's lock bytes) are
 * dropped when any descriptor of the file is closed, so no second one is ever opened.
 *
 * Every function returns a non-negative result, or -errno; the Java side decides what an error
 * means (unsupported here, or a real failure).
 */
#define _GNU_SOURCE
#include <jni.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

/* The descriptor behind a sun.nio.ch.FileChannelImpl: its "fd" FileDescriptor's "fd" int. */
static int fd_of(JNIEnv *env, jobject channel) {
    jclass channel_class = (*env)->GetObjectClass(env, channel);
    jfieldID fd_field = (*env)->GetFieldID(env, channel_class, "fd", "Ljava/io/FileDescriptor;");
    if (fd_field == NULL) {
        (*env)->ExceptionClear(env);
        return -1;
    }
    jobject descriptor = (*env)->GetObjectField(env, channel, fd_field);
    if (descriptor == NULL) {
        return -1;
    }
    jclass descriptor_class = (*env)->GetObjectClass(env, descriptor);
    jfieldID int_field = (*env)->GetFieldID(env, descriptor_class, "fd", "I");
    if (int_field == NULL) {
        (*env)->ExceptionClear(env);
        return -1;
    }
    return (*env)->GetIntField(env, descriptor, int_field);
}

/* lseek(SEEK_DATA) when data != 0, lseek(SEEK_HOLE) otherwise. Moves the descriptor's file offset,
 * which FileChannel's positional reads and writes (pread/pwrite) never use. */
JNIEXPORT jlong JNICALL Java_dev_handoff_device_LinuxFiles_seek0(JNIEnv *env, jclass cls, jobject channel,
        jlong offset, jboolean data) {
    int fd = fd_of(env, channel);
    if (fd < 0) {
        return -EBADF;
    }
    off_t r = lseek(fd, (off_t) offset, data ? SEEK_DATA : SEEK_HOLE);
    return r < 0 ? -(jlong) errno : (jlong) r;
}

JNIEXPORT jint JNICALL Java_dev_handoff_device_LinuxFiles_fallocate0(JNIEnv *env, jclass cls, jobject channel,
        jint mode, jlong offset, jlong length) {
    int fd = fd_of(env, channel);
    if (fd < 0) {
        return -EBADF;
    }
    int r;
    do {
        r = fallocate(fd, mode, (off_t) offset, (off_t) length);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

/* BLKDISCARD (zeroout == 0) or BLKZEROOUT on a block device: range = {offset, length}. */
JNIEXPORT jint JNICALL Java_dev_handoff_device_LinuxFiles_blockRange0(JNIEnv *env, jclass cls, jobject channel,
        jboolean zeroout, jlong offset, jlong length) {
    int fd = fd_of(env, channel);
    if (fd < 0) {
        return -EBADF;
    }
    uint64_t range[2] = {(uint64_t) offset, (uint64_t) length};
    int r = ioctl(fd, zeroout ? BLKZEROOUT : BLKDISCARD, range);
    return r < 0 ? -errno : 0;
}

/* The constants the Java side passes and compares against, from this system's headers. */
JNIEXPORT jintArray JNICALL Java_dev_handoff_device_LinuxFiles_constants0(JNIEnv *env, jclass cls) {
    jint values[] = {FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, ENXIO, EINVAL, EOPNOTSUPP,
            ENOTTY, ENOSPC, EBADF, EDQUOT};
    jsize n = (jsize) (sizeof(values) / sizeof(values[0]));
    jintArray array = (*env)->NewIntArray(env, n);
    if (array != NULL) {
        (*env)->SetIntArrayRegion(env, array, 0, n, values);
    }
    return array;
}
