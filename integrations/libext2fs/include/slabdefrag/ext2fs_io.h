/*
 * <slabdefrag/ext2fs_io.h> — a libext2fs io_manager backed by the slabdefrag
 * buffer cache (<slabdefrag/buffer.h>).
 *
 * Use it wherever libext2fs takes an io_manager:
 *
 *     ext2_filsys fs;
 *     errcode_t err = ext2fs_open2("img", "memory_limit=1048576", EXT2_FLAG_RW, 0, 0,
 *                                  slabdefrag_io_manager, &fs);
 *
 * Each channel owns one bcache (default memory limit 64 MiB, or the value of the
 * io option memory_limit=BYTES, suffixes K, M, G accepted; at least 64 KiB) and
 * one bdev, opened with 1 KiB blocks and reopened once with the filesystem's
 * block size (2 or 4 KiB) when ext2fs_open2 sets it, so that one libext2fs
 * block is one cache block; byte-granular requests (negative counts,
 * write_byte) and smaller blocks go through the same byte-range path with
 * read-modify-write of partial cache blocks.  Writes are write-back: they
 * dirty cached blocks, and the cache writes them in the background, under memory
 * pressure, and at flush/close.  A write that the cache could not make is
 * reported by the next io_channel_flush() or io_channel_close() (and through
 * channel->write_error when it is set, as unix_io does); the data stays dirty and
 * is retried by the next flush, and is dropped (with the error returned) by close.
 *
 * Link with `pkg-config --libs slabdefrag-ext2fs`.
 */
#ifndef SLABDEFRAG_EXT2FS_IO_H
#define SLABDEFRAG_EXT2FS_IO_H

#include <et/com_err.h> /* errcode_t, which ext2_io.h uses */
#include <ext2fs/ext2_io.h>

#ifdef __cplusplus
extern "C" {
#endif

extern io_manager slabdefrag_io_manager;

struct bcache;
struct bdev;

/* The cache and the device handle behind a channel opened by
 * slabdefrag_io_manager (NULL for any other channel).  For statistics
 * (bcache_get_stats), bcache_shrink and tests; do not close them. */
struct bcache *slabdefrag_ext2fs_bcache(io_channel channel);
struct bdev *slabdefrag_ext2fs_bdev(io_channel channel);

#ifdef __cplusplus
}
#endif
#endif /* SLABDEFRAG_EXT2FS_IO_H */
