"""The scheduled jobs beside live traffic: order events before, during and after `run-due`.

The batch data of `bench.jobs` (`--members`, `--entries`, generated set-based; reused with
`--keep-data`) gets an API key and a gunicorn server; wrk sends `order.paid` events for its
members at `--traffic-connections` connections in back-to-back slices of `--slice-seconds`,
each slice its own wrk run (its own throughput, p50 and p99): `--traffic-seconds` of slices
before, then slices for as long as `loyalty jobs run-due` runs in its own process, then
`--traffic-seconds` after. An order event locks its member's row, so a job that holds many
members' rows for long shows as slices whose p99 is far above the slices before it; the ratios
compare the slices during the jobs with those before, measured in the same run.

The event path and the jobs share the machine (and its two cores), so some of the slowdown
during the jobs is CPU, not locks; the slices name the jobs that ran in them, and each job's
time is reported, so a slow slice can be traced to the job that was running.
"""

import os
import statistics
import subprocess
import threading
import time

from bench import http, infra, jobs
from bench.infra import LoadResult, log

SECTION_START, SECTION_END = "<!-- jobs-traffic -->", "<!-- /jobs-traffic -->"
P99_TARGET = 2.0  # events' p99 during the jobs ÷ before, at most
JOB_BATCH_SIZE = 5000  # its default (loyalty/config.py): the baseline runs every job at it


def _database(opts):
    """The generated batch data: kept (`--keep-data`, shared with the jobs section) or made
    for this run. Returns its name and whether it was reused."""
    per_member = max(2, opts.entries // opts.members)
    if opts.keep_data:
        kept = f"bench_jobs_{opts.members}_{per_member}"
        if infra.database_exists(kept):
            log(f"reusing {kept} (--keep-data); migrating it to the current head")
            try:
                infra.migrate(infra.pg_url(kept))
                return kept, True
            except subprocess.CalledProcessError:
                log(f"{kept} does not migrate to the current head: regenerating")
        infra.drop_database(kept)
        infra.admin(f'CREATE DATABASE "{kept}"')
        log(f"generating {opts.members:,} members, {opts.members * per_member:,} entries")
        jobs.generate(infra.pg_url(kept), opts.members, per_member)
        return kept, False
    name = f"bench_jobs_traffic_{os.getpid()}_data"
    infra.drop_database(name)
    infra.admin(f'CREATE DATABASE "{name}"')
    log(f"generating {opts.members:,} members, {opts.members * per_member:,} entries")
    jobs.generate(infra.pg_url(name), opts.members, per_member)
    return name, False


class JobRun:
    """`loyalty jobs run-due` in its own process; each job's end as the CLI prints it."""

    def __init__(self, url: str, env: dict):
        self.process = subprocess.Popen(
            [str(infra.VENV_BIN / "flask"), "--app", "wsgi", "loyalty", "jobs", "run-due"]
            + ["--now", jobs.NOW.isoformat()],
            cwd=infra.ROOT,
            env=infra.app_env(url, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # the progress bars
            text=True,
        )
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self) -> None:
        self.process.wait()
        self.reader.join()
        if self.process.returncode != 0:
            output = "\n".join(line for _at, line in self.lines)
            raise RuntimeError(f"run-due failed ({self.process.returncode}):\n{output}")
        self.ended = time.monotonic()

    def jobs(self) -> list[dict]:
        """Each job: name, rows changed, seconds (the CLI's), start and end (monotonic)."""
        out, previous = [], self.started
        for at, line in self.lines:
            match = jobs.CLI_DONE.search(line)
            if match:
                seconds = float(match.group(3))
                out.append(
                    {
                        "name": match.group(1),
                        "changed": int(match.group(2)),
                        "seconds": seconds,
                        "start": max(previous, at - seconds),
                        "end": at,
                    }
                )
                previous = at
        return out


def _slice(server, key: str, opts, run: str) -> tuple[LoadResult, float, float]:
    start = time.monotonic()
    result = infra.wrk(
        "order.paid",
        server.base_url,
        http.LUA,
        seconds=opts.slice_seconds,
        connections=opts.traffic_connections,
        env={
            "BENCH_MODE": "order",
            "BENCH_PREFIX": "/v1/events",
            "BENCH_KEY": key,
            "BENCH_COUNT": str(opts.members),
            "BENCH_CUSTOMER": "jm_",
            "BENCH_RUN": run,
        },
    )
    return result, start, time.monotonic()


def _as_slice(result: LoadResult, start: float, end: float, origin: float, names=()) -> dict:
    return {
        "t": round(start - origin, 1),
        "seconds": round(end - start, 2),
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 1),
        "p99_ms": round(result.p99_ms, 1),
        "max_ms": round(result.detail.get("max_us", 0) / 1000, 1),
        "requests": result.requests,
        "errors": result.errors,
        "jobs": list(names),
    }


def summarize(slices: list[dict]) -> dict:
    """A phase: its throughput (all answers over all seconds), the median slice's p50, the
    median slice's p99 and the worst slice's p99."""
    if not slices:
        return {"slices": 0, "rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "worst_p99_ms": 0.0}
    seconds = sum(s["seconds"] for s in slices)
    return {
        "slices": len(slices),
        "rps": round(sum(s["requests"] for s in slices) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(s["p50_ms"] for s in slices), 1),
        "p99_ms": round(statistics.median(s["p99_ms"] for s in slices), 1),
        "worst_p99_ms": round(max(s["p99_ms"] for s in slices), 1),
        "errors": sum(s["errors"] for s in slices),
    }


def _ratio(during: float, before: float) -> float:
    return round(during / before, 2) if before else 0.0


def measure(opts, url: str, job_env: dict) -> dict:
    key = infra.create_api_key(url, "storefront")
    app_env = infra.app_env(url, SECRET_KEYS=http.SECRET)
    phases: dict[str, list[dict]] = {"before": [], "during": [], "after": []}
    generated = 0
    with infra.gunicorn("app", "wsgi:app", app_env) as server:
        if opts.warmup > 0:
            warm, _s, _e = _slice(server, key, opts, "warm")
            generated += warm.generated
        infra.analyze(url)
        origin = time.monotonic()
        count = max(1, round(opts.traffic_seconds / opts.slice_seconds))
        log(f"events before the jobs: {count} slices of {opts.slice_seconds:g} s")
        for number in range(count):
            result, start, end = _slice(server, key, opts, f"b{number}")
            generated += result.generated
            phases["before"].append(_as_slice(result, start, end, origin))
        log("run-due, events beside it")
        job = JobRun(url, job_env)
        spans = []
        number = 0
        while job.running():
            result, start, end = _slice(server, key, opts, f"d{number}")
            generated += result.generated
            spans.append((result, start, end))
            number += 1
        job.wait()
        ran = job.jobs()
        starting = []  # slices while the job process started, before its first job
        for result, start, end in spans:
            names = [j["name"] for j in ran if j["start"] < end and j["end"] > start]
            slices = phases["during"] if names else starting
            slices.append(_as_slice(result, start, end, origin, names))
        log(f"events after the jobs: {count} slices")
        for number in range(count):
            result, start, end = _slice(server, key, opts, f"a{number}")
            generated += result.generated
            phases["after"].append(_as_slice(result, start, end, origin))
        http.drain(url)
    summary = {phase: summarize(slices) for phase, slices in phases.items()}
    before, during = summary["before"], summary["during"]
    return {
        "slices": phases,
        "starting_slices": starting,
        "summary": summary,
        "ratio_p99": _ratio(during["p99_ms"], before["p99_ms"]),
        "ratio_worst_p99": _ratio(during["worst_p99_ms"], before["worst_p99_ms"]),
        "ratio_rps": _ratio(during["rps"], before["rps"]),
        "jobs": [
            {k: j[k] for k in ("name", "changed", "seconds")}
            | {"at": round(j["start"] - origin, 1)}
            for j in ran
        ],
        "run_due_s": round(job.ended - job.started, 1),
        "check": check(url, generated),
    }


def check(url: str, generated: int) -> dict:
    """Every event sent was taken once, and every balance still equals its entries."""
    with infra.connect(url) as conn:
        processed = conn.execute("SELECT count(*) FROM processed_events").fetchone()[0]
        entries = conn.execute(
            "SELECT count(*) FROM ledger_entries WHERE source_type = 'order'"
            " AND source_id LIKE 'ord\\_%'"
        ).fetchone()[0]
    verify = infra.flask(url, "loyalty", "verify-ledger", check=False)
    return {
        "events_sent": generated,
        "processed_events": processed,
        "event_entries": entries,
        "verify_ledger_ok": verify.returncode == 0,
        "ok": verify.returncode == 0 and generated == processed == entries,
    }


# The schema and settings before the jobs were tuned to run beside traffic: the pending index on
# `matures_at` alone, and every job at JOB_BATCH_SIZE (`--traffic-baseline` measures both).
BASELINE_SQL = (
    "DROP INDEX IF EXISTS ix_ledger_entries_pending_member_matures_at",
    "CREATE INDEX IF NOT EXISTS ix_ledger_entries_pending_matures_at ON ledger_entries"
    " (matures_at) WHERE state = 'pending'",
    "ANALYZE ledger_entries",
)


def _variant(opts, source: str, name: str, baseline: bool) -> dict:
    """One measurement on a file copy of the generated data."""
    with infra.database(f"bench_jobs_traffic_{os.getpid()}_{name}", template=source) as url:
        if baseline:
            with infra.connect(url, autocommit=True) as conn:
                for statement in BASELINE_SQL:
                    conn.execute(statement)
        infra.settle(url)
        # --batch-size: every job at that size; the baseline: every job at JOB_BATCH_SIZE
        size = opts.batch_size or (JOB_BATCH_SIZE if baseline else None)
        extra = jobs.every_job_at(size) if size else {}
        log(f"{name}: {extra or 'the default job settings'}")
        return measure(opts, url, extra)


def run(opts) -> dict:
    started = time.perf_counter()
    source, reused = _database(opts)
    generate_s = time.perf_counter() - started
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    baseline = None
    try:
        if opts.traffic_baseline:  # first, so that the tuned run is not the one on a warm cache
            baseline = _variant(opts, source, "baseline", baseline=True)
        result = _variant(opts, source, "tuned", baseline=False)
    finally:
        if not opts.keep_data:
            infra.drop_database(source)
    return {
        "members": opts.members,
        "entries": opts.members * max(2, opts.entries // opts.members),
        "generate_s": round(generate_s, 1),
        "reused": reused,
        "connections": opts.traffic_connections,
        "slice_seconds": opts.slice_seconds,
        "batch_size": opts.batch_size or "default",
        "load_before": load,
        "load_after": " ".join(f"{v:.1f}" for v in os.getloadavg()),
        **result,
        "baseline": baseline,
    }


# --- the report -------------------------------------------------------------------------------


def table_rows(result: dict) -> list[tuple[str, str, str, str, str, str]]:
    s = result["summary"]
    rows = []
    for phase in ("before", "during", "after"):
        p = s[phase]
        rows.append(
            (
                f"order.paid {phase} run-due ({p['slices']} slices)",
                f"{p['rps']:.0f}/s",
                f"{p['p50_ms']:.1f}",
                f"{p['p99_ms']:.1f} / {p['worst_p99_ms']:.1f}",
                "",
                "",
            )
        )
    base = result.get("baseline")
    if base:
        for phase in ("before", "during"):
            p = base["summary"][phase]
            rows.append(
                (
                    f"  baseline: {phase} run-due ({p['slices']} slices)",
                    f"{p['rps']:.0f}/s",
                    f"{p['p50_ms']:.1f}",
                    f"{p['p99_ms']:.1f} / {p['worst_p99_ms']:.1f}",
                    f"{base['ratio_p99']:.2f}",
                    f"run-due {base['run_due_s']:.0f} s",
                )
            )
    ok = result["ratio_p99"] <= P99_TARGET and result["check"]["ok"]
    rows.append(
        (
            "  during ÷ before: p99 (median slice)",
            f"{result['ratio_rps']:.2f}",
            "",
            f"worst {result['ratio_worst_p99']:.2f}",
            f"{result['ratio_p99']:.2f}",
            f"≤ {P99_TARGET} {'MET' if ok else 'NOT MET'}",
        )
    )
    return rows


def _jobs_line(result: dict) -> str:
    return ", ".join(
        f"{j['name']} {j['seconds']:.1f} s ({j['changed']} rows, at {j['at']:.0f} s)"
        for j in result["jobs"]
    )


def by_job(result: dict) -> str:
    """Median and worst p99 of the slices in which one job alone ran, per job."""
    alone: dict[str, list[float]] = {}
    for piece in result["slices"]["during"]:
        if len(piece["jobs"]) == 1:
            alone.setdefault(piece["jobs"][0], []).append(piece["p99_ms"])
    return ", ".join(
        f"{name} {statistics.median(p99s):.0f} / {max(p99s):.0f} ms ({len(p99s)} slices)"
        for name, p99s in alone.items()
    )


def _baseline_lines(base: dict) -> list[str]:
    """The same run on a copy with the schema and settings before the tuning (the pending
    index on `matures_at` alone, every job at JOB_BATCH_SIZE), measured first."""
    c = base["check"]
    return [
        "- Baseline (the same data and traffic, measured first on its own copy, with the pending "
        "index on `matures_at` alone and every job at JOB_BATCH_SIZE): during ÷ before p99 "
        f"{base['ratio_p99']:.2f} (median slice), worst slice {base['ratio_worst_p99']:.2f}, "
        f"throughput {base['ratio_rps']:.2f}; `verify-ledger` "
        f"{'clean' if c['verify_ledger_ok'] else 'DRIFT'}; run-due {base['run_due_s']:.1f} s: "
        + _jobs_line(base)
        + ".",
        "- Baseline p99 by job (median / worst slice in which that job alone ran): "
        + by_job(base)
        + ".",
        "- Baseline slices during run-due: "
        + "; ".join(
            f"{d['t']:.0f}: {d['rps']:.0f}/s, {d['p99_ms']:.0f} ms, {'+'.join(d['jobs']) or '-'}"
            for d in base["slices"]["during"]
        )
        + ".",
    ]


def section(result: dict) -> str:
    s = result["summary"]
    lines = [
        SECTION_START,
        "## Jobs beside traffic (`python -m bench --sections jobs-traffic`)",
        "",
        f"`loyalty jobs run-due` on {result['members']:,} members and {result['entries']:,} "
        f"ledger entries while wrk sends `order.paid` events for those members at "
        f"{result['connections']} connections, in back-to-back slices of "
        f"{result['slice_seconds']:g} s; job batch size {result['batch_size']}. Load average "
        f"{result['load_before']} before, {result['load_after']} after.",
        "",
        "| events | throughput | p50 ms (median slice) | p99 ms (median slice) | "
        "p99 ms (worst slice) | slices |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for phase in ("before", "during", "after"):
        p = s[phase]
        lines.append(
            f"| {phase} run-due | {p['rps']:.0f}/s | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | "
            f"{p['worst_p99_ms']:.1f} | {p['slices']} |"
        )
    base = result.get("baseline")
    if base:
        for phase in ("before", "during", "after"):
            p = base["summary"][phase]
            lines.append(
                f"| baseline: {phase} run-due | {p['rps']:.0f}/s | {p['p50_ms']:.1f} | "
                f"{p['p99_ms']:.1f} | {p['worst_p99_ms']:.1f} | {p['slices']} |"
            )
    ok = result["ratio_p99"] <= P99_TARGET and result["check"]["ok"]
    c = result["check"]
    lines += [
        "",
        f"- During ÷ before: p99 {result['ratio_p99']:.2f} (median slice; target ≤ "
        f"{P99_TARGET}: {'MET' if ok else 'NOT MET'}), worst slice "
        f"{result['ratio_worst_p99']:.2f}, throughput {result['ratio_rps']:.2f}.",
        f"- Events sent {c['events_sent']}, processed {c['processed_events']}, their ledger "
        f"entries {c['event_entries']}; `verify-ledger` after the jobs: "
        f"{'clean' if c['verify_ledger_ok'] else 'DRIFT'}.",
        f"- run-due took {result['run_due_s']:.1f} s; each job (the CLI's time, and when it "
        "started from the first slice): " + _jobs_line(result) + ".",
        "- p99 by job (median / worst slice in which that job alone ran): " + by_job(result) + ".",
        *(_baseline_lines(base) if base else []),
        "- Slices during run-due (start s: events/s, p99 ms, jobs running): "
        + "; ".join(
            f"{d['t']:.0f}: {d['rps']:.0f}/s, {d['p99_ms']:.0f} ms, {'+'.join(d['jobs']) or '-'}"
            for d in result["slices"]["during"]
        )
        + ".",
        f"- {len(result.get('starting_slices', []))} slices while the job process started "
        "(before its first job) are not counted as during.",
        "- p99 per slice before: "
        + ", ".join(f"{d['p99_ms']:.0f}" for d in result["slices"]["before"])
        + "; after: "
        + ", ".join(f"{d['p99_ms']:.0f}" for d in result["slices"]["after"])
        + ".",
        SECTION_END,
    ]
    return "\n".join(lines)
