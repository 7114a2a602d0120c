#!/usr/bin/env python3
"""mt_table.py: the multi-thread benchmark's RESULT lines (bench_mt_<alloc>,
written by bench/run.sh) as two tables, one row per thread count:

  churn  ns per free+alloc pair per thread (lower is better; flat from 1 to N
         threads while there are cores for them = no shared state)
  ring   total M objects/s allocated and freed across threads, every free a
         remote one (higher is better)

Each cell is the median of its repetitions; "ratio" is slabdefrag's time per
operation over the best peer's (> 1: slabdefrag slower); "noise" is the largest
(max-min)/median of the row's cells.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alloc_table import parse  # noqa: E402  (RESULT lines, FAILED lines)

SUBJECT = "slabdefrag"
ORDER = ["slabdefrag", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
TESTS = [("mt_churn", "ns_per_op", "churn: ns per pair per thread (median)"),
         ("mt_ring", "mops", "ring of cross-thread frees: total M objects/s (median)")]


def table(cells, allocs, test, key, title):
    rows = sorted(k for k in cells if k[0] == test)
    if not rows:
        return []
    head = f"{'threads':>7} " + "".join(f"{a:>11}" for a in allocs)
    head += f"  | {'best peer':<9}{'ratio':>6}{'noise':>7}  reps"
    out = [title, head, "-" * len(head)]
    for _, threads in rows:
        row = cells[(test, threads)]
        vals = {a: [float(r[key]) for r in row[a]] for a in allocs if row.get(a)}
        med = {a: statistics.median(v) for a, v in vals.items()}
        line = f"{threads:>7} " + "".join(
            f"{med[a]:>11.1f}" if a in med else f"{'-':>11}" for a in allocs)
        ns = {a: float(statistics.median(float(r['ns_per_op']) for r in row[a])) for a in med}
        peers = [a for a in ns if a != SUBJECT]
        if SUBJECT in ns and peers:
            best = min(peers, key=lambda a: ns[a])
            line += f"  | {best:<9}{ns[SUBJECT] / ns[best]:>6.2f}"
        else:
            line += f"  | {'-':<9}{'-':>6}"
        noise = max(((max(v) - min(v)) / statistics.median(v) if len(v) > 1 else 0.0)
                    for v in vals.values()) if vals else 0.0
        line += f"{noise * 100:>6.0f}%  {min(len(v) for v in vals.values()) if vals else 0}"
        out.append(line)
    return out


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: mt_table.py RESULTS.log")
    cells, failed = parse(argv[1], key=lambda rec: (rec["test"], int(rec.get("threads", 0))))
    seen = {a for row in cells.values() for a in row}
    allocs = [a for a in ORDER if a in seen] + sorted(seen - set(ORDER))
    out = []
    for test, key, title in TESTS:
        lines = table(cells, allocs, test, key, title)
        if lines:
            out += ([""] if out else []) + lines
    for rec in failed:
        out.append(f"FAILED: {rec.get('alloc')} {rec.get('test')} (exit {rec.get('rc')})")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv)
