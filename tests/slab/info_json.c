/*
 * info_json: slab_info_write(out, 1) writes valid JSON of the form
 * {"caches": [{"name": ..., <every field of struct slab_cache_stats by its C
 * name>}, ...]} with one object per live cache and the same numbers as
 * slab_cache_get_stats(); slab_info_write(out, 0) writes a table naming every
 * cache.
 *
 * Three caches in known states (one with a name holding a double quote and a
 * backslash, which JSON must escape) are written to a memory stream; a small
 * strict JSON parser reads the whole text (anything left over or malformed
 * fails), then every field of each of our caches is compared with its stats.
 * A destroyed cache must disappear from the output.
 */
#define _GNU_SOURCE
#include <ctype.h>

#include "slabtest.h"

/* ---- a minimal strict JSON parser ---------------------------------------- */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jv {
    enum jtype type;
    int is_uint; /* J_NUM that is a plain non-negative integer */
    uint64_t u;
    double d;
    char *s;
    size_t n;
    struct jv **items;
    char **keys; /* J_OBJ */
};

struct jp {
    const char *p;
    const char *err;
};

static void ws(struct jp *jp)
{
    while (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r')
        jp->p++;
}

static struct jv *jnew(enum jtype t)
{
    struct jv *v = calloc(1, sizeof *v);
    CHECK(v != NULL, "calloc");
    v->type = t;
    return v;
}

static struct jv *jvalue(struct jp *jp);

static char *jstring(struct jp *jp)
{
    if (*jp->p != '"') {
        jp->err = "expected a string";
        return NULL;
    }
    jp->p++;
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    CHECK(out != NULL, "malloc");
    for (;;) {
        unsigned char c = (unsigned char)*jp->p;
        if (c == 0 || c < 0x20) {
            jp->err = c ? "unescaped control character in a string" : "unterminated string";
            free(out);
            return NULL;
        }
        jp->p++;
        if (c == '"')
            break;
        if (c == '\\') {
            char e = *jp->p++;
            switch (e) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                unsigned x = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *jp->p++;
                    if (!isxdigit((unsigned char)h)) {
                        jp->err = "bad \\u escape";
                        free(out);
                        return NULL;
                    }
                    x = x * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0'
                                                                      : (tolower(h) - 'a' + 10));
                }
                if (x > 0xff) {
                    jp->err = "\\u escape beyond latin-1 (not expected here)";
                    free(out);
                    return NULL;
                }
                c = (unsigned char)x;
                break;
            }
            default:
                jp->err = "bad escape";
                free(out);
                return NULL;
            }
        }
        if (len + 2 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            CHECK(out != NULL, "realloc");
        }
        out[len++] = (char)c;
    }
    out[len] = 0;
    return out;
}

/* Skip one or more digits; 0 (jp->err = err) when there is none. */
static int jdigits(struct jp *jp, const char *err)
{
    if (!isdigit((unsigned char)*jp->p)) {
        jp->err = err;
        return 0;
    }
    while (isdigit((unsigned char)*jp->p))
        jp->p++;
    return 1;
}

static struct jv *jnumber(struct jp *jp)
{
    const char *start = jp->p;
    if (*jp->p == '-')
        jp->p++;
    if (*jp->p == '0' && isdigit((unsigned char)jp->p[1])) {
        jp->err = "leading zero";
        return NULL;
    }
    if (!jdigits(jp, "bad number"))
        return NULL;
    int integer = *start != '-';
    if (*jp->p == '.') {
        integer = 0;
        jp->p++;
        if (!jdigits(jp, "bad fraction"))
            return NULL;
    }
    if (*jp->p == 'e' || *jp->p == 'E') {
        integer = 0;
        jp->p++;
        if (*jp->p == '+' || *jp->p == '-')
            jp->p++;
        if (!jdigits(jp, "bad exponent"))
            return NULL;
    }
    struct jv *v = jnew(J_NUM);
    v->d = strtod(start, NULL);
    v->is_uint = integer;
    if (integer)
        v->u = strtoull(start, NULL, 10);
    return v;
}

static struct jv *jvalue(struct jp *jp)
{
    ws(jp);
    char c = *jp->p;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        struct jv *v = jnew(obj ? J_OBJ : J_ARR);
        jp->p++;
        ws(jp);
        if (*jp->p == (obj ? '}' : ']')) {
            jp->p++;
            return v;
        }
        for (;;) {
            char *key = NULL;
            if (obj) {
                ws(jp);
                key = jstring(jp);
                if (!key)
                    return NULL;
                ws(jp);
                if (*jp->p != ':') {
                    jp->err = "expected ':'";
                    return NULL;
                }
                jp->p++;
            }
            struct jv *item = jvalue(jp);
            if (!item)
                return NULL;
            v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
            v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
            CHECK(v->items && v->keys, "realloc");
            v->items[v->n] = item;
            v->keys[v->n] = key;
            v->n++;
            ws(jp);
            if (*jp->p == ',') {
                jp->p++;
                continue;
            }
            if (*jp->p == (obj ? '}' : ']')) {
                jp->p++;
                return v;
            }
            jp->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
            return NULL;
        }
    }
    if (c == '"') {
        char *s = jstring(jp);
        if (!s)
            return NULL;
        struct jv *v = jnew(J_STR);
        v->s = s;
        return v;
    }
    if (c == '-' || isdigit((unsigned char)c))
        return jnumber(jp);
    if (!strncmp(jp->p, "true", 4) || !strncmp(jp->p, "false", 5)) {
        struct jv *v = jnew(J_BOOL);
        v->u = c == 't';
        jp->p += c == 't' ? 4 : 5;
        return v;
    }
    if (!strncmp(jp->p, "null", 4)) {
        jp->p += 4;
        return jnew(J_NULL);
    }
    jp->err = "unexpected character";
    return NULL;
}

static struct jv *jparse(const char *text)
{
    struct jp jp = {text, NULL};
    struct jv *v = jvalue(&jp);
    if (v) {
        ws(&jp);
        if (*jp.p) {
            jp.err = "text after the JSON value";
            v = NULL;
        }
    }
    if (!v)
        fprintf(stderr, "JSON error: %s at offset %ld: \"%.40s\"\nwhole text:\n%s\n",
                jp.err ? jp.err : "?", (long)(jp.p - text), jp.p, text);
    return v;
}

static struct jv *jget(const struct jv *o, const char *key)
{
    if (!o || o->type != J_OBJ)
        return NULL;
    struct jv *found = NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) {
            CHECK(found == NULL, "key \"%s\" appears twice in one object", key);
            found = o->items[i];
        }
    return found;
}

static void jfree(struct jv *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

/* ---- the test -------------------------------------------------------------- */

static char *info_text(int json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL, "open_memstream");
    slab_info_write(f, json);
    CHECK(fclose(f) == 0, "fclose");
    CHECK(buf != NULL && len > 0, "slab_info_write(json=%d) wrote nothing", json);
    return buf;
}

static const struct jv *find_cache(const struct jv *caches, const char *name)
{
    const struct jv *found = NULL;
    for (size_t i = 0; i < caches->n; i++) {
        const struct jv *c = caches->items[i];
        CHECK(c->type == J_OBJ, "caches[%zu] is not an object", i);
        const struct jv *nm = jget(c, "name");
        CHECK(nm && nm->type == J_STR, "caches[%zu] has no string \"name\"", i);
        if (!strcmp(nm->s, name)) {
            CHECK(found == NULL, "cache '%s' appears twice", name);
            found = c;
        }
    }
    return found;
}

static void check_field(const struct jv *c, const char *name, const char *key, uint64_t want)
{
    const struct jv *v = jget(c, key);
    CHECK(v != NULL, "cache '%s': key \"%s\" missing", name, key);
    CHECK(v->type == J_NUM && v->is_uint, "cache '%s': \"%s\" is not a non-negative integer",
          name, key);
    CHECK(v->u == want, "cache '%s': \"%s\" is %llu, stats say %llu", name, key,
          (unsigned long long)v->u, (unsigned long long)want);
}

static void check_cache(const struct jv *caches, struct slab_cache *s)
{
    struct slab_cache_stats st = cache_stats(s);
    const struct jv *c = find_cache(caches, st.name);
    CHECK(c != NULL, "cache '%s' missing from the JSON", st.name);
#define F(field) check_field(c, st.name, #field, (uint64_t)st.field)
    F(object_size);
    F(slab_size);
    F(objects_per_slab);
    F(objects_active);
    F(objects_total);
    F(slabs);
    F(slabs_partial);
    F(slabs_empty);
    F(bytes_mapped);
    F(allocs);
    F(frees);
    F(defrag_passes);
    F(defrag_slabs_scanned);
    F(defrag_slabs_freed);
    F(defrag_objects_kicked);
    F(defrag_objects_moved);
    F(defrag_objects_refused);
    F(defrag_bytes_released);
#undef F
    const struct jv *mr = jget(c, "move_results");
    CHECK(mr && mr->type == J_ARR && mr->n == SLAB_MOVE_NR_RESULTS,
          "cache '%s': \"move_results\" missing or not an array of %d", st.name,
          SLAB_MOVE_NR_RESULTS);
    for (size_t i = 0; i < SLAB_MOVE_NR_RESULTS; i++)
        CHECK(mr->items[i]->type == J_NUM && mr->items[i]->is_uint &&
                  mr->items[i]->u == st.move_results[i],
              "cache '%s': move_results[%zu] differs from stats", st.name, i);
}

int main(void)
{
    static const char weird[] = "we\"ird\\name";
    struct slab_cache *a = slab_cache_create("info-a", 72, 0, 0, NULL);
    struct slab_cache *b = slab_cache_create("info-b", 4000, 0, SLAB_HWCACHE_ALIGN, NULL);
    struct slab_cache *w = slab_cache_create(weird, 8, 0, 0, NULL);
    CHECK(a && b && w, "create: %s", strerror(errno));
    void *ao[123], *bo[10];
    for (int i = 0; i < 123; i++)
        CHECK((ao[i] = slab_alloc(a)) != NULL, "slab_alloc");
    for (int i = 0; i < 23; i++)
        slab_free(a, ao[i]);
    for (int i = 0; i < 10; i++)
        CHECK((bo[i] = slab_alloc(b)) != NULL, "slab_alloc");
    void *wo = slab_alloc(w);
    CHECK(wo != NULL, "slab_alloc");
    slab_cache_shrink(a); /* counters exact: this thread is the only user */
    slab_cache_shrink(b);
    slab_cache_shrink(w);
    CHECK(cache_stats(a).objects_active == 100, "info-a: objects_active %llu",
          (unsigned long long)cache_stats(a).objects_active);

    char *text = info_text(1);
    struct jv *root = jparse(text);
    CHECK(root != NULL, "slab_info_write(out, 1) is not valid JSON");
    CHECK(root->type == J_OBJ, "the JSON root is not an object");
    const struct jv *caches = jget(root, "caches");
    CHECK(caches && caches->type == J_ARR, "no \"caches\" array");
    CHECK(caches->n >= 3, "only %zu caches listed", caches->n);
    check_cache(caches, a);
    check_cache(caches, b);
    check_cache(caches, w);
    jfree(root);
    free(text);

    /* The table names every cache. */
    text = info_text(0);
    CHECK(strstr(text, "info-a") && strstr(text, "info-b"), "the table lacks a cache:\n%s",
          text);
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    CHECK(lines >= 4, "the table has %zu lines for 3 caches:\n%s", lines, text);
    free(text);

    /* A destroyed cache disappears. */
    for (int i = 0; i < 10; i++)
        slab_free(b, bo[i]);
    slab_cache_destroy(b);
    text = info_text(1);
    root = jparse(text);
    CHECK(root != NULL, "invalid JSON after a destroy");
    caches = jget(root, "caches");
    CHECK(caches && caches->type == J_ARR, "no \"caches\" array");
    CHECK(find_cache(caches, "info-b") == NULL, "destroyed cache info-b still listed");
    check_cache(caches, a);
    jfree(root);
    free(text);

    for (int i = 23; i < 123; i++)
        slab_free(a, ao[i]);
    slab_free(w, wo);
    slab_cache_destroy(a);
    slab_cache_destroy(w);
    printf("info_json: ok\n");
    return 0;
}
