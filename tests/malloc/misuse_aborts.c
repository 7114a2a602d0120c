/* Misuse aborts with a message naming the pointer, never corrupts silently:
 * a stack pointer, an interior pointer, an immediate double free (small and
 * large), and a foreign pointer given to free, realloc and malloc_usable_size. */
#include <malloc.h>
#include <stdlib.h>

#include "testutil.h"

#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

/* Hide where a pointer comes from, so the compiler lets us misuse it. */
static void *volatile laundry;
static void *launder(void *p)
{
    laundry = p;
    return laundry;
}

static void free_stack(void *arg)
{
    int x;
    (void)arg;
    free(launder(&x));
}
static void free_interior(void *arg)
{
    char *p = malloc(100);
    (void)arg;
    free(launder(p + 16));
}
static void double_free_small(void *arg)
{
    void *p = launder(malloc(48));
    (void)arg;
    free(p);
    free(launder(p));
}
static void double_free_large(void *arg)
{
    void *p = launder(malloc(1 << 20));
    (void)arg;
    free(p);
    free(launder(p));
}
static void realloc_foreign(void *arg)
{
    static char buf[64];
    (void)arg;
    void *r = realloc(launder(buf + 16), 100);
    exit(r == NULL ? 2 : 3);
}
static void usable_foreign(void *arg)
{
    static char buf[64];
    (void)arg;
    exit(malloc_usable_size(launder(buf + 16)) ? 2 : 3);
}

int main(void)
{
    const char *const msg[] = { "slabdefrag", NULL };
    const char *const nota[] = { "not allocated by slabdefrag malloc", NULL };
    const char *const dbl[] = { "double free", NULL };
    int rc = 0;
    rc |= expect_die("free_stack", free_stack, NULL, nota);
    rc |= expect_die("free_interior", free_interior, NULL, msg);
    rc |= expect_die("double_free_small", double_free_small, NULL, dbl);
    rc |= expect_die("double_free_large", double_free_large, NULL, nota);
    rc |= expect_die("realloc_foreign", realloc_foreign, NULL, nota);
    rc |= expect_die("usable_foreign", usable_foreign, NULL, nota);
    return rc ? 1 : 0;
}
