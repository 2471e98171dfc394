"""Where a request's time goes, in-process: `python -m bench.profile [KIND...]`.

Runs requests through Flask's test client against a PostgreSQL database of its own (made and
migrated on first use, kept between runs; `--fresh` remakes it) and prints, per request kind,
milliseconds of wall and CPU time per request and SQL statements per request, beside the bare
baselines of `bench/bare_app.py`. `--pyinstrument` adds a call tree per kind.

No gunicorn, no load generator, no other process competing: a quick, repeatable way to see
what a change to the hot paths does before running `make bench`.
"""

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime

from bench import http, infra

MEMBERS = 2000


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "kinds", nargs="*", default=["bare", "member", "me", "bare-tpcb", "order"],
        help="bare (PK select), member, me, bare-tpcb, order (of an existing member), "
        "first-order (of a new customer, enrolled by it), batch (500 paid orders in one "
        "POST /v1/events/batch, as bench.imports sends them); bare-raw, bare-tpcb-raw",
    )  # fmt: skip
    parser.add_argument("-n", type=int, default=500, help="requests per kind (after warm-up)")
    parser.add_argument(
        "--db",
        default=os.environ.get("BENCH_PROFILE_DB")
        or f"bench_profile_{os.environ.get('USER', 'u')}",
        help="the database to use (default: $BENCH_PROFILE_DB, else bench_profile_$USER)",
    )
    parser.add_argument("--fresh", action="store_true", help="drop and remake the database")
    parser.add_argument("--pyinstrument", action="store_true", help="print a call tree per kind")
    return parser.parse_args(argv)


def prepare(name: str, fresh: bool) -> tuple[str, str]:
    url = infra.pg_url(name)
    key_file = infra.OUT / f"{name}.key"
    if fresh or not infra.database_exists(name) or not key_file.exists():
        infra.drop_database(name)
        infra.admin(f'CREATE DATABASE "{name}"')
        infra.migrate(url)
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text(infra.create_api_key(url, "storefront"))
        http.seed_members(url, MEMBERS)
    else:
        infra.migrate(url)
    return url, key_file.read_text().strip()


def requests_for(url: str, key: str, members: int = MEMBERS) -> dict:
    from bench.bare_app import app as bare_app
    from loyalty import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://"),
            "SECRET_KEYS": [http.SECRET],
            "SECRET_KEY": http.SECRET,
            "WIDGET_RATE_LIMIT": "1000000/minute",
        }
    )
    client, bare = app.test_client(), bare_app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    made = client.post("/v1/widget-tokens", json={"customer_id": "bm_7"}, headers=headers)
    widget = {"Authorization": f"Bearer {made.get_json()['token']}"}
    run = f"{os.getpid()}_{time.time_ns()}"
    counter = [0]

    def order(first: bool = False):
        counter[0] += 1
        customer = f"bf_{run}_{counter[0]}" if first else f"bm_{random.randint(1, members)}"
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        ident = f"{run}_{counter[0]}"
        body = {"id": f"evt_{ident}", "type": "order.paid", "occurred_at": at,
                "order": {"id": f"ord_{ident}", "customer_id": customer, "currency": "USD",
                          "email": f"{customer}@example.com", "shipping": 500, "tax": 800,
                          "lines": [{"sku": "S1", "quantity": 2, "unit_price": 4200}]}}  # fmt: skip
        return client.post("/v1/events", json=body, headers=headers)

    def batch():
        # A third of the orders enrol a new customer, the rest are orders of existing members.
        counter[0] += 1
        events = []
        for i in range(500):
            ident = f"{run}_{counter[0]}_{i}"
            customer = f"bf_{ident}" if i % 3 == 0 else f"bm_{random.randint(1, members)}"
            at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            events.append(
                {"id": f"evt_{ident}", "type": "order.paid", "occurred_at": at,
                 "order": {"id": f"ord_{ident}", "customer_id": customer, "currency": "USD",
                           "email": f"{customer}@example.com", "shipping": 500, "tax": 0,
                           "lines": [{"sku": f"SKU{i % 50}", "quantity": 1 + i % 3,
                                      "unit_price": 1000 + 37 * i, "discount": 0}]}}
            )  # fmt: skip
        return client.post("/v1/events/batch", json={"events": events}, headers=headers)

    return app, {
        "batch": batch,
        "bare": lambda: bare.get(f"/pk/{random.randint(1, members)}"),
        "bare-tpcb": lambda: bare.post("/tpcb"),
        "bare-raw": lambda: bare.get(f"/pk-raw/{random.randint(1, members)}"),
        "bare-tpcb-raw": lambda: bare.post("/tpcb-raw"),
        "member": lambda: client.get(
            f"/v1/members/bm_{random.randint(1, members)}", headers=headers
        ),
        "me": lambda: client.get("/v1/me", headers=widget),
        "order": order,
        "first-order": lambda: order(first=True),
    }


def measure(url: str, key: str, names: list[str], n: int, members: int = MEMBERS, on_kind=None):
    """{kind: {wall_ms, cpu_ms, statements}} per request, after a warm-up of 30 requests.

    `url` must hold members bm_1..bm_`members` and, for bare-tpcb, pgbench's tables."""
    os.environ["DATABASE_URL"] = url  # bench.bare_app reads it at import
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    statements = [0]

    def count(*_args):
        statements[0] += 1

    _app, kinds = requests_for(url, key, members)
    results = {}
    for name in ("before_cursor_execute", "commit", "rollback"):
        event.listen(Engine, name, count)
    try:
        for kind in names:
            call = kinds[kind]
            for _ in range(30):
                response = call()
                if response.status_code != 200:
                    text = response.get_data(as_text=True)
                    raise RuntimeError(f"{kind}: {response.status_code} {text}")
            statements[0] = 0
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                call()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            results[kind] = {
                "wall_ms": round(wall * 1000 / n, 3),
                "cpu_ms": round(cpu * 1000 / n, 3),
                "statements": round(statements[0] / n, 1),
            }
            if on_kind:
                on_kind(kind, results[kind], call)
    finally:
        for name in ("before_cursor_execute", "commit", "rollback"):
            event.remove(Engine, name, count)
    return results


def main(argv=None) -> int:
    opts = parse_args(argv)
    url, key = prepare(opts.db, opts.fresh)
    if "bare-tpcb" in opts.kinds:
        infra.pgbench_init(url, 1)
    print(f"{'kind':<12} {'wall ms':>8} {'cpu ms':>8} {'statements':>11}")

    def show(kind, result, call):
        print(
            f"{kind:<12} {result['wall_ms']:8.3f} {result['cpu_ms']:8.3f}"
            f" {result['statements']:11.1f}"
        )
        if opts.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            with profiler:
                for _ in range(opts.n):
                    call()
            print(profiler.output_text(unicode=False, color=False, time="percent_of_total"))

    try:
        measure(url, key, opts.kinds, opts.n, on_kind=show)
    except RuntimeError as exc:
        sys.exit(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
