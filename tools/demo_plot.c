/*
 * tools/demo_plot.c — `slabdefrag demo --plot FILE.png`: the demo's numbers as
 * a picture, drawn by gnuplot (scripts/install-deps.sh installs gnuplot-nox).
 *
 * Layout (pngcairo, 1200x900): the top row has one panel per cache — slabs per
 * fill decile before (fragmented) and after defragmentation, as clustered bars;
 * the bottom row is the process's RSS over the whole run (samples at every phase
 * boundary and every 20 ms or so during long steps), the phase boundaries
 * numbered on the curve and named in a list beside it.
 *
 * The data and the script go to a private temporary directory (mkdtemp), which
 * is removed afterwards; gnuplot runs as a child process (posix_spawnp, no
 * shell), its messages going to our stderr.  A missing gnuplot is an error
 * (the caller asked for a plot): demo_plot_available() lets the driver say so
 * before the demo runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo.h"

extern char **environ;

int demo_plot_available(void)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char buf[4096];
    while (*path) {
        size_t len = strcspn(path, ":");
        if (len > 0 && len < sizeof buf - 10) {
            snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)len, path);
            if (access(buf, X_OK) == 0)
                return 1;
        }
        path += len + (path[len] == ':');
    }
    return 0;
}

/* Write s as a gnuplot single-quoted string (a quote is doubled). */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* Write dir/name as a gnuplot single-quoted string. */
static void put_path(FILE *f, const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    put_quoted(f, path);
}

/* dir/name opened for writing, or NULL. */
static FILE *create_in(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return fopen(path, "w");
}

static int write_data(const char *dir, const struct demo_record *recs, int nrecs)
{
    FILE *f = create_in(dir, "hist.dat");
    if (!f)
        return -1;
    fprintf(f, "# fill");
    for (int r = 0; r < nrecs; r++)
        fprintf(f, " %s_before %s_after", recs[r].cache, recs[r].cache);
    fprintf(f, "\n");
    for (int i = 0; i < DEMO_BUCKETS; i++) {
        fprintf(f, "\"%d-%d%%\"", i * 100 / DEMO_BUCKETS, (i + 1) * 100 / DEMO_BUCKETS);
        for (int r = 0; r < nrecs; r++)
            fprintf(f, " %llu %llu", (unsigned long long)recs[r].before[i],
                    (unsigned long long)recs[r].after[i]);
        fprintf(f, "\n");
    }
    int err = fclose(f);

    const struct demo_sample *s;
    size_t n = demo_samples(&s);
    if (!(f = create_in(dir, "rss.dat")))
        return -1;
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.4f %.2f\n", s[i].t, s[i].rss / 1048576.0);
    err |= fclose(f);

    /* phases: time, RSS at that moment (the sample taken with it), number */
    const struct demo_phase *p;
    size_t np = demo_phases(&p);
    if (!(f = create_in(dir, "phases.dat")))
        return -1;
    for (size_t i = 0; i < np; i++) {
        double rss = 0;
        for (size_t k = 0; k < n; k++)
            if (s[k].t == p[i].t)
                rss = s[k].rss / 1048576.0;
        fprintf(f, "%.4f %.2f %zu\n", p[i].t, rss, i + 1);
    }
    err |= fclose(f);
    return err ? -1 : 0;
}

static int write_script(const char *dir, const char *png, const struct demo_record *recs,
                        int nrecs)
{
    FILE *f = create_in(dir, "plot.gp");
    if (!f)
        return -1;
    fprintf(f, "set terminal pngcairo noenhanced size 1200,900 font 'sans,10'\nset output ");
    put_quoted(f, png);
    fprintf(f, "\nset datafile commentschars '#'\n"
               "set multiplot title 'slabdefrag demo: targeted slab defragmentation' "
               "font 'sans,13'\n"
               "set style data histograms\n"
               "set style histogram clustered gap 1\n"
               "set style fill solid 0.85 border -1\n"
               "set grid ytics\nset key top center\nset yrange [0:*]\n"
               "set xlabel 'slab fill (allocated / objects per slab)'\n"
               "set ylabel 'slabs'\nset xtics rotate by -30\n");
    double w = 1.0 / (nrecs > 0 ? nrecs : 1);
    for (int r = 0; r < nrecs; r++) {
        fprintf(f, "set origin %.3f,0.48\nset size %.3f,0.48\n", r * w, w);
        fprintf(f, "set title \"'%s': slabs per fill decile\"\n", recs[r].cache);
        fprintf(f, "plot ");
        put_path(f, dir, "hist.dat");
        fprintf(f, " using %d:xtic(1) title 'fragmented' lc rgb '#d62728', "
                   "'' using %d title '%s' lc rgb '#2ca02c'\n",
                2 + 2 * r, 3 + 2 * r, recs[r].after_label);
    }
    fprintf(f, "set origin 0,0\nset size 1,0.48\nunset style\nset style fill empty\n"
               "set xtics norotate\nset title 'resident set size over the run'\n"
               "set xlabel 'seconds'\nset ylabel 'RSS (MiB)'\nset key rmargin bottom\n"
               "set rmargin 36\n");
    const struct demo_phase *p;
    size_t np = demo_phases(&p);
    for (size_t i = 0; i < np; i++) {
        fprintf(f, "set label %zu sprintf('%2zu  %%s', ", i + 1, i + 1);
        put_quoted(f, p[i].label);
        fprintf(f, ") at screen 0.80,%.3f left font 'sans,9'\n", 0.40 - 0.022 * (double)i);
    }
    fprintf(f, "plot ");
    put_path(f, dir, "rss.dat");
    fprintf(f, " using 1:2 with lines lw 2 lc rgb '#1f77b4' title 'RSS', ");
    put_path(f, dir, "phases.dat");
    fprintf(f, " using 1:2 with points pt 7 ps 1 lc rgb '#444444' title 'phase boundary', "
               "'' using 1:2:3 with labels offset char 0.8,0.8 font 'sans,9' notitle\n"
               "unset multiplot\n");
    return fclose(f) ? -1 : 0;
}

static void cleanup(const char *dir)
{
    static const char *files[] = { "hist.dat", "rss.dat", "phases.dat", "plot.gp" };
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int demo_plot(const char *png, const struct demo_record *recs, int nrecs)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/slabdefrag-plot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "slabdefrag demo: --plot: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    if (write_data(dir, recs, nrecs) != 0 || write_script(dir, png, recs, nrecs) != 0) {
        fprintf(stderr, "slabdefrag demo: --plot: cannot write to %s: %s\n", dir,
                strerror(errno));
        cleanup(dir);
        return 1;
    }
    char script[4200];
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    char *argv[] = { "gnuplot", script, NULL };
    pid_t pid;
    int status = 0, err = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (err == 0 && waitpid(pid, &status, 0) < 0)
        err = errno;
    cleanup(dir);
    if (err) {
        fprintf(stderr, "slabdefrag demo: --plot: cannot run gnuplot: %s\n", strerror(err));
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "slabdefrag demo: --plot: gnuplot failed (status %d)\n", status);
        return 1;
    }
    if (access(png, R_OK) != 0) {
        fprintf(stderr, "slabdefrag demo: --plot: gnuplot wrote no %s\n", png);
        return 1;
    }
    return 0;
}
