"""Reports at scale: each report through HTTP beside one hand-written statement over `orders`.

For each size in `--report-customers` (customers; ~1.8 paid orders each over the three years
before now, 60 % of customers members, ~6 % of orders refunded, 1 % canceled), a fresh
database is made by running the migrations and filled with set-based SQL: members, orders with
their real columns (jsonb lines, attributes and detail of a real event's size), the members'
ledger entries (an earn per paid order, a reversal per refund, and `--report-member-entries`
bonuses, adjustments, redemptions and expiries: ~10 entries per member) and
balances that add up to them. Then, as an operator would after a bulk load, the reports'
aggregates are rebuilt (`flask loyalty reports-refresh --rebuild`, timed: the full rebuild)
when the app has them.

Each report is asked of gunicorn (one worker) over HTTP, `--report-repeats` times, the best
kept: retention over one year, cohorts by first order month, referral and reward, segments as
JSON and as CSV (time to the first and to the last byte, and the worker's peak RSS meanwhile),
and the overview. Beside each, where one is written, a single hand-written statement giving
the same numbers straight from `orders` (and `members`, `ledger_entries`): the baseline, run
on the same database; its numbers are compared with the report's (`same`). Last, 1,000
customers (a tenth of them at small sizes) get a new paid order, and the refresh that brings
the aggregates up to date is timed (seconds per 1,000 dirty customers).

Databases are named `bench_reports_<size>_<pid>` and dropped at the end (kept with
`--keep-data`).
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import infra, report
from bench.infra import log

SECTION_START, SECTION_END = "<!-- reports -->", "<!-- /reports -->"
DEFAULT_SIZES = "10000,100000"
YEARS = 3
REFRESH_CUSTOMERS = 1_000


# --- the data ---------------------------------------------------------------------------------

# Orders of customer i: 1 (50 %), 2 (30 %), 3 (10 %) or 4 (10 %): 1.8 on average.
_ORDERS = "(CASE WHEN h < 5 THEN 1 WHEN h < 8 THEN 2 WHEN h < 9 THEN 3 ELSE 4 END)"
_HASH = "abs(hashtext({}))"


def generate(url: str, customers: int, now: datetime, extra_entries: int = 8) -> dict:
    """Members, orders, ledger entries and balances, in a few statements; each member has
    `extra_entries` entries beside those of their orders (bonuses, redemptions, ...)."""
    infra.migrate(url)
    params = {"now": now, "customers": customers, "days": 365 * YEARS}
    with infra.connect(url, autocommit=True) as conn:
        base_tier = conn.execute("SELECT id FROM tiers ORDER BY threshold LIMIT 1").fetchone()[0]
        # Indexes of the big tables are built once after the load (same definitions).
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename IN ('orders', 'ledger_entries', 'members')"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        conn.execute(
            """
            INSERT INTO members (id, customer_id, email, email_normalized, name, enrolled_at,
                                 points_available, points_pending, points_lifetime, tier_id)
            SELECT i, 'rc_' || i, 'rc_' || i || '@example.com', 'rc_' || i || '@example.com',
                   'Customer ' || i,
                   %(now)s - (%(days)s + 30) * interval '1 day'
                     + (i %% 86400) * interval '1 second',
                   0, 0, 0, %(tier)s
            FROM generate_series(1, %(customers)s) AS i
            WHERE i %% 5 < 3
            """,
            {**params, "tier": base_tier},
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('members', 'id'), %s)", (customers,))
        conn.execute(
            f"""
            INSERT INTO orders (order_id, customer_id, member_id, email_normalized, currency,
                                status, occurred_at, total_amount, eligible_amount,
                                refunded_amount, points_awarded, points_reversed, lines,
                                attributes, detail, created_at)
            SELECT 'ro_' || i || '_' || k, 'rc_' || i,
                   CASE WHEN i %% 5 < 3 THEN i END, 'rc_' || i || '@example.com', 'USD',
                   CASE WHEN r %% 100 = 0 THEN 'canceled' ELSE 'paid' END, at,
                   amount + 500, amount,
                   CASE WHEN r %% 100 BETWEEN 1 AND 3 THEN amount
                        WHEN r %% 100 BETWEEN 4 AND 6 THEN amount / 2 ELSE 0 END,
                   CASE WHEN i %% 5 < 3 THEN amount / 100 ELSE 0 END,
                   CASE WHEN i %% 5 >= 3 THEN 0
                        WHEN r %% 100 BETWEEN 1 AND 3 THEN amount / 100
                        WHEN r %% 100 BETWEEN 4 AND 6 THEN amount / 200 ELSE 0 END,
                   jsonb_build_array(
                     jsonb_build_object('sku', 'SKU-' || (r %% 500), 'quantity', 1,
                       'unit_price', amount - amount / 3, 'discount', 0, 'category', 'apparel',
                       'gift_card', false, 'eligible_amount', amount - amount / 3,
                       'refunded_quantity', 0, 'title', 'Organic cotton tee, size M'),
                     jsonb_build_object('sku', 'SKU-' || (r %% 300 + 500), 'quantity', 2,
                       'unit_price', amount / 6, 'discount', 0, 'category', 'accessories',
                       'gift_card', false, 'eligible_amount', amount / 3,
                       'refunded_quantity', 0, 'title', 'Canvas tote bag')),
                   jsonb_build_object('ip', '203.0.113.' || (r %% 250),
                     'user_agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
                     'email_hash', md5('rc_' || i), 'codes', '[]'::jsonb,
                     'gift_card_holds', '[]'::jsonb, 'shipping', 500, 'tax', 0,
                     'event_id', 're_' || i || '_' || k),
                   jsonb_build_object('rate', 1, 'multiplier', '1', 'tier', 'Member',
                     'tier_id', {base_tier}, 'rules', '[]'::jsonb, 'base_points', amount / 100,
                     'eligible_amount', amount),
                   at
            FROM generate_series(1, %(customers)s) AS i
            CROSS JOIN LATERAL (SELECT {_HASH.format("'n' || i")} %% 10 AS h) AS hh
            CROSS JOIN LATERAL generate_series(0, {_ORDERS} - 1) AS k
            CROSS JOIN LATERAL (
                SELECT {_HASH.format("i || ':' || k")} AS r
            ) AS rr
            CROSS JOIN LATERAL (
                SELECT %(now)s - (r %% (%(days)s * 86400)) * interval '1 second' AS at,
                       1000 + (r / 7) %% 20000 AS amount
            ) AS t
            """,
            params,
        )
        orders_s = time.perf_counter() - started
        # Members' entries: an earn per paid order (pending for 30 days), a reversal per refund.
        conn.execute(
            """
            INSERT INTO ledger_entries (member_id, kind, points, state, source_type, source_id,
                                        detail, occurred_at, created_at, matures_at)
            SELECT member_id, 'earn', points_awarded,
                   CASE WHEN occurred_at > %(now)s - interval '30 days' THEN 'pending'
                        ELSE 'available' END,
                   'order', order_id, jsonb_build_object('rate', 1, 'amount', eligible_amount),
                   occurred_at, occurred_at, occurred_at + interval '30 days'
            FROM orders WHERE member_id IS NOT NULL AND points_awarded > 0
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO ledger_entries (member_id, kind, points, state, source_type, source_id,
                                        detail, occurred_at, created_at)
            SELECT member_id, 'reversal', -points_reversed, 'available', 'refund',
                   order_id || '/re_1', '{}', occurred_at + interval '2 days',
                   occurred_at + interval '2 days'
            FROM orders WHERE member_id IS NOT NULL AND points_reversed > 0
              AND occurred_at <= %(now)s - interval '30 days'
            """,
            params,
        )
        # The rest of a member's ledger: bonuses, adjustments, redemptions, expiries.
        conn.execute(
            """
            INSERT INTO ledger_entries (member_id, kind, points, state, source_type, source_id,
                                        detail, occurred_at, created_at)
            SELECT m.id, kind, points, 'available', 'bench', 'rb_' || m.id || '_' || k, '{}',
                   at, at
            FROM members m
            CROSS JOIN generate_series(1, %(extra)s) AS k
            CROSS JOIN LATERAL (
                SELECT CASE k %% 4 WHEN 0 THEN 'bonus' WHEN 1 THEN 'adjust'
                                  WHEN 2 THEN 'redeem' ELSE 'expire' END AS kind,
                       CASE k %% 4 WHEN 2 THEN -20 WHEN 3 THEN -5
                                   ELSE 10 + (m.id + k) %% 40 END AS points,
                       %(now)s - (abs(hashtext(m.id || '/' || k)) %% (%(days)s * 86400))
                         * interval '1 second' AS at
            ) AS e
            """,
            {**params, "extra": extra_entries},
        )
        conn.execute(
            """
            UPDATE members m SET
              points_available = s.available, points_pending = s.pending,
              points_lifetime = s.lifetime, last_activity_at = s.last_at
            FROM (SELECT member_id,
                         coalesce(sum(points) FILTER (WHERE state = 'available'), 0) AS available,
                         coalesce(sum(points) FILTER (WHERE state = 'pending'), 0) AS pending,
                         coalesce(sum(points) FILTER (WHERE kind IN ('earn', 'bonus',
                           'referral', 'adjust', 'reversal', 'clawback')), 0) AS lifetime,
                         max(occurred_at) AS last_at
                  FROM ledger_entries GROUP BY member_id) AS s
            WHERE m.id = s.member_id
            """
        )
        for _name, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM orders),"
            " (SELECT count(*) FROM ledger_entries),"
            " pg_total_relation_size('orders'), pg_total_relation_size('ledger_entries')"
        ).fetchone()
    return {
        "members": counts[0],
        "orders": counts[1],
        "entries": counts[2],
        "orders_mb": counts[3] / 2**20,
        "entries_mb": counts[4] / 2**20,
        "orders_s": orders_s,
    }


# --- the hand-written statements --------------------------------------------------------------

RETENTION_SQL = """
WITH c AS (
    SELECT grouping(member_id IS NOT NULL) AS overall, member_id IS NOT NULL AS member,
           min(occurred_at) AS first_at,
           count(*) FILTER (WHERE occurred_at >= %(start)s) AS orders,
           coalesce(sum(eligible_amount - refunded_amount)
                    FILTER (WHERE occurred_at >= %(start)s), 0) AS revenue,
           sum(eligible_amount - refunded_amount) AS lifetime_value
    FROM orders WHERE status = 'paid' AND occurred_at < %(end)s
    GROUP BY GROUPING SETS ((coalesce(customer_id, 'erased:' || member_id)),
                            (coalesce(customer_id, 'erased:' || member_id),
                             member_id IS NOT NULL))
)
SELECT CASE WHEN overall = 1 THEN 'all' WHEN member THEN 'members' ELSE 'non_members' END,
       count(*) FILTER (WHERE orders > 0),
       count(*) FILTER (WHERE orders > 0 AND first_at >= %(start)s),
       count(*) FILTER (WHERE first_at < %(start)s),
       coalesce(sum(orders), 0), coalesce(sum(revenue), 0),
       coalesce(sum(lifetime_value) FILTER (WHERE orders > 0), 0)
FROM c GROUP BY 1 ORDER BY 1
"""

COHORTS_SQL = """
WITH months AS (
    SELECT coalesce(customer_id, 'erased:' || member_id) AS customer,
           (extract(year FROM occurred_at AT TIME ZONE 'UTC') * 12
            + extract(month FROM occurred_at AT TIME ZONE 'UTC') - 1)::int AS month,
           count(*) AS orders, sum(eligible_amount - refunded_amount) AS revenue
    FROM orders WHERE status = 'paid' GROUP BY 1, 2
), customers AS (
    SELECT customer, min(month) AS cohort FROM months GROUP BY customer
)
SELECT c.cohort, m.month - c.cohort AS k, count(*), sum(m.orders), sum(m.revenue)
FROM months m JOIN customers c USING (customer)
GROUP BY 1, 2 ORDER BY 1, 2
"""

# The segments of live members, thresholds (top 20 % by net spend, median AOV) computed inline.
SEGMENT_ROWS_SQL = """
WITH stats AS MATERIALIZED (
    SELECT m.customer_id, o.last_at, coalesce(o.frequency, 0) AS frequency,
           coalesce(o.monetary, 0) AS monetary
    FROM members m LEFT JOIN (
        SELECT member_id, max(occurred_at) AS last_at, count(*) AS frequency,
               sum(eligible_amount - refunded_amount) AS monetary
        FROM orders WHERE status = 'paid' AND member_id IS NOT NULL AND occurred_at < %(as_of)s
        GROUP BY member_id
    ) o ON o.member_id = m.id
    WHERE m.erased_at IS NULL AND m.customer_id IS NOT NULL AND m.enrolled_at <= %(as_of)s
), buyers AS (
    SELECT * FROM stats WHERE frequency > 0
), t AS (
    SELECT (SELECT monetary FROM buyers ORDER BY monetary DESC
            OFFSET greatest(1, floor(0.2 * (SELECT count(*) FROM buyers))) - 1 LIMIT 1) AS hv,
           (SELECT floor(monetary::numeric / frequency) FROM buyers
            ORDER BY monetary::numeric / frequency
            OFFSET ((SELECT count(*) FROM buyers) - 1) / 2 LIMIT 1) AS aov
), labelled AS (
    SELECT CASE
             WHEN frequency = 0 THEN 'new_subscribers'
             WHEN monetary >= hv AND monetary > 0 AND last_at > %(active)s
               THEN 'loyal_high_value'
             WHEN monetary >= hv AND monetary > 0 THEN 'at_risk_high_value'
             WHEN last_at <= %(active)s THEN 'low_value_inactive'
             WHEN frequency >= 3 AND monetary < frequency * aov THEN 'frequent_low_aov'
             ELSE 'other_active'
           END AS segment, customer_id,
           floor(extract(epoch FROM %(as_of)s - last_at) / 86400)::int AS recency_days,
           frequency, monetary
    FROM stats, t
)
"""
SEGMENTS_SQL = SEGMENT_ROWS_SQL + "SELECT segment, count(*) FROM labelled GROUP BY 1 ORDER BY 1"
SEGMENTS_CSV_SQL = (
    "COPY (" + SEGMENT_ROWS_SQL + "SELECT * FROM labelled ORDER BY customer_id)"
    " TO STDOUT WITH (FORMAT csv, HEADER)"
)

OVERVIEW_SQL = """
SELECT (SELECT count(*) FROM members WHERE erased_at IS NULL),
       (SELECT count(DISTINCT o.member_id) FROM orders o JOIN members m ON m.id = o.member_id
        WHERE o.status = 'paid' AND m.erased_at IS NULL
          AND o.occurred_at >= %(now)s - interval '90 days' AND o.occurred_at < %(now)s),
       (SELECT sum(greatest(points_available, 0)) + sum(points_pending) FROM members
        WHERE erased_at IS NULL),
       (SELECT coalesce(sum(points) FILTER (WHERE kind IN
                 ('earn', 'bonus', 'referral', 'adjust', 'reversal', 'clawback')), 0)
        FROM ledger_entries WHERE occurred_at >= %(start)s AND occurred_at < %(now)s)
"""


def _timed(url: str, sql: str, params: dict) -> tuple[float, list]:
    with infra.connect(url) as conn:
        started = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        return time.perf_counter() - started, rows


def _timed_copy(url: str, sql: str, params: dict) -> tuple[float, int]:
    with infra.connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        size = 0
        with cur.copy(sql, params) as copy:
            for block in copy:
                size += len(block)
        return time.perf_counter() - started, size


# --- HTTP -------------------------------------------------------------------------------------


def _worker_pids(master: int) -> list[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _get(base: str, path: str, key: str, params: dict | None = None) -> dict:
    """One GET: seconds to the first byte and to the last, bytes, status, the body (JSON)."""
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310 - our own 127.0.0.1 server
    at = datetime.now(UTC)  # the report's own `now` is a moment later
    started = time.perf_counter()
    first = None
    size = 0
    chunks = []
    content_type = ""
    try:
        with urllib.request.urlopen(request, timeout=900) as response:  # noqa: S310 - 127.0.0.1
            status, content_type = response.status, response.headers.get("Content-Type", "")
            while True:
                block = response.read1(65536)
                if first is None:
                    first = time.perf_counter() - started
                if not block:
                    break
                size += len(block)
                if "json" in content_type:
                    chunks.append(block)
    except urllib.error.HTTPError as exc:
        status = exc.code
    seconds = time.perf_counter() - started
    data = json.loads(b"".join(chunks)) if status == 200 and "json" in content_type else None
    return {
        "s": seconds,
        "first_byte_s": first or seconds,
        "bytes": size,
        "status": status,
        "data": data,
        "at": at,
    }


def _best(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["status"] == 200] or runs
    best = min(ok, key=lambda r: r["s"])
    kept = {k: v for k, v in best.items() if k not in ("data", "at")}
    return kept | {"all_s": [r["s"] for r in runs]}


# --- the aggregates ---------------------------------------------------------------------------


def has_refresh(url: str) -> bool:
    """Whether this checkout's app has `flask loyalty reports-refresh` (the aggregates)."""
    listing = infra.flask(url, "loyalty", "--help", check=False)
    return "reports-refresh" in listing.stdout


def refresh(url: str, *extra: str) -> dict:
    child = infra.run_measured(
        [str(infra.VENV_BIN / "flask"), "--app", "wsgi", "loyalty", "reports-refresh", *extra],
        env=infra.app_env(url),
    )
    if child.returncode != 0:
        raise RuntimeError(f"reports-refresh failed:\n{child.stdout}{child.stderr}")
    said = re.search(r"in ([\d.]+) ?s", child.stdout)  # its own time, without the start-up
    return {
        "s": float(said.group(1)) if said else child.seconds,
        "process_s": child.seconds,
        "rss_mb": child.max_rss_mb,
        "output": child.stdout.strip(),
    }


def dirty(url: str, customers: int, now: datetime) -> int:
    """A new paid order for each of `customers` existing customers (what marks them dirty)."""
    with infra.connect(url) as conn:
        count = conn.execute(
            """
            INSERT INTO orders (order_id, customer_id, member_id, email_normalized, currency,
                                status, occurred_at, total_amount, eligible_amount,
                                refunded_amount, points_awarded, points_reversed, lines,
                                attributes, detail, created_at)
            SELECT 'rn_' || i, 'rc_' || i, CASE WHEN i %% 5 < 3 THEN i END,
                   'rc_' || i || '@example.com', 'USD', 'paid', %(now)s, 5500, 5000, 0, 0, 0,
                   '[]', '{}', '{}', %(now)s
            FROM generate_series(1, %(n)s) AS i
            """,
            {"n": customers, "now": now},
        ).rowcount
        conn.commit()
    return count


# --- one size ---------------------------------------------------------------------------------


def measure(url: str, customers: int, opts) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    result: dict = {"customers": customers}
    started = time.perf_counter()
    log(f"reports {customers:,}: generating")
    result["data"] = generate(url, customers, now, opts.report_member_entries)
    result["generate_s"] = time.perf_counter() - started
    log(
        f"reports {customers:,}: {result['data']['orders']:,} orders,"
        f" {result['data']['entries']:,} entries in {result['generate_s']:.0f} s"
    )
    aggregates = has_refresh(url)
    result["aggregates"] = aggregates
    if aggregates:
        log(f"reports {customers:,}: reports-refresh --rebuild")
        result["rebuild"] = refresh(url, "--rebuild")
    key = infra.create_api_key(url, "reports")
    year_ago = now - timedelta(days=365)
    retention_params = {"from": _iso(year_ago), "to": _iso(now)}
    reports: dict = {}
    baselines: dict = {}
    checks: dict = {}
    env = infra.app_env(url)
    workers, threads = infra.GUNICORN_WORKERS, infra.GUNICORN_THREADS
    infra.GUNICORN_WORKERS, infra.GUNICORN_THREADS = 1, 2
    try:
        with infra.gunicorn(f"reports-{customers}", "wsgi:app", env, timeout=900) as server:
            master = server.process.pid

            def ask(name: str, path: str, params: dict | None = None) -> dict:
                runs = []
                for _ in range(opts.report_repeats):
                    runs.append(_get(server.base_url, path, key, params))
                    if runs[-1]["status"] != 200:
                        break
                reports[name] = _best(runs)
                log(f"reports {customers:,}: {name} {reports[name]['s']:.2f} s")
                return runs[-1]

            retention = ask("retention (1 year)", "/v1/reports/retention", retention_params)
            cohort = ask("cohorts by first_order_month", "/v1/reports/cohorts",
                         {"by": "first_order_month"})  # fmt: skip
            ask("cohorts by referral", "/v1/reports/cohorts", {"by": "referral"})
            ask("cohorts by reward", "/v1/reports/cohorts", {"by": "reward"})
            segments = ask("segments JSON", "/v1/reports/segments", {"as_of": _iso(now)})
            peak = [0.0]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    for pid in _worker_pids(master):
                        peak[0] = max(peak[0], _rss_mb(pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            before = max((_rss_mb(pid) for pid in _worker_pids(master)), default=0.0)
            sampler.start()
            ask("segments CSV", "/v1/reports/segments", {"format": "csv", "as_of": _iso(now)})
            done.set()
            sampler.join()
            result["csv_rss_mb"] = {"before": before, "peak": peak[0]}
            overview = ask("overview", "/v1/reports/overview")
    finally:
        infra.GUNICORN_WORKERS, infra.GUNICORN_THREADS = workers, threads
    params = {"start": year_ago, "end": now}
    seconds, rows = _timed(url, RETENTION_SQL, params)
    baselines["retention (1 year)"] = seconds
    if retention["data"]:
        got = {r[0]: r for r in rows}
        data = retention["data"]
        checks["retention (1 year)"] = all(
            [
                block["customers"], block["new_customers"], block["customers_at_start"],
                block["orders"], block["revenue"],
            ] == [int(v) for v in got[name][1:6]]
            for name, block in (("all", data), ("members", data["members"]),
                                ("non_members", data["non_members"]))
        )  # fmt: skip
    seconds, rows = _timed(url, COHORTS_SQL, {})
    baselines["cohorts by first_order_month"] = seconds
    if cohort["data"]:
        sizes: dict = {}
        for month, k, count, _orders, _revenue in rows:
            if k == 0:
                year, index = divmod(int(month), 12)
                sizes[f"{year:04d}-{index + 1:02d}"] = int(count)
        checks["cohorts by first_order_month"] = sizes == {
            item["cohort"]: item["customers"] for item in cohort["data"]["items"]
        }
    segment_params = {"as_of": now, "active": now - timedelta(days=90)}
    seconds, rows = _timed(url, SEGMENTS_SQL, segment_params)
    baselines["segments JSON"] = seconds
    if segments["data"]:
        counted = {name: int(count) for name, count in rows}
        checks["segments JSON"] = all(
            item["count"] == counted.get(item["segment"], 0) for item in segments["data"]["items"]
        )
    seconds, size = _timed_copy(url, SEGMENTS_CSV_SQL, segment_params)
    baselines["segments CSV"] = seconds
    checks["segments CSV"] = abs(size - reports["segments CSV"]["bytes"]) < 0.02 * max(size, 1)
    # The overview answers as of the moment it was asked (its last request): the same here.
    asked = overview["at"]
    overview_params = {"now": asked, "start": datetime(*_window_start(asked), tzinfo=UTC)}
    seconds, rows = _timed(url, OVERVIEW_SQL, overview_params)
    baselines["overview"] = seconds
    if overview["data"]:
        members, active, outstanding, earned = (int(v or 0) for v in rows[0])
        data = overview["data"]
        checks["overview"] = [
            data["members"], data["active_members"], data["points"]["outstanding"],
            data["points_earned"],
        ] == [members, active, outstanding, earned]  # fmt: skip
    result["load"] = os.getloadavg()[1]  # the last 5 minutes': while the reports ran
    result["reports"] = reports
    result["baselines"] = baselines
    result["checks"] = checks
    if aggregates:
        count = min(REFRESH_CUSTOMERS, max(1, customers // 10))
        dirty(url, count, now)
        log(f"reports {customers:,}: {count} customers with a new order; reports-refresh")
        timed = refresh(url)
        result["refresh"] = {**timed, "customers": count, "per_1k_s": timed["s"] * 1000 / count}
    return result


def _window_start(now: datetime) -> tuple[int, int, int]:
    index = now.year * 12 + now.month - 1 - 11
    year, month = divmod(index, 12)
    return year, month + 1, 1


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def run(opts) -> dict:
    infra.OUT.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in str(opts.report_customers).split(",") if s.strip()]
    results: dict = {"sizes": []}
    for customers in sizes:
        name = f"bench_reports_{customers}_{os.getpid()}"
        with infra.database(name, keep=opts.keep_data) as url:
            results["sizes"].append(measure(url, customers, opts))
        results["environment"] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": os.getloadavg()[0],
        }
        results["repeats"] = opts.report_repeats
        if getattr(opts, "out", None):  # each size as it is done: a long run keeps what it has
            report.write_section(opts.out, SECTION_START, SECTION_END, section(results))
    return results


# --- the section of bench/RESULTS.md ----------------------------------------------------------

REPORTS = (
    "retention (1 year)",
    "cohorts by first_order_month",
    "cohorts by referral",
    "cohorts by reward",
    "segments JSON",
    "segments CSV",
    "overview",
)


def _cell(size: dict, name: str) -> str:
    got = size["reports"].get(name)
    if got is None:
        return "—"
    text = f"{got['s']:.2f} s" if got["status"] == 200 else f"HTTP {got['status']}"
    if name == "segments CSV" and got["status"] == 200:
        text += f" (first byte {got['first_byte_s']:.2f} s)"
    base = size["baselines"].get(name)
    if base:
        same = size["checks"].get(name)
        mark = "" if same is None else (", same" if same else ", DIFFERENT")
        text += f" / SQL {base:.2f} s = {got['s'] / base:.1f}×{mark}"
    return text


def section(results: dict) -> str:
    sizes = results["sizes"]
    env = results["environment"]
    head = "| report | " + " | ".join(f"{s['customers']:,} customers" for s in sizes) + " |"
    lines = [
        SECTION_START,
        "## Reports at scale (`python -m bench --sections reports`)",
        "",
        f"{env['date']}, load average {env['load']:.1f} on a shared two-core machine. Per size:"
        " ~1.8 orders per customer over 3 years, 60 % members, ~6 % of orders refunded, 1 %"
        " canceled; generated set-based in a fresh migrated database. Each report through"
        " HTTP (gunicorn, one worker), best of"
        f" {results.get('repeats', 2)}, beside one hand-written statement over `orders` on the"
        " same database (app / SQL = ratio; `same`: the statement's numbers equal the"
        " report's).",
        "",
        head,
        "|---|" + "---|" * len(sizes),
    ]
    for name in REPORTS:
        lines.append(f"| {name} | " + " | ".join(_cell(s, name) for s in sizes) + " |")
    lines.append(
        "| worker RSS before / peak during the CSV | "
        + " | ".join(
            f"{s['csv_rss_mb']['before']:.0f} / {s['csv_rss_mb']['peak']:.0f} MB" for s in sizes
        )
        + " |"
    )
    lines.append(
        "| aggregates: full rebuild | "
        + " | ".join(
            f"{s['rebuild']['s']:.1f} s ({s['rebuild']['rss_mb']:.0f} MB RSS)"
            if s.get("rebuild")
            else "no aggregates"
            for s in sizes
        )
        + " |"
    )
    lines.append(
        "| aggregates: refresh, s per 1k dirty customers | "
        + " | ".join(
            f"{s['refresh']['per_1k_s']:.2f} s ({s['refresh']['customers']:,} customers)"
            if s.get("refresh")
            else "—"
            for s in sizes
        )
        + " |"
    )
    lines.append(
        "| data: orders / entries (generated in) | "
        + " | ".join(
            f"{s['data']['orders']:,} ({s['data']['orders_mb']:.0f} MB) /"
            f" {s['data']['entries']:,} ({s['generate_s']:.0f} s)"
            for s in sizes
        )
        + " |"
    )
    lines.append(
        "| load average (5 min) while the reports ran | "
        + " | ".join(f"{s['load']:.1f}" if "load" in s else "—" for s in sizes)
        + " |"
    )
    lines += [
        "",
        "- Baselines: retention, cohorts by first order month and the segments (counts, and"
        " the CSV's rows by COPY) are one statement each over `orders` and `members`; the"
        " overview's is members, active members, points outstanding and points earned over"
        " the window (a scan of the ledger). Cohorts by referral and reward have none.",
        "- Sizes: `--report-customers 10000,100000,1000000` (default "
        f"{DEFAULT_SIZES}); `--keep-data` keeps the databases.",
        SECTION_END,
    ]
    return "\n".join(lines)


def table(results: dict) -> str:
    return section(results)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__)
    add_options(parser)
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="add the section to this file")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    return parser.parse_args(argv)


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report-customers",
        default=DEFAULT_SIZES,
        help="comma-separated sizes in customers, e.g. 10000,100000,1000000",
    )
    parser.add_argument("--report-repeats", type=int, default=2, help="requests per report")
    parser.add_argument(
        "--report-member-entries",
        type=int,
        default=8,
        help="ledger entries per member beside their orders' (bonuses, redemptions...)",
    )


def main(argv=None) -> int:
    opts = parse_args(argv)
    results = run(opts)
    text = section(results)
    print(text)
    if opts.out:
        report.write_section(opts.out, SECTION_START, SECTION_END, text)
        log(f"wrote {opts.out}")
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
