"""The one thread that calls a confluent-kafka client.

confluent-kafka (2.16) serializes the calls on a client: a ``commit`` from another thread
waits until the ``consume`` in progress returns, and while ``consume`` runs a rebalance
callback that waits for the commit, never. So every call goes through one thread, in
order; a callback that waits for the loop (:meth:`ClientThread.serve_until`) runs the
calls queued meanwhile itself, on that thread, inside ``consume``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
_Call = tuple[Future, Callable[[], Any]]
_WAKE = object()  # a waited future is done
_STOP = object()


class ClientThread:
    """Runs the calls handed to :meth:`submit` one after another on a thread of its own."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """``fn()`` on the thread, after the calls submitted before it."""
        future: Future[T] = Future()
        self._calls.put((future, fn))
        return future

    def serve_until(self, waited: Future[T]) -> T:
        """On the thread, inside a call (a client's callback): run the calls submitted
        until ``waited`` is done; its result."""
        waited.add_done_callback(lambda _: self._calls.put(_WAKE))
        while not waited.done():
            self._run(self._calls.get())
        return waited.result()

    def shutdown(self) -> None:
        """Stop after the calls submitted; wait for the thread."""
        self._calls.put(_STOP)
        self._thread.join()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not _STOP:
            self._run(call)

    @staticmethod
    def _run(call: _Call | object) -> None:
        if not isinstance(call, tuple):
            return  # a wake-up
        future, fn = call
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # the caller gets it
            future.set_exception(exc)
