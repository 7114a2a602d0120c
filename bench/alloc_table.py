#!/usr/bin/env python3
"""alloc_table.py: turn the allocator benchmark's RESULT lines into the table.

Input: a log written by bench/run.sh (lines "RESULT alloc=.. test=.. size=..
ns_per_op=.. key=value ..."), several repetitions per cell.  Each cell is the
median of its repetitions (--stat min: the minimum); "noise" is the largest (max-min)/median among the
cells of a row, so a reader can tell a 3% difference from the machine's jitter.

Speed table, per test and size: ns/op of every allocator, slabdefrag's ratio
to each peer (< 1 means slabdefrag is faster) and to the best peer, and the
issue's target: churn and batch ratio <= 1.0, xthread <= 1.2.  batch_warm
(later rounds of the batch test in one process) is shown for information.

Retention table: RSS before, peak, after the frees, after the purge (MiB), and
retained = after free - before; the target is slabdefrag retained <= 8 MiB.
"""
import statistics
import sys
from collections import defaultdict

SUBJECT = "slabdefrag"
FRONT_END = "slabdefrag_malloc"  # the same engine through malloc/free (not a peer)
ORDER = ["slabdefrag", FRONT_END, "glibc", "jemalloc", "mimalloc", "tcmalloc"]
FRONT_END_TARGETS = (1.05, 1.1)  # <= x the slab API, <= x the best peer
TEST_ORDER = ["churn", "batch", "batch_warm", "xthread"]
TARGETS = {"churn": 1.0, "batch": 1.0, "xthread": 1.2}
RETENTION_TARGET_MIB = 8.0


def parse(path, key=lambda rec: (rec["test"], int(rec["size"]))):
    """{key(record): {alloc: [record, ...]}} from the RESULT lines of a log;
    the key is (test, size) unless told otherwise (mt_table.py: threads)."""
    cells = defaultdict(lambda: defaultdict(list))
    failed = []
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words or words[0] not in ("RESULT", "FAILED"):
                continue
            rec = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            if words[0] == "FAILED":
                failed.append(rec)
                continue
            cells[key(rec)][rec["alloc"]].append(rec)
    return cells, failed


# How repetitions are summarised; --stat min takes the minimum, which drops
# noise that only ever adds time (other jobs on the machine).
STATS = {"median": statistics.median, "min": min}
STAT_NAME = "median"


def median_of(records, key):
    return STATS[STAT_NAME]([float(r[key]) for r in records])


def spread(records, key):
    vals = [float(r[key]) for r in records]
    med = statistics.median(vals)
    return (max(vals) - min(vals)) / med if med > 0 and len(vals) > 1 else 0.0


def speed_rows(cells, allocs, tests):
    """(test, size, row, medians by allocator) for the cells of `tests`, in order."""
    keys = sorted((k for k in cells if k[0] in tests),
                  key=lambda k: (TEST_ORDER.index(k[0]), k[1]))
    for test, size in keys:
        row = cells[(test, size)]
        yield test, size, row, {a: median_of(row[a], "ns_per_op") for a in allocs if row.get(a)}


def speed_table(cells, allocs):
    peers = [a for a in allocs if a not in (SUBJECT, FRONT_END)]
    head = f"{'test':<11}{'size':>5} " + "".join(f"{a:>11}" for a in allocs)
    head += "  |" + "".join(f"{'/' + a[:6]:>8}" for a in peers)
    head += f"  | {'best peer':<9}{'ratio':>6}{'target':>8}  {'verdict':<8}{'noise':>6}  reps"
    lines = [f"ns per operation ({STAT_NAME}); ratios are slabdefrag / peer, < 1 = slabdefrag faster",
             head, "-" * len(head)]
    verdicts = []
    for test, size, row, med in speed_rows(cells, allocs, TEST_ORDER):
        line = f"{test:<11}{size:>5} " + "".join(
            f"{med[a]:>11.1f}" if a in med else f"{'-':>11}" for a in allocs)
        ratios = {p: med[SUBJECT] / med[p] for p in peers if SUBJECT in med and p in med}
        line += "  |" + "".join(f"{ratios[p]:>8.2f}" if p in ratios else f"{'-':>8}"
                                for p in peers)
        if ratios:
            best = min((p for p in ratios), key=lambda p: med[p])
            target = TARGETS.get(test)
            verdict = "info" if target is None else (
                "met" if ratios[best] <= target else "MISSED")
            if target is not None:
                verdicts.append((f"{test} {size}", verdict, ratios[best], target))
            tgt = f"<={target:.1f}" if target else "-"
            line += f"  | {best:<9}{ratios[best]:>6.2f}{tgt:>8}  {verdict:<8}"
        else:
            line += f"  | {'-':<9}{'-':>6}{'-':>8}  {'-':<8}"
        noise = max(spread(row[a], "ns_per_op") for a in med) if med else 0
        reps = min(len(row[a]) for a in med) if med else 0
        line += f"{noise * 100:>5.0f}%  {reps}"
        lines.append(line)
    return lines, verdicts


def front_end_table(cells, allocs):
    """The malloc front end (malloc/free on the same engine) against the slab API
    and the best peer, with the targets <= 1.05x and <= 1.1x."""
    if FRONT_END not in allocs:
        return [], []
    peers = [a for a in allocs if a not in (SUBJECT, FRONT_END)]
    head = (f"{'test':<11}{'size':>5} {'malloc':>9}{'slab':>9}{'/slab':>7}{'target':>8}"
            f"  {'best peer':<9}{'/peer':>7}{'target':>8}")
    lines = [f"the malloc front end ({FRONT_END}): ns per operation ({STAT_NAME})", head,
             "-" * len(head)]
    verdicts = []
    for test, size, _row, med in speed_rows(cells, allocs, TARGETS):
        if FRONT_END not in med:
            continue
        line = f"{test:<11}{size:>5} {med[FRONT_END]:>9.1f}"
        if SUBJECT in med:
            r = med[FRONT_END] / med[SUBJECT]
            line += f"{med[SUBJECT]:>9.1f}{r:>7.2f}{'<=1.05':>8}"
            verdicts.append((f"{FRONT_END} {test} {size} / slab API",
                             "met" if r <= FRONT_END_TARGETS[0] else "MISSED", r, FRONT_END_TARGETS[0]))
        have = [p for p in peers if p in med]
        if have:
            best = min(have, key=lambda p: med[p])
            r = med[FRONT_END] / med[best]
            line += f"  {best:<9}{r:>7.2f}{'<=1.1':>8}"
            verdicts.append((f"{FRONT_END} {test} {size} / best peer",
                             "met" if r <= FRONT_END_TARGETS[1] else "MISSED", r, FRONT_END_TARGETS[1]))
        lines.append(line)
    return lines, verdicts


def retention_table(cells, allocs):
    keys = sorted(k for k in cells if k[0] == "retention")
    lines, verdicts = [], []
    for test, size in keys:
        row = cells[(test, size)]
        any_rec = next(iter(row.values()))[0]
        lines.append(f"retention: {any_rec['ops']} objects of {size} B, freed in allocation "
                     f"order; RSS in MiB ({STAT_NAME}); retained = after free - before")
        head = (f"{'allocator':<11}{'before':>9}{'peak':>10}{'after free':>12}"
                f"{'after purge':>13}{'retained':>10}{'ns/pair':>9}  purge call")
        lines += [head, "-" * len(head)]
        for a in allocs:
            if not row.get(a):
                continue
            r = row[a]
            m = {k: median_of(r, k) for k in ("rss_before_mib", "rss_peak_mib",
                                              "rss_after_free_mib", "rss_after_purge_mib",
                                              "retained_mib", "ns_per_op")}
            lines.append(f"{a:<11}{m['rss_before_mib']:>9.1f}{m['rss_peak_mib']:>10.1f}"
                         f"{m['rss_after_free_mib']:>12.1f}{m['rss_after_purge_mib']:>13.1f}"
                         f"{m['retained_mib']:>10.1f}{m['ns_per_op']:>9.1f}  {r[0]['purge']}")
            if a == SUBJECT:
                ok = m["retained_mib"] <= RETENTION_TARGET_MIB
                verdicts.append((f"retention {size}", "met" if ok else "MISSED",
                                 m["retained_mib"], RETENTION_TARGET_MIB))
    return lines, verdicts


def main(argv):
    global STAT_NAME
    args = argv[1:]
    if len(args) == 3 and args[0] == "--stat" and args[1] in STATS:
        STAT_NAME = args[1]
        args = args[2:]
    if len(args) != 1:
        sys.exit("usage: alloc_table.py [--stat median|min] RESULTS.log")
    cells, failed = parse(args[0])
    seen = {a for row in cells.values() for a in row}
    allocs = [a for a in ORDER if a in seen] + sorted(seen - set(ORDER))
    out, verdicts = speed_table(cells, [a for a in allocs if a != FRONT_END])
    fe_lines, fe_verdicts = front_end_table(cells, allocs)
    if fe_lines:
        out += [""] + fe_lines
    verdicts += fe_verdicts
    ret_lines, ret_verdicts = retention_table(cells, allocs)
    if ret_lines:
        out += [""] + ret_lines
    verdicts += ret_verdicts
    if verdicts:
        met = sum(1 for v in verdicts if v[1] == "met")
        out += ["", f"targets met: {met}/{len(verdicts)}"]
        out += [f"  MISSED {name}: {value:.2f} > {target:g}"
                for name, verdict, value, target in verdicts if verdict != "met"]
    for rec in failed:
        out.append(f"FAILED: {rec.get('alloc')} {rec.get('test')} {rec.get('size')} "
                   f"(exit {rec.get('rc')})")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv)
