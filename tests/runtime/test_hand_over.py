"""Handler work reaches the workers when the loop's turn ends: one wake-up for all of a turn's work, none before.

A message that arrives alone must not wait for a gathering timer, and many sockets read in one turn of the loop
must still cost one worker wake-up. The pool defers the wake-up of work handed over on the loop thread to the
moment the loop is about to wait (its selector's ``before_wait``); work handed over from any other thread wakes a
worker at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from nbsocket.runtime.loop import LoopThread


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread(name="nbsocket-test-loop")
    thread.ensure_started()
    yield thread
    thread.stop()


def test_work_handed_over_in_one_turn_runs_after_it_on_one_worker(loop_thread: LoopThread) -> None:
    before = set(threading.enumerate())
    pool = loop_thread.handler_pool
    ran: list[tuple[int, str]] = []
    seen_during_turn: list[list[tuple[int, str]]] = []
    done = threading.Event()

    def work(n: int) -> None:
        ran.append((n, threading.current_thread().name))
        if n == 19:
            done.set()

    def one_turn() -> None:  # on the loop thread: twenty sockets' reads in one turn
        for n in range(20):
            pool.hand_over(lambda n=n: work(n))
        seen_during_turn.append(list(ran))  # no worker has been woken yet: nothing can have run

    loop_thread.call_soon(one_turn)
    assert done.wait(10), "the work handed over never ran"
    assert seen_during_turn == [[]]
    assert [n for n, _ in ran] == list(range(20))
    assert len({name for _, name in ran}) == 1, f"one wake-up should have served the whole turn: {ran}"
    started = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("nbsocket-handler")]
    assert started == [ran[0][1]], started


def test_work_handed_over_off_the_loop_wakes_a_worker_at_once(loop_thread: LoopThread) -> None:
    pool = loop_thread.handler_pool
    done = threading.Event()
    pool.hand_over(done.set)  # from this (notebook) thread, whose turn never ends
    assert done.wait(10), "work handed over off the loop waited for the loop"
