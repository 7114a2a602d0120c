/* A preloaded program whose constructors allocate before main (and before the
 * front end's own constructor may have run): the blocks come from the front
 * end's size classes, survive to main with their contents, and can be resized
 * and freed; calls made before any constructor (by the dynamic loader and libc
 * start-up) did not break anything either. */
#include <malloc.h>
#include <stdint.h>
#include <string.h>

#include "preload.h"

static char *early[6];

__attribute__((constructor(101))) static void allocate_early(void)
{
    early[0] = malloc(24);
    early[1] = calloc(10, 100);
    early[2] = realloc(NULL, 3000);
    early[3] = strdup("allocated in a constructor");
    if (posix_memalign((void **)&early[4], 64, 200) != 0)
        early[4] = NULL;
    early[5] = malloc(100000);
    for (int i = 0; i < 6; i++)
        if (early[i] && i != 3)
            memset(early[i], 'a' + i, i == 1 ? 1000 : 24);
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2, "usage: early_init LIBSLABDEFRAG_MALLOC_SO");
    if (!preloaded()) {
        setenv("LD_PRELOAD", argv[1], 1);
        execv("/proc/self/exe", argv);
        CHECK(0, "re-exec with LD_PRELOAD failed");
    }
    void *(*cache_of)(const void *) = (void *(*)(const void *))dlsym(RTLD_DEFAULT, "slab_cache_of");
    const char *(*name_of)(const void *) =
        (const char *(*)(const void *))dlsym(RTLD_DEFAULT, "slab_cache_name");
    CHECK(cache_of && name_of, "slab API not exported by the preloaded library");
    for (int i = 0; i < 6; i++)
        CHECK(early[i], "constructor allocation %d failed", i);
    for (int i = 0; i < 5; i++) {
        void *c = cache_of(early[i]);
        CHECK(c && strncmp(name_of(c), "malloc-", 7) == 0, "block %d not from a malloc-* cache", i);
    }
    CHECK(strcmp(early[3], "allocated in a constructor") == 0, "strdup'd string damaged");
    CHECK(early[0][23] == 'a' && early[1][999] == 'b' && early[2][0] == 'c', "contents damaged");
    CHECK(early[1][1000] == 0, "calloc'd tail not zero");
    CHECK(((uintptr_t)early[4] & 63) == 0, "posix_memalign alignment");
    early[2] = realloc(early[2], 50000);
    CHECK(early[2] && early[2][23] == 'c', "realloc after the constructor");
    for (int i = 0; i < 6; i++)
        free(early[i]);
    printf("ok\n");
    return 0;
}
