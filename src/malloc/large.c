/*
 * malloc/large.c — allocations above the largest size class (or aligned beyond
 * what a class guarantees): one anonymous mapping each, unmapped at free.
 *
 * 1. Objects.  A large allocation is a mapping of len bytes (a multiple of the
 *    page size) at base; the pointer handed out is base itself (alignment up to
 *    a page) or the first multiple of the alignment inside an over-sized mapping.
 *    Nothing is written into the mapping, so calloc needs no memset (fresh
 *    anonymous pages read as zero) and the pages are not touched until used.
 * 2. The registry.  An open-addressing hash table (linear probing, tombstones)
 *    maps each pointer handed out to {base, len}.  free() and realloc() find the
 *    mapping there, so a pointer that is not ours is recognised without reading
 *    memory in front of it, and a second free of the same pointer is caught.
 *    The table itself is mmap'd (it never calls malloc) and doubles when more
 *    than half of its slots are used or dead.
 * 3. Locking.  reg.lock (a pthread mutex) protects the table; mmap, munmap and
 *    mremap run outside it, except the mremap of realloc, which keeps the entry
 *    consistent.  fork: malloc.c's atfork handlers take the lock before fork.
 * 4. Numbers.  Initial table: 512 slots (8 KiB).  Growing in place uses mremap,
 *    so a buffer grown by realloc is never copied by us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define DEAD ((uintptr_t)1)

struct entry {
    uintptr_t ptr; /* 0: empty slot; DEAD: removed */
    char *base;
    size_t len;
};

static struct {
    pthread_mutex_t lock;
    struct entry *tab;
    size_t cap, used, dead;
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t slot_of(uintptr_t p, size_t cap)
{
    return (size_t)(((p >> 12) * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (cap - 1);
}

/* reg.lock held, reserve() succeeded: add e (reusing a dead slot if met first). */
static void insert(struct entry e)
{
    size_t i = slot_of(e.ptr, reg.cap);
    while (reg.tab[i].ptr > DEAD)
        i = (i + 1) & (reg.cap - 1);
    if (reg.tab[i].ptr == DEAD)
        reg.dead--;
    reg.tab[i] = e;
    reg.used++;
}

/* reg.lock held.  Make room for one more entry (load <= 1/2 counting dead
 * slots); false if no memory for a bigger table. */
static bool reserve(void)
{
    if (reg.tab && (reg.used + reg.dead + 1) * 2 <= reg.cap)
        return true;
    size_t cap = reg.cap ? reg.cap : 512;
    while ((reg.used + 1) * 4 > cap)
        cap *= 2;
    struct entry *tab = mmap(NULL, cap * sizeof *tab, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tab == MAP_FAILED)
        return false;
    struct entry *old = reg.tab;
    size_t old_cap = reg.cap;
    reg.tab = tab;
    reg.cap = cap;
    reg.used = reg.dead = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].ptr > DEAD)
            insert(old[i]);
    if (old)
        munmap(old, old_cap * sizeof *old);
    return true;
}

static void remove_entry(struct entry *e)
{
    e->ptr = DEAD;
    reg.used--;
    reg.dead++;
}

/* reg.lock held.  The entry of p, or NULL. */
static struct entry *find(uintptr_t p)
{
    if (!reg.tab || p <= DEAD)
        return NULL;
    for (size_t i = slot_of(p, reg.cap);; i = (i + 1) & (reg.cap - 1)) {
        if (reg.tab[i].ptr == p)
            return &reg.tab[i];
        if (reg.tab[i].ptr == 0)
            return NULL;
    }
}

static bool mapping_len(size_t n, size_t align, size_t *len)
{
    size_t extra = align > MFE_PAGE ? align - MFE_PAGE : 0;
    if (n > PTRDIFF_MAX - extra - MFE_PAGE)
        return false;
    *len = (n + extra + MFE_PAGE - 1) & ~(size_t)(MFE_PAGE - 1);
    if (*len == 0)
        *len = MFE_PAGE;
    return true;
}

void *large_alloc(size_t n, size_t align)
{
    size_t len;
    if (n == 0)
        n = 1; /* the pointer must lie inside its mapping */
    if (!mapping_len(n, align, &len)) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t p = (uintptr_t)base;
    if (align > MFE_PAGE)
        p = (p + align - 1) & ~(uintptr_t)(align - 1);
    pthread_mutex_lock(&reg.lock);
    bool ok = reserve();
    if (ok)
        insert((struct entry){ p, base, len });
    pthread_mutex_unlock(&reg.lock);
    if (!ok) {
        munmap(base, len);
        errno = ENOMEM;
        return NULL;
    }
    return (void *)p;
}

bool large_free(void *p)
{
    pthread_mutex_lock(&reg.lock);
    struct entry *e = find((uintptr_t)p);
    struct entry copy = e ? *e : (struct entry){ 0 };
    if (e)
        remove_entry(e);
    pthread_mutex_unlock(&reg.lock);
    if (!e)
        return false;
    munmap(copy.base, copy.len);
    return true;
}

size_t large_usable(const void *p)
{
    pthread_mutex_lock(&reg.lock);
    struct entry *e = find((uintptr_t)p);
    size_t n = e ? (size_t)(e->base + e->len - (char *)p) : 0;
    pthread_mutex_unlock(&reg.lock);
    return n;
}

void *large_resize(void *p, size_t n)
{
    size_t len;
    if (!mapping_len(n, 0, &len)) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&reg.lock);
    void *out = NULL;
    struct entry *e = reserve() ? find((uintptr_t)p) : NULL;
    if (e && e->base == (char *)p) {
        void *m = len == e->len ? e->base : mremap(e->base, e->len, len, MREMAP_MAYMOVE);
        if (m != MAP_FAILED) {
            remove_entry(e);
            insert((struct entry){ (uintptr_t)m, m, len });
            out = m;
        }
    }
    pthread_mutex_unlock(&reg.lock);
    if (!out)
        errno = ENOMEM;
    return out;
}

void large_fork_prepare(void) { pthread_mutex_lock(&reg.lock); }
void large_fork_release(void) { pthread_mutex_unlock(&reg.lock); }
