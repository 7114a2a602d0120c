/*
 * <slabdefrag/buffer.h> — a buffer cache over block devices and image files.
 *
 * A bcache caches 4 KiB pages of device data under a memory limit.  Each cached
 * page is cut into blocks of the device's block size (512, 1024, 2048 or 4096
 * bytes) and each block has a buffer head (struct buffer_head), as in the Linux
 * and ext2 buffer cache: several buffer heads per page when blocks are small.
 * Buffer heads come from a slab cache named "buffer_head" (see <slabdefrag/slab.h>);
 * they stay attached to their cached page until the page is evicted or reclaim
 * drops the page's clean, unreferenced buffer ring (it is rebuilt on the next
 * access without I/O).
 *
 * References: bh_read() and bh_get() return a referenced buffer head; bh_put()
 * drops the reference.  A referenced buffer head's page is never evicted and its
 * b_data stays valid until bh_put().
 *
 * Locking: callers serialise changes to one block's data with bh_lock() and
 * bh_unlock(), as in the kernel: lock, modify b_data, bh_mark_dirty(), unlock.
 * Writeback locks a block while writing it, so a locked block is never written
 * half-modified.  bdev_sync() and bh_sync() may be called while holding buffer
 * locks: blocks the caller has locked are written as they are (so mark them dirty
 * first); dirty blocks other threads hold are waited for, holding nothing of the
 * cache's own.  So two threads that each hold a dirty block's lock and then both
 * bdev_sync() the same device wait for each other forever (as with the kernel's
 * lock_buffer); lock blocks in one order and release them before a device sync
 * that another lock holder may be doing too.
 *
 * Writeback: dirty blocks are written by a background flusher thread once they
 * are older than dirty_expire_ms, by writers that are throttled when dirty data
 * exceeds dirty_limit_percent of the memory limit, by reclaim, and by bh_sync()
 * / bdev_sync() / bdev_close() / bcache_destroy().  A failed write leaves the data
 * dirty (it is retried later; it is never marked clean), and the error is
 * reported once to each open handle by its next bdev_sync() or bdev_close(), and
 * once to the next bh_sync(), in the manner of Linux's errseq.
 *
 * Errors: functions that can fail return NULL or a negative errno value and set
 * errno.  Every function is thread-safe.
 */
#ifndef SLABDEFRAG_BUFFER_H
#define SLABDEFRAG_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bcache; /* opaque: one cache, one memory limit, one flusher thread */
struct bdev;   /* opaque: one open handle on a device or image file */

struct bcache_config {
    size_t memory_limit;          /* bytes of cached pages + metadata; 0 = 64 MiB.
                                     At least BCACHE_MIN_MEMORY_LIMIT. */
    unsigned dirty_expire_ms;     /* background writeback age; 0 = 3000 ms */
    unsigned dirty_limit_percent; /* writers are throttled above this share of the
                                     limit; 0 = 20, at most 100 */
};

#define BCACHE_DEFAULT_MEMORY_LIMIT (64u << 20)
#define BCACHE_MIN_MEMORY_LIMIT     (64u << 10)

/* The fields callers may read.  More follow privately (the object is larger). */
struct buffer_head {
    void *b_data;       /* b_size bytes of the block, inside its cached page */
    uint64_t b_blocknr; /* block number on the device, in units of b_size */
    uint32_t b_size;    /* the device's block size */
};

/*
 * Create a cache.  cfg NULL means all defaults.  Starts the flusher thread.
 * NULL with errno EINVAL (memory_limit below the minimum or above 8 TiB, dirty_limit_percent
 * over 100) or ENOMEM / EAGAIN.
 */
struct bcache *bcache_create(const struct bcache_config *cfg);

/*
 * Write back everything, close every handle still open (they become invalid),
 * stop the flusher and free the cache.  Returns 0 or the first error (dirty
 * data that could not be written is reported, never dropped silently).
 * -EBUSY (and nothing is destroyed) if any buffer head is still referenced.
 */
int bcache_destroy(struct bcache *bc);

/*
 * Open a device or image file.  block_size is 512, 1024, 2048 or 4096; flags is
 * O_RDONLY or O_RDWR, optionally | O_DIRECT (then block_size must be a multiple
 * of the device's direct-I/O alignment).  The device holds size / block_size
 * blocks.  Opening a file that is already open in this cache with the same block
 * size and flags returns a new handle on the same cached pages (each handle sees
 * each writeback error once); with different ones, EBUSY.
 * NULL with errno EINVAL (bad block size or flags, bad O_DIRECT alignment),
 * EBUSY, ENOMEM or the errno of open()/fstat().
 */
struct bdev *bdev_open(struct bcache *bc, const char *path, unsigned block_size, int flags);

/*
 * Sync (as bdev_sync) and close the handle.  The last handle of a device also
 * drops its cached pages; if its dirty data could not be written, the data is
 * dropped and the error returned.  Returns 0 or the first error; the handle is
 * freed in both cases, except for -EBUSY (a buffer head of the device is still
 * referenced and this is its last handle): then nothing is closed.
 */
int bdev_close(struct bdev *dev);

/* Write all dirty blocks of the device and fdatasync it.  0, or the first
 * error: of this sync, or of any writeback not yet reported to this handle. */
int bdev_sync(struct bdev *dev);

/*
 * The block, read from the device if it is not cached, uptodate and referenced.
 * NULL with errno EINVAL (blocknr past the end), EIO/ENOSPC (read failed; the
 * block stays not uptodate and a later call retries) or ENOMEM (the memory limit
 * is exhausted by referenced pages).
 */
struct buffer_head *bh_read(struct bdev *dev, uint64_t blocknr);

/* The block, referenced, without reading it (getblk): its data is undefined
 * unless it was cached.  Fill it under bh_lock() and call bh_mark_uptodate() or
 * bh_mark_dirty() before bh_unlock(): a block that is unlocked while still not
 * uptodate may be read from the device by another thread's read-ahead, over what
 * you wrote (as with the kernel's getblk).  NULL with errno EINVAL or ENOMEM. */
struct buffer_head *bh_get(struct bdev *dev, uint64_t blocknr);

/* Drop a reference (brelse).  bh_put(NULL) does nothing.  The buffer head stays
 * attached to its page. */
void bh_put(struct buffer_head *bh);

/*
 * Mark the block dirty (and uptodate: the caller has written all of it).  May
 * throttle the caller (it writes back other dirty blocks) when dirty data exceeds
 * dirty_limit_percent.  On a read-only device the change is refused: errno is set
 * to EROFS, the block is invalidated (re-read on next bh_read), and the next
 * bh_sync()/bdev_sync()/bdev_close() reports -EROFS.
 */
void bh_mark_dirty(struct buffer_head *bh);

/* Mark the block's data valid (after filling a block from bh_get()). */
void bh_mark_uptodate(struct buffer_head *bh);

/* Lock / unlock the block (sleeping lock).  Locking a block twice from one
 * thread aborts with a message.  Writeback holds the lock while writing. */
void bh_lock(struct buffer_head *bh);
void bh_unlock(struct buffer_head *bh);

/*
 * Write this block now if it is dirty, then fdatasync the device.  0 or -errno:
 * the error of this write or flush, or a writeback error of the device not yet
 * reported to a bh_sync() caller.  -EROFS on a read-only device.
 */
int bh_sync(struct buffer_head *bh);

/*
 * Free about target_bytes of the cache's memory: evict unreferenced clean pages
 * (dirty ones are written first), release their memory to the OS, and shrink the
 * buffer_head slab cache.  Returns the bytes freed (>= 0) or -errno.
 * target_bytes SIZE_MAX frees everything that is not referenced.
 */
long bcache_shrink(struct bcache *bc, size_t target_bytes);

struct bcache_stats {
    uint64_t hits;              /* bh_read/bh_get that found the block cached */
    uint64_t misses;            /* ... that did not (page created or block read) */
    uint64_t reads, writes;     /* device read / write calls */
    uint64_t flushes;           /* fdatasync calls */
    uint64_t read_errors;       /* failed device reads */
    uint64_t writeback_errors;  /* failed device writes and flushes */
    uint64_t dirty_pages;       /* pages with dirty blocks, now */
    uint64_t cached_pages;      /* pages in the cache, now */
    uint64_t evictions;         /* pages evicted by reclaim or shrink */
    uint64_t buffer_heads_live; /* buffer heads allocated by this cache, now */
    uint64_t rings_dropped;     /* buffer rings released from cached pages */
    uint64_t rings_rebuilt;     /* ... and rebuilt on a later access (no I/O) */
    uint64_t throttled;         /* writers throttled above the dirty limit */
    uint64_t pages_written;     /* page writebacks that wrote at least one block */
    uint64_t memory_used;       /* frames + descriptors + buffer heads + index */
    uint64_t memory_limit;
    uint64_t descriptor_bytes;  /* page descriptors (never freed while the cache lives) */
    uint64_t buffer_head_bytes; /* buffer heads, at the slab's object size */
    uint64_t index_bytes;       /* the (device, page) -> page hash index */
};

/* Fill *out (a consistent-enough snapshot; counters are exact when idle).
 * 0 or -EINVAL. */
int bcache_get_stats(struct bcache *bc, struct bcache_stats *out);

/* Check every structure of the cache; 0 or -EUCLEAN with the first problem on
 * stderr.  Only meaningful while no other thread uses the cache.  For tests. */
int bcache_validate(struct bcache *bc);

#ifdef __cplusplus
}
#endif
#endif /* SLABDEFRAG_BUFFER_H */
