/*
 * tools/statsview.h — what `info`, `top` and `shrink` share (info.c): finding a
 * process's stats endpoint, asking it, and reading its JSON into rows.
 */
#ifndef SLABDEFRAG_TOOLS_STATSVIEW_H
#define SLABDEFRAG_TOOLS_STATSVIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The numeric fields of one cache in the endpoint's JSON, in its order. */
enum sv_field {
    SV_OBJECT_SIZE, SV_SLAB_SIZE, SV_OBJECTS_PER_SLAB, SV_OBJECTS_ACTIVE, SV_OBJECTS_TOTAL,
    SV_SLABS, SV_SLABS_PARTIAL, SV_SLABS_EMPTY, SV_BYTES_MAPPED, SV_ALLOCS, SV_FREES,
    SV_DEFRAG_PASSES, SV_DEFRAG_SLABS_SCANNED, SV_DEFRAG_SLABS_FREED, SV_DEFRAG_OBJECTS_KICKED,
    SV_DEFRAG_OBJECTS_MOVED, SV_DEFRAG_OBJECTS_REFUSED, SV_DEFRAG_BYTES_RELEASED,
    SV_NFIELDS
};
extern const char *const sv_field_names[SV_NFIELDS]; /* the JSON keys */

struct sv_cache {
    char name[64];
    uint64_t v[SV_NFIELDS];
};

/* Resolve "PID" or a socket path (anything with a '/') to a socket path.
 * 0, or -1 after printing why on stderr. */
int sv_target(const char *arg, char *path, size_t size);

/* Send `request` to the endpoint; on success *reply is malloc'd and 0 is
 * returned.  Unreachable endpoints and {"error": ...} replies are printed on
 * stderr and return -1. */
int sv_request(const char *path, const char *request, char **reply);

/* Parse the JSON of `info` into a malloc'd array (*n rows).  0, or -1 if the
 * text does not have the expected shape. */
int sv_parse(const char *json, struct sv_cache **rows, size_t *n);

/* A name made safe for a terminal: control characters, DEL, bytes >= 0x80 and
 * '\\' escaped (\xNN, \\).  dst must hold SV_NAME_SHOWN bytes. */
#define SV_NAME_SHOWN (4 * 64)
void sv_name_shown(const char *name, char *dst);

/* A slabinfo-like table (names through sv_name_shown). */
void sv_print_header(FILE *out);
void sv_print_row(FILE *out, const struct sv_cache *c);

/* fill % of a cache: active objects / capacity. */
unsigned sv_fill_percent(const struct sv_cache *c);

#endif
