/*
 * alloc_backend.c: set-up, run-time verification and purge for the allocator
 * under test (see alloc_backend.h for the seam itself).
 *
 * Verification.  Linking -ljemalloc (etc.) only replaces malloc if the
 * library really ends up in front of libc in the symbol search order, so each
 * executable checks at run time and says what it found:
 *   - dladdr(&malloc) names the shared object that serves malloc for this
 *     executable (libc.so.6, libjemalloc.so.2, libmimalloc.so.2,
 *     libtcmalloc_minimal.so.4);
 *   - the allocator's own introspection agrees: jemalloc's mallctl("version")
 *     and its per-thread byte counter moves on malloc; mimalloc's
 *     mi_is_in_heap_region(malloc(64)); tcmalloc's
 *     MallocExtension_GetOwnership(malloc(64)) == kOwned; for glibc, none of
 *     the peers' entry points is present in the process (dlsym);
 *   - slabdefrag: a probe cache counts the allocation it served;
 *   - slabdefrag_malloc: malloc comes from libslabdefrag-malloc and
 *     malloc(64) lies in its "malloc-64" cache (slab_cache_of).
 * An executable that cannot verify its allocator exits with status 2 rather
 * than print numbers under a wrong name.
 *
 * Purge.  Each allocator's documented "give free memory back" call; the
 * retention test reports RSS both before and after it, because the number
 * before the purge is what a program that never calls it would see.
 */
#define _GNU_SOURCE
#include "alloc_backend.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(BENCH_ALLOC_GLIBC)
#include <gnu/lib-names.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#elif defined(BENCH_ALLOC_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(BENCH_ALLOC_MIMALLOC)
#include <mimalloc.h>
#elif defined(BENCH_ALLOC_TCMALLOC)
#include <gperftools/malloc_extension_c.h>
#elif defined(BENCH_ALLOC_SLABDEFRAG_MALLOC)
#include <slabdefrag/malloc.h>
#include <slabdefrag/slab.h>
#endif

#if defined(BENCH_ALLOC_SLABDEFRAG)
struct slab_cache *bench_slab_cache;
#endif

#if !defined(BENCH_ALLOC_SLABDEFRAG)
/* The file name of the shared object whose malloc this executable calls. */
static const char *malloc_provider(void)
{
    Dl_info info;
    void *(*fn)(size_t) = malloc;

    if (dladdr(*(void **)&fn, &info) == 0 || info.dli_fname == NULL)
        return "?";
    return info.dli_fname;
}

static int provider_is(const char *needle)
{
    return strstr(malloc_provider(), needle) != NULL;
}

/* A malloc'ed pointer the compiler cannot reason away. */
static void *opaque_malloc(size_t size)
{
    void *(*volatile fn)(size_t) = malloc;
    return fn(size);
}
#endif

#if defined(BENCH_ALLOC_GLIBC)
int backend_identify(FILE *out)
{
    static const char *const peer_symbols[] = {"mallctl", "mi_version",
                                               "MallocExtension_GetOwnership", "slab_alloc"};
    int foreign = 0;

    for (size_t i = 0; i < sizeof(peer_symbols) / sizeof(peer_symbols[0]); i++)
        if (dlsym(RTLD_DEFAULT, peer_symbols[i]) != NULL)
            foreign = 1;
    int ok = provider_is("libc.so") && !foreign;
    fprintf(out, "ALLOCATOR alloc=glibc verified=%d version=%s malloc_from=%s\n", ok,
            gnu_get_libc_version(), malloc_provider());
    return ok;
}

const char *backend_purge(void)
{
    malloc_trim(0);
    return "malloc_trim(0)";
}
#elif defined(BENCH_ALLOC_JEMALLOC)
int backend_identify(FILE *out)
{
    const char *version = "?";
    size_t len = sizeof(version);
    int ok = provider_is("libjemalloc") &&
             mallctl("version", (void *)&version, &len, NULL, 0) == 0;

    /* thread.allocated needs a stats-enabled build (Debian's is); when it is
     * there, it must move when malloc is called. */
    uint64_t before = 0, after = 0;
    len = sizeof(before);
    if (mallctl("thread.allocated", &before, &len, NULL, 0) == 0) {
        void *p = opaque_malloc(4000);
        len = sizeof(after);
        mallctl("thread.allocated", &after, &len, NULL, 0);
        free(p);
        ok = ok && after >= before + 4000;
    }
    fprintf(out, "ALLOCATOR alloc=jemalloc verified=%d version=%s malloc_from=%s\n", ok,
            version, malloc_provider());
    return ok;
}

const char *backend_purge(void)
{
#define BENCH_STR2(x) #x
#define BENCH_STR(x) BENCH_STR2(x)
    mallctl("arena." BENCH_STR(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
    return "mallctl(arena." BENCH_STR(MALLCTL_ARENAS_ALL) ".purge)";
}
#elif defined(BENCH_ALLOC_MIMALLOC)
int backend_identify(FILE *out)
{
    void *p = opaque_malloc(64);
    int ok = provider_is("libmimalloc") && mi_is_in_heap_region(p);

    free(p);
    fprintf(out, "ALLOCATOR alloc=mimalloc verified=%d version=%d malloc_from=%s\n", ok,
            mi_version(), malloc_provider());
    return ok;
}

const char *backend_purge(void)
{
    mi_collect(true);
    return "mi_collect(true)";
}
#elif defined(BENCH_ALLOC_TCMALLOC)
int backend_identify(FILE *out)
{
    void *p = opaque_malloc(64);
    int ok = provider_is("libtcmalloc") &&
             MallocExtension_GetOwnership(p) == MallocExtension_kOwned;

    free(p);
    fprintf(out, "ALLOCATOR alloc=tcmalloc verified=%d version=gperftools malloc_from=%s\n",
            ok, malloc_provider());
    return ok;
}

const char *backend_purge(void)
{
    MallocExtension_ReleaseFreeMemory();
    return "MallocExtension_ReleaseFreeMemory()";
}
#elif defined(BENCH_ALLOC_SLABDEFRAG_MALLOC)
int backend_identify(FILE *out)
{
    void *p = opaque_malloc(64);
    struct slab_cache *c = slab_cache_of(p);
    int ok = provider_is("libslabdefrag-malloc") && c && strcmp(slab_cache_name(c), "malloc-64") == 0;
    free(p);
    fprintf(out, "ALLOCATOR alloc=slabdefrag_malloc verified=%d version=%s malloc_from=%s\n", ok,
            slabdefrag_version(), malloc_provider());
    return ok;
}

const char *backend_purge(void)
{
    slab_malloc_trim();
    return "slab_malloc_trim()";
}
#elif defined(BENCH_ALLOC_SLABDEFRAG)
int backend_identify(FILE *out)
{
    struct slab_cache *probe = slab_cache_create("bench_probe", 64, 0, 0, NULL);
    struct slab_cache_stats st;
    int ok = 0;

    if (probe != NULL) {
        void *p = slab_alloc(probe);
        /* Stats are exact once this thread's active slab is given back. */
        slab_free(probe, p);
        slab_cache_shrink(probe);
        ok = p != NULL && slab_cache_get_stats(probe, &st) == 0 && st.allocs >= 1;
        slab_cache_destroy(probe);
    }
    fprintf(out, "ALLOCATOR alloc=slabdefrag verified=%d version=%s malloc_from=%s\n", ok,
            slabdefrag_version(), "slab_alloc");
    return ok;
}

const char *backend_purge(void)
{
    slab_cache_shrink(bench_slab_cache);
    return "slab_cache_shrink()";
}
#endif

#if defined(BENCH_ALLOC_SLABDEFRAG)
int backend_setup(size_t size)
{
    bench_slab_cache = slab_cache_create("bench_obj", size, 0, 0, NULL);
    return bench_slab_cache != NULL ? 0 : -1;
}

void backend_teardown(void)
{
    slab_cache_destroy(bench_slab_cache);
    bench_slab_cache = NULL;
}
#else
int backend_setup(size_t size)
{
    /* Lazy initialisation (arenas, thread caches, size-class tables) is
     * paid here, outside every timed region. */
    free(opaque_malloc(size));
    return 0;
}

void backend_teardown(void)
{
}
#endif
