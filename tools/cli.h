/*
 * tools/cli.h — the subcommands of the slabdefrag command-line tool.
 * Each returns the process exit status (0 success, 1 failure, 2 usage).
 */
#ifndef SLABDEFRAG_TOOLS_CLI_H
#define SLABDEFRAG_TOOLS_CLI_H

#include <stddef.h>

int cmd_demo(int argc, char **argv);
int cmd_info(int argc, char **argv);   /* info.c: slabinfo of a live process */
int cmd_top(int argc, char **argv);    /* top.c: live, sorted, refreshing view */
int cmd_shrink(int argc, char **argv); /* shrink.c: shrink/defrag a live process's caches */

/* Helpers shared by subcommands (util.c). */
double cli_now(void);
size_t cli_rss_bytes(void);
void cli_progress(const char *what, size_t done, size_t total, int quiet);

#endif
