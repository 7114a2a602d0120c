/*
 * tools/cli.h — the subcommands of the slabdefrag command-line tool.
 * Each returns the process exit status (0 success, 1 failure, 2 usage).
 */
#ifndef SLABDEFRAG_TOOLS_CLI_H
#define SLABDEFRAG_TOOLS_CLI_H

#include <stddef.h>

#include "proc_rss.h" /* proc_rss_bytes() */

int cmd_demo(int argc, char **argv);  /* demo.c: the main job (demo_*.c) */
int cmd_bench(int argc, char **argv); /* bench.c: runs bench/run.sh */
#ifdef SLABDEFRAG_HAVE_EXT2
int cmd_ext2_fill(int argc, char **argv); /* integrations/libext2fs/ext2_fill.c */
#endif
int cmd_info(int argc, char **argv);   /* info.c: slabinfo of a live process */
int cmd_top(int argc, char **argv);    /* top.c: live, sorted, refreshing view */
int cmd_shrink(int argc, char **argv); /* shrink.c: shrink/defrag a live process's caches */

/* Helpers shared by subcommands (util.c). */
double cli_now(void);
double cli_defrag_limit_seconds(size_t moved, size_t released); /* memcpy + MADV_DONTNEED */
void cli_progress(const char *what, size_t done, size_t total, int quiet);

#endif
