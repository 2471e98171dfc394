"""Reports from the aggregates equal the reference recomputation from `orders`.

A Hypothesis state machine sends order events through the real service (paid, partial and
full refunds, cancels, out-of-order times, members enrolled and erased), refreshes the
aggregates at random moments (in small chunks, or not at all until a check), and checks every
report — retention over random periods, cohorts by first month and by a label, segment
thresholds, counts, rows and award ids now and at a past time, the overview's members, active
members and retention now and at a past time — against `reference`, and `verify-reports`' row
checks. Bulk SQL moves members' enrolments and erases members (what `report_members` copies
of them). Times are on a 6-hour grid: SQLite's epoch arithmetic is then
exact (its floats would otherwise differ from PostgreSQL's in the last bit).
"""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from sqlalchemy import case, func, select, text, update

from loyalty.errors import DomainError
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.orders import service as orders
from loyalty.orders.models import Order
from loyalty.orders.schemas import EventSchema
from loyalty.program.service import get_program
from loyalty.reports import aggregates, overview, reference, service
from loyalty.reports.models import ReportMember
from loyalty.reports.verify import find_report_drift
from tests import factories as f
from tests.conftest import rolled_back

BASE = datetime(2025, 1, 1, tzinfo=UTC)
CUSTOMERS = [f"c{n}" for n in range(6)]
moments = st.builds(
    lambda days, quarters: BASE + timedelta(days=days, hours=6 * quarters),
    st.integers(0, 400),
    st.integers(0, 3),
)


def parity_labels():
    """A label source like the domains': "even"/"odd" for some customers, none for others."""
    label = case((Order.customer_id.in_(["c0", "c2"]), "even"), else_="odd")
    return (
        select(Order.customer_id.label("customer_id"), label.label("cohort"))
        .where(Order.status == "paid", Order.customer_id.in_(["c0", "c2", "c3"]))
        .distinct()
    )


SOURCES = {"parity": parity_labels}


class ReportsMachine(RuleBasedStateMachine):
    app = None  # set by the test

    def __init__(self):
        super().__init__()
        self._context = rolled_back(self.app)
        self._context.__enter__()
        self.session = db.session
        self.app.config["REPORTS_REFRESH_ON_READ_MAX"] = 0  # refreshes are the machine's
        get_program(self.session).auto_enroll = False
        self.session.commit()
        self.paid: list[tuple[str, str]] = []  # (order id, customer id)

    def teardown(self):
        self.app.config["REPORTS_REFRESH_ON_READ_MAX"] = 10000
        self._context.__exit__(None, None, None)

    def send(self, event: dict) -> None:
        data = EventSchema().load(event)
        try:
            orders.process_event(self.session, hooks(), data, orders.body_hash(event))
            self.session.commit()
        except DomainError:  # refused (e.g. a refund of a canceled order): changes nothing
            self.session.rollback()

    @rule(customer=st.sampled_from(CUSTOMERS), at=moments)
    def enroll(self, customer, at):
        if self.session.scalar(select(Member.id).where(Member.customer_id == customer)):
            return
        members.enroll(self.session, hooks(), customer, f"{customer}@example.com", enrolled_at=at)
        self.session.commit()

    @rule(
        bought=st.lists(
            st.tuples(st.sampled_from(CUSTOMERS), moments, st.integers(0, 30_000)),
            min_size=1,
            max_size=4,
        )
    )
    def pay(self, bought):
        for customer, at, amount in bought:
            event = f.paid(customer, lines=[f.line(unit_price=amount)], occurred_at=at)
            self.send(event)
            self.paid.append((event["order"]["id"], customer))

    @precondition(lambda self: self.paid)
    @rule(data=st.data(), full=st.booleans())
    def refund(self, data, full):
        order_id, customer = data.draw(st.sampled_from(self.paid))
        order = self.session.scalar(select(Order).where(Order.order_id == order_id))
        left = order.eligible_amount - order.refunded_amount
        if order.status != "paid" or left <= 0:
            return
        amount = left if full else data.draw(st.integers(1, left))
        self.send(f.refunded(order_id, customer, amount=amount, occurred_at=order.occurred_at))

    @rule(customer=st.sampled_from(CUSTOMERS), at=moments)
    def cancel(self, customer, at):
        """An order canceled before it was paid (a paid one is refunded instead)."""
        self.send(f.canceled(f.next_id("ord"), customer, occurred_at=at))

    @rule(customer=st.sampled_from(CUSTOMERS))
    def erase(self, customer):
        member = self.session.scalar(select(Member).where(Member.customer_id == customer))
        if member is None:
            return
        members.erase(self.session, hooks(), member, actor="test")
        self.session.commit()

    @rule(customer=st.sampled_from(CUSTOMERS), at=moments)
    def move_enrolment(self, customer, at):
        """A writer other than the service (bulk SQL) moves a member's enrolment."""
        self.session.execute(
            update(Member).where(Member.customer_id == customer).values(enrolled_at=at)
        )
        self.session.commit()

    @rule(customer=st.sampled_from(CUSTOMERS))
    def erase_by_sql(self, customer):
        """Bulk SQL marks a member erased and leaves its customer id: erased all the same."""
        self.session.execute(
            update(Member)
            .where(Member.customer_id == customer, Member.erased_at.is_(None))
            .values(erased_at=datetime.now(UTC))
        )
        self.session.commit()

    @rule(batch=st.sampled_from([1, 2, 1000]))
    def refresh(self, batch):
        aggregates.refresh(self.session, batch)

    @rule(data=st.data(), inline=st.booleans())
    def check(self, data, inline):
        if inline:  # the reports refresh first themselves
            self.app.config["REPORTS_REFRESH_ON_READ_MAX"] = 10000
        else:
            aggregates.refresh(self.session, data.draw(st.sampled_from([3, 1000])))
        try:
            self.compare(data)
        finally:
            self.app.config["REPORTS_REFRESH_ON_READ_MAX"] = 0

    def compare(self, data):
        session = self.session
        lengths = st.sampled_from([6, 24 * 30, 24 * 200, 24 * 500])
        for start, hours in data.draw(
            st.lists(st.tuples(moments, lengths), min_size=3, max_size=3)
        ):
            end = start + timedelta(hours=hours)
            mine = service.retention(session, start, end)
            assert mine.pop("data_as_of") is not None
            assert mine == reference.retention(session, start, end)
        for by in ("first_order_month", "parity"):
            mine = service.cohorts(session, by, SOURCES)
            mine.pop("data_as_of")
            assert mine == reference.cohorts(session, by, SOURCES)
        for as_of in (datetime.now(UTC), data.draw(moments)):
            given = {"active_days": data.draw(st.sampled_from([30, 90])), "frequent_orders": 2}
            thresholds = service.segment_thresholds(session, as_of=as_of, **given)
            assert thresholds == reference.segment_thresholds(session, as_of=as_of, **given)
            mine = service.segments(session, as_of=as_of, thresholds=thresholds)
            mine.pop("data_as_of")
            assert mine == reference.segments(session, as_of=as_of, thresholds=thresholds)
            rows = list(service.segment_rows(session, as_of=as_of, thresholds=thresholds))
            assert rows == list(reference.segment_rows(session, as_of=as_of, thresholds=thresholds))
            for segment in ("loyal_high_value", "new_subscribers", "low_value_inactive"):
                ids = service.segment_member_ids(
                    segment, as_of=as_of, thresholds=thresholds, session=session
                )
                expected = reference.segment_member_ids(segment, as_of=as_of, thresholds=thresholds)
                assert sorted(session.scalars(ids)) == sorted(session.scalars(expected))
        for now in (datetime.now(UTC), data.draw(moments)):
            figures = overview.overview(session, now)
            assert figures.pop("data_as_of") is not None
            assert figures["active_members"] == reference.active_members(
                session, now, overview.ACTIVE_DAYS
            )
            assert figures["retention"] == reference.retention_groups(
                session, overview.window_start(now), now
            )
            assert figures["members"] == session.scalar(
                select(func.count()).select_from(Member).where(Member.erased_at.is_(None))
            )
        assert find_report_drift(session, SOURCES) == []
        assert aggregates.pending(session) == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_reports_from_aggregates_equal_the_recomputation(app):
    ReportsMachine.app = app
    ReportsMachine.TestCase.settings = settings(
        max_examples=8,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    ReportsMachine.TestCase().runTest()


# --- The trigger marks what every writer changes ------------------------------------------------


def marks(session) -> tuple[set, set]:
    customers = set(session.scalars(text("SELECT customer FROM report_dirty_customers")))
    members_ = set(session.scalars(text("SELECT member_id FROM report_dirty_members")))
    return customers, members_


def send(session, event) -> None:
    data = EventSchema().load(event)
    orders.process_event(session, hooks(), data, orders.body_hash(event))
    session.commit()


def test_the_trigger_marks_paid_refunded_canceled_and_erased_orders(app, session):
    app.config["REPORTS_REFRESH_ON_READ_MAX"] = 0
    try:
        get_program(session).auto_enroll = False
        member, _ = members.enroll(session, hooks(), "m1", "m1@example.com")
        session.commit()
        aggregates.refresh(session)
        assert marks(session) == (set(), set())
        paid = f.paid("m1", occurred_at=BASE)
        send(session, paid)
        assert marks(session) == ({"m1"}, {member.id})
        aggregates.refresh(session)
        assert marks(session) == (set(), set())
        # A change to a column the reports do not read marks nothing.
        session.execute(text("UPDATE orders SET points_awarded = points_awarded"))
        session.commit()
        assert marks(session) == (set(), set())
        send(session, f.refunded(paid["order"]["id"], "m1", amount=100, occurred_at=BASE))
        assert marks(session) == ({"m1"}, {member.id})
        aggregates.refresh(session)
        # A canceled order is no paid order: nothing to mark.
        send(session, f.canceled("ord_never_paid", "m1", occurred_at=BASE))
        assert marks(session) == (set(), set())
        # A full refund leaves the order paid, at a value of 0.
        send(session, f.refunded(paid["order"]["id"], "m1", amount=4900, occurred_at=BASE))
        assert marks(session) == ({"m1"}, {member.id})
        aggregates.refresh(session)
        send(session, f.paid("m1", occurred_at=BASE))
        aggregates.refresh(session)
        members.erase(session, hooks(), member, actor="test")
        session.commit()
        # Erasure takes the customer id off the orders: the old customer's rows go at once
        # (no copy of the id is left), the new one ("erased:<id>") waits for the refresh.
        assert marks(session) == ({f"erased:{member.id}"}, {member.id})
        stored = session.scalars(text("SELECT customer FROM report_customers")).all()
        assert "m1" not in stored
        # Bulk SQL is a writer like any other.
        aggregates.refresh(session)
        later = "datetime(occurred_at, '+1 day')"
        if session.get_bind().dialect.name == "postgresql":
            later = "occurred_at + interval '1 day'"
        session.execute(text(f"UPDATE orders SET occurred_at = {later}"))
        session.commit()
        assert marks(session)[0] == {f"erased:{member.id}"}
        aggregates.refresh(session)
        assert find_report_drift(session, {}) == []
        assert reference.retention(session, BASE, BASE + timedelta(days=30)) == {
            k: v
            for k, v in service.retention(session, BASE, BASE + timedelta(days=30)).items()
            if k != "data_as_of"
        }
    finally:
        app.config["REPORTS_REFRESH_ON_READ_MAX"] = 10000


def test_what_report_members_copies_of_a_member_follows_it_at_once(app, session):
    """`report_members` carries the member's customer id, erasure and enrolment: a trigger on
    `members` writes a change at once (an erasure leaves no copy of the customer id) and marks
    the member for the next refresh."""
    app.config["REPORTS_REFRESH_ON_READ_MAX"] = 0
    try:
        get_program(session).auto_enroll = False
        member, _ = members.enroll(session, hooks(), "m1", "m1@example.com", enrolled_at=BASE)
        session.commit()
        send(session, f.paid("m1", occurred_at=BASE + timedelta(days=1)))
        aggregates.refresh(session)

        def copied() -> ReportMember:
            session.expire_all()
            return session.get(ReportMember, member.id)

        assert (copied().customer_id, copied().erased) == ("m1", False)
        assert copied().enrolled_at == BASE
        # A change to what the reports do not read of the member marks nothing.
        session.execute(
            update(Member).values(name="Someone", points_available=Member.points_available + 5)
        )
        session.commit()
        assert marks(session) == (set(), set())
        # Bulk SQL moves the enrolment: written at once, and marked.
        later = BASE + timedelta(days=2)
        session.execute(update(Member).where(Member.id == member.id).values(enrolled_at=later))
        session.commit()
        assert copied().enrolled_at == later
        assert marks(session) == (set(), {member.id})
        aggregates.refresh(session)
        assert find_report_drift(session, {}) == []
        # The member is now enrolled after its order: no buyer before that.
        thresholds = service.segment_thresholds(
            session, as_of=BASE + timedelta(days=1, hours=12), active_days=90, frequent_orders=2
        )
        assert thresholds["buyers"] == 0
        members.erase(session, hooks(), member, actor="test")
        session.commit()
        assert (copied().customer_id, copied().erased) == (None, True)
        aggregates.refresh(session)
        assert find_report_drift(session, {}) == []
    finally:
        app.config["REPORTS_REFRESH_ON_READ_MAX"] = 10000


# --- verify-reports ------------------------------------------------------------------------------


def test_verify_reports_is_clean_then_finds_a_corrupted_row(app, session, runner):
    for n, customer in enumerate(("a", "b", "a", "c")):
        send(session, f.paid(customer, occurred_at=BASE + timedelta(days=40 * n)))
    aggregates.refresh(session)
    result = runner.invoke(args=["loyalty", "verify-reports"])
    assert result.exit_code == 0, result.output
    assert "reports ok" in result.output
    session.execute(text("UPDATE report_orders SET value = value + 1 WHERE customer = 'b'"))
    session.commit()
    result = runner.invoke(args=["loyalty", "verify-reports"])
    assert result.exit_code == 1
    assert "report_orders: 1 row(s) stored, not recomputed" in result.output
    # A rebuild puts it right.
    assert runner.invoke(args=["loyalty", "reports-refresh", "--rebuild"]).exit_code == 0
    assert runner.invoke(args=["loyalty", "verify-reports"]).exit_code == 0


def test_verify_reports_finds_a_wrong_cohort_rollup(app, session, runner):
    send(session, f.paid("a", occurred_at=BASE))
    aggregates.refresh(session)
    session.execute(text("UPDATE report_cohort_cells SET customers = customers + 1"))
    session.commit()
    result = runner.invoke(args=["loyalty", "verify-reports"])
    assert result.exit_code == 1
    assert "report_cohort_cells" in result.output
    assert "cohorts by first_order_month: items" in result.output


def test_verify_reports_finds_a_wrong_copy_of_a_member(app, session, runner):
    send(session, f.paid("a", occurred_at=BASE))  # enrols "a"
    aggregates.refresh(session)
    assert runner.invoke(args=["loyalty", "verify-reports"]).exit_code == 0
    session.execute(text("UPDATE report_members SET customer_id = 'someone else'"))
    session.commit()
    result = runner.invoke(args=["loyalty", "verify-reports"])
    assert result.exit_code == 1
    assert "report_members: 1 row(s) stored, not recomputed" in result.output
    assert "segments at" in result.output  # the listed ids read the copy


def test_the_refresh_job_runs_in_run_due(app, session, runner):
    app.config["REPORTS_REFRESH_ON_READ_MAX"] = 0
    try:
        send(session, f.paid("a", occurred_at=BASE))
        assert aggregates.pending(session) == 2  # the customer, and the member enrolled
        output = f.run_job(runner, "refresh-reports")
        assert "refresh-reports: 2 changed" in output
        assert aggregates.pending(session) == 0
        assert service.retention(session, BASE, BASE + timedelta(days=1))["customers"] == 1
    finally:
        app.config["REPORTS_REFRESH_ON_READ_MAX"] = 10000


def test_a_read_only_session_answers_from_the_aggregates_as_they_stand(app, session):
    """Many waiting (or a replica's session): no refresh; `data_as_of` says how old."""
    send(session, f.paid("a", occurred_at=BASE))
    aggregates.refresh(session)
    before = aggregates.data_as_of(session)
    send(session, f.paid("b", occurred_at=BASE))
    session.info["read_only"] = True
    try:
        answer = service.retention(session, BASE, BASE + timedelta(days=1))
    finally:
        session.info.pop("read_only")
    assert answer["customers"] == 1 and answer["data_as_of"] == before
    answer = service.retention(session, BASE, BASE + timedelta(days=1))  # on the primary
    assert answer["customers"] == 2 and answer["data_as_of"] > before


# --- Concurrency (PostgreSQL, real commits) ------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.concurrency
def test_refreshes_beside_concurrent_orders_leave_nothing_out(pg_app, pg_keys):
    """Orders from several connections (the API, and bulk SQL holding its transaction open
    after the trigger marked) while two refreshers and report readers run: once all is done,
    one more refresh and the aggregates equal the recomputation."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from loyalty.auth import create_api_key
    from tests.conftest import bearer

    with pg_app.app_context():
        _row, key = create_api_key(db.session, "reports", ["reports"])
        db.session.commit()
    reader = bearer(key)
    stop = threading.Event()

    def shop(worker: int) -> None:
        client = pg_app.test_client()
        for n in range(12):
            customer = f"cc{(worker * 7 + n) % 9}"
            event = f.paid(customer, occurred_at=BASE + timedelta(days=(n * 37 + worker) % 300))
            assert (
                client.post("/v1/events", json=event, headers=pg_keys["storefront"]).status_code
                == 200
            )
            if n % 3 == 0:
                refund = f.refunded(event["order"]["id"], customer, amount=700, occurred_at=BASE)
                client.post("/v1/events", json=refund, headers=pg_keys["storefront"])

    def bulk(_worker: int) -> None:
        with pg_app.app_context():
            for _ in range(10):
                # Three random orders, locked in id order first: two of these writers
                # locking theirs in random order deadlock each other (their own doing, not
                # the reports').
                db.session.execute(
                    text(
                        "UPDATE orders SET occurred_at = occurred_at - interval '1 hour' "
                        "WHERE id IN (SELECT id FROM orders WHERE id IN "
                        "(SELECT id FROM orders ORDER BY random() LIMIT 3) "
                        "ORDER BY id FOR UPDATE)"
                    )
                )
                time.sleep(0.03)  # marked, not committed: a refresh must not take it now
                db.session.commit()

    def refresher(_worker: int) -> None:
        with pg_app.app_context():
            while not stop.is_set():
                aggregates.refresh(db.session, 2)

    def read(_worker: int) -> None:
        client = pg_app.test_client()
        while not stop.is_set():
            answer = client.get(
                "/v1/reports/retention?from=2025-01-01&to=2026-01-01", headers=reader
            )
            assert answer.status_code == 200

    with ThreadPoolExecutor(max_workers=8) as pool:
        background = [pool.submit(refresher, 0), pool.submit(refresher, 1), pool.submit(read, 0)]
        writers = [pool.submit(shop, w) for w in range(3)] + [
            pool.submit(bulk, w) for w in range(2)
        ]
        try:
            for future in writers:
                future.result()
        finally:
            stop.set()
        for future in background:
            future.result()
    with pg_app.app_context():
        aggregates.refresh(db.session)
        assert aggregates.pending(db.session) == 0
        assert find_report_drift(db.session, hooks().report_cohorts) == []
    result = pg_app.test_cli_runner().invoke(args=["loyalty", "verify-reports"])
    assert result.exit_code == 0, result.output


# A change to the customer's orders that the trigger marks: an order changed (the row trigger),
# a new paid order (the statement trigger over the new rows).
_CHANGES = {
    "update": "UPDATE orders SET refunded_amount = 1000 WHERE customer_id = 'race'",
    "insert": (
        "INSERT INTO orders (order_id, customer_id, member_id, email_normalized, currency,"
        " status, occurred_at, total_amount, eligible_amount, refunded_amount, points_awarded,"
        " points_reversed, lines, attributes, detail, created_at)"
        " SELECT order_id || '-again', customer_id, member_id, email_normalized, currency,"
        " status, occurred_at + interval '1 day', total_amount, eligible_amount, 0, 0, 0,"
        " lines, attributes, detail, created_at FROM orders WHERE customer_id = 'race'"
    ),
}


@pytest.mark.postgres
@pytest.mark.concurrency
@pytest.mark.parametrize("change", sorted(_CHANGES))
def test_a_refresh_leaves_a_mark_whose_order_is_not_committed_yet(pg_app, pg_keys, change):
    """An order's transaction marked its customer and member (both already marked before) and
    has not committed: a refresh now must not take the marks, or the order would never be
    counted."""
    import threading

    client = pg_app.test_client()
    for at in (BASE, BASE + timedelta(days=3)):
        event = f.paid("race", occurred_at=at)
        assert (
            client.post("/v1/events", json=event, headers=pg_keys["storefront"]).status_code == 200
        )
    with pg_app.app_context():
        engine = db.engine
        with engine.connect() as order_tx:
            order_tx.execute(text(_CHANGES[change]))  # marked (already marked), not committed

            def refresh_now():
                with pg_app.app_context():
                    aggregates.refresh(db.session, 100)

            thread = threading.Thread(target=refresh_now)
            thread.start()
            thread.join(timeout=30)
            assert not thread.is_alive()  # it did not wait for the order's transaction
            order_tx.commit()
        member_id = db.session.scalar(
            text("SELECT member_id FROM orders WHERE customer_id = 'race' LIMIT 1")
        )
        customers, members_ = marks(db.session)
        assert "race" in customers  # still marked: the next refresh counts it
        assert member_id is not None and member_id in members_
        aggregates.refresh(db.session)
        assert find_report_drift(db.session, hooks().report_cohorts) == []
