/*
 * pipedchild.h — run a program as a child whose stdin and stdout are pipes to
 * the test, with some environment variables set or removed: for tests that
 * need a process of their own (another program, or this one re-executed) and
 * talk to it through its standard streams.
 *
 * piped_spawn(argv, env) forks; the child sets each "NAME=VALUE" of the
 * NULL-terminated env and unsets each bare "NAME", then execvp(argv).  The
 * test writes to .to_child and reads .from_child.  piped_finish() closes both
 * (the child sees EOF on stdin) and returns the child's exit status (128 + the
 * signal when killed).  Header-only, no global state.
 */
#ifndef SLABDEFRAG_PIPEDCHILD_H
#define SLABDEFRAG_PIPEDCHILD_H

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

struct piped_child {
    pid_t pid;
    int to_child, from_child;
};

static struct piped_child piped_spawn(char *const argv[], const char *const env[])
{
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0, "pipe");
    fflush(NULL);
    struct piped_child c = { .pid = fork() };
    CHECK(c.pid >= 0, "fork");
    if (c.pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(126);
        close(in[1]);
        close(out[0]);
        for (int i = 0; env[i]; i++)
            if (strchr(env[i], '=') ? putenv((char *)env[i]) != 0 : unsetenv(env[i]) != 0)
                _exit(125);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c.to_child = in[1];
    c.from_child = out[0];
    return c;
}

static int piped_finish(struct piped_child *c)
{
    close(c->to_child);
    close(c->from_child);
    int st;
    CHECK(waitpid(c->pid, &st, 0) == c->pid, "waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
