/*
 * info_escapes_names: cache names from an endpoint cannot drive the terminal.
 * A (fake, hostile) endpoint reports a cache whose name holds ESC [2J (sent as
 * \u001b, as the library writes control characters), DEL, a backslash and
 * UTF-8 (é): `slabdefrag info` prints the table with every byte below 0x20
 * (other than newlines), 0x7f and above, escaped as \xNN and the backslash
 * doubled.  `info --json` passes the JSON on as sent (valid UTF-8 kept), and
 * refuses (non-zero exit, nothing printed) a reply with a raw control character
 * inside a string, which is not JSON.
 */
#include "endpointtest.h"

static const char hostile[] =
    "{\"caches\": [\n  {\"name\": \"x\\u001b[2J\x7f\\\\caf\xc3\xa9\", \"object_size\": 8}\n]}\n";
static const char raw_esc[] = "{\"caches\": [\n  {\"name\": \"x\x1b[2J\", \"object_size\": 8}\n]}\n";

int main(void)
{
    char dir[] = "/tmp/sdnames-XXXXXX", sock[64], out[8192];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(sock, sizeof sock, "%s/s.sock", dir);

    pid_t f = fake_server(sock, hostile);
    CHECK(run_cli(out, sizeof out, "info", sock, NULL) == 0, "info: %s", out);
    for (const unsigned char *p = (const unsigned char *)out; *p; p++)
        CHECK(*p == '\n' || (*p >= 0x20 && *p < 0x7f), "raw byte %#x in the table:\n%s", *p, out);
    CHECK(strstr(out, "x\\x1b[2J\\x7f\\\\caf\\xc3\\xa9"), "name not escaped as expected:\n%s", out);
    CHECK(run_cli(out, sizeof out, "info", sock, "--json", NULL) == 0, "info --json");
    CHECK(strcmp(out, hostile) == 0, "--json changed the reply:\n%s", out);
    stop_fake(f, sock);

    f = fake_server(sock, raw_esc);
    int st = run_cli(out, sizeof out, "info", sock, "--json", NULL);
    CHECK(st != 0 && out[0] == '\0', "a raw ESC in a JSON string was passed on (exit %d): %s", st,
          out);
    CHECK(run_cli(out, sizeof out, "info", sock, NULL) != 0 && !strchr(out, 0x1b), "table: %s", out);
    stop_fake(f, sock);
    rmdir(dir);
    return 0;
}
