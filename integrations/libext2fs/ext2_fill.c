/*
 * integrations/libext2fs/ext2_fill.c: `ext2-fill IMAGE` — format an image with
 * mke2fs, build the fill.h tree through libext2fs and slabdefrag_io_manager
 * (or unix_io_manager with --io unix), close it, and with --check let
 * e2fsprogs judge: `e2fsck -fn` must exit 0, every file read back through
 * unix_io_manager must match the plan, and a few files read by `debugfs -R cat`
 * too.  This is the ctest driver for integrations/libext2fs.
 *
 * 1. Objects and states.  One run = mkfs, fill_run, (check).  With
 *    --fault-write N a first run has the N-th device write of the cache fail
 *    with --fault-errno (once, or from then on with --fault-sticky; or the N-th
 *    flush with --fault-flush): that run must end with an error code from
 *    libext2fs (and no crash); then the faults are gone (the device was closed)
 *    and the normal run is redone on a freshly formatted image.
 * 2. Locking: one thread drives libext2fs; the cache has its flusher thread.
 * 3. Error policy: every failed expectation prints a line and makes the exit
 *    status 1; usage errors exit 2.
 * 4. Numbers: defaults --type ext4 --block-size 4096 --size 64 (MiB) --dirs 2000
 *    --files 3000 --seed 1; --memory-limit unset = the cache's 64 MiB default.
 * 5. Observability: a summary line of the run and the cache counters (hits,
 *    misses, evictions, ring drops/rebuilds, device reads/writes, buffer_head
 *    slab counters); --expect-eviction fails the run unless the cache evicted
 *    pages, buffer heads went back to the "buffer_head" slab and bcache_shrink
 *    (--shrink-every) handed memory back.
 */
#define _GNU_SOURCE
#include "fill.h"

#include <slabdefrag/buffer.h>
#include <slabdefrag/buffer_fault.h>
#include <slabdefrag/ext2fs_io.h>
#include <slabdefrag/slab.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts {
    struct fill_cfg cfg;
    const char *io;
    unsigned long long memory_limit;
    unsigned long fault_nth;
    int fault_errno, fault_sticky, fault_flush;
    unsigned shrink_every;
    int check, expect_eviction, verbose;
    /* gathered by the hooks */
    int injected;
    struct bcache_stats last;
    struct slab_cache_stats bh_slab; /* the "buffer_head" slab, before close */
    int have_slab;
    int have_stats;
    unsigned long shrinks;
    long shrunk_bytes;
};

static unsigned long write_error_calls;

/* A channel write_error handler, as e2fsck installs one: count, pass the error on. */
static errcode_t count_write_error(io_channel ch, unsigned long block, int count,
                                   const void *data, size_t size, int actual, errcode_t error)
{
    (void)ch;
    (void)data;
    write_error_calls++;
    if (write_error_calls <= 3)
        printf("write_error handler: block %lu count %d size %zu actual %d error %ld\n", block,
               count, size, actual, (long)error);
    return error;
}

static void on_open(ext2_filsys fs, void *arg)
{
    struct opts *o = arg;
    struct bdev *dev = slabdefrag_ext2fs_bdev(fs->io);
    if (!o->fault_nth || !dev)
        return;
    fs->io->write_error = count_write_error;
    int r = bdev_fault_inject(dev, o->fault_flush ? BDEV_IO_FLUSH : BDEV_IO_WRITE,
                              o->fault_nth, o->fault_errno,
                              o->fault_sticky ? BDEV_FAULT_STICKY : 0);
    o->injected = r == 0;
}

static void hook(ext2_filsys fs, unsigned long op, void *arg)
{
    struct opts *o = arg;
    struct bcache *bc = slabdefrag_ext2fs_bcache(fs->io);
    if (!bc)
        return;
    if (op && o->shrink_every) {
        long r = bcache_shrink(bc, o->memory_limit ? o->memory_limit / 2 : 1u << 20);
        o->shrinks++;
        if (r > 0)
            o->shrunk_bytes += r;
    }
    if (bcache_get_stats(bc, &o->last) == 0)
        o->have_stats = 1;
    struct slab_cache *bhc = slab_cache_find("buffer_head");
    if (bhc && slab_cache_get_stats(bhc, &o->bh_slab) == 0)
        o->have_slab = 1;
}

static void print_stats(struct opts *o, const struct fill_result *res)
{
    printf("ext2-fill: %s %u-byte blocks, io %s, memory_limit %llu: %lu dirs, %lu files "
           "(%llu bytes), %lu links, %lu renames, %lu unlinks, %lu appends\n",
           o->cfg.fstype, o->cfg.block_size, o->io, o->memory_limit, res->mkdirs, res->creates,
           res->bytes, res->links, res->renames, res->unlinks, res->appends);
    if (!o->have_stats)
        return;
    const struct bcache_stats *s = &o->last;
    printf("cache: hits %llu misses %llu evictions %llu rings_dropped %llu rings_rebuilt %llu "
           "reads %llu writes %llu flushes %llu throttled %llu memory_used %llu/%llu "
           "shrinks %lu (%ld bytes)\n",
           (unsigned long long)s->hits, (unsigned long long)s->misses,
           (unsigned long long)s->evictions, (unsigned long long)s->rings_dropped,
           (unsigned long long)s->rings_rebuilt, (unsigned long long)s->reads,
           (unsigned long long)s->writes, (unsigned long long)s->flushes,
           (unsigned long long)s->throttled, (unsigned long long)s->memory_used,
           (unsigned long long)s->memory_limit, o->shrinks, o->shrunk_bytes);
    const struct slab_cache_stats ss = o->bh_slab;
    if (o->have_slab)
        printf("buffer_head slab: allocs %llu frees %llu slabs %llu defrag_passes %llu "
               "slabs_freed %llu objects_kicked %llu bytes_released %llu\n",
               (unsigned long long)ss.allocs, (unsigned long long)ss.frees,
               (unsigned long long)ss.slabs, (unsigned long long)ss.defrag_passes,
               (unsigned long long)ss.defrag_slabs_freed,
               (unsigned long long)ss.defrag_objects_kicked,
               (unsigned long long)ss.defrag_bytes_released);
}

/* debugfs -R "cat PATH" IMAGE must print exactly the planned bytes of file f. */
static int debugfs_matches(const struct fill_cfg *c, unsigned f, const char *path,
                           uint64_t size)
{
    char cmd[8192];
    const char *debugfs = getenv("DEBUGFS") ? getenv("DEBUGFS") : "/usr/sbin/debugfs";
    snprintf(cmd, sizeof cmd, "%s -R 'cat %s' '%s' 2>/dev/null", debugfs, path, c->image);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    unsigned char got[4096], want[4096];
    uint64_t pos = 0;
    int ok = 1;
    size_t n;
    while ((n = fread(got, 1, sizeof got, p)) > 0) {
        if (pos + n > size) {
            ok = 0;
            break;
        }
        fill_content(c, f, pos, want, n);
        ok = ok && !memcmp(got, want, n);
        pos += n;
    }
    int st = pclose(p);
    return ok && pos == size && st == 0;
}

static int check_image(struct opts *o)
{
    int fails = 0;
    const char *e2fsck = getenv("E2FSCK") ? getenv("E2FSCK") : "/usr/sbin/e2fsck";
    char *argv[] = { (char *)e2fsck, "-fn", (char *)o->cfg.image, NULL };
    int r = fill_spawn(argv, o->verbose);
    printf("check: e2fsck -fn exit %d\n", r);
    if (r != 0) {
        fprintf(stderr, "FAIL: e2fsck -fn %s exited %d\n", o->cfg.image, r);
        fails++;
    }
    unsigned long bad = fill_verify(&o->cfg);
    printf("check: unix_io read-back of %u files: %lu mismatches\n", o->cfg.files, bad);
    if (bad) {
        fprintf(stderr, "FAIL: %lu files differ when read through unix_io_manager\n", bad);
        fails++;
    }
    /* debugfs: the first few surviving files, one per size class if possible */
    unsigned checked = 0, want_big = 1;
    char path[4096];
    for (unsigned f = 0; f < o->cfg.files && checked < 6; f++) {
        uint64_t size;
        if (!fill_file_path(&o->cfg, f, path, sizeof path, &size))
            continue;
        if (checked >= 3 && !(want_big && size > 64 * 1024))
            continue;
        if (size > 64 * 1024)
            want_big = 0;
        checked++;
        if (!debugfs_matches(&o->cfg, f, path, size)) {
            fprintf(stderr, "FAIL: debugfs cat %s differs from the plan\n", path);
            fails++;
        }
    }
    printf("check: debugfs cat of %u files done\n", checked);
    return fails;
}

static int run(struct opts *o);

static void usage(void)
{
    fprintf(stderr,
            "usage: ext2-fill [--type ext2|ext4] [--block-size 1024|4096] [--size MB]\n"
            "                 [--dirs N] [--files N] [--seed S] [--io slabdefrag|unix]\n"
            "                 [--memory-limit BYTES] [--shrink-every OPS] [--check]\n"
            "                 [--expect-eviction] [--fault-write N [--fault-errno E]\n"
            "                 [--fault-sticky] [--fault-flush]] [--verbose] IMAGE|@tmp\n"
            "  @tmp: a fresh temporary directory, removed at the end\n");
    exit(2);
}

/* Built as the ext2-fill program by default; the slabdefrag CLI can compile this
 * file with -DEXT2_FILL_MAIN=cmd_ext2_fill and dispatch "ext2-fill" to it. */
#ifndef EXT2_FILL_MAIN
#define EXT2_FILL_MAIN main
#endif
int EXT2_FILL_MAIN(int argc, char **argv);

int EXT2_FILL_MAIN(int argc, char **argv)
{
    static const struct option lo[] = {
        { "type", 1, 0, 't' },         { "block-size", 1, 0, 'b' },
        { "size", 1, 0, 's' },         { "dirs", 1, 0, 'd' },
        { "files", 1, 0, 'f' },        { "seed", 1, 0, 'S' },
        { "io", 1, 0, 'i' },           { "memory-limit", 1, 0, 'm' },
        { "shrink-every", 1, 0, 'k' }, { "check", 0, 0, 'c' },
        { "expect-eviction", 0, 0, 'E' }, { "fault-write", 1, 0, 'F' },
        { "fault-errno", 1, 0, 'e' },  { "fault-sticky", 0, 0, 'T' },
        { "fault-flush", 0, 0, 'L' },  { "verbose", 0, 0, 'v' },
        { "help", 0, 0, 'h' },         { 0, 0, 0, 0 },
    };
    struct opts o = { .io = "slabdefrag", .fault_errno = EIO };
    o.cfg = (struct fill_cfg){ .fstype = "ext4", .block_size = 4096, .size_mb = 64,
                               .dirs = 2000, .files = 3000, .seed = 1 };
    int ch;
    while ((ch = getopt_long(argc, argv, "t:b:s:d:f:S:i:m:k:cEF:e:TLvh", lo, NULL)) != -1) {
        switch (ch) {
        case 't': o.cfg.fstype = optarg; break;
        case 'b': o.cfg.block_size = (unsigned)strtoul(optarg, NULL, 0); break;
        case 's': o.cfg.size_mb = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'd': o.cfg.dirs = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'f': o.cfg.files = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'S': o.cfg.seed = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'i': o.io = optarg; break;
        case 'm': o.memory_limit = strtoull(optarg, NULL, 0); break;
        case 'k': o.shrink_every = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'c': o.check = 1; break;
        case 'E': o.expect_eviction = 1; break;
        case 'F': o.fault_nth = strtoul(optarg, NULL, 0); break;
        case 'e': o.fault_errno = atoi(optarg); break;
        case 'T': o.fault_sticky = 1; break;
        case 'L': o.fault_flush = 1; break;
        case 'v': o.verbose = 1; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || !o.cfg.dirs ||
        (strcmp(o.cfg.fstype, "ext2") && strcmp(o.cfg.fstype, "ext4")) ||
        (o.cfg.block_size != 1024 && o.cfg.block_size != 2048 && o.cfg.block_size != 4096))
        usage();
    o.cfg.image = argv[optind];
    char tmpdir[] = "/tmp/ext2-fill.XXXXXX", tmpimg[64];
    int use_tmp = !strcmp(o.cfg.image, "@tmp");
    if (use_tmp) {
        const char *t = getenv("TMPDIR");
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/ext2-fill.XXXXXX", t && *t ? t : "/tmp");
        if (strlen(tmpl) < sizeof tmpdir)
            strcpy(tmpdir, tmpl);
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(tmpimg, sizeof tmpimg, "%s/image", tmpdir);
        o.cfg.image = tmpimg;
    }
    int rc = run(&o);
    if (use_tmp) {
        unlink(tmpimg);
        rmdir(tmpdir);
    }
    return rc;
}

static int run(struct opts *o_)
{
    struct opts o = *o_;
    char io_opts[64] = "";
    if (!strcmp(o.io, "unix")) {
        o.cfg.manager = unix_io_manager;
    } else if (!strcmp(o.io, "slabdefrag")) {
        o.cfg.manager = slabdefrag_io_manager;
        if (o.memory_limit)
            snprintf(io_opts, sizeof io_opts, "memory_limit=%llu", o.memory_limit);
    } else {
        usage();
    }
    o.cfg.io_options = io_opts[0] ? io_opts : NULL;
    o.cfg.on_open = on_open;
    o.cfg.hook = hook;
    o.cfg.hook_every = o.shrink_every ? o.shrink_every : 256;
    o.cfg.arg = &o;
    initialize_ext2_error_table();

    int fails = 0;
    struct fill_result res;
    if (o.fault_nth) {
        if (o.cfg.manager != slabdefrag_io_manager || fill_mkfs(&o.cfg))
            return 1;
        errcode_t e = fill_run(&o.cfg, &res);
        printf("fault run: %s %lu of kind %s errno %d%s: libext2fs got %ld (%s) at %s; "
               "close %ld\n",
               o.injected ? "injected" : "NOT injected", o.fault_nth,
               o.fault_flush ? "flush" : "write", o.fault_errno,
               o.fault_sticky ? " sticky" : "", (long)e, e ? error_message(e) : "no error",
               res.what, (long)res.close_err);
        if (!o.injected || !e) {
            fprintf(stderr, "FAIL: the injected fault did not reach libext2fs\n");
            fails++;
        }
        printf("fault run: write_error handler called %lu times\n", write_error_calls);
        if (!write_error_calls) {
            fprintf(stderr, "FAIL: the channel's write_error handler was not called\n");
            fails++;
        }
        o.fault_nth = 0; /* faults stop: redo the run on a fresh image */
        o.have_stats = 0;
    }
    if (fill_mkfs(&o.cfg))
        return 1;
    errcode_t e = fill_run(&o.cfg, &res);
    if (e) {
        fprintf(stderr, "FAIL: %s: %s (%ld)\n", res.what, error_message(e), (long)e);
        return 1;
    }
    print_stats(&o, &res);
    /* Eviction frees buffer heads into the slab and shrink hands slabs back (the
     * slab's defrag pass runs in slab_cache_shrink); rings_dropped is reported
     * but not required: it counts the buffer_head defrag kicks, which the cache
     * does not wire to the slab yet. */
    if (o.expect_eviction &&
        (!o.have_stats || !o.last.evictions || !o.have_slab || !o.bh_slab.frees ||
         o.shrunk_bytes <= 0)) {
        fprintf(stderr, "FAIL: expected evictions, buffer_head frees and memory handed back "
                        "by shrink under memory_limit %llu\n", o.memory_limit);
        fails++;
    }
    if (o.check)
        fails += check_image(&o);
    printf("ext2-fill: %s\n", fails ? "FAILED" : "ok");
    return fails ? 1 : 0;
}
