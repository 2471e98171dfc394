"""`python -m bench` (what `make bench` runs): measure, print a table, write bench/RESULTS.md.

Every figure is a ratio to a baseline measured in the same run on the same machine, because
absolute numbers on a shared two-core box mean little. Scale and durations are flags; the
defaults are what bench/RESULTS.md was produced with.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from bench import infra, report
from bench.reports import add_options as reports_options

SECTIONS = ("orders", "reads", "jobs", "jobs-traffic", "reports")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    parser.add_argument("--seconds", type=float, default=10, help="per HTTP measurement")
    parser.add_argument("--warmup", type=float, default=2, help="per server start")
    parser.add_argument("--rounds", type=int, default=2, help="app/baseline alternations")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=infra.GUNICORN_WORKERS, help="gunicorn")
    parser.add_argument("--threads", type=int, default=infra.GUNICORN_THREADS, help="per worker")
    parser.add_argument("--http-members", type=int, default=5_000)
    parser.add_argument("--tokens", type=int, default=200, help="widget tokens for /v1/me")
    parser.add_argument("--pgbench-scale", type=int, default=16, help=">= connections")
    # The benchmark's scale: 1,000,000 members and 10,000,000 entries (on a quiet two-core machine
    # about 1 minute of generation and 4 of jobs and statements; `--members 100000 --entries
    # 1000000` for a quicker run).
    parser.add_argument("--members", type=int, default=1_000_000, help="batch job members")
    parser.add_argument("--entries", type=int, default=10_000_000, help="batch ledger entries")
    parser.add_argument("--batch-size", type=int, default=None, help="every job at this batch size")
    # jobs-traffic: order events in slices before, during and after `run-due` on that data
    parser.add_argument("--traffic-seconds", type=float, default=30, help="before and after")
    parser.add_argument("--slice-seconds", type=float, default=5, help="one wrk run each")
    parser.add_argument("--traffic-connections", type=int, default=8)
    parser.add_argument(
        "--traffic-baseline",
        action="store_true",
        help="also measure the schema and batch sizes before the jobs were tuned for traffic",
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the generated job data for the next run"
    )
    # Reports at scale (bench/reports.py): sizes in customers, e.g. 10000,100000,1000000.
    reports_options(parser)
    parser.add_argument("--out", type=Path, default=infra.BENCH / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 1 s runs (tests)")
    parser.add_argument(
        "--render", type=Path, default=None, help="only rewrite --out from a --json of a run"
    )
    parser.add_argument(
        "--jobs-from",
        type=Path,
        default=None,
        help="report the batch jobs of an earlier run's --json instead of running them",
    )
    opts = parser.parse_args(argv)
    opts.sections = [s.strip() for s in opts.sections.split(",") if s.strip()]
    unknown = set(opts.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if opts.smoke:
        opts.seconds, opts.warmup, opts.rounds, opts.workers, opts.connections = 1, 0, 1, 1, 4
        opts.http_members, opts.tokens, opts.pgbench_scale = 200, 20, 1
        opts.members, opts.entries = 2_000, 20_000
        opts.traffic_seconds, opts.slice_seconds, opts.traffic_connections = 2, 1, 4
        opts.report_customers, opts.report_repeats = "2000", 1
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.render:
        results = json.loads(opts.render.read_text())
        print(report.table(results))
        _write_keeping_faults(opts.out, report.markdown(results))
        return 0
    infra.OUT.mkdir(parents=True, exist_ok=True)
    infra.GUNICORN_WORKERS, infra.GUNICORN_THREADS = opts.workers, opts.threads
    started = time.time()
    results = {"options": {k: str(v) for k, v in vars(opts).items()}, "started": started}
    if {"orders", "reads"} & set(opts.sections):
        from bench import http

        infra.ensure_wrk()
        results.update(http.run(opts))
    if opts.jobs_from:
        earlier = json.loads(opts.jobs_from.read_text())
        env = earlier["environment"]
        results["jobs"] = {
            **earlier["jobs"],
            "from_run": {k: env.get(k) for k in ("date", "commit", "load")},
        }
    elif "jobs" in opts.sections:
        from bench import jobs

        results["jobs"] = jobs.run(opts)
    if "jobs-traffic" in opts.sections:
        from bench import jobs_traffic

        infra.ensure_wrk()
        results["jobs_traffic"] = jobs_traffic.run(opts)
    if "reports" in opts.sections:
        from bench import reports

        results["reports"] = reports.run(opts)
    results["elapsed_s"] = round(time.time() - started, 1)
    results["environment"] = report.environment()
    print(report.table(results))
    _write_keeping_faults(opts.out, report.markdown(results))
    if "reports" in results:
        from bench import reports

        text = reports.section(results["reports"])
        print(text)
        report.write_section(opts.out, reports.SECTION_START, reports.SECTION_END, text)
    infra.log(f"wrote {opts.out}")
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


# A hand-kept section: instruction counts and ratios of the hot paths before and after a change
# that touched them, so the history of what each change cost stays beside the latest run.
CHANGES_START, CHANGES_END = "<!-- changes -->", "<!-- /changes -->"


def _write_keeping_faults(path: Path, text: str) -> None:
    """Write the report, keeping the sections `make faults` and `make bench-import` added to
    the file (runs of their own) and the hand-kept record of changes."""
    from bench import faults, imports, jobs_traffic, reports

    old = path.read_text() if path.exists() else ""
    for start, end in (
        (faults.SECTION_START, faults.SECTION_END),
        (imports.SECTION_START, imports.SECTION_END),
        (jobs_traffic.SECTION_START, jobs_traffic.SECTION_END),
        (reports.SECTION_START, reports.SECTION_END),
        (CHANGES_START, CHANGES_END),
    ):
        if start in text:  # this run measured it anew
            continue
        if start in old and end in old:
            section = start + old.split(start, 1)[1].split(end, 1)[0]
            text = text.rstrip("\n") + "\n\n" + section + end + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
