/*
 * fuzz/info_parse.c — the CLI's reader of the stats endpoint's JSON (sv_parse in
 * tools/info.c) and its table rows, on arbitrary replies.  The input is copied
 * into a buffer of exactly its length + 1 (the NUL), so a read past the end of
 * the reply is a heap-buffer-overflow under ASan.  Checks: a parse either fails
 * with no rows or gives rows whose names are NUL-terminated within their
 * field; every row prints, and the printed name has no control character, DEL
 * or byte >= 0x80 (it cannot drive a terminal).
 */
#define _GNU_SOURCE
#define FZ_TARGET "info_parse"
#include <string.h>

#include "fuzz_common.h"
#include "statsview.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FZ_CHECK(text != NULL, "malloc");
    memcpy(text, data, size);
    text[size] = '\0';
    struct sv_cache *rows;
    size_t n;
    int rc = sv_parse(text, &rows, &n);
    FZ_CHECK(rc == 0 || (rows == NULL && n == 0), "failed parse left %zu rows", n);
    for (size_t i = 0; i < n; i++) {
        FZ_CHECK(memchr(rows[i].name, '\0', sizeof rows[i].name) != NULL, "name not terminated");
        char shown[SV_NAME_SHOWN];
        sv_name_shown(rows[i].name, shown);
        for (const unsigned char *p = (const unsigned char *)shown; *p; p++)
            FZ_CHECK(*p >= 0x20 && *p < 0x7f, "byte %#x shown raw", *p);
        char line[1024];
        FILE *f = fmemopen(line, sizeof line, "w");
        FZ_CHECK(f != NULL, "fmemopen");
        sv_print_row(f, &rows[i]);
        fclose(f);
    }
    free(rows);
    free(text);
    return 0;
}
