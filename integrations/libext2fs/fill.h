/*
 * integrations/libext2fs/fill.h: the deterministic ext2/ext4 workload shared by
 * ext2-fill (the test driver) and bench_ext2 (the benchmark).
 *
 * 1. Objects.  A fill_cfg names the image, the filesystem to make and the shape
 *    of the tree; every name, size and byte of the tree is a pure function of
 *    (seed, index), so the expected final state is recomputed by fill_verify
 *    without a log.  Plan: dirs d0..d(D-1) in a random tree under the root;
 *    files f0..f(F-1) with random sizes (most small, some medium, a few
 *    hundreds of KiB) in random dirs; then some files get a second hard link,
 *    some are renamed (link + unlink), some deleted (unlink, punch, free the
 *    inode), some appended to.
 * 2. Locking.  None: one thread drives libext2fs.
 * 3. Error policy.  fill_run stops at the first libext2fs error, closes (or
 *    frees) the filesystem, and returns the error with a description in
 *    res->what.  Nothing aborts.
 * 4. Observability.  fill_result counts operations; the hook lets callers look
 *    at the channel every hook_every operations (statistics, shrink).
 */
#ifndef SLABDEFRAG_EXT2_FILL_H
#define SLABDEFRAG_EXT2_FILL_H

#include <ext2fs/ext2fs.h>
#include <stdint.h>

struct fill_cfg {
    const char *image;
    const char *fstype;       /* "ext2" or "ext4" */
    unsigned block_size;      /* 1024 or 4096 */
    unsigned size_mb;         /* image size */
    unsigned dirs, files;
    uint32_t seed;
    int small_files;          /* 1: every file 0..511 bytes (metadata-heavy) */
    io_manager manager;       /* for fill_run */
    const char *io_options;   /* passed to ext2fs_open2 (e.g. "memory_limit=262144") */
    /* called right after ext2fs_open2, every hook_every operations, and with
       op 0 just before ext2fs_close */
    void (*on_open)(ext2_filsys fs, void *arg);
    void (*hook)(ext2_filsys fs, unsigned long op, void *arg);
    unsigned hook_every;
    void *arg;
};

struct fill_result {
    unsigned long ops, mkdirs, creates, links, renames, unlinks, appends;
    unsigned long long bytes;
    errcode_t close_err;      /* what ext2fs_close returned */
    char what[256];           /* the failing step, if any */
};

/* Create/truncate the image and run mke2fs on it.  0 or -1 (message on stderr). */
int fill_mkfs(const struct fill_cfg *cfg);

/* Open with cfg->manager, build the tree, close.  0 or the first error. */
errcode_t fill_run(const struct fill_cfg *cfg, struct fill_result *res);

/* Open read-only with unix_io_manager and compare every name and byte with the
 * plan.  Returns the number of mismatches (messages on stderr, at most 20). */
unsigned long fill_verify(const struct fill_cfg *cfg);

/* The final path of file f (or NULL if the plan deletes it) and its size. */
const char *fill_file_path(const struct fill_cfg *cfg, unsigned f, char *buf, size_t len,
                           uint64_t *size);
/* Fill buf with bytes [off, off+len) of file f. */
void fill_content(const struct fill_cfg *cfg, unsigned f, uint64_t off, unsigned char *buf,
                  size_t len);

/* Run a program (argv[0] a path) with stdout to /dev/null unless keep_stdout;
 * its exit status, or -1. */
int fill_spawn(char *const argv[], int keep_stdout);

#endif
