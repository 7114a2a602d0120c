/*
 * <slabdefrag/buffer_fault.h> — a testing API of the buffer cache: injected
 * device I/O faults, for programs that want to see how they (and the cache)
 * handle a failing disk.
 *
 * Each device — shared by all handles bdev_open() returned on the same file —
 * counts its reads, writes and flushes: one count per pread, pwrite or
 * fdatasync call the cache issues (a transfer cut short by the system and
 * resumed counts twice).  bdev_fault_inject() makes the nth next operation of
 * one kind fail with an errno (EIO, ENOSPC, ...) or, with BDEV_FAULT_SHORT,
 * transfer only half of its bytes (the cache must resume the transfer), once
 * or for every operation from then on (BDEV_FAULT_STICKY).  Faults are checked
 * before the system call, so a failed write or flush changes nothing on the
 * device; a short write writes its first half for real.  A failure reaches the
 * caller of the operation that observes it as any I/O error does
 * (<slabdefrag/buffer.h>: bh_read, bh_sync, bdev_sync, bdev_close), and a
 * write that failed leaves its block dirty.  Faults end when the device's last
 * handle is closed, or with bdev_fault_clear().
 *
 * Why it is part of the shipped library: a program built on the cache (the
 * libext2fs io_manager's ext2-fill driver, `slabdefrag ext2-fill --fault-write`)
 * tests its own error paths through it, against the very library it ships
 * with.  The cost when no fault is armed is one atomic increment and one
 * atomic load per system call, next to a pread/pwrite/fdatasync.
 *
 * Thread safety: every function may be called while other threads do I/O on
 * the device; which operation is "the nth next" is then racy, by nature.
 * Errors: -EINVAL with errno EINVAL for a NULL handle, an unknown op, nth 0, or
 * (without BDEV_FAULT_SHORT) an error that is not a positive errno value.
 */
#ifndef SLABDEFRAG_BUFFER_FAULT_H
#define SLABDEFRAG_BUFFER_FAULT_H

#include <stdint.h>

#include <slabdefrag/buffer.h>

#ifdef __cplusplus
extern "C" {
#endif

enum bdev_io_op { BDEV_IO_READ, BDEV_IO_WRITE, BDEV_IO_FLUSH, BDEV_IO_NR };

#define BDEV_FAULT_STICKY 1u /* fail every operation from the nth on */
#define BDEV_FAULT_SHORT  2u /* transfer half the bytes instead of failing (read/write) */

/* Fail (or shorten) the nth next operation of kind op (nth >= 1) of dev's
 * device with -error; replaces the fault armed for op before.  0 or -EINVAL. */
int bdev_fault_inject(struct bdev *dev, enum bdev_io_op op, uint64_t nth, int error,
                      unsigned flags);

/* Turn every fault of dev's device off.  0 or -EINVAL (dev NULL). */
int bdev_fault_clear(struct bdev *dev);

/* Operations of kind op issued on dev's device so far (counted whether or not
 * a fault is armed); 0 with errno EINVAL for a NULL handle or an unknown op. */
uint64_t bdev_io_count(struct bdev *dev, enum bdev_io_op op);

#ifdef __cplusplus
}
#endif

#endif
