/*
 * integrations/libext2fs/fill.c: the deterministic workload (see fill.h).
 *
 * 1. Objects and states.  The plan is functions of (seed, index): dir i has a
 *    parent dir (or the root) and the name "d<i>"; file f has a dir, a size, a
 *    content stream (splitmix64 of seed, f and the 8-byte word index) and a
 *    fate: kept, hard-linked ("l<f>" in a second dir), renamed ("r<f>" in a
 *    second dir), deleted, or appended to.  fill_run creates dirs first, then
 *    files, applying the fate of file f - LAG right after creating file f (so
 *    freed blocks and inodes are reused while the tree grows), then the fates
 *    of the last LAG files.
 * 2. Locking: none (one thread).  3. References: fill_run owns fs and two arrays
 *    of inode numbers.  4. Invariant: after fill_run returns 0, the image holds
 *    exactly the plan (checked by fill_verify and e2fsck, not here).
 * 5. Numbers.  Sizes: 1% of files 100..600 KiB, 11% 4..40 KiB, the rest
 *    0..3000 bytes; 1/17 hard-linked, 1/11 of the others deleted, 1/13 of the
 *    survivors renamed, 1/19 appended 1..9000 bytes.  LAG = 64.  small_files
 *    (the metadata-heavy benchmark): every file 0..511 bytes before appends.
 * 6. Observability: struct fill_result.
 */
#define _GNU_SOURCE
#include "fill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LAG 64u
#define CHUNK (64u << 10)
#define FIXED_TIME 1700000000u

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t h(const struct fill_cfg *c, unsigned kind, uint64_t i)
{
    return mix(mix(((uint64_t)c->seed << 8 | kind) ^ 0x5d1f) ^ i);
}

/* ---- the plan ------------------------------------------------------------------- */

static long dir_parent(const struct fill_cfg *c, unsigned d)
{
    return d < 16 ? -1 : (long)(h(c, 0, d) % d);
}

static unsigned file_dir(const struct fill_cfg *c, unsigned f) { return h(c, 1, f) % c->dirs; }

static uint64_t file_size0(const struct fill_cfg *c, unsigned f)
{
    uint64_t r = h(c, 2, f), cls = r % 100, v = r >> 8;
    if (c->small_files)
        return v % 512;
    if (cls < 1)
        return 100 * 1024 + v % (500 * 1024);
    if (cls < 12)
        return 4096 + v % (36 * 1024);
    return v % 3001;
}

static int is_linked(const struct fill_cfg *c, unsigned f) { return h(c, 3, f) % 17 == 0; }
static unsigned link_dir(const struct fill_cfg *c, unsigned f) { return h(c, 4, f) % c->dirs; }
static int is_deleted(const struct fill_cfg *c, unsigned f)
{
    return !is_linked(c, f) && h(c, 5, f) % 11 == 0;
}
static int is_renamed(const struct fill_cfg *c, unsigned f)
{
    return !is_deleted(c, f) && h(c, 6, f) % 13 == 0;
}
static unsigned rename_dir(const struct fill_cfg *c, unsigned f) { return h(c, 7, f) % c->dirs; }
static uint64_t append_len(const struct fill_cfg *c, unsigned f)
{
    if (is_deleted(c, f) || h(c, 8, f) % 19)
        return 0;
    return 1 + h(c, 9, f) % 9000;
}

static size_t dir_path(const struct fill_cfg *c, unsigned d, char *buf, size_t len)
{
    size_t n = 0;
    long p = dir_parent(c, d);
    if (p >= 0)
        n = dir_path(c, (unsigned)p, buf, len);
    int k = snprintf(buf + n, len > n ? len - n : 0, "/d%u", d);
    return n + (k > 0 ? (size_t)k : 0);
}

const char *fill_file_path(const struct fill_cfg *c, unsigned f, char *buf, size_t len,
                           uint64_t *size)
{
    if (is_deleted(c, f))
        return NULL;
    int ren = is_renamed(c, f);
    size_t n = dir_path(c, ren ? rename_dir(c, f) : file_dir(c, f), buf, len);
    snprintf(buf + n, len > n ? len - n : 0, "/%c%u", ren ? 'r' : 'f', f);
    if (size)
        *size = file_size0(c, f) + append_len(c, f);
    return buf;
}

void fill_content(const struct fill_cfg *c, unsigned f, uint64_t off, unsigned char *buf,
                  size_t len)
{
    uint64_t base = mix((uint64_t)c->seed * 0x100000001b3ull ^ f);
    for (size_t i = 0; i < len;) {
        uint64_t pos = off + i, w = mix(base ^ (pos / 8));
        for (unsigned b = (unsigned)(pos % 8); b < 8 && i < len; b++, i++)
            buf[i] = (unsigned char)(w >> (8 * b));
    }
}

/* ---- helpers -------------------------------------------------------------------- */

int fill_spawn(char *const argv[], int keep_stdout)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (!keep_stdout) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0)
                dup2(fd, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int fill_mkfs(const struct fill_cfg *c)
{
    int fd = open(c->image, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)c->size_mb << 20) < 0) {
        perror(c->image);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    char bs[16], inodes[16];
    snprintf(bs, sizeof bs, "%u", c->block_size);
    snprintf(inodes, sizeof inodes, "%u", (c->dirs + c->files + 2048u + 1023u) & ~1023u);
    const char *mke2fs = getenv("MKE2FS") ? getenv("MKE2FS") : "/usr/sbin/mke2fs";
    char *argv[] = { (char *)mke2fs, "-q", "-F", "-t", (char *)c->fstype, "-b", bs, "-N",
                     inodes, "-E", "nodiscard", (char *)c->image, NULL };
    int r = fill_spawn(argv, 0);
    if (r != 0) {
        fprintf(stderr, "fill: %s exited %d\n", mke2fs, r);
        return -1;
    }
    return 0;
}

#define TRY(res, expr, ...)                                                                \
    do {                                                                                   \
        errcode_t e_ = (expr);                                                             \
        if (e_) {                                                                          \
            snprintf((res)->what, sizeof (res)->what, __VA_ARGS__);                       \
            return e_;                                                                     \
        }                                                                                  \
    } while (0)

static errcode_t link_name(ext2_filsys fs, ext2_ino_t dir, const char *name, ext2_ino_t ino,
                           int type)
{
    errcode_t e = ext2fs_link(fs, dir, name, ino, type);
    if (e == EXT2_ET_DIR_NO_SPACE) {
        if ((e = ext2fs_expand_dir(fs, dir)))
            return e;
        e = ext2fs_link(fs, dir, name, ino, type);
    }
    return e;
}

static errcode_t write_data(ext2_filsys fs, const struct fill_cfg *c, ext2_ino_t ino,
                            unsigned f, uint64_t from, uint64_t to, unsigned char *buf)
{
    ext2_file_t file;
    errcode_t e = ext2fs_file_open(fs, ino, EXT2_FILE_WRITE, &file);
    if (e)
        return e;
    if (from)
        e = ext2fs_file_llseek(file, from, EXT2_SEEK_SET, NULL);
    for (uint64_t pos = from; !e && pos < to;) {
        unsigned n = to - pos < CHUNK ? (unsigned)(to - pos) : CHUNK, got = 0;
        fill_content(c, f, pos, buf, n);
        e = ext2fs_file_write(file, buf, n, &got);
        if (!e && got != n)
            e = EXT2_ET_SHORT_WRITE;
        pos += got;
    }
    if (!e)
        e = ext2fs_file_set_size2(file, to);
    errcode_t e2 = ext2fs_file_close(file);
    return e ? e : e2;
}

static errcode_t create_file(ext2_filsys fs, const struct fill_cfg *c, ext2_ino_t dir,
                             unsigned f, ext2_ino_t *out, unsigned char *buf)
{
    ext2_ino_t ino;
    char name[32];
    errcode_t e = ext2fs_new_inode(fs, dir, LINUX_S_IFREG | 0644, 0, &ino);
    if (e)
        return e;
    snprintf(name, sizeof name, "f%u", f);
    if ((e = link_name(fs, dir, name, ino, EXT2_FT_REG_FILE)))
        return e;
    ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
    struct ext2_inode inode;
    memset(&inode, 0, sizeof inode);
    inode.i_mode = LINUX_S_IFREG | 0644;
    inode.i_links_count = 1;
    inode.i_atime = inode.i_ctime = inode.i_mtime = FIXED_TIME;
    if (ext2fs_has_feature_extents(fs->super)) {
        ext2_extent_handle_t handle;
        if ((e = ext2fs_extent_open2(fs, ino, &inode, &handle)))
            return e;
        ext2fs_extent_free(handle);
    }
    if ((e = ext2fs_write_new_inode(fs, ino, &inode)))
        return e;
    *out = ino;
    return write_data(fs, c, ino, f, 0, file_size0(c, f), buf);
}

static errcode_t bump_links(ext2_filsys fs, ext2_ino_t ino, int delta)
{
    struct ext2_inode inode;
    errcode_t e = ext2fs_read_inode(fs, ino, &inode);
    if (e)
        return e;
    inode.i_links_count = (__u16)(inode.i_links_count + delta);
    return ext2fs_write_inode(fs, ino, &inode);
}

static errcode_t delete_file(ext2_filsys fs, ext2_ino_t dir, const char *name, ext2_ino_t ino)
{
    struct ext2_inode inode;
    errcode_t e = ext2fs_unlink(fs, dir, name, ino, 0);
    if (!e)
        e = ext2fs_read_inode(fs, ino, &inode);
    if (!e)
        e = ext2fs_punch(fs, ino, &inode, NULL, 0, ~0ull);
    if (e)
        return e;
    inode.i_links_count = 0;
    inode.i_dtime = FIXED_TIME;
    if ((e = ext2fs_write_inode(fs, ino, &inode)))
        return e;
    ext2fs_inode_alloc_stats2(fs, ino, -1, 0);
    return 0;
}

/* Apply file f's fate (its dir and inode are known). */
static errcode_t apply_fate(ext2_filsys fs, const struct fill_cfg *c, const ext2_ino_t *dino,
                            ext2_ino_t ino, unsigned f, struct fill_result *res,
                            unsigned char *buf)
{
    char name[32], name2[32];
    ext2_ino_t dir = dino[file_dir(c, f)];
    snprintf(name, sizeof name, "f%u", f);
    if (is_linked(c, f)) {
        snprintf(name2, sizeof name2, "l%u", f);
        TRY(res, link_name(fs, dino[link_dir(c, f)], name2, ino, EXT2_FT_REG_FILE),
            "link %s", name2);
        TRY(res, bump_links(fs, ino, +1), "links of %s", name);
        res->links++;
    }
    if (is_deleted(c, f)) {
        TRY(res, delete_file(fs, dir, name, ino), "delete %s", name);
        res->unlinks++;
        return 0;
    }
    if (is_renamed(c, f)) {
        snprintf(name2, sizeof name2, "r%u", f);
        TRY(res, link_name(fs, dino[rename_dir(c, f)], name2, ino, EXT2_FT_REG_FILE),
            "rename to %s", name2);
        TRY(res, ext2fs_unlink(fs, dir, name, ino, 0), "rename from %s", name);
        res->renames++;
    }
    uint64_t extra = append_len(c, f), size = file_size0(c, f);
    if (extra) {
        TRY(res, write_data(fs, c, ino, f, size, size + extra, buf), "append %s", name);
        res->appends++;
        res->bytes += extra;
    }
    return 0;
}

static errcode_t build(ext2_filsys fs, const struct fill_cfg *c, ext2_ino_t *dino,
                       ext2_ino_t *fino, struct fill_result *res, unsigned char *buf)
{
    char name[32];
    for (unsigned d = 0; d < c->dirs; d++) {
        long p = dir_parent(c, d);
        ext2_ino_t parent = p < 0 ? EXT2_ROOT_INO : dino[p], ino;
        snprintf(name, sizeof name, "d%u", d);
        TRY(res, ext2fs_new_inode(fs, parent, LINUX_S_IFDIR | 0755, 0, &ino), "inode for %s",
            name);
        errcode_t e = ext2fs_mkdir(fs, parent, ino, name);
        if (e == EXT2_ET_DIR_NO_SPACE) {
            TRY(res, ext2fs_expand_dir(fs, parent), "expand parent of %s", name);
            e = ext2fs_mkdir(fs, parent, ino, name);
        }
        TRY(res, e, "mkdir %s", name);
        dino[d] = ino;
        res->mkdirs++;
        if (++res->ops && c->hook && c->hook_every && res->ops % c->hook_every == 0)
            c->hook(fs, res->ops, c->arg);
    }
    for (unsigned f = 0; f < c->files + LAG; f++) {
        if (f < c->files) {
            TRY(res, create_file(fs, c, dino[file_dir(c, f)], f, &fino[f], buf), "create f%u",
                f);
            res->creates++;
            res->bytes += file_size0(c, f);
        }
        if (f >= LAG) {
            errcode_t e = apply_fate(fs, c, dino, fino[f - LAG], f - LAG, res, buf);
            if (e)
                return e;
        }
        if (++res->ops && c->hook && c->hook_every && res->ops % c->hook_every == 0)
            c->hook(fs, res->ops, c->arg);
    }
    return 0;
}

errcode_t fill_run(const struct fill_cfg *c, struct fill_result *res)
{
    ext2_filsys fs = NULL;
    memset(res, 0, sizeof *res);
    errcode_t e = ext2fs_open2(c->image, c->io_options, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
                               c->manager, &fs);
    if (e) {
        snprintf(res->what, sizeof res->what, "ext2fs_open2");
        return e;
    }
    fs->now = FIXED_TIME;
    if (c->on_open)
        c->on_open(fs, c->arg);
    ext2_ino_t *dino = calloc(c->dirs ? c->dirs : 1, sizeof *dino);
    ext2_ino_t *fino = calloc(c->files ? c->files : 1, sizeof *fino);
    unsigned char *buf = malloc(CHUNK);
    if (!dino || !fino || !buf) {
        e = ENOMEM;
        snprintf(res->what, sizeof res->what, "allocating the plan");
    } else if ((e = ext2fs_read_bitmaps(fs))) {
        snprintf(res->what, sizeof res->what, "ext2fs_read_bitmaps");
    } else {
        e = build(fs, c, dino, fino, res, buf);
    }
    free(dino);
    free(fino);
    free(buf);
    if (c->hook)
        c->hook(fs, 0, c->arg); /* op 0: the last call, before close */
    res->close_err = ext2fs_close2(fs, 0);
    if (res->close_err) {
        ext2fs_free(fs); /* ext2fs_close2 keeps fs when its flush fails */
        if (!e) {
            e = res->close_err;
            snprintf(res->what, sizeof res->what, "ext2fs_close");
        }
    }
    return e;
}

/* ---- verification through unix_io ------------------------------------------------ */

#define BAD(...)                                                                           \
    do {                                                                                   \
        if (bad++ < 20)                                                                    \
            fprintf(stderr, "verify: " __VA_ARGS__);                                       \
    } while (0)

static int same_content(ext2_filsys fs, const struct fill_cfg *c, ext2_ino_t ino, unsigned f,
                        uint64_t size, unsigned char *got, unsigned char *want)
{
    ext2_file_t file;
    if (ext2fs_file_open(fs, ino, 0, &file))
        return 0;
    __u64 have = 0;
    int ok = !ext2fs_file_get_lsize(file, &have) && have == size;
    for (uint64_t pos = 0; ok && pos < size;) {
        unsigned n = size - pos < CHUNK ? (unsigned)(size - pos) : CHUNK, rd = 0;
        if (ext2fs_file_read(file, got, n, &rd) || rd != n)
            ok = 0;
        fill_content(c, f, pos, want, n);
        ok = ok && !memcmp(got, want, n);
        pos += n;
    }
    ext2fs_file_close(file);
    return ok;
}

unsigned long fill_verify(const struct fill_cfg *c)
{
    ext2_filsys fs;
    unsigned long bad = 0;
    char path[4096];
    errcode_t e = ext2fs_open2(c->image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
    if (e) {
        fprintf(stderr, "verify: open %s: %s\n", c->image, error_message(e));
        return 1;
    }
    unsigned char *got = malloc(CHUNK), *want = malloc(CHUNK);
    ext2_ino_t ino;
    struct ext2_inode inode;
    for (unsigned d = 0; d < c->dirs && got && want; d++) {
        dir_path(c, d, path, sizeof path);
        if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino) ||
            ext2fs_read_inode(fs, ino, &inode) || !LINUX_S_ISDIR(inode.i_mode))
            BAD("directory %s missing\n", path);
    }
    for (unsigned f = 0; f < c->files && got && want; f++) {
        uint64_t size;
        size_t n = dir_path(c, file_dir(c, f), path, sizeof path);
        snprintf(path + n, sizeof path - n, "/f%u", f);
        int gone = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino) != 0;
        if (!fill_file_path(c, f, path, sizeof path, &size)) {
            if (!gone)
                BAD("deleted file f%u still has its name\n", f);
            continue;
        }
        if (is_renamed(c, f) && !gone)
            BAD("renamed file f%u still has its old name\n", f);
        if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino) ||
            ext2fs_read_inode(fs, ino, &inode)) {
            BAD("%s missing\n", path);
            continue;
        }
        if (inode.i_links_count != (is_linked(c, f) ? 2 : 1))
            BAD("%s has %u links\n", path, inode.i_links_count);
        if (!same_content(fs, c, ino, f, size, got, want))
            BAD("%s: contents differ (size %llu expected)\n", path, (unsigned long long)size);
        if (is_linked(c, f)) {
            ext2_ino_t ino2 = 0;
            n = dir_path(c, link_dir(c, f), path, sizeof path);
            snprintf(path + n, sizeof path - n, "/l%u", f);
            if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino2) || ino2 != ino)
                BAD("hard link %s does not name file f%u\n", path, f);
        }
    }
    if (!got || !want)
        BAD("out of memory\n");
    free(got);
    free(want);
    ext2fs_close2(fs, 0);
    return bad;
}
