/*
 * odd_valid_requests: requests that are unusual but valid are served.  Against
 * a live server child (endpointtest.h), through raw sockets: "info\r\n" (CRLF),
 * "info" without a newline followed by shutdown(SHUT_WR), a defrag with extra
 * blanks around every word, and several lines in one write (only the first
 * counts: "version" is answered).
 */
#define _GNU_SOURCE
#include "endpointtest.h"

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    const char *path = sc.path;

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

    server_check_finish(&sc);
    return 0;
}
