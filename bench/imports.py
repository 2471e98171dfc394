"""`python -m bench.imports` (`make bench-import`): the order history import beside a
hand-written bulk insert of the same orders.

`--orders` paid orders in our own event format (one JSON line each, in time order over the
year before `NOW`) from `--orders / 3` customers: each customer's first order enrols them
(auto-enrolment), the others are orders of an existing member. Two fresh, migrated PostgreSQL
databases: on one, the import engine (`connectors.backfill`, in a process of its own, whose
peak RSS we read) reads the file; on the other, the rows the same orders make — members,
their referral codes, processed events, orders, ledger entries, qualifying spend and balances
— are written by COPY and set-based INSERTs in one transaction: the fastest the same rows can
be written, a lower bound for the engine. The two databases must end with the same members,
balances, entries and spend (which also shows the bulk insert does the same work), and the
ratio of the two times, with the time a million orders would take at the engine's rate, goes
to bench/RESULTS.md in a section of its own.

The bulk insert knows this program's rules in advance (one tier, no bonus rule, no referral):
it is a lower bound no import applying the real rules can reach, not an alternative to it.
"""

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import infra, report
from bench.infra import log

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SECTION_START, SECTION_END = "<!-- imports -->", "<!-- /imports -->"
MILLION = 1_000_000


# --- the orders -------------------------------------------------------------------------------


def generate(path: Path, orders: int, seed: int = 7, prefix: str = "b") -> int:
    """`orders` order.paid events as JSON lines, in time order; the number of customers.
    Ids start with `prefix` (two files of other prefixes share no event, order or customer)."""
    rng = random.Random(seed)
    customers = max(1, orders // 3)
    start = NOW - timedelta(days=365)
    step = timedelta(days=365) / max(orders, 1)
    with open(path, "w") as out:
        for i in range(orders):
            # The first third of the orders are each customer's first; the rest, repeat orders.
            number = i if i < customers else rng.randrange(customers)
            customer = f"{prefix}c_{number}"
            lines = [
                {"sku": f"SKU{rng.randrange(50)}", "quantity": rng.randint(1, 3),
                 "unit_price": rng.randrange(1_000, 20_000), "discount": 0}
                for _ in range(rng.randint(1, 3))
            ]  # fmt: skip
            event = {
                "id": f"{prefix}i_{i}",
                "type": "order.paid",
                "occurred_at": (start + step * i).isoformat().replace("+00:00", "Z"),
                "order": {
                    "id": f"{prefix}o_{i}",
                    "customer_id": customer,
                    "email": f"{customer}@example.com",
                    "currency": "USD",
                    "lines": lines,
                    "shipping": 500,
                    "tax": 0,
                },
            }
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return min(customers, orders)


# --- the engine, in a process of its own ------------------------------------------------------


def child(path: str, batch_size: int) -> None:
    """Run the import engine on `path` against DATABASE_URL; print its summary as JSON."""
    from connectors import backfill
    from loyalty import create_app
    from loyalty.extensions import db
    from loyalty.hooks import hooks

    app = create_app()
    with app.app_context(), open(path, "rb") as export:
        started = time.perf_counter()
        summary = backfill.import_lines(
            db.session, hooks(), export, backfill.our_events, batch_size=batch_size
        )
        seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "orders": summary.orders, "imported": summary.imported,
        "duplicates": summary.duplicates, "refused": dict(summary.refused),
    }))  # fmt: skip


def run_engine(url: str, path: Path, batch_size: int) -> dict:
    args = [sys.executable, "-m", "bench.imports", "--child", str(path),
            "--batch-size", str(batch_size)]  # fmt: skip
    result = infra.run_measured(args, env=infra.app_env(url))
    if result.returncode != 0:
        raise RuntimeError(f"import failed: {result.stderr[-3000:]}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "rss_mb": result.max_rss_mb}


# --- the hand-written bulk insert -------------------------------------------------------------

STAGE = """
CREATE TEMPORARY TABLE staged (
    n bigint, event_id text, body_hash text, order_id text, customer_id text, email text,
    email_normalized text, occurred_at timestamptz, total bigint, eligible bigint,
    lines jsonb, attributes jsonb, detail jsonb, period_starts timestamptz
) ON COMMIT DROP
"""

BULK = [
    ("members", """
     INSERT INTO members (customer_id, email, email_normalized, enrolled_at, points_available,
                          points_pending, points_lifetime, tier_id)
     SELECT DISTINCT ON (customer_id) customer_id, email, email_normalized, occurred_at, 0, 0, 0,
            (SELECT id FROM tiers WHERE threshold = 0)
     FROM staged ORDER BY customer_id, n"""),
    ("referral codes", """
     INSERT INTO referral_codes (member_id, code, created_at)
     SELECT id, upper(substr(md5(id::text || random()::text), 1, 8)), now() FROM members"""),
    ("processed events", """
     INSERT INTO processed_events (event_id, type, body_hash, response, created_at, order_id)
     SELECT event_id, 'order.paid', body_hash,
            jsonb_build_object('event_id', event_id, 'duplicate', false), now(), order_id
     FROM staged"""),
    ("orders", """
     INSERT INTO orders (order_id, customer_id, member_id, email_normalized, currency, status,
                         occurred_at, total_amount, eligible_amount, refunded_amount,
                         points_awarded, points_reversed, lines, attributes, detail, created_at)
     SELECT s.order_id, s.customer_id, m.id, s.email_normalized, 'USD', 'paid', s.occurred_at,
            s.total, s.eligible, 0, s.eligible / 100, 0, s.lines, s.attributes, s.detail, now()
     FROM staged s JOIN members m USING (customer_id) ORDER BY s.n"""),
    ("ledger", """
     INSERT INTO ledger_entries (member_id, kind, points, state, source_type, source_id, detail,
                                 occurred_at, created_at, matures_at)
     SELECT o.member_id, 'earn', o.points_awarded, 'pending', 'order', o.order_id,
            o.detail -> 'earn', o.occurred_at, now(), o.occurred_at + interval '30 days'
     FROM orders o WHERE o.points_awarded > 0 ORDER BY o.id"""),
    ("tier spend", """
     INSERT INTO tier_spend (member_id, starts_at, ends_at, keeps_until, spend)
     SELECT m.id, s.period_starts, s.period_starts + interval '1 year',
            s.period_starts + interval '2 years', sum(s.eligible)
     FROM staged s JOIN members m USING (customer_id)
     GROUP BY m.id, s.period_starts"""),
    ("balances", """
     UPDATE members m SET points_pending = t.points, points_lifetime = t.points,
                          last_activity_at = t.last
     FROM (SELECT member_id, sum(points_awarded) AS points, max(occurred_at) AS last
           FROM orders GROUP BY member_id) t
     WHERE t.member_id = m.id"""),
]  # fmt: skip


def _staged_rows(path: Path):
    """The staging table's rows: what the order service works out per order (each line's
    eligible amount, the schema's defaults, the body hash, the normalized email, the
    qualifying period of a calendar-year UTC program) done here in Python, by hand."""
    from loyalty.lookalikes import normalize_email
    from loyalty.orders.service import ORDER_ATTRIBUTES, body_hash

    defaults = {"reward_codes": [], "gift_card_holds": []}
    with open(path) as export:
        for n, text in enumerate(export):
            event = json.loads(text)
            order = event["order"]
            lines = [{"category": None, "gift_card": False, **line,
                      "eligible": line["quantity"] * line["unit_price"] - line["discount"],
                      "refunded_quantity": 0} for line in order["lines"]]  # fmt: skip
            eligible = sum(line["eligible"] for line in lines)
            year = int(event["occurred_at"][:4])
            starts, ends, keeps = (
                datetime(y, 1, 1, tzinfo=UTC) for y in (year, year + 1, year + 2)
            )
            detail = {
                "earn": {"eligible_amount": eligible, "currency": "USD", "points_per_unit": "1",
                         "tier": "Member", "multiplier": "1"},
                "qualifying": {"amount": eligible, "period_starts_at": starts.isoformat(),
                               "period_ends_at": ends.isoformat(),
                               "keeps_until": keeps.isoformat()},
            }  # fmt: skip
            attributes = {k: order.get(k, defaults.get(k)) for k in ORDER_ATTRIBUTES}
            yield (
                n, event["id"], body_hash(event), order["id"], order["customer_id"],
                order["email"], normalize_email(order["email"]), event["occurred_at"],
                eligible + order["shipping"] + order["tax"], eligible, json.dumps(lines),
                json.dumps(attributes), json.dumps(detail), starts,
            )  # fmt: skip


def run_bulk(url: str, path: Path) -> dict:
    import loyalty.orders.service  # noqa: F401 - imported before the clock starts

    steps = {}
    started = time.perf_counter()
    with infra.connect(url) as conn:
        conn.execute(STAGE)
        with conn.cursor().copy("COPY staged FROM STDIN") as copy:
            for row in _staged_rows(path):
                copy.write_row(row)
        steps["stage (Python + COPY)"] = time.perf_counter() - started
        for name, sql in BULK:
            step = time.perf_counter()
            conn.execute(sql)
            steps[name] = time.perf_counter() - step
        conn.commit()
    return {"seconds": time.perf_counter() - started, "steps": steps}


# --- the same kind of events over HTTP: one at a time, and in batches -------------------------


def _post(conn, path: str, key: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json",
    })  # fmt: skip
    response = conn.getresponse()
    return response.status, response.read()


def _by_customer(events: list[dict], connections: int) -> list[list[dict]]:
    """The events shared among `connections` clients, each customer's on one client in order
    (no two clients wait for one member's lock)."""
    shares: list[list[dict]] = [[] for _ in range(connections)]
    for event in events:
        shares[hash(event["order"]["customer_id"]) % connections].append(event)
    return shares


def send(base_url: str, key: str, events: list[dict], connections: int, batch: int) -> dict:
    """The events sent by `connections` clients at once: one per `POST /v1/events` (`batch`
    0), or `batch` per `POST /v1/events/batch`; seconds, and the statuses of every event."""
    import http.client
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    address = urlsplit(base_url)

    def client(share: list[dict]) -> Counter:
        statuses: Counter = Counter()
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=300)
        try:
            if not batch:
                for event in share:
                    status, _ = _post(conn, "/v1/events", key, json.dumps(event).encode())
                    statuses[status] += 1
                return statuses
            for start in range(0, len(share), batch):
                body = json.dumps({"events": share[start : start + batch]}).encode()
                status, answer = _post(conn, "/v1/events/batch", key, body)
                if status != 200:
                    statuses[f"batch {status}"] += 1
                    continue
                for result in json.loads(answer)["results"]:
                    statuses[result["status"]] += 1
            return statuses
        finally:
            conn.close()

    shares = _by_customer(events, connections)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        counted = list(pool.map(client, shares))
    seconds = time.perf_counter() - started
    statuses: Counter = sum(counted, Counter())
    return {"seconds": seconds, "events": len(events), "rate": len(events) / seconds,
            "statuses": {str(k): v for k, v in statuses.items()}}  # fmt: skip


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far (user + system, from /proc) by the gunicorn server (every
    process of its session: `infra.gunicorn` starts it in a session of its own), by
    PostgreSQL (every process named postgres: its backends and its background writers) and
    by this process (the clients); {} where /proc cannot be read."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"server": 0.0, "postgres": 0.0}
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                line = stat.read()
        except OSError:
            continue  # ended meanwhile
        name, fields = line[line.index("(") + 1 : line.rindex(")")], line.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if int(fields[3]) == server_pid:  # the session's id is its leader's pid
            used["server"] += seconds
        elif name == "postgres":
            used["postgres"] += seconds
    times = os.times()
    used["clients"] = times.user + times.system
    return used


def _sent(
    base_url: str, key: str, events: list[dict], connections: int, batch: int, server_pid: int
) -> dict:
    """`send`, with the CPU each side used for it (milliseconds per event)."""  # fmt: skip
    before = cpu_seconds(server_pid)
    result = send(base_url, key, events, connections, batch)
    after = cpu_seconds(server_pid)
    result["cpu"] = {side: after[side] - before[side] for side in before}
    return result


def _total(parts: list[dict]) -> dict:
    """Rounds of `_sent` added up: seconds, events, the rate, statuses, CPU ms per event."""
    seconds = sum(part["seconds"] for part in parts)
    events = sum(part["events"] for part in parts)
    statuses: dict[str, int] = {}
    cpu: dict[str, float] = {}
    for part in parts:
        for status, n in part["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
        for side, used in part["cpu"].items():
            cpu[side] = cpu.get(side, 0.0) + used
    per_event = {side: used * 1000 / events for side, used in cpu.items()}
    return {"seconds": seconds, "events": events, "rate": events / seconds,
            "statuses": statuses, "cpu_ms_per_event": per_event}  # fmt: skip


def run_http(url: str, opts) -> dict:
    """On one server (gunicorn, the repository's settings) and one database: `--http-events`
    events one at a time and as many others of the same kind in batches, in `--http-rounds`
    rounds that take turns (a share one at a time, then a share in batches), so both see the
    same machine: on a shared machine the speed of either drifts by more than the gap
    measured. The CPU each side used per event (server, PostgreSQL, clients) does not drift
    with the machine's load as a rate does."""
    from bench.http import SECRET

    def events_of(prefix: str, count: int) -> list[dict]:
        path = infra.OUT / f"bench_imports_{os.getpid()}_{prefix}.jsonl"
        generate(path, count, seed=11, prefix=prefix)
        try:
            return [json.loads(line) for line in path.read_text().splitlines()]
        finally:
            path.unlink(missing_ok=True)

    count, rounds = opts.http_events, max(1, opts.http_rounds)
    single_events, batch_events = events_of("s", count), events_of("m", count)
    key = infra.create_api_key(url, "storefront")
    singles, batches = [], []
    with infra.gunicorn("app", "wsgi:app", infra.app_env(url, SECRET_KEYS=SECRET)) as server:
        pid = server.process.pid
        log("warm-up")
        warm = events_of("w", 200)
        send(server.base_url, key, warm[:100], opts.http_connections, 0)
        send(server.base_url, key, warm[100:], opts.batch_connections, 50)
        for n in range(rounds):
            share = slice(count * n // rounds, count * (n + 1) // rounds)
            log(f"round {n + 1} of {rounds}: {share.stop - share.start} events through"
                f" POST /v1/events ({opts.http_connections} clients), as many through"
                f" POST /v1/events/batch ({opts.batch_connections} clients,"
                f" {opts.batch_size} a batch)")  # fmt: skip
            singles.append(_sent(server.base_url, key, single_events[share],
                                 opts.http_connections, 0, pid))  # fmt: skip
            batches.append(_sent(server.base_url, key, batch_events[share],
                                 opts.batch_connections, opts.batch_size, pid))  # fmt: skip
    ledger = infra.flask(url, "loyalty", "verify-ledger", check=False)
    ratios = [b["rate"] / s["rate"] for s, b in zip(singles, batches, strict=True)]
    rates = [[s["rate"], b["rate"]] for s, b in zip(singles, batches, strict=True)]
    return {"single": _total(singles), "batch": _total(batches), "rounds": rounds,
            "round_ratios": ratios, "round_rates": rates,
            "verify_ledger_ok": ledger.returncode == 0}  # fmt: skip


# --- the two databases compared ---------------------------------------------------------------

CHECKS = {
    "members": """SELECT customer_id, email_normalized, enrolled_at, points_available,
                         points_pending, points_lifetime, last_activity_at, t.name
                  FROM members m JOIN tiers t ON t.id = m.tier_id ORDER BY customer_id""",
    "ledger": """SELECT m.customer_id, e.kind, e.points, e.state, e.source_id, e.detail,
                        e.occurred_at, e.matures_at
                 FROM ledger_entries e JOIN members m ON m.id = e.member_id
                 ORDER BY m.customer_id, e.id""",
    "orders": """SELECT order_id, customer_id, status, total_amount, eligible_amount,
                        points_awarded, lines, attributes, detail, occurred_at
                 FROM orders ORDER BY order_id""",
    "tier_spend": """SELECT m.customer_id, s.starts_at, s.ends_at, s.keeps_until, s.spend
                     FROM tier_spend s JOIN members m ON m.id = s.member_id
                     ORDER BY m.customer_id, s.starts_at""",
    "processed_events": "SELECT event_id, type, order_id, body_hash FROM processed_events"
    " ORDER BY event_id",
    "referral_codes": "SELECT m.customer_id FROM referral_codes r"
    " JOIN members m ON m.id = r.member_id ORDER BY 1",
}


def compare(engine_url: str, bulk_url: str) -> dict:
    """Per table: the same rows in both databases (ids and creation times left out). A
    member's entries are compared in the order they were posted; the order of different
    members' entries is not compared (the engine applies a batch's events of distinct
    members together, each member's in order: docs/performance.md)."""
    found = {}
    with infra.connect(engine_url) as one, infra.connect(bulk_url) as other:
        for name, sql in CHECKS.items():
            a, b = one.execute(sql).fetchall(), other.execute(sql).fetchall()
            found[name] = {"rows": len(a), "same": a == b}
    return found


# --- the run ----------------------------------------------------------------------------------


def run(opts) -> dict:
    infra.OUT.mkdir(parents=True, exist_ok=True)
    tag = f"bench_imports_{os.getpid()}"
    path = infra.OUT / f"{tag}.jsonl"
    log(f"generating {opts.orders} orders")
    customers = generate(path, opts.orders)
    try:
        with infra.database(f"{tag}_tmpl") as template_url:
            infra.migrate(template_url)
            with (
                infra.database(f"{tag}_engine", template=f"{tag}_tmpl") as engine_url,
                infra.database(f"{tag}_bulk", template=f"{tag}_tmpl") as bulk_url,
            ):
                log(f"importing {opts.orders} orders with the engine (batch {opts.batch_size})")
                engine = run_engine(engine_url, path, opts.batch_size)
                log(f"engine: {engine['seconds']:.1f} s; the bulk insert")
                bulk = run_bulk(bulk_url, path)
                log(f"bulk insert: {bulk['seconds']:.1f} s; comparing")
                checks = compare(engine_url, bulk_url)
                log("importing the same file again")
                again = run_engine(engine_url, path, opts.batch_size)
                checks["second import changes nothing"] = {
                    "rows": again["duplicates"],
                    "same": again["imported"] == 0 and again["duplicates"] == opts.orders
                    and compare(engine_url, bulk_url) == checks_without(checks),
                }  # fmt: skip
            http = None
            if opts.http_events:
                with infra.database(f"{tag}_http", template=f"{tag}_tmpl") as http_url:
                    http = run_http(http_url, opts)
    finally:
        path.unlink(missing_ok=True)
    rate = engine["imported"] / engine["seconds"] if engine["seconds"] else 0
    return {
        "orders": opts.orders,
        "customers": customers,
        "batch_size": opts.batch_size,
        "http_connections": opts.http_connections,
        "batch_connections": opts.batch_connections,
        "engine": engine,
        "again": again,
        "bulk": bulk,
        "ratio": engine["seconds"] / bulk["seconds"] if bulk["seconds"] else None,
        "orders_per_s": rate,
        "million_minutes": MILLION / rate / 60 if rate else None,
        "bulk_million_minutes": bulk["seconds"] * MILLION / opts.orders / 60,
        "checks": checks,
        "http": http,
        "same_result": all(check["same"] for check in checks.values())
        and (http is None or _http_ok(http, opts.http_events)),
        "environment": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": os.getloadavg()[0],
        },  # fmt: skip
    }


def _http_ok(http: dict, count: int) -> bool:
    """Every event sent was applied (200), and the ledger agrees with the balances."""
    return http["verify_ledger_ok"] and all(
        http[name]["statuses"] == {"200": count} for name in ("single", "batch")
    )


def checks_without(checks: dict) -> dict:
    return {k: v for k, v in checks.items() if k != "second import changes nothing"}


def section(results: dict) -> str:
    engine, bulk = results["engine"], results["bulk"]
    steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in bulk["steps"].items())
    checks = ", ".join(
        f"{name} {'same' if check['same'] else 'DIFFERENT'} ({check['rows']})"
        for name, check in results["checks"].items()
    )
    return "\n".join([
        SECTION_START,
        "## Order history import (`make bench-import`)",
        "",
        f"{results['environment']['date']}, load average {results['environment']['load']:.1f}"
        f" on a shared two-core machine. {results['orders']:,} paid orders (our event format,"
        f" one line each) of {results['customers']:,} customers: a third enrol with their first"
        " order, two thirds are orders of an existing member. Fresh PostgreSQL databases.",
        "",
        "| what | seconds | orders/s | 1M orders | ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| import engine (`connectors.backfill`, batch {results['batch_size']}) |"
        f" {engine['seconds']:.1f} | {results['orders_per_s']:,.0f} |"
        f" {results['million_minutes']:.0f} min | {results['ratio']:.1f} |",
        f"| hand-written bulk insert (COPY + set-based INSERTs, one transaction) |"
        f" {bulk['seconds']:.1f} | {results['orders'] / bulk['seconds']:,.0f} |"
        f" {results['bulk_million_minutes']:.1f} min | 1 |",
        *_http_rows(results),
        "",
        f"- The engine's process peaked at {engine['rss_mb']:.0f} MB RSS; a second import of the"
        f" same file took {results['again']['seconds']:.1f} s and found"
        f" {results['again']['duplicates']:,} duplicates, imported"
        f" {results['again']['imported']}.",
        f"- Bulk insert steps (s): {steps}.",
        f"- Both databases compared: {checks}.",
        "- The bulk insert is a lower bound: it knows the program has one tier, no bonus rule"
        " and no referral, and stores a stub answer per event; the engine applies every rule"
        " through the order handlers: one commit per batch, the batch's new customers enrolled"
        " (and their share codes made) in one INSERT each, a savepoint per event only in a"
        " batch where an event is refused, and the members' plain paid orders applied in"
        " groups of distinct members (waves), each order handler on a whole group at once,"
        " its statements sent together (docs/performance.md, \"Order events in batches\","
        " `EVENT_BATCH_FAST_PATH`).",
        SECTION_END,
    ])  # fmt: skip


def _http_rows(results: dict) -> list[str]:
    """The HTTP rows of the table: events/s, and the ratios to the single endpoint and to the
    bulk insert, measured in the same run."""
    http = results.get("http")
    if not http:
        return []
    bulk_rate = results["orders"] / results["bulk"]["seconds"]
    single, batch = http["single"], http["batch"]
    ratios = sorted(http["round_ratios"])
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else sum(
        ratios[len(ratios) // 2 - 1 : len(ratios) // 2 + 1]) / 2  # fmt: skip
    return [
        "",
        "Over HTTP, one gunicorn server (the repository's settings), one database:"
        f" {single['events']:,} events of the same kind one at a time"
        f" ({results['http_connections']} clients) and"
        f" {batch['events']:,} others in batches of {results['batch_size']}"
        f" ({results['batch_connections']} clients), in {http['rounds']} rounds taking turns"
        " (a share one at a time, then a share in batches, so that both see the same machine);"
        f" verify-ledger {'clean' if http['verify_ledger_ok'] else 'NOT CLEAN'}.",
        "",
        "| what | seconds | events/s | × single endpoint | × bulk insert |",
        "| --- | --- | --- | --- | --- |",
        f"| `POST /v1/events` | {single['seconds']:.1f} | {single['rate']:,.0f} | 1 |"
        f" {single['rate'] / bulk_rate:.3f} |",
        f"| `POST /v1/events/batch` | {batch['seconds']:.1f} | {batch['rate']:,.0f} |"
        f" {batch['rate'] / single['rate']:.1f} | {batch['rate'] / bulk_rate:.3f} |",
        f"| import engine (no HTTP) | {results['engine']['seconds']:.1f} |"
        f" {results['orders_per_s']:,.0f} | {results['orders_per_s'] / single['rate']:.1f} |"
        f" {results['orders_per_s'] / bulk_rate:.3f} |",
        f"| hand-written bulk insert | {results['bulk']['seconds']:.1f} | {bulk_rate:,.0f} |"
        f" {bulk_rate / single['rate']:.1f} | 1 |",
        "",
        "- The batch endpoint's rate ÷ the single endpoint's, round by round: "
        + ", ".join(f"{ratio:.1f}" for ratio in http["round_ratios"])
        + f" (median {median:.1f}).",
        *_cpu_rows(single, batch),
    ]


def _cpu_rows(single: dict, batch: dict) -> list[str]:
    """CPU milliseconds per event on each side, and what they make the ratio (the figure a
    drifting machine does not move)."""
    one, many = single.get("cpu_ms_per_event"), batch.get("cpu_ms_per_event")
    if not one or not many:
        return []
    sides = [("server", "gunicorn server"), ("postgres", "PostgreSQL"), ("clients", "clients")]
    all_one, all_many = sum(one.values()), sum(many.values())
    cells = " | ".join(f"{one[side] / many[side]:.1f}" for side, _ in sides)
    return [
        "",
        "| CPU ms per event | " + " | ".join(title for _, title in sides) + " | all |",
        "| --- | --- | --- | --- | --- |",
        "| `POST /v1/events` | "
        + " | ".join(f"{one[side]:.3f}" for side, _ in sides)
        + f" | {all_one:.3f} |",
        "| `POST /v1/events/batch` | "
        + " | ".join(f"{many[side]:.3f}" for side, _ in sides)
        + f" | {all_many:.3f} |",
        f"| single ÷ batch | {cells} | {all_one / all_many:.1f} |",
    ]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500, help="events per transaction")
    parser.add_argument(
        "--http-events", type=int, default=20_000,
        help="events sent over HTTP one at a time, and as many in batches (0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--http-rounds", type=int, default=4,
        help="rounds taking turns: a share of the events one at a time, then a share in batches",
    )  # fmt: skip
    parser.add_argument("--http-connections", type=int, default=8, help="clients, one at a time")
    parser.add_argument("--batch-connections", type=int, default=4, help="clients, batches")
    parser.add_argument("--out", type=Path, default=None, help="add the section to this file")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.child:
        child(opts.child, opts.batch_size)
        return 0
    results = run(opts)
    text = section(results)
    print(text)
    if opts.out:
        report.write_section(opts.out, SECTION_START, SECTION_END, text)
        log(f"wrote {opts.out}")
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if results["same_result"] else 1


if __name__ == "__main__":
    sys.exit(main())
