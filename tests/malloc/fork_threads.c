/* fork() from a multithreaded program: while 3 threads allocate and free (small,
 * large, cross-size realloc), the main thread forks 40 times; each child must be
 * able to malloc, realloc and free in every class, from its main thread and from
 * a new thread, and exit 0 within the test's timeout (a lock left held by a
 * vanished thread would hang it). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static atomic_bool stop;

static void *churn(void *arg)
{
    uint64_t r = (uintptr_t)arg * 7919 + 1;
    void *keep[64] = { 0 };
    while (!atomic_load(&stop)) {
        unsigned i = (unsigned)(xorshift64(&r) % 64);
        size_t n = 1 + xorshift64(&r) % (xorshift64(&r) % 8 == 0 ? 200000 : 2000);
        void *p = realloc(keep[i], n);
        if (p)
            memset(p, 0x77, n);
        keep[i] = p;
    }
    for (unsigned i = 0; i < 64; i++)
        free(keep[i]);
    return NULL;
}

static void *child_thread(void *arg)
{
    for (size_t n = 1; n < 100000; n = n * 2 + 3) {
        char *p = malloc(n);
        if (!p)
            return (void *)1;
        memset(p, 1, n);
        free(p);
    }
    return arg;
}

static int child_work(void)
{
    void *v[200];
    for (int i = 0; i < 200; i++) {
        v[i] = malloc((size_t)(i * 173 % 40000) + 1);
        if (!v[i])
            return 1;
    }
    for (int i = 0; i < 200; i++) {
        v[i] = realloc(v[i], (size_t)(i * 31 % 5000) + 1);
        if (!v[i])
            return 1;
    }
    for (int i = 0; i < 200; i++)
        free(v[i]);
    pthread_t t;
    void *res = (void *)1;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &res) != 0)
        return 1;
    return res == NULL ? 0 : 1;
}

int main(void)
{
    pthread_t t[3];
    for (uintptr_t i = 0; i < 3; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0, "pthread_create");
    for (int k = 0; k < 40; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0)
            _exit(child_work());
        int st;
        CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (status %#x)", k, st);
        usleep(1000);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    return 0;
}
