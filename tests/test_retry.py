"""`on_deadlock`: the loop around a request's work (the real deadlock is in
tests/referrals/test_concurrency.py, on PostgreSQL)."""

import psycopg.errors
import pytest
from sqlalchemy.exc import OperationalError

from loyalty import retry, transaction
from loyalty.errors import ServiceUnavailable


class Session:
    def __init__(self):
        self.rollbacks = 0

    def rollback(self):
        self.rollbacks += 1


def failing(times, error):
    calls = []

    def work():
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("UPDATE members ...", {}, error)
        return "done"

    return work, calls


def test_a_deadlock_victim_is_rolled_back_and_run_again():
    session = Session()
    work, calls = failing(2, psycopg.errors.DeadlockDetected("deadlock detected"))
    assert transaction.on_deadlock(session, work, "Event 'e1'") == "done"
    assert (len(calls), session.rollbacks) == (3, 2)


def test_after_every_attempt_lost_the_sender_is_told_to_retry():
    session = Session()
    work, calls = failing(99, psycopg.errors.DeadlockDetected("deadlock detected"))
    with pytest.raises(
        ServiceUnavailable, match="Event 'e1' collided with concurrent changes"
    ) as e:
        transaction.on_deadlock(session, work, "Event 'e1'")
    assert (e.value.status, e.value.type, e.value.retry_after) == (503, "service-unavailable", 1)
    assert (len(calls), session.rollbacks) == (retry.ATTEMPTS, retry.ATTEMPTS)


def test_other_database_errors_are_not_retried():
    session = Session()
    work, calls = failing(1, psycopg.errors.QueryCanceled("canceling statement"))
    with pytest.raises(OperationalError):
        transaction.on_deadlock(session, work, "Event 'e1'")
    assert (len(calls), session.rollbacks) == (1, 0)
