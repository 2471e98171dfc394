"""Batch jobs on generated data, each beside one hand-written SQL statement doing the same.

The data (`--members`, `--entries`) is generated once with set-based SQL, then copied into two
databases: the job runs (as its real CLI command, in its own process, whose peak RSS we read)
on one copy, the hand-written statement on the other, and the two copies must end up with the
same balances and entries — which is also what shows the statement does the same work.

Entries are generated in time order, the way a shop makes them: round k of every member's
purchases after round k-1, so one member's entries are spread over the table. The next-to-last
round is pending and due, the last pending and not yet due. A third of the members have been
inactive for longer than the program's expiry window.
"""

import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta

from bench import infra
from bench.infra import log

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EXPIRY_DAYS = 365
PENDING_DAYS = 30


# Member i's qualifying spend in period `salt`, as SQL: deterministic, 0..1,499.99 units.
SPEND = "(abs(hashtext(i || '{salt}')) %% 150000)"


def _points(member: str, k: str) -> str:
    """Points of member i's k-th entry, as SQL: deterministic, 10..99."""
    return f"(10 + ({member} * 7 + {k} * 13) %% 90)"


def generate(url: str, members: int, per_member: int) -> None:
    """Members and their ledger in a few statements; balances equal the sum of the entries."""
    if per_member < 2:
        raise ValueError("--entries must be at least 2 × --members (one due, one not yet due)")
    infra.migrate(url)
    available = f"(SELECT sum({_points('i', 'k')}) FROM generate_series(0, {per_member - 3}) k)"
    pending = f"({_points('i', per_member - 2)} + {_points('i', per_member - 1)})"
    with infra.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE program SET expiry_inactive_days = %s, pending_days = %s",
            (EXPIRY_DAYS, PENDING_DAYS),
        )
        # Tiers at 350 and 1,000 units; each member holds the tier of the larger of their
        # two period spends (see tier_spend below), as the tier rules would have set it.
        conn.execute(
            "INSERT INTO tiers (name, threshold, multiplier, perks, created_at)"
            " VALUES ('VIB', 35000, 1.25, '[]', %(now)s), ('Rouge', 100000, 1.5, '[]', %(now)s)",
            {"now": NOW},
        )
        base, vib, rouge = (
            conn.execute("SELECT id FROM tiers WHERE threshold = %s", (threshold,)).fetchone()[0]
            for threshold in (0, 35000, 100000)
        )
        best = f"greatest({SPEND.format(salt='a')}, {SPEND.format(salt='b')})"
        tier = f"CASE WHEN {best} >= 100000 THEN {rouge} WHEN {best} >= 35000 THEN {vib} ELSE {base} END"  # noqa: E501
        conn.execute(
            f"""
            INSERT INTO members (id, customer_id, email, email_normalized, name, enrolled_at,
                                 points_available, points_pending, points_lifetime,
                                 last_activity_at, tier_id)
            SELECT i, 'jm_' || i, 'jm_' || i || '@example.com', 'jm_' || i || '@example.com',
                   'Member ' || i, %(now)s - interval '800 days',
                   coalesce({available}, 0), {pending}, coalesce({available}, 0) + {pending},
                   CASE WHEN i %% 3 = 0 THEN %(now)s - interval '500 days'
                        ELSE %(now)s - interval '10 days' END,
                   {tier}
            FROM generate_series(1, %(members)s) AS i
            """,
            {"now": NOW, "members": members},
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('members', 'id'), %s)", (members,))
        # Secondary indexes are built once after the load (same definitions, same names), and
        # the foreign key is not re-checked row by row: the data is consistent by construction.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ledger_entries'"
            " AND indexname <> 'pk_ledger_entries'"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            f"""
            INSERT INTO ledger_entries (member_id, kind, points, state, source_type, source_id,
                                        detail, occurred_at, created_at, matures_at)
            SELECT i, 'earn', {_points("i", "k")},
                   CASE WHEN k >= %(per)s - 2 THEN 'pending' ELSE 'available' END,
                   'order', 'jo_' || i || '_' || k, '{{}}', at, at,
                   CASE WHEN k >= %(per)s - 2 THEN at + interval '{PENDING_DAYS} days' END
            FROM generate_series(0, %(per)s - 1) AS k
            CROSS JOIN LATERAL generate_series(1, %(members)s) AS i
            CROSS JOIN LATERAL (
                SELECT %(now)s - (CASE WHEN k = %(per)s - 2 THEN 31
                                       WHEN k = %(per)s - 1 THEN 5
                                       ELSE 600 - k END) * interval '1 day'
                       + (i %% 86400) * interval '1 second' AS at
            ) AS t
            """,
            {"now": NOW, "members": members, "per": per_member},
        )
        # Two qualifying periods per member: last year's (no longer counting at NOW, so the
        # close moves those it was holding up) and this year's.
        conn.execute(
            f"""
            INSERT INTO tier_spend (member_id, starts_at, ends_at, keeps_until, spend)
            SELECT i, p.starts_at, p.ends_at, p.keeps_until,
                   {SPEND.format(salt="' || p.salt || '")}
            FROM generate_series(1, %(members)s) AS i
            CROSS JOIN (VALUES (timestamptz '2024-01-01Z', timestamptz '2025-01-01Z',
                                timestamptz '2026-01-01Z', 'a'),
                               (timestamptz '2025-01-01Z', timestamptz '2026-01-01Z',
                                timestamptz '2027-01-01Z', 'b'))
                 AS p(starts_at, ends_at, keeps_until, salt)
            """,
            {"members": members},
        )
        conn.execute("SET session_replication_role = DEFAULT")
        for _name, definition in indexes:
            conn.execute(definition)
        # The triggers were off while the entries went in: the overview's monthly rollup of
        # the ledger is filled from them as the migration that added it does, so that
        # `verify-ledger` (which compares the two) holds on the generated data.
        conn.execute(
            """
            INSERT INTO ledger_months (month, kind, points, last_at)
            SELECT (extract(year FROM occurred_at AT TIME ZONE 'UTC') * 12
                    + extract(month FROM occurred_at AT TIME ZONE 'UTC') - 1)::integer,
                   kind, sum(points), max(occurred_at)
            FROM ledger_entries GROUP BY 1, 2
            ON CONFLICT (month, kind) DO UPDATE
            SET points = ledger_months.points + excluded.points,
                last_at = greatest(ledger_months.last_at, excluded.last_at)
            """
        )
        conn.execute("VACUUM ANALYZE members")
        conn.execute("VACUUM ANALYZE ledger_entries")
        conn.execute("VACUUM ANALYZE tier_spend")
        conn.execute("CHECKPOINT")


def fingerprint(url: str) -> dict:
    """What a job changes, summed up: equal fingerprints mean the same balances and entries."""
    with infra.connect(url) as conn:
        members = conn.execute(
            """
            SELECT count(*), sum(points_available), sum(points_pending), sum(points_lifetime),
                   sum(hashtext(id || ':' || points_available || ':' || points_pending || ':'
                                || points_lifetime || ':' || coalesce(tier_id, 0))::bigint)
            FROM members
            """
        ).fetchone()
        changes = conn.execute(
            """
            SELECT count(*), sum(hashtext(member_id || ':' || coalesce(from_tier_id, 0) || ':'
                                          || to_tier_id || ':' || direction || ':' || reason
                                          || ':' || qualifying_spend)::bigint)
            FROM tier_changes
            """
        ).fetchone()
        entries = conn.execute(
            """
            SELECT kind, state, count(*), sum(points), count(matured_at),
                   sum(hashtext(member_id || ':' || points || ':' || state || ':'
                                || coalesce(matured_at::text, '')))::bigint
            FROM ledger_entries GROUP BY kind, state ORDER BY kind, state
            """
        ).fetchall()
    return {
        "members": [int(v or 0) for v in members],
        "entries": [tuple(map(str, r)) for r in entries],
        "tier_changes": [int(v or 0) for v in changes],
    }


# --- the hand-written statements --------------------------------------------------------------

MATURE_SQL = """
WITH matured AS (
    UPDATE ledger_entries SET state = 'available', matured_at = %(now)s
    WHERE state = 'pending' AND matures_at <= %(now)s
    RETURNING member_id, points
), sums AS (
    SELECT member_id, sum(points) AS points FROM matured GROUP BY member_id
), moved AS (
    UPDATE members SET points_pending = points_pending - sums.points,
                       points_available = points_available + sums.points
    FROM sums WHERE members.id = sums.member_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM matured), (SELECT count(*) FROM moved)
"""

EXPIRE_SQL = """
WITH inactive AS (
    SELECT id, points_available FROM members
    WHERE points_available > 0 AND coalesce(last_activity_at, enrolled_at) <= %(cutoff)s
    FOR UPDATE
), zeroed AS (
    UPDATE members SET points_available = 0 FROM inactive WHERE members.id = inactive.id
    RETURNING 1
), entries AS (
    INSERT INTO ledger_entries (member_id, kind, points, state, source_type, source_id, detail,
                                occurred_at, created_at)
    SELECT id, 'expire', -points_available, 'available', 'inactivity', %(cutoff_date)s,
           %(detail)s::jsonb, %(now)s, %(now)s
    FROM inactive
    RETURNING 1
)
SELECT (SELECT count(*) FROM zeroed), (SELECT count(*) FROM entries)
"""


CLOSE_PERIOD_SQL = """
WITH bands AS (
    SELECT id, name, threshold AS low, lead(threshold) OVER (ORDER BY threshold) AS high
    FROM tiers
), live AS (
    SELECT member_id, max(spend) AS spend FROM tier_spend
    WHERE starts_at <= %(now)s AND keeps_until > %(now)s
    GROUP BY member_id
), targets AS (
    SELECT m.id AS member_id, m.tier_id AS from_id, b.id AS to_id, b.name AS to_name,
           b.low AS to_threshold, coalesce(live.spend, 0) AS spend
    FROM members m
    LEFT JOIN live ON live.member_id = m.id
    JOIN bands b ON coalesce(live.spend, 0) >= b.low
                AND (b.high IS NULL OR coalesce(live.spend, 0) < b.high)
    WHERE m.tier_id IS DISTINCT FROM b.id
    FOR UPDATE OF m
), changes AS (
    INSERT INTO tier_changes (member_id, from_tier_id, from_tier, to_tier_id, to_tier,
                              direction, reason, source_id, qualifying_spend, occurred_at,
                              created_at)
    SELECT t.member_id, t.from_id, old.name, t.to_id, t.to_name,
           CASE WHEN t.to_threshold > coalesce(old.threshold, -1) THEN 'upgrade'
                ELSE 'downgrade' END,
           'period_close', NULL, t.spend, %(now)s, now()
    FROM targets t LEFT JOIN tiers old ON old.id = t.from_id
    RETURNING 1
), moved AS (
    UPDATE members SET tier_id = targets.to_id FROM targets
    WHERE members.id = targets.member_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM changes)
"""


def _expire_params() -> dict:
    cutoff = NOW - timedelta(days=EXPIRY_DAYS)
    detail = f'{{"inactive_days": {EXPIRY_DAYS}, "cutoff": "{cutoff.isoformat()}"}}'
    return {
        "now": NOW,
        "cutoff": cutoff,
        "cutoff_date": cutoff.date().isoformat(),
        "detail": detail,
    }


# name -> (hand-written statement, its parameters, which of its counts the job reports)
STATEMENTS = {
    "mature-points": (MATURE_SQL, lambda: {"now": NOW}, 0),
    "expire-points": (EXPIRE_SQL, _expire_params, 0),
    "close-period": (CLOSE_PERIOD_SQL, lambda: {"now": NOW}, 0),
}


def run_sql(url: str, name: str) -> tuple[float, int]:
    statement, params, which = STATEMENTS[name]
    with infra.connect(url) as conn:
        started = time.perf_counter()
        counts = conn.execute(statement, params()).fetchone()
        conn.commit()
        return time.perf_counter() - started, int(counts[which])


CLI_DONE = re.compile(r"(\S+): (\d+) changed in ([\d.]+)s")


def every_job_at(batch_size: int) -> dict:
    """The environment that runs every job at `batch_size` members per range, those with a
    size of their own (JOB_BATCH_SIZES' defaults) included."""
    from loyalty.config import DEFAULT_JOB_BATCH_SIZES

    sizes = ",".join(f"{name}={batch_size}" for name in DEFAULT_JOB_BATCH_SIZES)
    return {"JOB_BATCH_SIZE": str(batch_size), "JOB_BATCH_SIZES": sizes}


def run_job(url: str, name: str, batch_size: int | None) -> dict:
    extra = every_job_at(batch_size) if batch_size else {}
    child = infra.run_measured(
        [
            str(infra.VENV_BIN / "flask"),
            "--app",
            "wsgi",
            "loyalty",
            "jobs",
            name,
            "--now",
            NOW.isoformat(),
        ],
        env=infra.app_env(url, **extra),
    )
    match = CLI_DONE.search(child.stdout)
    if child.returncode != 0 or not match:
        raise RuntimeError(f"job {name} failed ({child.returncode}):\n{child.stdout}{child.stderr}")
    return {
        "changed": int(match.group(2)),
        "job_s": float(match.group(3)),
        "process_s": child.seconds,
        "rss_mb": child.max_rss_mb,
    }


def available_jobs(url: str) -> list[str]:
    listing = infra.flask(url, "loyalty", "jobs", "no-such-job", check=False)
    text = listing.stdout + listing.stderr
    return re.findall(r"[a-z]+(?:-[a-z]+)+", text.split("one of:", 1)[-1])


def run(opts) -> dict:
    members, entries = opts.members, opts.entries
    per_member = max(2, entries // members)
    # A fixed name only when kept for the next run; otherwise one per process, so that
    # concurrent runs (the smoke test in several checkouts) never share a database.
    generated_name = f"bench_jobs_{members}_{per_member}"
    if not opts.keep_data:
        generated_name += f"_{os.getpid()}"
    result = {"members": members, "entries": members * per_member, "jobs": [], "skipped": {}}
    started = time.perf_counter()
    reuse = opts.keep_data and infra.database_exists(generated_name)
    if reuse:
        log(f"reusing {generated_name} (--keep-data); migrating it to the current head")
        try:
            infra.migrate(infra.pg_url(generated_name))
        except subprocess.CalledProcessError:  # history rewritten since: start afresh
            log(f"{generated_name} does not migrate to the current head: regenerating")
            reuse = False
    if not reuse:
        infra.drop_database(generated_name)
        infra.admin(f'CREATE DATABASE "{generated_name}"')
        try:
            log(f"generating {members:,} members, {members * per_member:,} entries")
            generate(infra.pg_url(generated_name), members, per_member)
        except BaseException:
            infra.drop_database(generated_name)
            raise
    result["generate_s"] = time.perf_counter() - started
    result["reused"] = bool(reuse)
    try:
        run_all(opts, generated_name, result)
    finally:
        if not opts.keep_data:
            infra.drop_database(generated_name)
    return result


def run_all(opts, generated_name: str, result: dict) -> None:
    pid = os.getpid()
    with (
        infra.database(f"bench_jobs_{pid}_job", template=generated_name) as job_url,
        infra.database(f"bench_jobs_{pid}_sql", template=generated_name) as sql_url,
    ):
        known = available_jobs(job_url)
        result["batch_size"] = opts.batch_size or "default (JOB_BATCH_SIZE)"
        for name in ("mature-points", "expire-points", "close-period"):
            if name not in known:
                result["skipped"][name] = "job not on main"
                continue
            if name not in STATEMENTS:
                result["skipped"][name] = "no hand-written statement yet"
                continue
            log(f"{name}: hand-written SQL")
            sql_s, sql_changed = run_sql(sql_url, name)
            log(f"{name}: job")
            job = run_job(job_url, name, opts.batch_size)
            same = fingerprint(job_url) == fingerprint(sql_url)
            result["jobs"].append(
                {
                    "name": name,
                    **job,
                    "sql_s": sql_s,
                    "sql_changed": sql_changed,
                    "ratio": job["job_s"] / sql_s if sql_s else 0.0,
                    "same_result": same,
                }
            )
            log(f"{name}: job {job['job_s']:.2f}s vs SQL {sql_s:.2f}s, same result: {same}")
