"""A per-test time limit for the Python suites when pytest-timeout is not installed.

Import the three hooks into a conftest.py (pytest finds hooks by name in the conftest module):

    from time_limit import pytest_addoption, pytest_runtest_protocol, pytest_runtest_teardown

`--timeout=SECONDS` (default $RLOG_TEST_TIMEOUT or 150) is enforced with SIGALRM over setup and
call; on expiry every thread's stack is dumped. With pytest-timeout installed, it does the job
and these hooks stand aside.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys

import pytest


def pytest_addoption(parser, pluginmanager):
    if not pluginmanager.has_plugin("timeout"):
        parser.addoption("--timeout", type=float, default=float(os.environ.get("RLOG_TEST_TIMEOUT", 150)),
                         help="per-test time limit in seconds (SIGALRM; 0 disables)")


class _TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    config = item.config
    own = not config.pluginmanager.has_plugin("timeout")
    limit = config.getoption("--timeout") if own else None
    armed = bool(own and limit and limit > 0)
    if armed:
        def on_alarm(signum, frame):
            sys.stderr.write(f"\n*** {item.nodeid} exceeded {limit}s; thread stacks:\n")
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            raise _TestTimeout(f"test exceeded --timeout={limit}s")
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    # The limit covers setup and call. Teardown (killing children) is bounded on its own and must
    # not be interrupted half-way.
    signal.setitimer(signal.ITIMER_REAL, 0)
    yield
