/*
 * slab/fork.c — the library's one pthread_atfork registration and the table of
 * hooks that modules add to it (slab_fork_register, orders in fork.h).
 *
 * 1. Objects.  A fixed table of up to FORK_MAX_HOOKS {prepare, parent, child,
 *    order} entries kept sorted by order (stable: equal orders keep their
 *    registration order).  pthread_atfork is called once, with the first
 *    registration.
 * 2. Locking.  table_lock protects the table.  prepare_all takes it first and
 *    keeps it across fork(); parent_all and child_all release it last, so a
 *    registration racing with fork waits and the table the hooks run from
 *    cannot change under them.
 * 3. What the hooks achieve.  Every library mutex that a child may need is held
 *    by the forking thread at the moment of fork(), so no lock in the child is
 *    held by a thread that does not exist there; each module's child hook also
 *    forgets its threads (stats server, background defragmenter, flushers).
 *    Known limits: a move/get/kick callback that waits for a lock the forking
 *    thread holds while it calls fork() deadlocks the fork (the prepare hooks
 *    wait for every running pass to end); page and block locks of the buffer
 *    cache are bits, not mutexes, and are not taken.
 * 4. Observability: none; a hang shows as the forking thread waiting in a
 *    prepare hook.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "fork.h"

struct fork_hook {
    void (*prepare)(void), (*parent)(void), (*child)(void);
    int order;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fork_hook table[FORK_MAX_HOOKS];
static unsigned nr_hooks;

static void prepare_all(void)
{
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 0; i < nr_hooks; i++)
        if (table[i].prepare)
            table[i].prepare();
}

static void parent_all(void)
{
    for (unsigned i = nr_hooks; i-- > 0;)
        if (table[i].parent)
            table[i].parent();
    pthread_mutex_unlock(&table_lock);
}

static void child_all(void)
{
    for (unsigned i = nr_hooks; i-- > 0;)
        if (table[i].child)
            table[i].child();
    pthread_mutex_unlock(&table_lock);
}

static void register_atfork(void)
{
    pthread_atfork(prepare_all, parent_all, child_all);
}

void slab_fork_register(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                        int order)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_atfork);
    pthread_mutex_lock(&table_lock);
    if (nr_hooks == FORK_MAX_HOOKS) {
        fprintf(stderr, "slabdefrag: more than %d fork hook sets\n", FORK_MAX_HOOKS);
        abort(); /* a build-time constant too small: a bug, not a runtime condition */
    }
    unsigned i = nr_hooks++;
    for (; i > 0 && table[i - 1].order > order; i--)
        table[i] = table[i - 1];
    table[i] = (struct fork_hook){ prepare, parent, child, order };
    pthread_mutex_unlock(&table_lock);
}
