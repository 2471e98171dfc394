"""The baselines: bare Flask endpoints on the app's own stack, minus the app.

Same gunicorn setup, same driver (psycopg 3), same SQLAlchemy connection pool with the same
options as `create_app` — no authentication, validation, ORM or idempotency. What the app costs
on top of these is what the ratios measure.

- `POST /tpcb`: pgbench's tpcb-like transaction (five statements, one commit) on the
  `pgbench_*` tables that `pgbench --initialize` created in the same database.
- `GET /pk/<id>`: one primary-key select of a member's balances.

`/tpcb-raw` and `/pk-raw/<id>` do the same on psycopg's cursor instead of through
SQLAlchemy's `Connection.execute` (the way the app's hot statements run, `loyalty.fastsql`):
`bench.instructions` counts them too, so a reader sees what that part of the app's gain is worth.
"""

import os
import random

from flask import Flask, jsonify
from sqlalchemy import create_engine, text

from loyalty.config import from_environment

app = Flask(__name__)
engine = create_engine(
    from_environment("/tmp", os.environ)["SQLALCHEMY_DATABASE_URI"],  # noqa: S108 - unused for PG
    pool_pre_ping=True,
)
SCALE = int(os.environ.get("BENCH_PGBENCH_SCALE", "1"))

TPCB = [
    text("UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid"),
    text("SELECT abalance FROM pgbench_accounts WHERE aid = :aid"),
    text("UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid"),
    text("UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid"),
    text(
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)"
        " VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP)"
    ),
]
MEMBER_BY_PK = text(
    "SELECT id, points_available, points_pending, points_lifetime FROM members WHERE id = :id"
)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


def _tpcb_params() -> dict:
    """pgbench's tpcb-like choice: a random account, teller and branch, and a delta."""
    return {
        "aid": random.randint(1, 100_000 * SCALE),
        "bid": random.randint(1, SCALE),
        "tid": random.randint(1, 10 * SCALE),
        "delta": random.randint(-5000, 5000),
    }


@app.post("/tpcb")
def tpcb():
    params = _tpcb_params()
    with engine.begin() as conn:
        balance = None
        for statement in TPCB:
            result = conn.execute(statement, params)
            if result.returns_rows:
                balance = result.scalar_one()
    return jsonify(aid=params["aid"], abalance=balance)


@app.get("/pk/<int:member_id>")
def member_by_pk(member_id):
    with engine.connect() as conn:
        row = conn.execute(MEMBER_BY_PK, {"id": member_id}).one_or_none()
        # COMMIT, as the app's reads end (loyalty.extensions.read_connection): psycopg keeps
        # its prepared statements across a COMMIT and drops them all on the pool's ROLLBACK.
        conn.commit()
    if row is None:
        return jsonify(error="not found"), 404
    return jsonify(id=row.id, available=row[1], pending=row[2], lifetime=row[3])


TPCB_RAW = [str(statement.compile(engine)) for statement in TPCB]
MEMBER_BY_PK_RAW = str(MEMBER_BY_PK.compile(engine))


@app.post("/tpcb-raw")
def tpcb_raw():
    params = _tpcb_params()
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        balance = None
        for sql in TPCB_RAW:
            cursor.execute(sql, params, prepare=True)
            if cursor.description is not None:
                balance = cursor.fetchone()[0]
        conn.connection.dbapi_connection.commit()
    return jsonify(aid=params["aid"], abalance=balance)


@app.get("/pk-raw/<int:member_id>")
def member_by_pk_raw(member_id):
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(MEMBER_BY_PK_RAW, {"id": member_id}, prepare=True)
        row = cursor.fetchone()
        conn.connection.dbapi_connection.commit()
    if row is None:
        return jsonify(error="not found"), 404
    return jsonify(id=row[0], available=row[1], pending=row[2], lifetime=row[3])
