/*
 * tools/cli.h — the subcommands of the slabdefrag command-line tool.
 * Each returns the process exit status (0 success, 1 failure, 2 usage).
 */
#ifndef SLABDEFRAG_TOOLS_CLI_H
#define SLABDEFRAG_TOOLS_CLI_H

#include <stddef.h>

int cmd_demo(int argc, char **argv);

/* Helpers shared by subcommands (util.c). */
double cli_now(void);
size_t cli_rss_bytes(void);
void cli_progress(const char *what, size_t done, size_t total, int quiet);

#endif
