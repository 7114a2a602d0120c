/*
 * integrations/libext2fs/ext2fs_io.c: slabdefrag_io_manager, a libext2fs
 * io_manager whose reads and writes go through the slabdefrag buffer cache.
 *
 * 1. Objects and states.  One io_channel (libext2fs' object, magic
 *    EXT2_ET_MAGIC_IO_CHANNEL) per open; its private_data is a struct sd_chan
 *    holding one bcache and one bdev on the image, opened with DEV_BS (1 KiB)
 *    blocks at open time.  libext2fs starts the channel at 1024-byte blocks,
 *    reads the superblock, and calls set_blksize() to the filesystem's block
 *    size.  Block-size mapping: the bdev's block size (dev_bs) only grows:
 *    when the channel block size becomes a multiple of 2048 or 4096 (and the
 *    image size too), set_blksize syncs, closes the bdev (dropping the one
 *    cached superblock page), and reopens it with the largest of 4096/2048
 *    that divides both, so each libext2fs block is one cache block (one
 *    lookup) on 2 and 4 KiB filesystems.  A later set_blksize to a smaller size
 *    (libext2fs' superblock fallback path, which write_byte makes unused) does
 *    not reopen: a channel block b of size B is the byte range [b*B, (b+1)*B),
 *    and requests smaller than dev_bs are read-modify-write.  Requests are
 *    turned into a byte range (negative counts mean bytes) and walked one cache
 *    block at a time:
 *      read:  bh_read, copy out, bh_put (no block lock: libext2fs is the only
 *             writer and writes hold the lock);
 *      write: a whole block: bh_get (no read), lock, copy in, bh_mark_dirty,
 *             unlock, put; a partial block: bh_read, then the same.
 *    The memory_limit=BYTES io option (parsed after open by ext2fs_open2)
 *    replaces the cache: sync, close, destroy, recreate with the new limit.
 * 2. Locking.  The cache is thread-safe and serialises writers of one block with
 *    bh_lock.  Channel fields: dev/bc change only in open, set_option and close
 *    (the caller must not run I/O concurrently with those, as with unix_io);
 *    the statistics and first_dirty are atomics, so IO_FLAG_THREADS callers may
 *    read and write concurrently.
 * 3. References.  Each cache block is referenced only for the duration of one
 *    copy; nothing is held between calls, so bdev_close never sees -EBUSY.
 * 4. Invariants.  dev_bytes % dev_bs == 0.  c->dev is NULL only after a
 *    failed reopen (every I/O then fails with EIO).
 *    A byte past dev_bytes (the image size rounded down to 1 KiB)
 *    is never cached: reads of it are zero-filled and fail with
 *    EXT2_ET_SHORT_READ, writes fail with EXT2_ET_SHORT_WRITE (as unix_io does
 *    for a short pread/pwrite), through read_error/write_error when set.
 * 5. Error policy.  Errors are errno values (libext2fs' convention for system
 *    errors) or EXT2_ET_* codes.  Writes are write-back, so a failed device write
 *    is detected by the cache later; it surfaces at flush (bdev_sync) or close
 *    (bdev_close).  At flush, if channel->write_error is set, it is called as
 *    unix_io's flush_cached_blocks does (count 1, actual -1) for the first block
 *    written since the last successful flush — the cache's public API does not
 *    say which block failed — with a copy of that block, and its return value is
 *    returned.  Unlike unix_io, the failed data stays dirty and is retried by
 *    the next flush; close drops it and returns the error.
 *    discard punches a hole in an image file (contents afterwards unspecified:
 *    CHANNEL_FLAGS_DISCARD_ZEROES is not set, and cached copies may survive);
 *    zeroout writes zeroes through the cache.
 * 6. Observability.  get_stats: bytes read and written through the channel;
 *    slabdefrag_ext2fs_bcache() + bcache_get_stats for the cache's counters.
 */
#define _GNU_SOURCE
#include <slabdefrag/buffer.h>
#include <slabdefrag/ext2fs_io.h>

#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEV_BS 1024u
#define SD_CHAN_MAGIC 0x5344e2f5u

struct sd_chan {
    unsigned magic;
    int fd;                       /* for the size, discard; never for data */
    int oflags;                   /* O_RDONLY or O_RDWR, maybe | O_DIRECT */
    bool rw;
    uint64_t dev_bytes;           /* size rounded down to DEV_BS */
    unsigned dev_bs;              /* the bdev's block size: 1024, 2048 or 4096 */
    size_t memory_limit;          /* 0 = the cache's default */
    struct bcache *bc;
    struct bdev *dev;
    _Atomic uint64_t first_dirty; /* byte offset of the first write since the
                                     last good flush; UINT64_MAX = none */
    struct struct_io_stats stats; /* snapshot handed out by get_stats */
    _Atomic unsigned long long bytes_read, bytes_written;
};

static struct sd_chan *chan_of(io_channel ch)
{
    if (!ch || ch->magic != EXT2_ET_MAGIC_IO_CHANNEL || ch->manager != slabdefrag_io_manager ||
        !ch->private_data)
        return NULL;
    struct sd_chan *c = ch->private_data;
    return c->magic == SD_CHAN_MAGIC ? c : NULL;
}

/* (Re)create the cache and open the device in it. */
static errcode_t chan_attach(struct sd_chan *c, const char *path)
{
    struct bcache_config cfg = { .memory_limit = c->memory_limit };
    c->bc = bcache_create(&cfg);
    if (!c->bc)
        return errno ? (errcode_t)errno : ENOMEM;
    c->dev = bdev_open(c->bc, path, c->dev_bs, c->oflags);
    if (!c->dev) {
        errcode_t err = errno ? (errcode_t)errno : EIO;
        bcache_destroy(c->bc);
        c->bc = NULL;
        return err;
    }
    return 0;
}

/* Close the device and destroy the cache; the first error. */
static errcode_t chan_detach(struct sd_chan *c)
{
    errcode_t err = 0;
    if (c->dev) {
        int r = bdev_close(c->dev);
        if (r < 0)
            err = (errcode_t)-r;
        c->dev = NULL;
    }
    if (c->bc) {
        int r = bcache_destroy(c->bc);
        if (r < 0 && !err)
            err = (errcode_t)-r;
        c->bc = NULL;
    }
    return err;
}

static errcode_t sd_open(const char *name, int flags, io_channel *channel)
{
    if (!name)
        return EXT2_ET_BAD_DEVICE_NAME;
    io_channel ch = calloc(1, sizeof *ch);
    struct sd_chan *c = calloc(1, sizeof *c);
    char *nm = strdup(name);
    errcode_t err = ENOMEM;
    if (!ch || !c || !nm)
        goto fail;
    c->magic = SD_CHAN_MAGIC;
    c->fd = -1;
    c->rw = flags & IO_FLAG_RW;
    c->oflags = (c->rw ? O_RDWR : O_RDONLY) | ((flags & IO_FLAG_DIRECT_IO) ? O_DIRECT : 0);
    atomic_init(&c->first_dirty, UINT64_MAX);
    c->fd = open(name, (c->rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (c->fd < 0) {
        err = errno;
        goto fail;
    }
    struct stat st;
    if (fstat(c->fd, &st) < 0) {
        err = errno;
        goto fail;
    }
    off_t end = lseek(c->fd, 0, SEEK_END);
    if (end < 0) {
        err = errno;
        goto fail;
    }
    c->dev_bs = DEV_BS;
    c->dev_bytes = (uint64_t)end / DEV_BS * DEV_BS;
    const char *lim = getenv("SLABDEFRAG_EXT2FS_MEMORY_LIMIT");
    if (lim && *lim)
        c->memory_limit = strtoull(lim, NULL, 0);
    if ((err = chan_attach(c, name)))
        goto fail;

    ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
    ch->manager = slabdefrag_io_manager;
    ch->name = nm;
    ch->block_size = 1024;
    ch->refcount = 1;
    ch->private_data = c;
    if (S_ISBLK(st.st_mode))
        ch->flags |= CHANNEL_FLAGS_BLOCK_DEVICE;
    if (flags & IO_FLAG_THREADS)
        ch->flags |= CHANNEL_FLAGS_THREADS;
    c->stats.num_fields = 2;
    *channel = ch;
    return 0;
fail:
    if (c && c->fd >= 0)
        close(c->fd);
    free(c);
    free(nm);
    free(ch);
    return err;
}

static errcode_t sd_close(io_channel channel)
{
    struct sd_chan *c = chan_of(channel);
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    if (--channel->refcount > 0)
        return 0;
    errcode_t err = chan_detach(c);
    close(c->fd);
    c->magic = 0;
    free(c);
    free(channel->name);
    free(channel);
    return err;
}

/* The device block size for channel blocks of blksize bytes: the largest of
 * 4096, 2048, 1024 that divides it and the image size. */
static unsigned dev_bs_for(const struct sd_chan *c, int blksize)
{
    unsigned bs = 4096;
    while (bs > DEV_BS && ((unsigned)blksize % bs || (c->dev_bytes % bs)))
        bs /= 2;
    return bs;
}

static errcode_t sd_set_blksize(io_channel channel, int blksize)
{
    struct sd_chan *c = chan_of(channel);
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    if (blksize <= 0 || blksize % (int)DEV_BS)
        return EXT2_ET_INVALID_ARGUMENT;
    unsigned want = dev_bs_for(c, blksize);
    /* Only grow the device block: ext2fs_open2 goes 1024 -> fs block size once,
     * with just the superblock cached; a later dip to 1024 (the superblock
     * fallback path, unused since we have write_byte) keeps the bigger blocks,
     * which serve byte-granular requests by read-modify-write. */
    if (want > c->dev_bs && c->dev) {
        int r = bdev_sync(c->dev);
        if (r < 0)
            return (errcode_t)-r;
        errcode_t err = chan_detach(c);
        if (err)
            return err;
        unsigned old = c->dev_bs;
        c->dev_bs = want;
        if ((err = chan_attach(c, channel->name))) {
            c->dev_bs = old; /* leave a working channel behind if we can */
            chan_attach(c, channel->name);
            return err;
        }
    }
    channel->block_size = blksize;
    return 0;
}

/* ---- the byte-range walker ------------------------------------------------------ */

/* The cache's ENOMEM usually means "every page is dirty and cannot be written":
 * a sync tells the real error (EIO, ENOSPC...) to this handle, and that is what
 * libext2fs should see.  Other errors pass through. */
static errcode_t cache_error(struct sd_chan *c, int e)
{
    if (e != ENOMEM)
        return e ? (errcode_t)e : EIO;
    int r = bdev_sync(c->dev);
    return r < 0 && r != -ENOMEM ? (errcode_t)-r : ENOMEM;
}

/* Walk len bytes at off one cache block at a time: copy them out into rbuf
 * (write false), or copy wbuf in (write true; wbuf NULL: zeroes).  Returns 0 or
 * an error; *done is the number of bytes copied.  A read zero-fills the rest of
 * rbuf on error.  A block a write covers whole is not read first (bh_get). */
static errcode_t range_io(struct sd_chan *c, uint64_t off, size_t len, bool write, char *rbuf,
                          const char *wbuf, size_t *done)
{
    errcode_t short_err = write ? EXT2_ET_SHORT_WRITE : EXT2_ET_SHORT_READ;
    size_t n = 0;
    errcode_t err = c->dev ? 0 : EIO;
    while (!err && n < len) {
        uint64_t pos = off + n;
        if (pos >= c->dev_bytes) {
            err = short_err;
            break;
        }
        uint64_t blk = pos / c->dev_bs;
        size_t in = (size_t)(pos % c->dev_bs);
        size_t k = c->dev_bs - in < len - n ? c->dev_bs - in : len - n;
        errno = 0;
        struct buffer_head *bh =
            write && k == c->dev_bs ? bh_get(c->dev, blk) : bh_read(c->dev, blk);
        if (!bh) {
            err = errno == EINVAL ? short_err : cache_error(c, errno);
            break;
        }
        if (!write) {
            memcpy(rbuf + n, (char *)bh->b_data + in, k);
            bh_put(bh);
            n += k;
            continue;
        }
        bh_lock(bh);
        if (wbuf)
            memcpy((char *)bh->b_data + in, wbuf + n, k);
        else
            memset((char *)bh->b_data + in, 0, k);
        errno = 0;
        bh_mark_dirty(bh);
        int e = errno;
        bh_unlock(bh);
        bh_put(bh);
        if (e == EROFS) {
            err = EROFS;
            break;
        }
        n += k;
    }
    *done = n;
    return err;
}

/* Copy len bytes at off out of the cache.  Returns 0 or an error; *done is the
 * number of bytes copied (the rest of buf is zero-filled on error). */
static errcode_t range_read(struct sd_chan *c, uint64_t off, size_t len, char *buf,
                            size_t *done)
{
    errcode_t err = range_io(c, off, len, false, buf, NULL, done);
    if (*done < len)
        memset(buf + *done, 0, len - *done);
    atomic_fetch_add_explicit(&c->bytes_read, *done, memory_order_relaxed);
    return err;
}

/* Copy len bytes (buf NULL: zeroes) into the cache at off. */
static errcode_t range_write(struct sd_chan *c, uint64_t off, size_t len, const char *buf,
                             size_t *done)
{
    if (!c->rw) {
        *done = 0;
        return EBADF; /* what pwrite on unix_io's read-only descriptor says */
    }
    errcode_t err = range_io(c, off, len, true, NULL, buf, done);
    if (*done) {
        uint64_t none = UINT64_MAX;
        atomic_compare_exchange_strong(&c->first_dirty, &none, off);
    }
    atomic_fetch_add_explicit(&c->bytes_written, *done, memory_order_relaxed);
    return err;
}

/* A request for count channel blocks at block (count < 0: -count bytes): read
 * into rbuf or write wbuf (write says which), then, on error, the channel's
 * read_error or write_error handler when set (its return value is returned). */
static errcode_t blk_io(io_channel channel, unsigned long long block, int count, bool write,
                        void *rbuf, const void *wbuf)
{
    struct sd_chan *c = chan_of(channel);
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    size_t len, done;
    if (count >= 0)
        len = (size_t)count * (size_t)channel->block_size;
    else if (count == INT_MIN)
        return EXT2_ET_INVALID_ARGUMENT;
    else
        len = (size_t)-count;
    uint64_t off = (uint64_t)block * (uint64_t)channel->block_size;
    errcode_t err =
        write ? range_write(c, off, len, wbuf, &done) : range_read(c, off, len, rbuf, &done);
    if (err && write && channel->write_error)
        err = channel->write_error(channel, (unsigned long)block, count, wbuf, len, (int)done, err);
    else if (err && !write && channel->read_error)
        err = channel->read_error(channel, (unsigned long)block, count, rbuf, len, (int)done, err);
    return err;
}

static errcode_t sd_read_blk64(io_channel channel, unsigned long long block, int count,
                               void *data)
{
    return blk_io(channel, block, count, false, data, NULL);
}

static errcode_t sd_write_blk64(io_channel channel, unsigned long long block, int count,
                                const void *data)
{
    return blk_io(channel, block, count, true, NULL, data);
}

static errcode_t sd_read_blk(io_channel channel, unsigned long block, int count, void *data)
{
    return sd_read_blk64(channel, block, count, data);
}

static errcode_t sd_write_blk(io_channel channel, unsigned long block, int count,
                              const void *data)
{
    return sd_write_blk64(channel, block, count, data);
}

static errcode_t sd_write_byte(io_channel channel, unsigned long offset, int count,
                               const void *data)
{
    struct sd_chan *c = chan_of(channel);
    size_t done;
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    if (count < 0)
        return EXT2_ET_INVALID_ARGUMENT;
    return range_write(c, offset, (size_t)count, data, &done);
}

static errcode_t sd_flush(io_channel channel)
{
    struct sd_chan *c = chan_of(channel);
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    if (!c->dev)
        return EIO;
    int r = bdev_sync(c->dev);
    if (r == 0) {
        atomic_store(&c->first_dirty, UINT64_MAX);
        return 0;
    }
    errcode_t err = (errcode_t)-r;
    uint64_t first = atomic_load(&c->first_dirty);
    if (channel->write_error && first != UINT64_MAX) {
        size_t bs = (size_t)channel->block_size, done;
        char *copy = calloc(1, bs);
        if (!copy)
            return err;
        unsigned long blk = (unsigned long)(first / bs);
        range_read(c, (uint64_t)blk * bs, bs, copy, &done);
        err = channel->write_error(channel, blk, 1, copy, bs, -1, err);
        free(copy);
    }
    return err;
}

static errcode_t parse_bytes(const char *arg, size_t *out)
{
    if (!arg || !*arg)
        return EXT2_ET_INVALID_ARGUMENT;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 0);
    if (errno || end == arg)
        return EXT2_ET_INVALID_ARGUMENT;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || v > (SIZE_MAX >> shift))
        return EXT2_ET_INVALID_ARGUMENT;
    *out = (size_t)(v << shift);
    return 0;
}

static errcode_t sd_set_option(io_channel channel, const char *option, const char *arg)
{
    struct sd_chan *c = chan_of(channel);
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    if (strcmp(option, "memory_limit"))
        return EXT2_ET_INVALID_ARGUMENT;
    size_t limit;
    errcode_t err = parse_bytes(arg, &limit);
    if (err)
        return err;
    if (limit < BCACHE_MIN_MEMORY_LIMIT)
        return EXT2_ET_INVALID_ARGUMENT;
    /* Write everything with the old cache, then start over with the new one. */
    int r = c->dev ? bdev_sync(c->dev) : 0;
    if (r < 0)
        return (errcode_t)-r;
    if ((err = chan_detach(c)))
        return err;
    c->memory_limit = limit;
    return chan_attach(c, channel->name);
}

static errcode_t sd_get_stats(io_channel channel, io_stats *stats)
{
    struct sd_chan *c = chan_of(channel);
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    c->stats.bytes_read = atomic_load(&c->bytes_read);
    c->stats.bytes_written = atomic_load(&c->bytes_written);
    if (stats)
        *stats = &c->stats;
    return 0;
}

static errcode_t sd_discard(io_channel channel, unsigned long long block,
                            unsigned long long count)
{
    struct sd_chan *c = chan_of(channel);
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    if (channel->flags & CHANNEL_FLAGS_BLOCK_DEVICE)
        return EXT2_ET_UNIMPLEMENTED;
    uint64_t bs = (uint64_t)channel->block_size;
    if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(block * bs),
                  (off_t)(count * bs)) < 0)
        return errno == EOPNOTSUPP ? EXT2_ET_UNIMPLEMENTED : (errcode_t)errno;
    return 0;
}

static errcode_t sd_zeroout(io_channel channel, unsigned long long block,
                            unsigned long long count)
{
    struct sd_chan *c = chan_of(channel);
    size_t done;
    if (!c)
        return EXT2_ET_MAGIC_IO_CHANNEL;
    uint64_t bs = (uint64_t)channel->block_size;
    return range_write(c, block * bs, (size_t)(count * bs), NULL, &done);
}

struct bcache *slabdefrag_ext2fs_bcache(io_channel channel)
{
    struct sd_chan *c = chan_of(channel);
    return c ? c->bc : NULL;
}

struct bdev *slabdefrag_ext2fs_bdev(io_channel channel)
{
    struct sd_chan *c = chan_of(channel);
    return c ? c->dev : NULL;
}

static struct struct_io_manager sd_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "slabdefrag buffer cache I/O manager",
    .open = sd_open,
    .close = sd_close,
    .set_blksize = sd_set_blksize,
    .read_blk = sd_read_blk,
    .write_blk = sd_write_blk,
    .flush = sd_flush,
    .write_byte = sd_write_byte,
    .set_option = sd_set_option,
    .get_stats = sd_get_stats,
    .read_blk64 = sd_read_blk64,
    .write_blk64 = sd_write_blk64,
    .discard = sd_discard,
    .zeroout = sd_zeroout,
};

io_manager slabdefrag_io_manager = &sd_manager;
