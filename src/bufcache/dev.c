/*
 * bufcache/dev.c: devices — opening, I/O with fault injection, handles.
 *
 * 1. Objects and states.  A bdev_map is one open device or image file: fd,
 *    block size, size in blocks, dirty list, writeback error sequence (errseq)
 *    and fault-injection state.  A struct bdev is a handle on a map: bdev_open of
 *    a file already open in the cache (same st_dev/st_ino) with the same block
 *    size and flags returns a second handle on the same map, so cached pages are
 *    never duplicated; each handle has its own errseq cursor.  A map lives from
 *    its first bdev_open to its last bdev_close: OPEN -> CLOSING (last close:
 *    synced, pages dropped, no background writeback) -> freed.
 * 2. Locking.  bc->lock protects bc->maps, map->handles, map->closing changes.
 *    It is never held across open(2): bdev_open opens (O_NONBLOCK, so a FIFO
 *    does not wait for a writer), checks the type (regular file or block
 *    device, else EINVAL) and clears O_NONBLOCK first, then takes the lock to
 *    share an existing map or add the new one.  Live handles are registered
 *    (registry.c): a second bdev_close of a handle aborts naming it.
 *    The I/O functions take no lock; the fd and geometry are immutable.
 *    Fault state is atomic (<slabdefrag/buffer_fault.h>, a public testing
 *    API: the integrations test their error paths with it).
 * 3. References.  A handle references its map; the map lives while it has
 *    handles.  A map's pages point to it (page->map); they are all dropped
 *    before the map is freed.  The flusher never touches a CLOSING map.
 * 4. Invariants.  block_size in {512,1024,2048,4096}; blocks_per_page *
 *    block_size == 4096; nr_blocks == size / block_size (a partial last block is
 *    not addressable); every transfer is whole blocks at block-aligned offsets
 *    from 4 KiB-aligned frames, so O_DIRECT works whenever block_size is a
 *    multiple of the device's alignment (checked at open by reading block 0).
 * 5. Policies.  Short transfers are continued until complete (EINTR retried); a
 *    read that hits end of file is -EIO.  Faults are checked before the system
 *    call, so a failed write changes nothing on the device.
 * 6. Observability.  reads/writes/flushes/read_errors/writeback_errors in
 *    bcache_stats; bdev_io_count() per device.
 */
#define _GNU_SOURCE
#include "bufcache/internal.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fault injection ---------------------------------------------------------- */

int bdev_fault_inject(struct bdev *dev, enum bdev_io_op op, uint64_t nth, int error,
                      unsigned flags)
{
    if (!dev || op >= BDEV_IO_NR || nth == 0 || (!(flags & BDEV_FAULT_SHORT) && error <= 0)) {
        errno = EINVAL;
        return -EINVAL;
    }
    struct bdev_faults *f = &dev->map->faults;
    atomic_store(&f->fail_at[op], 0);
    atomic_store(&f->error[op], error);
    atomic_store(&f->mode[op], flags);
    atomic_store(&f->fail_at[op], atomic_load(&f->count[op]) + nth);
    return 0;
}

int bdev_fault_clear(struct bdev *dev)
{
    if (!dev) {
        errno = EINVAL;
        return -EINVAL;
    }
    for (int op = 0; op < BDEV_IO_NR; op++)
        atomic_store(&dev->map->faults.fail_at[op], 0);
    return 0;
}

uint64_t bdev_io_count(struct bdev *dev, enum bdev_io_op op)
{
    if (!dev || op >= BDEV_IO_NR) {
        errno = EINVAL;
        return 0;
    }
    return atomic_load(&dev->map->faults.count[op]);
}

/* Count one operation; 0 to go ahead (with *len possibly shortened) or -errno. */
static int fault_check(struct bdev_map *m, enum bdev_io_op op, size_t *len)
{
    struct bdev_faults *f = &m->faults;
    uint64_t n = atomic_fetch_add(&f->count[op], 1) + 1;
    uint64_t at = atomic_load(&f->fail_at[op]);
    if (!at)
        return 0;
    unsigned mode = atomic_load(&f->mode[op]);
    if (n != at && !((mode & BDEV_FAULT_STICKY) && n > at))
        return 0;
    if (mode & BDEV_FAULT_SHORT) {
        size_t half = len ? (*len / 2) & ~(size_t)511 : 0;
        if (half)
            *len = half;
        return 0;
    }
    return -atomic_load(&f->error[op]);
}

/* ---- I/O ------------------------------------------------------------------------ */

/* One read or write of len bytes at offset, resumed after short transfers and
 * EINTR; each system call is counted (ops_stat) and each failure (err_stat). */
static int dev_io(struct bdev_map *m, enum bdev_io_op op, uint64_t offset, char *buf, size_t len)
{
    struct bcache *bc = m->bc;
    enum bc_stat ops_stat = op == BDEV_IO_READ ? ST_READS : ST_WRITES;
    enum bc_stat err_stat = op == BDEV_IO_READ ? ST_READ_ERRORS : ST_WB_ERRORS;
    size_t done = 0;
    while (done < len) {
        size_t want = len - done;
        int err = fault_check(m, op, &want);
        bc_count(bc, ops_stat, 1);
        if (err) {
            bc_count(bc, err_stat, 1);
            return err;
        }
        ssize_t n = op == BDEV_IO_READ ? pread(m->fd, buf + done, want, (off_t)(offset + done))
                                       : pwrite(m->fd, buf + done, want, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            bc_count(bc, err_stat, 1);
            return n < 0 ? -errno : -EIO;
        }
        done += (size_t)n;
    }
    return 0;
}

int dev_read(struct bdev_map *m, uint64_t offset, void *buf, size_t len)
{
    return dev_io(m, BDEV_IO_READ, offset, buf, len);
}

int dev_write(struct bdev_map *m, uint64_t offset, const void *buf, size_t len)
{
    return dev_io(m, BDEV_IO_WRITE, offset, (char *)buf, len); /* only read from */
}

int dev_flush(struct bdev_map *m)
{
    int err = fault_check(m, BDEV_IO_FLUSH, NULL);
    bc_count(m->bc, ST_FLUSHES, 1);
    if (!err && fdatasync(m->fd) != 0)
        err = -errno;
    if (err)
        bc_count(m->bc, ST_WB_ERRORS, 1);
    return err;
}

/* ---- opening ------------------------------------------------------------------------ */

static int block_shift_of(unsigned block_size)
{
    switch (block_size) {
    case 512: return 9;
    case 1024: return 10;
    case 2048: return 11;
    case 4096: return 12;
    default: return -1;
    }
}

static bool flags_valid(int flags)
{
    int acc = flags & O_ACCMODE;
    return (acc == O_RDONLY || acc == O_RDWR) && (flags & ~(O_ACCMODE | O_DIRECT)) == 0;
}

static int device_size(int fd, const struct stat *st, uint64_t *size)
{
    if (S_ISREG(st->st_mode)) {
        *size = (uint64_t)st->st_size;
        return 0;
    }
    if (S_ISBLK(st->st_mode))
        return ioctl(fd, BLKGETSIZE64, size) == 0 ? 0 : -errno;
    return -EINVAL;
}

/* O_DIRECT: a block-sized, block-aligned read of block 0 must work. */
static int probe_direct(struct bdev_map *m)
{
    if (m->nr_blocks == 0)
        return 0;
    void *buf;
    if (posix_memalign(&buf, BC_PAGE_SIZE, m->block_size) != 0)
        return -ENOMEM;
    ssize_t n = pread(m->fd, buf, m->block_size, 0);
    int err = n == (ssize_t)m->block_size ? 0 : n < 0 && errno == EINVAL ? -EINVAL : -EIO;
    free(buf);
    return err;
}

struct bdev_map *map_open(struct bcache *bc, const char *path, unsigned block_size, int flags)
{
    int shift = block_shift_of(block_size);
    if (shift < 0 || !flags_valid(flags)) {
        errno = EINVAL;
        return NULL;
    }
    struct bdev_map *m = calloc(1, sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    int err = 0;
    struct stat st;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; the type check
     * below refuses it, and the flag is cleared for everything else. */
    m->fd = open(path, flags | O_CLOEXEC | O_NONBLOCK);
    if (m->fd < 0) {
        err = -errno;
        goto fail;
    }
    uint64_t size = 0;
    if (fstat(m->fd, &st) != 0) {
        err = -errno;
        goto fail_fd;
    }
    if ((err = device_size(m->fd, &st, &size)) != 0)
        goto fail_fd;
    int fl = fcntl(m->fd, F_GETFL);
    if (fl < 0 || fcntl(m->fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        err = -errno;
        goto fail_fd;
    }
    m->bc = bc;
    m->open_flags = flags;
    m->readonly = (flags & O_ACCMODE) == O_RDONLY;
    m->direct = (flags & O_DIRECT) != 0;
    m->block_size = block_size;
    m->block_shift = (unsigned)shift;
    m->bpp_shift = BC_PAGE_SHIFT - (unsigned)shift;
    m->blocks_per_page = 1u << m->bpp_shift;
    m->nr_blocks = size >> shift;
    m->nr_pages = (m->nr_blocks + m->blocks_per_page - 1) >> m->bpp_shift;
    m->st_dev = st.st_dev;
    m->st_ino = st.st_ino;
    m->dirty_head = m->dirty_tail = BC_NONE;
    if (m->direct && (err = probe_direct(m)) != 0)
        goto fail_fd;
    if ((err = -pthread_mutex_init(&m->dirty_lock, NULL)) != 0)
        goto fail_fd;
    return m;
fail_fd:
    close(m->fd);
fail:
    free(m);
    errno = -err;
    return NULL;
}

void map_free(struct bdev_map *m)
{
    close(m->fd);
    pthread_mutex_destroy(&m->dirty_lock);
    free(m);
}

static struct bdev *handle_new(struct bdev_map *m)
{
    struct bdev *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->map = m;
    if (bc_registry_add_handle(h) != 0) {
        free(h);
        return NULL;
    }
    atomic_store(&h->err_cursor, errseq_sample(&m->wb_err));
    h->next_handle = m->handles;
    m->handles = h;
    return h;
}

static void handle_unlink(struct bdev *h)
{
    struct bdev **pp = &h->map->handles;
    while (*pp != h)
        pp = &(*pp)->next_handle;
    *pp = h->next_handle;
}

static struct bdev_map *find_map_locked(struct bcache *bc, dev_t dev, ino_t ino)
{
    for (struct bdev_map *m = bc->maps; m; m = m->next)
        if (m->st_dev == dev && m->st_ino == ino && !atomic_load(&m->closing))
            return m;
    return NULL;
}

/* The device is opened (and its type checked) before bc->lock is taken, so a
 * slow or blocking open never holds up other opens and closes of the cache; a
 * file that turns out to be open already shares the existing map and the new
 * descriptor is closed again. */
struct bdev *bdev_open(struct bcache *bc, const char *path, unsigned block_size, int flags)
{
    if (!bc || !path) {
        errno = EINVAL;
        return NULL;
    }
    if (block_shift_of(block_size) < 0 || !flags_valid(flags)) {
        errno = EINVAL;
        return NULL;
    }
    struct bdev_map *fresh = map_open(bc, path, block_size, flags);
    if (!fresh)
        return NULL; /* errno from map_open */
    pthread_mutex_lock(&bc->lock);
    struct bdev *h = NULL;
    struct bdev_map *m = find_map_locked(bc, fresh->st_dev, fresh->st_ino);
    if (m) {
        if (m->block_size != block_size || m->open_flags != flags)
            errno = EBUSY;
        else if (!(h = handle_new(m)))
            errno = ENOMEM;
    } else {
        fresh->id = bc->next_map_id++;
        if ((h = handle_new(fresh))) {
            fresh->next = bc->maps;
            bc->maps = fresh;
            fresh = NULL;
        } else {
            errno = ENOMEM;
        }
    }
    pthread_mutex_unlock(&bc->lock);
    if (fresh) {
        int err = errno;
        map_free(fresh);
        errno = err;
    }
    return h;
}

int bdev_sync(struct bdev *dev)
{
    if (!dev) {
        errno = EINVAL;
        return -EINVAL;
    }
    int ret = map_sync(dev->map);
    int seen = errseq_check_and_advance(&dev->map->wb_err, &dev->err_cursor);
    if (!ret)
        ret = seen;
    if (ret)
        errno = -ret;
    return ret;
}

static void map_unlink_locked(struct bcache *bc, struct bdev_map *m)
{
    struct bdev_map **pp = &bc->maps;
    while (*pp != m)
        pp = &(*pp)->next;
    *pp = m->next;
}

/* Close the last handle: sync, drop every page, free the map.  bc->lock held on
 * entry (closing already set); released inside. */
static int close_last(struct bcache *bc, struct bdev *h)
{
    struct bdev_map *m = h->map;
    pthread_mutex_unlock(&bc->lock);
    int ret = bdev_sync(h);
    int err = map_drop_pages(bc, m);
    if (err == -EBUSY) {
        atomic_store(&m->closing, false);
        bc_registry_add_handle(h); /* still open */
        errno = EBUSY;
        return -EBUSY;
    }
    pthread_mutex_lock(&bc->lock);
    map_unlink_locked(bc, m);
    handle_unlink(h);
    pthread_mutex_unlock(&bc->lock);
    /* The flusher picks maps under bc->lock and skips closing ones; taking
     * pass_lock waits out a pass that had picked this map before it closed. */
    pthread_mutex_lock(&bc->pass_lock);
    pthread_mutex_unlock(&bc->pass_lock);
    free(h);
    map_free(m);
    if (ret)
        errno = -ret;
    return ret;
}

int bdev_close(struct bdev *dev)
{
    if (!dev) {
        errno = EINVAL;
        return -EINVAL;
    }
    bc_registry_take_handle(dev); /* aborts on a handle closed already */
    struct bdev_map *m = dev->map;
    struct bcache *bc = m->bc;
    pthread_mutex_lock(&bc->lock);
    if (m->handles == dev && !dev->next_handle) {
        if (map_count_user_refs(bc, m) > 0) {
            pthread_mutex_unlock(&bc->lock);
            bc_registry_add_handle(dev); /* still open */
            errno = EBUSY;
            return -EBUSY;
        }
        atomic_store(&m->closing, true);
        return close_last(bc, dev);
    }
    pthread_mutex_unlock(&bc->lock);
    int ret = bdev_sync(dev);
    pthread_mutex_lock(&bc->lock);
    handle_unlink(dev);
    pthread_mutex_unlock(&bc->lock);
    free(dev);
    if (ret)
        errno = -ret;
    return ret;
}
