/*
 * dentry_move: the move protocol on a dentry-like table — fragmentation,
 * defragmentation, memory returned, every entry verified.
 *
 * 1. What it builds.  64 directories under one root, each with 3000 files
 *    (192k entries of 112 B: 21 MiB of slabs), then deletes a random 90% of
 *    the files: the survivors sit in nearly every slab, so almost no memory
 *    goes back to the OS.
 * 2. Concurrency.  While slab_cache_shrink() moves entries, a reader thread
 *    looks up random files (pinning their directory, then the file) and
 *    deletes some: the move callback meets pinned entries (LATER) and entries
 *    being deleted (DONT_KNOW).  See dentry_table.c for the locks and
 *    references that make this safe.
 * 3. What is checked.  Every surviving file is found by name under its
 *    directory with its inode number intact; every hash chain, parent pointer
 *    and children list is consistent (dentry_table_check); the table's count
 *    equals the cache's objects_active; slabs and RSS fall.  Exit 0 on success.
 */
#define _GNU_SOURCE
#include "dentry_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXAMPLE_NAME "dentry_move"
#include "example_util.h"

#define NDIRS 64
#define FILES_PER_DIR 3000

static struct dentry_table table;
static _Atomic int stop;
static unsigned char deleted[NDIRS][FILES_PER_DIR]; /* written by main before/after threads */
static _Atomic unsigned char deleted_by_reader[NDIRS][FILES_PER_DIR];

static uint64_t inode_of(int dir, int file) { return 1000000ull * (uint64_t)(dir + 1) + (uint64_t)file; }

static struct dentry *lookup_dir(struct dentry *root, int dir)
{
    char name[32];
    snprintf(name, sizeof name, "dir%d", dir);
    return dentry_lookup(&table, root, name);
}

static void *reader(void *arg)
{
    struct dentry *root = arg; /* pinned by main for the whole run */
    uint64_t rng = 88172645463325252ull;
    char name[32];
    while (!atomic_load(&stop)) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int dir = (int)(rng % NDIRS), file = (int)((rng >> 20) % FILES_PER_DIR);
        struct dentry *d = lookup_dir(root, dir);
        if (!d)
            die("a directory disappeared");
        snprintf(name, sizeof name, "file%d", file);
        struct dentry *f = dentry_lookup(&table, d, name);
        if (f) {
            if (f->inode != inode_of(dir, file))
                die("a file's inode changed");
            dentry_put(&table, f);
            if ((rng >> 40) % 8 == 0 && dentry_delete(&table, d, name) == 0)
                atomic_store(&deleted_by_reader[dir][file], 1);
        }
        dentry_put(&table, d);
    }
    return NULL;
}

static void build(struct dentry *root)
{
    char name[32];
    for (int dir = 0; dir < NDIRS; dir++) {
        snprintf(name, sizeof name, "dir%d", dir);
        struct dentry *d = dentry_create(&table, root, name, inode_of(dir, 999999));
        if (!d)
            die("create dir");
        for (int file = 0; file < FILES_PER_DIR; file++) {
            snprintf(name, sizeof name, "file%d", file);
            struct dentry *f = dentry_create(&table, d, name, inode_of(dir, file));
            if (!f)
                die("create file");
            dentry_put(&table, f);
        }
        dentry_put(&table, d);
    }
}

static void fragment(struct dentry *root)
{
    uint64_t rng = 0x2545f4914f6cdd1dull;
    char name[32];
    for (int dir = 0; dir < NDIRS; dir++) {
        struct dentry *d = lookup_dir(root, dir);
        for (int file = 0; file < FILES_PER_DIR; file++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            if (rng % 10 == 0)
                continue;
            snprintf(name, sizeof name, "file%d", file);
            if (dentry_delete(&table, d, name) != 0)
                die("delete");
            deleted[dir][file] = 1;
        }
        dentry_put(&table, d);
    }
}

static long verify(struct dentry *root)
{
    char name[32];
    long files = 0;
    for (int dir = 0; dir < NDIRS; dir++) {
        struct dentry *d = lookup_dir(root, dir);
        if (!d || d->inode != inode_of(dir, 999999))
            die("directory lost or corrupted");
        for (int file = 0; file < FILES_PER_DIR; file++) {
            snprintf(name, sizeof name, "file%d", file);
            struct dentry *f = dentry_lookup(&table, d, name);
            int gone = deleted[dir][file] || atomic_load(&deleted_by_reader[dir][file]);
            if (gone != (f == NULL))
                die(gone ? "a deleted file came back" : "a file was lost");
            if (f) {
                if (f->inode != inode_of(dir, file) || strcmp(f->name, name) != 0)
                    die("a file was corrupted");
                dentry_put(&table, f);
                files++;
            }
        }
        dentry_put(&table, d);
    }
    long n = dentry_table_check(&table);
    if (n != files + NDIRS + 1)
        die("the table's links are inconsistent");
    return n;
}

int main(void)
{
    if (dentry_table_init(&table, "dentry", 1 << 18) != 0)
        die("init");
    struct dentry *root = dentry_create(&table, NULL, "/", 1); /* stays pinned */
    if (!root)
        die("create root");
    build(root);
    fragment(root);
    long before_n = verify(root);
    slab_cache_defrag(table.cache, 0); /* hand back this thread's slabs; moves nothing */
    struct slab_cache_stats before = cache_stats(table.cache);
    size_t rss_before = proc_rss_bytes();

    pthread_t t;
    if (pthread_create(&t, NULL, reader, root) != 0)
        die("pthread_create");
    long released = slab_cache_shrink(table.cache);
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    slab_cache_defrag(table.cache, 100); /* entries that were pinned (LATER) get another turn */

    long after_n = verify(root);
    struct slab_cache_stats after = cache_stats(table.cache);
    size_t rss_after = proc_rss_bytes();
    printf("dentry_move: %ld entries (%ld after concurrent deletes); slabs %llu -> %llu, "
           "bytes_mapped %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB; shrink returned %.1f MiB\n"
           "  move answers: %llu YES, %llu LATER (pinned), %llu DONT_KNOW (being deleted)\n",
           before_n, after_n, (unsigned long long)before.slabs, (unsigned long long)after.slabs,
           before.bytes_mapped / 1048576.0, after.bytes_mapped / 1048576.0,
           rss_before / 1048576.0, rss_after / 1048576.0, released / 1048576.0,
           (unsigned long long)atomic_load(&table.moves),
           (unsigned long long)atomic_load(&table.later),
           (unsigned long long)atomic_load(&table.dont_know));
    if (after.objects_active != (uint64_t)after_n)
        die("objects_active differs from the table's count");
    if (after.move_results[SLAB_MOVE_YES] != atomic_load(&table.moves))
        die("move_results[YES] differs from the callback's count");
    if (after.bytes_mapped * 3 > before.bytes_mapped)
        die("defragmentation returned less than 2/3 of the memory");
    dentry_put(&table, root);
    dentry_table_destroy(&table);
    return 0;
}
