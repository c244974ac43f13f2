"""Background MLflow calls: order kept, transient failures retried, bugs not retried forever."""

import time

from raysweep.tracking.resilient import ResilientLogger, transient


def test_calls_run_in_order_and_a_transient_failure_is_retried_until_it_passes():
    log = ResilientLogger("test", max_backoff_s=0.05)
    done, attempts = [], {"n": 0}

    def flaky():
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("server down")
        done.append("flaky")

    log.submit("first", flaky)
    log.submit("second", lambda: done.append("second"))
    assert log.close(timeout_s=5)
    assert done == ["flaky", "second"] and attempts["n"] == 3


def test_a_non_transient_failure_is_dropped_and_counted():
    log = ResilientLogger("test", max_backoff_s=0.05)
    log.submit("bug", lambda: 1 / 0)
    after = []
    log.submit("next", lambda: after.append(1))
    assert log.close(timeout_s=5) is False  # something was lost, and close() says so
    assert after == [1]


def test_close_gives_up_after_its_deadline_without_hanging():
    log = ResilientLogger("test", max_backoff_s=0.05)
    log.submit("never", lambda: (_ for _ in ()).throw(ConnectionError("down")))
    start = time.monotonic()
    assert log.close(timeout_s=0.5) is False
    assert time.monotonic() - start < 5


def test_what_counts_as_transient():
    assert transient(ConnectionError("refused"))
    assert transient(RuntimeError("(sqlite3.OperationalError) database is locked"))
    assert transient(Exception("API request failed with 503"))
    assert not transient(ZeroDivisionError("division by zero"))
    assert not transient(ValueError("bad param value"))
