"""postback's benchmark suite: ``make bench`` (or ``python bench/run.py``).

Every figure is measured beside a baseline taken in the same run and reported as a ratio,
because shared machines are noisy; the absolute numbers are printed next to it. Receivers are
separate processes (``bench/receiver.py``); the process under test is pinned to one core with
``taskset`` and everything else to the other, where the machine has two cores or more.

The table is printed and appended, with date, commit and machine, to ``bench/RESULTS.md``.
This file is the entry point and the list of figures; harness.py has what they share, and
each benchmark lives in a module of its own (throughput.py, latency.py, claims.py,
memory.py, rules.py, scheduling.py, ordering.py, tracing.py, retention.py).
PostgreSQL rows need a server (``POSTBACK_BENCH_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``); without one they are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import claims
import harness as h
import latency
import memory
import ordering
import retention
import rules
import scheduling
import storage
import throughput
import tracing

# name (for --only), the benchmark, and whether it runs on each database (else on the last).
PLAN: list[tuple[str, Callable[[h.Database], h.Row], bool]] = [
    ("worker", lambda db: throughput.bench_worker(db, 4000), True),
    ("api", throughput.bench_api, True),
    ("latency", latency.bench_latency, True),
    ("fanout", latency.bench_fanout, True),
    ("claim", claims.bench_claim, True),
    ("memory", memory.bench_memory, False),
    ("rules", rules.bench_rules_ingest, True),
    ("rules-cpu", lambda db: rules.bench_rules_cpu(), False),
    ("isolation", scheduling.bench_isolation, True),
    ("slow-receivers", scheduling.bench_slow_receivers, True),
    ("claim-backlog", scheduling.bench_claim_beside_backlog, True),
    ("storage", storage.bench_storage, True),
    ("ordered", ordering.bench_ordered_worker, True),
    ("claim-blocked", ordering.bench_claim_beside_blocked, True),
    ("tracing", tracing.bench_worker, True),
    ("tracing-off", lambda db: tracing.bench_off_hooks(), False),
    ("tracing-api", tracing.bench_api, True),
    ("retention", retention.bench_retention, True),
]
# Run with --only, not in a plain `make bench`: the retention row loads 10 M attempts and
# lets the worker's pass run at its own pace (a call a minute), most of an hour in all.
ON_REQUEST = {"tracing-api", "retention"}


def main() -> None:
    everything = ",".join(name for name, _, _ in PLAN if name not in ON_REQUEST)
    names = ",".join(name for name, _, _ in PLAN)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bare", nargs=4, metavar=("URL", "N", "CONCURRENCY", "ROUNDS"))
    parser.add_argument("--only", help=f"comma-separated: {names}")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    if args.bare:  # the baseline loop, as its own pinned process (harness.run_bare)
        url, n, conc, rounds = args.bare
        print(json.dumps(asyncio.run(h.bare_loop(url, int(n), int(conc), int(rounds)))))
        return

    wanted = set((args.only or everything).split(","))
    dbs: list[Callable[[str], h.Database]] = []
    with tempfile.TemporaryDirectory(prefix="postback-bench-") as tmp:
        dbs.append(lambda tag: h.sqlite_db(Path(tmp), tag))
        if h.pg_available():
            dbs.append(h.pg_db)
        else:
            print(f"PostgreSQL not reachable at {h.pg_admin_url()}: its rows are skipped")
        rows: list[h.Row] = []
        started = time.monotonic()
        for name, figure, per_db in PLAN:
            if name not in wanted:
                continue
            for make_db in dbs if per_db else dbs[-1:]:
                db = make_db(name)
                try:
                    t0 = time.monotonic()
                    row = figure(db)
                    print(
                        f"  {row.figure}: {row.value} vs {row.baseline} "
                        f"({time.monotonic() - t0:.0f}s)",
                        flush=True,
                    )
                    rows.append(row)
                finally:
                    db.drop()
    report = h.report(rows, time.monotonic() - started)
    print("\n" + report)
    if not args.no_record:
        h.record(report)


if __name__ == "__main__":
    main()
