/*
 * bufcache/fault.h: test-only fault injection into a device's I/O.
 *
 * Each device (shared by all handles on it) counts its reads, writes and flushes
 * (one count per pread/pwrite/fdatasync call the cache issues).  A test can make
 * the N-th next operation of one kind fail with an errno (EIO, ENOSPC, ...) or
 * transfer only half of its bytes (the cache must finish the transfer), once or
 * for every operation from then on (STICKY).  Faults are checked before the
 * system call, so a failed write or flush changes nothing on the device; a short
 * write writes the first half for real.
 *
 * Locking: all state is atomic; injecting while I/O runs is allowed (the op
 * counted at that moment is racy, by nature).  Observability: bdev_io_count().
 */
#ifndef SLABDEFRAG_BUFCACHE_FAULT_H
#define SLABDEFRAG_BUFCACHE_FAULT_H

#include "bufcache/internal.h"

#define BDEV_FAULT_STICKY 1u /* fail every operation from the N-th on */
#define BDEV_FAULT_SHORT  2u /* do a short transfer instead of failing (read/write) */

/* Fail (or shorten) the nth next operation of kind op (nth >= 1).  0 or -EINVAL. */
int bdev_fault_inject(struct bdev *dev, enum bdev_io_op op, uint64_t nth, int error,
                      unsigned flags);
/* Turn every fault of the device off. */
void bdev_fault_clear(struct bdev *dev);
/* Operations of kind op issued on the device so far. */
uint64_t bdev_io_count(struct bdev *dev, enum bdev_io_op op);

#endif
