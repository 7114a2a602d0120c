/*
 * bufcache/crash: a process killed at a random point loses nothing it synced.
 *
 * Each iteration forks a child that opens the image (1 KiB blocks, a memory
 * limit of a quarter of the image, flusher expiry 5 ms, so eviction, throttling
 * and background writeback all run) and loops: write a random block with the
 * next version of its stamp (bctest.h), and every few writes bdev_sync (or
 * bh_sync of the block).  Before each sync the child copies its written
 * versions into shared memory, and after the sync returns 0 it publishes them
 * as synced.  The parent SIGKILLs the child after a random delay and checks
 * every block of the file: an intact stamp of that block, with a version at
 * least the synced one and at most the written one.  (The data a process wrote
 * survives its death in the OS page cache: this checks the cache's own
 * bookkeeping: nothing acknowledged was left only in memory.)
 * Usage: test_bufcache_crash [seed [iterations]].
 */
#include "bctest.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define BS      1024u
#define NBLOCKS 512u

struct shared {
    atomic_int started;
    _Atomic uint64_t written[NBLOCKS]; /* highest version the child wrote */
    _Atomic uint64_t synced[NBLOCKS];  /* highest version a successful sync covered */
};

static void child(struct shared *sh, const char *path, uint64_t seed)
{
    struct bcache *bc = xbcache((size_t)NBLOCKS * BS / 4, 5, 30);
    struct bdev *dev = xopen(bc, path, BS, O_RDWR);
    static uint64_t snapshot[NBLOCKS];
    uint64_t rng = seed | 1;
    atomic_store(&sh->started, 1);
    for (;;) {
        uint64_t b = xorshift64(&rng) % NBLOCKS;
        struct buffer_head *bh = bh_read(dev, b);
        if (!bh)
            _exit(2);
        uint64_t v = atomic_load(&sh->written[b]) + 1;
        bh_lock(bh);
        block_fill(bh->b_data, BS, b, v);
        atomic_store(&sh->written[b], v);
        bh_mark_dirty(bh);
        bh_unlock(bh);
        unsigned r = (unsigned)(xorshift64(&rng) % 16);
        if (r == 0) {
            if (bh_sync(bh) != 0)
                _exit(3);
            atomic_store(&sh->synced[b], v);
        } else if (r == 1) {
            for (unsigned i = 0; i < NBLOCKS; i++)
                snapshot[i] = atomic_load(&sh->written[i]);
            if (bdev_sync(dev) != 0)
                _exit(4);
            for (unsigned i = 0; i < NBLOCKS; i++)
                if (atomic_load(&sh->synced[i]) < snapshot[i])
                    atomic_store(&sh->synced[i], snapshot[i]);
        }
        bh_put(bh);
    }
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv, 1, 0xc4a5);
    int iterations = argc > 2 ? atoi(argv[2]) : under_sanitizer() ? 6 : 16;
    char path[256];
    image_create_stamped(path, NBLOCKS, BS);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED, "mmap");
    uint64_t rng = seed;
    uint64_t total_synced = 0;
    for (int it = 0; it < iterations; it++) {
        atomic_store(&sh->started, 0);
        uint64_t child_seed = xorshift64(&rng);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            child(sh, path, child_seed);
            _exit(0);
        }
        while (!atomic_load(&sh->started)) {
            int status;
            CHECK(waitpid(pid, &status, WNOHANG) == 0, "child died early (status %d)", status);
            sleep_us(200);
        }
        sleep_us(2000 + (long)(xorshift64(&rng) % 60000));
        kill(pid, SIGKILL);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "seed %llu: child exited by itself (status %d: an I/O call failed)",
              (unsigned long long)seed, status);

        static unsigned char blk[BS];
        for (uint64_t b = 0; b < NBLOCKS; b++) {
            image_read(path, b * BS, blk, BS);
            uint64_t v = 0, synced = atomic_load(&sh->synced[b]);
            CHECK(block_stamp_ok(blk, BS, b, &v), "seed %llu iteration %d: block %llu torn",
                  (unsigned long long)seed, it, (unsigned long long)b);
            CHECK(v >= synced, "seed %llu iteration %d: block %llu has version %llu, but "
                  "version %llu was synced", (unsigned long long)seed, it,
                  (unsigned long long)b, (unsigned long long)v, (unsigned long long)synced);
            CHECK(v <= atomic_load(&sh->written[b]), "block %llu: a version never written",
                  (unsigned long long)b);
            /* the next child continues from what the file holds */
            atomic_store(&sh->written[b], v);
            atomic_store(&sh->synced[b], v);
            total_synced += synced;
        }
    }
    CHECK(total_synced > 0, "seed %llu: no child ever completed a sync: nothing was tested",
          (unsigned long long)seed);
    munmap(sh, sizeof *sh);
    image_remove(path);
    printf("crash: seed %llu, %d kills survived (sum of synced versions %llu)\n",
           (unsigned long long)seed, iterations, (unsigned long long)total_synced);
    return 0;
}
