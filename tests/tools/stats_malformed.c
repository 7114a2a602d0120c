/*
 * stats_malformed: no request can crash or wedge the stats endpoint.
 *
 * Against a live server child (statstest.h), through raw sockets:
 *   - garbage bytes (with NULs), a line over SLAB_STATS_LINE_MAX with and
 *     without a newline, unknown words, "info" with arguments, an empty line,
 *     unknown cache names, bad PERCENTs: each gets an {"error": ...} reply;
 *   - "info\r\n" and "info" + shutdown(SHUT_WR) (no newline) are served;
 *   - partial lines then close, and connect-then-close, many times;
 *   - right after all of that, 40 idle clients: exactly those over the
 *     SLAB_STATS_MAX_CLIENTS bound are told "busy" (slots of clients that have
 *     hung up do not count, however recently they left), and the server closes
 *     the idle ones itself (its timeout) without being asked;
 *   - 48 clients that all send "info" at once each get a full reply or "busy",
 *     and at least SLAB_STATS_MAX_CLIENTS of them are served;
 * and after all of it "info" is still answered, the child is alive, and it
 * stops cleanly with intact caches.
 */
#define _GNU_SOURCE
#include <poll.h>

#include "statstest.h"

#define IDLE_CLIENTS 40
#define BURST_CLIENTS 48

static int connect_to(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0, "socket");
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    return fd;
}

/* Read until EOF (or reset) with a generous bound; the text read. */
static char *read_reply(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    CHECK(buf, "malloc");
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK(poll(&p, 1, 20000) == 1, "server answered within 20 s");
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        CHECK(len < cap - 1, "reply too long");
    }
    buf[len] = '\0';
    return buf;
}

/* All of data sent, or the server had already refused the connection. */
static bool send_or_refused(int fd, const void *data, size_t len)
{
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    return n == (ssize_t)len || (n < 0 && (errno == EPIPE || errno == ECONNRESET));
}

/* Send raw bytes (optionally closing our write side) and return the reply. */
static char *exchange(const char *path, const void *data, size_t len, bool shut)
{
    int fd = connect_to(path);
    CHECK(send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len, "send");
    if (shut)
        shutdown(fd, SHUT_WR);
    char *r = read_reply(fd);
    close(fd);
    return r;
}

static void expect_error(const char *path, const void *data, size_t len, const char *needle)
{
    char *r = exchange(path, data, len, false);
    CHECK(strncmp(r, "{\"error\": ", 10) == 0 && strstr(r, needle), "reply to %.40s: '%s'",
          (const char *)data, r);
    free(r);
}

static void expect_error_line(const char *path, const char *line, const char *needle)
{
    expect_error(path, line, strlen(line), needle);
}

static void check_bad_requests(const char *path)
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

    size_t big = 3 * SLAB_STATS_LINE_MAX;
    char *huge = malloc(big);
    CHECK(huge, "malloc");
    memset(huge, 'A', big);
    expect_error(path, huge, big, "too long");
    huge[SLAB_STATS_LINE_MAX + 10] = '\n';
    expect_error(path, huge, SLAB_STATS_LINE_MAX + 11, "too long");
    free(huge);

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

static void check_odd_but_valid(const char *path)
{
    char *r = exchange(path, "info\r\n", 6, false);
    CHECK(strncmp(r, "{\"caches\": [", 12) == 0, "info with CRLF: %s", r);
    free(r);
    r = exchange(path, "info", 4, true);
    CHECK(strncmp(r, "{\"caches\": [", 12) == 0, "info then EOF: %s", r);
    free(r);
    r = exchange(path, "  defrag   sdt_movable   30  \n", 30, false);
    CHECK(strstr(r, "\"ok\": true"), "defrag with extra blanks: %s", r);
    free(r);
    r = exchange(path, "version\nshrink\ngarbage\n", 23, false);
    CHECK(strstr(r, "\"version\""), "only the first line counts: %s", r);
    free(r);
}

static void check_abandoned(const char *path)
{
    for (int i = 0; i < 50; i++) {
        int fd = connect_to(path);
        /* The server may still hold earlier abandoned connections (it notices a
         * close only on its next poll), so this one can be over its limit and be
         * answered "busy" and closed before we send: EPIPE/ECONNRESET is fine. */
        if (i % 3 == 1)
            CHECK(send_or_refused(fd, "inf", 3), "send: %s", strerror(errno));
        if (i % 3 == 2)
            CHECK(send_or_refused(fd, "info\n", 5), "send: %s", strerror(errno));
        close(fd);
    }
}

static void check_idle_clients(const char *path)
{
    int fds[IDLE_CLIENTS];
    for (int i = 0; i < IDLE_CLIENTS; i++)
        fds[i] = connect_to(path);
    int busy = 0;
    for (int i = 0; i < IDLE_CLIENTS; i++) {
        char *r = read_reply(fds[i]); /* "busy" at once, or EOF at the server's timeout */
        busy += strstr(r, "busy") != NULL;
        CHECK(r[0] == '\0' || strstr(r, "busy"), "idle client got '%s'", r);
        free(r);
        close(fds[i]);
    }
    CHECK(busy == IDLE_CLIENTS - SLAB_STATS_MAX_CLIENTS, "%d busy replies", busy);
}

static void check_burst(const char *path)
{
    int fds[BURST_CLIENTS], served = 0;
    bool refused[BURST_CLIENTS];
    for (int i = 0; i < BURST_CLIENTS; i++) {
        fds[i] = connect_to(path);
        /* A client over the server's limit may be answered "busy" and closed
         * before it gets to send: then the send fails with EPIPE/ECONNRESET. */
        ssize_t n = send(fds[i], "info\n", 5, MSG_NOSIGNAL);
        refused[i] = n < 0 && (errno == EPIPE || errno == ECONNRESET);
        CHECK(n == 5 || refused[i], "send: %s", strerror(errno));
    }
    for (int i = 0; i < BURST_CLIENTS; i++) {
        char *r = read_reply(fds[i]);
        bool ok = strncmp(r, "{\"caches\": [", 12) == 0 && strstr(r, "]}\n");
        CHECK(ok || strstr(r, "busy") || (refused[i] && r[0] == '\0'), "burst reply '%s'", r);
        served += ok;
        free(r);
        close(fds[i]);
    }
    CHECK(served >= SLAB_STATS_MAX_CLIENTS, "served %d of %d", served, BURST_CLIENTS);
}

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    check_bad_requests(sc.path);
    check_odd_but_valid(sc.path);
    check_abandoned(sc.path);
    check_idle_clients(sc.path);
    check_burst(sc.path);

    char *r = ask(sc.path, "info", NULL);
    CHECK(r && strstr(r, "sdt_movable"), "info still answered");
    free(r);
    CHECK(server_alive(&sc), "server child alive");
    int st = server_finish(&sc);
    CHECK(st == 0, "server child exit status %d", st);
    return 0;
}
