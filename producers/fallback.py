"""Serve with the candidate, fall back to the baseline, and emit what happened.

:func:`serve` runs the candidate (with a timeout); if it raises or is too slow, it emits
the candidate's failure :class:`~schemas.events.Result` (error type, message and a
critical flag from ``classify``), runs the baseline, emits its Result with
``fallback=True`` and returns the baseline's answer: the caller never sees the
candidate's exception. Each system that ran gets exactly one Result, a successful
candidate included. If the baseline fails too there is nothing left to serve: its
failure is emitted and its exception propagates.

A timed-out candidate keeps running in its worker thread (Python cannot stop a thread);
its late answer is discarded. :func:`serve_async` is the same for coroutines, where a
timeout does cancel the candidate.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from schemas.events import ErrorInfo, Result

log = logging.getLogger(__name__)
T = TypeVar("T")


class Sink(Protocol):
    def emit(self, event: Any) -> bool: ...


@dataclass(frozen=True)
class Request:
    """What the events of one served request share."""

    rollout: str
    query_id: str
    unit_id: str
    weight: int = 100  # the candidate weight when routed (Router.weight)
    segment: str | None = None  # a label to break results down by (language, category)


@dataclass(frozen=True)
class Outcome:
    """How good an answer was: ``assess(answer)`` returns one (default: success, 1.0)."""

    success: bool = True
    confidence: float = 1.0
    rules: tuple[str, ...] = ()


def classify_error(exc: BaseException) -> ErrorInfo:
    """The default classifier: the exception's type and message, not critical."""
    return ErrorInfo(type=type(exc).__name__, message=str(exc)[:4096], critical=False)


def critical_when(*types: type[BaseException]) -> Callable[[BaseException], ErrorInfo]:
    """A classifier that flags exceptions of ``types`` (and timeouts if listed) critical."""

    def classify(exc: BaseException) -> ErrorInfo:
        info = classify_error(exc)
        return info.model_copy(update={"critical": isinstance(exc, types)})

    return classify


class CandidateTimeout(TimeoutError):
    """The candidate gave no answer in time (classified like any other exception)."""


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="phasegate-candidate")
        return _pool


def serve(
    candidate_fn: Callable[[], T],
    baseline_fn: Callable[[], T],
    timeout_s: float | None,
    *,
    emitter: Sink,
    request: Request,
    candidate: str = "production",
    baseline: str = "pipeline",
    assess: Callable[[T], Outcome] | None = None,
    classify: Callable[[BaseException], ErrorInfo] = classify_error,
    executor: ThreadPoolExecutor | None = None,
) -> T:
    """The candidate's answer, or the baseline's if the candidate failed (see module doc)."""
    start = time.perf_counter()
    try:
        if timeout_s is None:
            answer = candidate_fn()
        else:
            future = (executor or _executor()).submit(candidate_fn)
            try:
                answer = future.result(timeout=timeout_s)
            except FutureTimeout:
                future.cancel()
                raise CandidateTimeout(f"no answer within {timeout_s:g} s") from None
    except Exception as exc:
        _emit_failure(emitter, request, candidate, exc, start, classify)
        return observe(
            baseline_fn,
            system=baseline,
            emitter=emitter,
            request=request,
            assess=assess,
            classify=classify,
            fallback=True,
        )
    _emit_answer(emitter, request, candidate, answer, start, assess, fallback=False)
    return answer


async def serve_async(
    candidate_fn: Callable[[], Awaitable[T]],
    baseline_fn: Callable[[], Awaitable[T]],
    timeout_s: float | None,
    *,
    emitter: Sink,
    request: Request,
    candidate: str = "production",
    baseline: str = "pipeline",
    assess: Callable[[T], Outcome] | None = None,
    classify: Callable[[BaseException], ErrorInfo] = classify_error,
) -> T:
    """:func:`serve` for coroutine functions; a timeout cancels the candidate."""
    start = time.perf_counter()
    try:
        try:
            answer = await asyncio.wait_for(candidate_fn(), timeout_s)
        except TimeoutError:
            raise CandidateTimeout(f"no answer within {timeout_s:g} s") from None
    except Exception as exc:
        _emit_failure(emitter, request, candidate, exc, start, classify)
        start = time.perf_counter()
        try:
            answer = await baseline_fn()
        except Exception as exc:
            _emit_failure(emitter, request, baseline, exc, start, classify, fallback=True)
            raise
        _emit_answer(emitter, request, baseline, answer, start, assess, fallback=True)
        return answer
    _emit_answer(emitter, request, candidate, answer, start, assess, fallback=False)
    return answer


def observe(
    fn: Callable[[], T],
    *,
    system: str,
    emitter: Sink,
    request: Request,
    assess: Callable[[T], Outcome] | None = None,
    classify: Callable[[BaseException], ErrorInfo] = classify_error,
    fallback: bool = False,
) -> T:
    """Run one system, emit its Result (success or failure) and return its answer.

    For traffic routed to the baseline, where there is nothing to fall back to: an
    exception is emitted as a failure and propagates.
    """
    start = time.perf_counter()
    try:
        answer = fn()
    except Exception as exc:
        _emit_failure(emitter, request, system, exc, start, classify, fallback=fallback)
        raise
    _emit_answer(emitter, request, system, answer, start, assess, fallback=fallback)
    return answer


def _emit_answer(
    emitter: Sink,
    request: Request,
    system: str,
    answer: Any,
    start: float,
    assess: Callable[[Any], Outcome] | None,
    fallback: bool,
) -> None:
    try:
        outcome = assess(answer) if assess is not None else Outcome()
    except Exception:
        log.exception("assess() failed for query %s; recorded as a success", request.query_id)
        outcome = Outcome()
    _emit(
        emitter,
        request,
        system=system,
        success=outcome.success,
        confidence=outcome.confidence,
        rules=list(outcome.rules),
        latency_ms=(time.perf_counter() - start) * 1000,
        fallback=fallback,
    )


def _emit_failure(
    emitter: Sink,
    request: Request,
    system: str,
    exc: BaseException,
    start: float,
    classify: Callable[[BaseException], ErrorInfo],
    fallback: bool = False,
) -> None:
    try:
        error = classify(exc)
    except Exception:
        log.exception("error classifier failed; using the default")
        error = classify_error(exc)
    _emit(
        emitter,
        request,
        system=system,
        success=False,
        confidence=0.0,
        latency_ms=(time.perf_counter() - start) * 1000,
        error=error,
        fallback=fallback,
    )


def _emit(emitter: Sink, request: Request, **fields: Any) -> None:
    try:
        emitter.emit(
            Result(
                rollout=request.rollout,
                query_id=request.query_id,
                unit_id=request.unit_id,
                weight=request.weight,
                segment=request.segment,
                **fields,
            )
        )
    except Exception:  # an invalid outcome (e.g. confidence 2.0) must not break serving
        log.exception("result for query %s not emitted", request.query_id)
