/*
 * bad_requests: every malformed or impossible request gets an {"error": ...}
 * reply, and the endpoint goes on serving.  Against a live server child
 * (endpointtest.h), through raw sockets: garbage bytes (with NULs, and
 * without), a line over SLAB_STATS_LINE_MAX with and without a newline,
 * unknown words, "info" with arguments, an empty line, upper case, unknown
 * cache names, defrag without a cache or a PERCENT, PERCENTs out of 0..100 or
 * not a number.  Afterwards "info" is still answered and the child stops
 * cleanly with intact caches.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static void check_garbage(const char *path)
{
    char garbage[300];
    uint64_t seed = 42;
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)xorshift64(&seed);
    garbage[0] = '\0';
    garbage[sizeof garbage - 1] = '\n';
    expect_error(path, garbage, sizeof garbage, "error");
    garbage[0] = 'x';
    for (size_t i = 0; i < sizeof garbage - 1; i++)
        if (garbage[i] == '\n' || garbage[i] == '\0')
            garbage[i] = '~';
    expect_error(path, garbage, sizeof garbage, "unknown request");
}

static void check_too_long(const char *path)
{
    size_t big = 3 * SLAB_STATS_LINE_MAX;
    char *huge = malloc(big);
    CHECK(huge, "malloc");
    memset(huge, 'A', big);
    expect_error(path, huge, big, "too long");
    huge[SLAB_STATS_LINE_MAX + 10] = '\n';
    expect_error(path, huge, SLAB_STATS_LINE_MAX + 11, "too long");
    free(huge);
}

static void check_bad_words(const char *path)
{
    expect_error_line(path, "frobnicate\n", "unknown request");
    expect_error_line(path, "info please\n", "unknown request");
    expect_error_line(path, "\n", "unknown request");
    expect_error_line(path, "INFO\n", "unknown request");
    expect_error_line(path, "shrink no_such_cache\n", "no such cache");
    expect_error_line(path, "shrink sdt_movable_but_longer_than_any_cache_name_can_be\n",
                      "no such cache");
    expect_error_line(path, "defrag\n", "usage");
    expect_error_line(path, "defrag 50\n", "usage");
    expect_error_line(path, "defrag sdt_movable 101\n", "PERCENT");
    expect_error_line(path, "defrag sdt_movable -1\n", "PERCENT");
    expect_error_line(path, "defrag sdt_movable 5x\n", "PERCENT");
    expect_error_line(path, "defrag sdt_movable 99999999999999999999\n", "PERCENT");
    expect_error_line(path, "defrag no_such_cache 50\n", "no such cache");
}

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    check_garbage(sc.path);
    check_too_long(sc.path);
    check_bad_words(sc.path);
    server_check_finish(&sc);
    return 0;
}
