/*
 * enomem: when the OS refuses memory, slab_alloc() returns NULL with errno
 * ENOMEM (it neither crashes nor aborts), the cache stays consistent, objects
 * freed meanwhile can be allocated again, and allocation works again once memory
 * is available.
 *
 * A forked child caps its address space (RLIMIT_AS) a few MiB above its current
 * size and allocates 4 KiB objects until slab_alloc() fails; it checks errno,
 * validates the cache, frees some objects and reallocates them, lifts the cap,
 * allocates more, frees everything and checks the counters.  The parent requires
 * the child to exit 0.  ASan and TSan need address space of their own, which
 * the cap takes away, so the test is labelled nosan: the sanitizer suites do
 * not run it (make test-asan/test-tsan pass -LE nosan).
 * TEST_LABELS: nosan
 */
#define _GNU_SOURCE
#include <sys/resource.h>
#include <sys/wait.h>

#include "slabtest.h"

#define MAXOBJ (1u << 20)

static size_t vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0;
    CHECK(f != NULL, "open statm");
    CHECK(fscanf(f, "%lu", &size) == 1, "read statm");
    fclose(f);
    return size * (size_t)sysconf(_SC_PAGESIZE);
}

static int child(void)
{
    static void *objs[MAXOBJ];
    struct slab_cache *s = slab_cache_create("enomem", 4096, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    /* Warm up: a few objects before the cap, so the cache's own setup is done. */
    size_t n = 0;
    for (; n < 10; n++)
        CHECK((objs[n] = slab_alloc(s)) != NULL, "slab_alloc before the cap: %s", strerror(errno));

    struct rlimit old, capped;
    CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
    capped = old;
    capped.rlim_cur = vm_bytes() + (24u << 20);
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < capped.rlim_cur)
        capped.rlim_cur = old.rlim_cur;
    CHECK(setrlimit(RLIMIT_AS, &capped) == 0, "setrlimit: %s", strerror(errno));

    void *o;
    errno = 0;
    while (n < MAXOBJ && (o = slab_alloc(s)) != NULL) {
        memset(o, 0x42, 64);
        objs[n++] = o;
        errno = 0;
    }
    int err = errno;
    CHECK(n < MAXOBJ, "%zu objects (%zu MiB) allocated under a 24 MiB cap", n,
          n * 4096 >> 20);
    CHECK(err == ENOMEM, "slab_alloc failed with errno %d (%s), want ENOMEM", err,
          strerror(err));
    CHECK(n > 100, "only %zu objects before the cap was reached", n);
    /* Still refused while nothing was freed. */
    errno = 0;
    o = slab_alloc(s);
    if (o)
        objs[n++] = o; /* the OS found a little more: acceptable */
    else
        CHECK(errno == ENOMEM, "second failure: errno %d", errno);
    CHECK(slab_cache_validate(s) == 0, "validate after ENOMEM");

    /* Free 50 objects from the middle; they can be allocated again under the cap. */
    for (size_t i = 20; i < 70; i++)
        slab_free(s, objs[i]);
    for (size_t i = 20; i < 70; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "re-allocating a freed object under the cap: %s",
              strerror(errno));
    }

    /* Lift the cap: allocation works again. */
    CHECK(setrlimit(RLIMIT_AS, &old) == 0, "setrlimit restore: %s", strerror(errno));
    for (int i = 0; i < 300 && n < MAXOBJ; i++) {
        objs[n] = slab_alloc(s);
        CHECK(objs[n] != NULL, "slab_alloc after lifting the cap: %s", strerror(errno));
        n++;
    }
    CHECK(slab_cache_validate(s) == 0, "validate");
    for (size_t i = 0; i < n; i++)
        slab_free(s, objs[i]);
    slab_cache_shrink(s);
    struct slab_cache_stats st = cache_stats(s);
    CHECK(st.objects_active == 0 && st.allocs == st.frees && st.slabs == 0,
          "after freeing all: active %llu allocs %llu frees %llu slabs %llu",
          (unsigned long long)st.objects_active, (unsigned long long)st.allocs,
          (unsigned long long)st.frees, (unsigned long long)st.slabs);
    CHECK(st.allocs == n + 50, "allocs %llu, want %zu (failed allocations are not counted)",
          (unsigned long long)st.allocs, n + 50);
    slab_cache_destroy(s);
    printf("enomem: %zu objects allocated before ENOMEM\n", n);
    return 0;
}

int main(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int rc = child();
        fflush(NULL);
        _exit(rc);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status), "the child died from signal %d", WTERMSIG(status));
    CHECK(WEXITSTATUS(status) == 0, "the child failed (exit %d)", WEXITSTATUS(status));
    printf("enomem: ok\n");
    return 0;
}
