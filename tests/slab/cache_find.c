/*
 * cache_find: caches are found by name while they live and not after destroy;
 * the name is copied at create (changing the caller's buffer does not rename the
 * cache) and truncated to 31 characters; slab_cache_foreach() visits every live
 * cache exactly once; slabdefrag_version() is a non-empty string.
 */
#define _GNU_SOURCE
#include "slabtest.h"

#define N 5
static struct slab_cache *mine[N];
static int seen[N];
static int others;

static void visit(struct slab_cache *s, void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        if (mine[i] == s) {
            seen[i]++;
            return;
        }
    others++;
}

int main(void)
{
    const char *v = slabdefrag_version();
    CHECK(v && *v, "empty version string");

    char buf[64];
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "find-%d", i);
        mine[i] = slab_cache_create(buf, 32 + (size_t)i * 8, 0, 0, NULL);
        CHECK(mine[i] != NULL, "create: %s", strerror(errno));
    }
    strcpy(buf, "scribbled");
    CHECK(strcmp(slab_cache_name(mine[N - 1]), "find-4") == 0,
          "the name was not copied: '%s'", slab_cache_name(mine[N - 1]));
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "find-%d", i);
        CHECK(slab_cache_find(buf) == mine[i], "find(%s) did not return its cache", buf);
    }
    CHECK(slab_cache_find("find-") == NULL, "a prefix matched");
    CHECK(slab_cache_find("find-44") == NULL, "a longer name matched");
    CHECK(slab_cache_find("no-such-cache") == NULL, "unknown name found");

    /* 40 characters: 31 are kept. */
    const char *longname = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
    struct slab_cache *l = slab_cache_create(longname, 16, 0, 0, NULL);
    CHECK(l != NULL, "create: %s", strerror(errno));
    CHECK(strlen(slab_cache_name(l)) == 31 && !strncmp(slab_cache_name(l), longname, 31),
          "long name kept as '%s'", slab_cache_name(l));
    char trunc[32];
    memcpy(trunc, longname, 31);
    trunc[31] = 0;
    CHECK(slab_cache_find(trunc) == l, "find(31-character name) failed");
    CHECK(!strcmp(cache_stats(l).name, trunc), "stats name '%s'", cache_stats(l).name);
    slab_cache_destroy(l);
    CHECK(slab_cache_find(trunc) == NULL, "destroyed cache still found");

    slab_cache_foreach(visit, NULL);
    for (int i = 0; i < N; i++)
        CHECK(seen[i] == 1, "foreach visited find-%d %d times", i, seen[i]);

    slab_cache_destroy(mine[2]);
    CHECK(slab_cache_find("find-2") == NULL, "destroyed cache still found");
    CHECK(slab_cache_find("find-3") == mine[3], "find-3 lost after destroying find-2");
    memset(seen, 0, sizeof seen);
    struct slab_cache *gone = mine[2];
    mine[2] = NULL;
    slab_cache_foreach(visit, NULL);
    for (int i = 0; i < N; i++)
        CHECK(seen[i] == (i == 2 ? 0 : 1), "foreach after destroy: find-%d seen %d times", i,
              seen[i]);
    (void)gone;
    for (int i = 0; i < N; i++)
        if (mine[i])
            slab_cache_destroy(mine[i]);
    CHECK(slab_cache_find("find-0") == NULL, "destroyed cache still found");
    printf("cache_find: ok\n");
    return 0;
}
