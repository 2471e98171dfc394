"""HTTP benchmarks: order events and balance reads, each beside its bare baseline.

One fresh, migrated database holds the app's tables, `--http-members` members made with SQL,
and pgbench's tables. Servers run one at a time (the machine has two cores and its PostgreSQL
is shared), and the app and its baseline alternate for `--rounds` rounds so that noise from
other work on the machine lands on both.
"""

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from bench import infra
from bench.infra import LoadResult, log

LUA = infra.BENCH / "load.lua"
SECRET = "bench-secret-not-for-production-0123456789abcdef"  # noqa: S105 - throwaway database


@dataclass
class Series:
    """One thing measured in several rounds."""

    label: str
    runs: list[LoadResult] = field(default_factory=list)

    @property
    def rps(self) -> float:
        seconds = sum(r.seconds for r in self.runs)
        return sum(r.requests for r in self.runs) / seconds if seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return sorted(r.p50_ms for r in self.runs)[len(self.runs) // 2] if self.runs else 0.0

    @property
    def p99_ms(self) -> float:  # the worst round: a p99 target should hold in every round
        return max((r.p99_ms for r in self.runs), default=0.0)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs)

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "requests": self.requests,
            "errors": self.errors,
            "rounds": [round(r.rps, 1) for r in self.runs],
            "p99_rounds": [round(r.p99_ms, 2) for r in self.runs],
        }


def seed_members(url: str, count: int) -> tuple[int, int]:
    """`count` members bm_1..bm_N with zero balances, in one statement; their id range."""
    with infra.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO members (customer_id, email, email_normalized, name, enrolled_at,
                                 points_available, points_pending, points_lifetime, tier_id)
            SELECT 'bm_' || i, 'bm_' || i || '@example.com', 'bm_' || i || '@example.com',
                   'Bench ' || i, now() - interval '400 days', 0, 0, 0,
                   (SELECT id FROM tiers WHERE threshold = 0)
            FROM generate_series(1, %s) AS i
            """,
            (count,),
        )
        low, high = conn.execute(
            "SELECT min(id), max(id) FROM members WHERE customer_id LIKE 'bm_%'"
        ).fetchone()
        conn.commit()
    enrolled(url, low, high)
    with infra.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return low, high


def enrolled(url: str, low: int, high: int) -> None:
    """Run every domain's `member_enrolled` hook for the members made with SQL (referral share
    codes, signup bonuses...), so they look like members enrolled through the API."""
    from sqlalchemy import select

    from loyalty import create_app
    from loyalty.extensions import db
    from loyalty.hooks import hooks
    from loyalty.members.models import Member

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://")}
    )
    with app.app_context():
        members = db.session.scalars(select(Member).where(Member.id.between(low, high)))
        for member in members:
            for hook in hooks().member_enrolled:
                hook(db.session, member)
        db.session.commit()
        db.engine.dispose()


def _load(server, label, seconds, connections, **env) -> LoadResult:
    if seconds <= 0:  # no warm-up
        return LoadResult(label, 0, 0.0, 0.0, 0.0, 0.0, 0)
    return infra.wrk(
        label,
        server.base_url,
        LUA,
        seconds=seconds,
        connections=connections,
        env={name: str(value) for name, value in env.items()},
    )


def _rounds(rounds: int, contenders: list) -> None:
    """Run each contender once per round, alternating which goes first."""
    for number in range(rounds):
        order = contenders if number % 2 == 0 else list(reversed(contenders))
        for run in order:
            run(number)


def order_events(opts, url: str, key: str, members: int) -> dict:
    """Section 1: `order.paid` at N connections vs the bare tpcb endpoint vs pgbench itself,
    and first orders of new customers (auto-enrolment) vs those repeat orders."""
    seconds, conns = opts.seconds, opts.connections
    log(f"pgbench --initialize --scale {opts.pgbench_scale}")
    infra.pgbench_init(url, opts.pgbench_scale)
    infra.settle(url)
    log(f"pgbench tpcb-like, {conns} clients, {seconds}s")
    pgbench = infra.pgbench(url, seconds=seconds, clients=conns)
    app_env = infra.app_env(url, SECRET_KEYS=SECRET)
    bare = Series("bare Flask tpcb (POST /tpcb)")
    events = Series("order.paid events (POST /v1/events)")
    first = Series("order.paid of new customers (first orders, enrolled)")
    generated = first_generated = 0

    def run_bare(number):
        with infra.gunicorn(
            "bare",
            "bench.bare_app:app",
            {**app_env, "BENCH_PGBENCH_SCALE": str(opts.pgbench_scale)},
        ) as server:
            _load(server, "warm-up", opts.warmup, conns, BENCH_MODE="post", BENCH_PREFIX="/tpcb")
            infra.analyze(url)  # as on the events' side
            log(f"bare tpcb round {number + 1}")
            bare.runs.append(
                _load(server, bare.label, seconds, conns, BENCH_MODE="post", BENCH_PREFIX="/tpcb")
            )

    def run_events(number):
        nonlocal generated, first_generated
        with infra.gunicorn("app", "wsgi:app", app_env) as server:
            # Repeat orders of existing members and first orders of new customers (each
            # request another customer, enrolled by its order) on the same server, taking
            # turns at going first.
            kinds = [("order", events), ("first", first)]
            for mode, series in kinds if number % 2 == 0 else reversed(kinds):
                common = {"BENCH_MODE": mode, "BENCH_KEY": key, "BENCH_COUNT": members}
                common["BENCH_PREFIX"] = "/v1/events"
                tag = f"{mode[0]}{number}"
                warm = _load(server, "warm-up", opts.warmup, conns, BENCH_RUN=f"w{tag}", **common)
                infra.analyze(url)  # the tables the warm-up grew: autovacuum's job in production
                log(f"{'order events' if mode == 'order' else 'first orders'} round {number + 1}")
                run = _load(server, series.label, seconds, conns, BENCH_RUN=f"r{tag}", **common)
                series.runs.append(run)
                generated += warm.generated + run.generated
                if mode == "first":
                    first_generated += warm.generated + run.generated
                drain(url)

    _rounds(opts.rounds, [run_bare, run_events])
    check = check_ledger(url, generated, first_generated)
    return {
        "pgbench": _single(pgbench),
        "bare_tpcb": bare.as_dict(),
        "events": events.as_dict(),
        "first_orders": first.as_dict(),
        "ratio_bare": events.rps / bare.rps if bare.rps else 0.0,
        # First orders' throughput ÷ repeat orders': ≥ 2/3 is a first order costing at most
        # 1.5× a repeat one.
        "ratio_first": first.rps / events.rps if events.rps else 0.0,
        "ratio_pgbench": events.rps / pgbench.rps if pgbench.rps else 0.0,
        "check": check,
    }


def drain(url: str, timeout: float = 30) -> None:
    """Let the server finish what wrk sent but stopped waiting for when its time was up.

    Those requests are in the server's socket buffers; stopping gunicorn at once would drop
    them unread (a real sender would retry them, with the same event id).
    """
    last, stable, deadline = -1, 0, time.monotonic() + timeout
    with infra.connect(url, autocommit=True) as conn:
        while stable < 3 and time.monotonic() < deadline:
            count = conn.execute("SELECT count(*) FROM processed_events").fetchone()[0]
            stable = stable + 1 if count == last else 0
            last = count
            time.sleep(0.3)


def _single(result: LoadResult) -> dict:
    return {
        "label": result.label,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "requests": result.requests,
        "errors": result.errors,
    }


def check_ledger(url: str, generated: int, first_generated: int = 0) -> dict:
    """Zero lost or duplicated points: one earn entry per event sent, one member (with one
    share code) per first order sent, and verify-ledger clean."""
    with infra.connect(url) as conn:
        new_members, new_codes = conn.execute(
            "SELECT count(*), count(referral_codes.code) FROM members"
            " LEFT JOIN referral_codes ON referral_codes.member_id = members.id"
            " WHERE members.customer_id LIKE 'bn\\_%'"
        ).fetchone()
        entries, distinct_orders, points = conn.execute(
            "SELECT count(*), count(DISTINCT source_id), coalesce(sum(points), 0)"
            " FROM ledger_entries WHERE source_type = 'order'"
        ).fetchone()
        processed = conn.execute("SELECT count(*) FROM processed_events").fetchone()[0]
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    verify = infra.flask(url, "loyalty", "verify-ledger", check=False)
    return {
        "events_sent": generated,
        "processed_events": processed,
        "orders": orders,
        "ledger_entries": entries,
        "distinct_orders_in_ledger": distinct_orders,
        "points": int(points),
        "verify_ledger_ok": verify.returncode == 0,
        "verify_ledger_output": (verify.stdout + verify.stderr).strip().splitlines()[-1:],
        "first_orders_sent": first_generated,
        "new_members": new_members,
        "new_members_with_code": new_codes,
        "ok": verify.returncode == 0
        and entries == generated == processed == distinct_orders
        and new_members == new_codes == first_generated,
    }


def widget_tokens(server, key: str, count: int) -> list[str]:
    """Tokens from the real endpoint (`POST /v1/widget-tokens`) for members bm_1..bm_count."""
    tokens = []
    for i in range(1, count + 1):
        request = urllib.request.Request(  # noqa: S310 - our own 127.0.0.1 server
            server.base_url + "/v1/widget-tokens",
            data=json.dumps({"customer_id": f"bm_{i}"}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                tokens.append(json.loads(response.read())["token"])
        except urllib.error.HTTPError as error:
            if error.code == 429 and tokens:
                break  # rate-limited: the tokens we have are enough to spread the reads
            raise
    return tokens


def has_route(server, path: str) -> bool:
    try:
        with urllib.request.urlopen(server.base_url + path, timeout=5):  # noqa: S310
            return True
    except urllib.error.HTTPError as error:
        return error.code != 404


def balance_reads(opts, url: str, key: str, members: int, id_range: tuple[int, int]) -> dict:
    """Section 2: GET /v1/members/{id} and GET /v1/me vs a bare primary-key select."""
    seconds, conns = opts.seconds, opts.connections
    infra.settle(url)  # the order rounds' writes are not the reads' to flush
    app_env = infra.app_env(url, SECRET_KEYS=SECRET)
    low, high = id_range
    bare = Series("bare Flask PK select (GET /pk/{id})")
    member = Series("GET /v1/members/{id}")
    me = Series("GET /v1/me (widget token)")
    token_file = infra.OUT / f"widget-tokens-{os.getpid()}.txt"
    state = {"me": None}

    def run_bare(number):
        with infra.gunicorn("bare", "bench.bare_app:app", app_env) as server:
            # Member ids low..high are contiguous: /pk/ + random(1..n) + offset via the prefix.
            path = {"BENCH_MODE": "path", "BENCH_PREFIX": "/pk/", "BENCH_COUNT": high}
            if low != 1:
                raise RuntimeError("bench members must start at id 1 in a fresh database")
            _load(server, "warm-up", opts.warmup, conns, **path)
            log(f"bare PK round {number + 1}")
            bare.runs.append(_load(server, bare.label, seconds, conns, **path))

    def run_app(number):
        with infra.gunicorn("app", "wsgi:app", app_env) as server:
            path = {"BENCH_MODE": "path", "BENCH_PREFIX": "/v1/members/bm_"}
            path.update(BENCH_COUNT=members, BENCH_KEY=key)
            _load(server, "warm-up", opts.warmup, conns, **path)
            log(f"GET /v1/members round {number + 1}")
            member.runs.append(_load(server, member.label, seconds, conns, **path))
            if state["me"] is None:
                state["me"] = has_route(server, "/v1/me") and has_route(server, "/v1/widget-tokens")
                if state["me"]:
                    tokens = widget_tokens(server, key, min(members, opts.tokens))
                    token_file.write_text("\n".join(tokens) + "\n")
            if state["me"]:
                mine = {"BENCH_MODE": "token", "BENCH_PREFIX": "/v1/me"}
                mine["BENCH_TOKENS"] = str(token_file)
                _load(server, "warm-up", opts.warmup, conns, **mine)
                log(f"GET /v1/me round {number + 1}")
                me.runs.append(_load(server, me.label, seconds, conns, **mine))

    _rounds(opts.rounds, [run_bare, run_app])
    token_file.unlink(missing_ok=True)
    result = {
        "bare_pk": bare.as_dict(),
        "member": member.as_dict(),
        "ratio_member": member.rps / bare.rps if bare.rps else 0.0,
        "me": me.as_dict() if state["me"] else None,
        "ratio_me": me.rps / bare.rps if state["me"] and bare.rps else None,
    }
    return result


def run(opts) -> dict:
    """Both HTTP sections on one fresh database, dropped at the end."""
    name = f"bench_http_{os.getpid()}"
    results = {}
    with infra.database(name) as url:
        log(f"database {name}: migrate, API key, {opts.http_members} members")
        infra.migrate(url)
        key = infra.create_api_key(url, "storefront")
        id_range = seed_members(url, opts.http_members)
        if "orders" in opts.sections:
            results["orders"] = order_events(opts, url, key, opts.http_members)
        if "reads" in opts.sections:
            results["reads"] = balance_reads(opts, url, key, opts.http_members, id_range)
        # Last: these send more events, after the ledger check of the measured ones.
        results["statements"] = statements_per_request(url, key, opts.http_members)
        results["in_process"] = in_process(opts, url, key)
        results["instructions"] = instructions(opts, url, key)
    return results


def instructions(opts, url: str, key: str) -> dict:
    """Instructions per request under callgrind (`bench.instructions`): the in-process
    figure the host's load does not move. {"skipped": reason} without valgrind."""
    from bench import instructions as counted

    reason = counted.unavailable()
    if reason:
        log(f"instructions per request: skipped, {reason}")
        return {"skipped": reason}
    names = ["bare", "bare-raw", "member", "me"]
    if "orders" in opts.sections:
        names += ["bare-tpcb", "bare-tpcb-raw", "order", "first-order"]
    n = 10 if opts.smoke else 100
    log(f"instructions per request under callgrind ({n} each): {', '.join(names)}")
    return counted.measure(url, key, names, n, members=opts.http_members)


def in_process(opts, url: str, key: str) -> dict:
    """CPU per request in this process with Flask's test client (`bench.profile`): what one
    request costs in Python, without gunicorn, wrk or the other requests competing."""
    from bench import profile

    names = ["bare", "member", "me"]
    if "orders" in opts.sections:  # pgbench's tables are there
        names += ["bare-tpcb", "order", "first-order"]
    n = 50 if opts.smoke else 2000
    log(f"in-process CPU per request ({n} each): {', '.join(names)}")
    return profile.measure(url, key, names, n, members=opts.http_members)


def statements_per_request(url: str, key: str, members: int) -> dict:
    """SQL statements (COMMIT/ROLLBACK included) one request makes, counted in-process with
    the test client; the bare baselines make 6 (tpcb: five + COMMIT) and 2 (SELECT +
    COMMIT), the app's reads 1 (autocommit). Both sides also ping the connection on checkout
    (pool_pre_ping)."""
    from datetime import UTC, datetime

    from sqlalchemy import event

    from loyalty import create_app
    from loyalty.extensions import db

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://")}
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    count = [0]
    customer = f"bm_{members}"

    def paid(n: int, customer: str = customer) -> dict:
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {"id": f"evt_count_{n}", "type": "order.paid", "occurred_at": at,
                "order": {"id": f"ord_count_{n}", "customer_id": customer, "currency": "USD",
                          "email": f"{customer}@example.com",
                          "lines": [{"sku": "S1", "quantity": 1, "unit_price": 4200}]}}  # fmt: skip

    def counted(call) -> int:
        count[0] = 0
        response = call()
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.get_data(as_text=True)}")
        return count[0]

    with app.app_context():
        engine = db.engine

        def on_statement(*_args):
            count[0] += 1

        event.listen(engine, "before_cursor_execute", on_statement)
        event.listen(engine, "commit", on_statement)
        event.listen(engine, "rollback", on_statement)
        client.post("/v1/events", json=paid(1), headers=headers)  # the member's first order
        client.post("/v1/events", json=paid(3, "bn_count_1"), headers=headers)  # a new one's
        member_path = f"/v1/members/{customer}"
        result = {
            "order.paid": counted(lambda: client.post("/v1/events", json=paid(2), headers=headers)),
            # After one first order: the caches enrolment reads (sign-up rules, webhook
            # subscriptions) loaded, as in a running server.
            "order.paid of a new customer (enrolled)": counted(
                lambda: client.post("/v1/events", json=paid(4, "bn_count_2"), headers=headers)
            ),
            "GET /v1/members/{id}": counted(lambda: client.get(member_path, headers=headers)),
        }
        token = client.post("/v1/widget-tokens", json={"customer_id": customer}, headers=headers)
        if token.status_code in (200, 201):
            widget = {"Authorization": f"Bearer {token.get_json()['token']}"}
            result["GET /v1/me"] = counted(lambda: client.get("/v1/me", headers=widget))
        engine.dispose()
    return result
