/* Seeded random malloc/realloc/free across 4 threads with cross-thread frees:
 * every block carries a pattern derived from its owner and serial number and is
 * checked before each realloc and free; a quarter of the frees happen on another
 * thread (blocks handed over through a mailbox).  Sizes from 1 B to 64 KiB.
 * Usage: test [seed] (also $SLABDEFRAG_SEED). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

#define THREADS 4
#define SLOTS 512
#define OPS 150000
#define MAILBOX 64

struct block {
    uint32_t serial, size;
    unsigned char data[];
};

static _Atomic(struct block *) mailbox[THREADS][MAILBOX];
static uint64_t seed;

static unsigned char pat(uint32_t serial, uint32_t i) { return (unsigned char)(serial * 131 + i * 7); }

static size_t pick_size(uint64_t *r)
{
    uint64_t x = xorshift64(r);
    switch (x % 8) {
    case 0: return 1 + x % 16;
    case 1: case 2: case 3: return 1 + (x >> 8) % 256;
    case 4: case 5: return 1 + (x >> 8) % 4096;
    case 6: return 1 + (x >> 8) % 32768;
    default: return 1 + (x >> 8) % 65536;
    }
}

static struct block *fill(struct block *b, uint32_t serial, size_t total)
{
    b->serial = serial;
    b->size = (uint32_t)(total - sizeof *b);
    for (uint32_t i = 0; i < b->size; i++)
        b->data[i] = pat(serial, i);
    return b;
}

static void verify(const struct block *b, uint32_t upto)
{
    for (uint32_t i = 0; i < upto && i < b->size; i++)
        CHECK(b->data[i] == pat(b->serial, i), "seed %llu: block %u byte %u damaged",
              (unsigned long long)seed, b->serial, i);
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t r = seed * (id + 1) | 1;
    struct block *slot[SLOTS] = { 0 };
    uint32_t serial = id << 24;
    for (int op = 0; op < OPS; op++) {
        /* Free what other threads handed us. */
        struct block *in = atomic_exchange(&mailbox[id][op % MAILBOX], NULL);
        if (in) {
            verify(in, in->size);
            free(in);
        }
        unsigned s = (unsigned)(xorshift64(&r) % SLOTS);
        struct block *b = slot[s];
        uint64_t what = xorshift64(&r) % 4;
        if (!b) {
            size_t total = sizeof *b + pick_size(&r);
            b = what == 0 ? calloc(1, total) : malloc(total);
            CHECK(b, "alloc %zu", total);
            if (what == 0)
                for (size_t i = 0; i < total; i++)
                    CHECK(((unsigned char *)b)[i] == 0, "calloc not zero");
            slot[s] = fill(b, ++serial, total);
        } else if (what == 0) {
            size_t total = sizeof *b + pick_size(&r);
            verify(b, b->size);
            struct block *nb = realloc(b, total);
            CHECK(nb, "realloc");
            uint32_t keep = nb->size < total - sizeof *nb ? nb->size : (uint32_t)(total - sizeof *nb);
            verify(nb, keep);
            slot[s] = fill(nb, nb->serial, total);
        } else if (what == 1) {
            unsigned to = (id + 1 + (unsigned)(xorshift64(&r) % (THREADS - 1))) % THREADS;
            verify(b, b->size);
            struct block *old = atomic_exchange(&mailbox[to][xorshift64(&r) % MAILBOX], b);
            slot[s] = NULL;
            if (old) { /* the receiver has not picked it up: free it here */
                verify(old, old->size);
                free(old);
            }
        } else {
            verify(b, b->size);
            free(b);
            slot[s] = NULL;
        }
    }
    for (unsigned s = 0; s < SLOTS; s++)
        if (slot[s]) {
            verify(slot[s], slot[s]->size);
            free(slot[s]);
        }
    return NULL;
}

int main(int argc, char **argv)
{
    seed = test_seed(argc, argv, 1, 20261204);
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0, "pthread_create");
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (unsigned i = 0; i < THREADS; i++)
        for (unsigned j = 0; j < MAILBOX; j++) {
            struct block *b = atomic_exchange(&mailbox[i][j], NULL);
            if (b) {
                verify(b, b->size);
                free(b);
            }
        }
    return 0;
}
