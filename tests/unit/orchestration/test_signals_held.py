"""Ctrl-C and SIGTERM are held back while a record is stored (its JSON file, then its row), then
delivered: an interruption never leaves a file without its row."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from bench.orchestration.runner import signals_held


class Stop(KeyboardInterrupt):
    pass


def _raise_stop(signum, frame):
    raise Stop()


def _deliver(number: int) -> None:
    os.kill(os.getpid(), number)
    for _ in range(10_000):  # Python runs the handler between two bytecodes of the main thread
        pass


@pytest.fixture
def ctrl_c():
    """Ctrl-C raising KeyboardInterrupt, as in a terminal (a background job's test run inherits it ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_the_write_comes_after_it(ctrl_c):
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with signals_held() as held:
            _deliver(signal.SIGINT)
            steps.append("file and row written")
            assert held == [signal.SIGINT]
    assert steps == ["file and row written"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_during_the_write_runs_its_handler_after_it():
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        steps = []
        with pytest.raises(Stop):
            with signals_held():
                _deliver(signal.SIGTERM)
                steps.append("written")
        assert steps == ["written"]
        assert signal.getsignal(signal.SIGTERM) is _raise_stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_without_a_signal_nothing_happens_and_the_handlers_are_back():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with signals_held() as held:
        assert signal.getsignal(signal.SIGINT) is not before[0]
    assert held == []
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_outside_the_main_thread_nothing_is_held():
    seen = []

    def store() -> None:
        with signals_held() as held:
            seen.append((signal.getsignal(signal.SIGINT), held))

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=store)
    thread.start()
    thread.join()
    assert seen == [(before, [])]


def test_an_ignored_ctrl_c_stays_ignored():
    """`nohup bench run &`: Ctrl-C ignored before the write is ignored after it too."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals_held() as held:
            _deliver(signal.SIGINT)
        assert held == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
