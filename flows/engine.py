"""The pure driver: run a flow from the top, answering its questions from the replay log.

``drive(flow, input, log)`` calls ``flow(ctx, input)``. Each ``ctx.step``, ``ctx.wait``
and ``ctx.now`` takes the next entry of the log; once the log is used up, a step runs its
side effect and is recorded, the clock is read and recorded, and a wait suspends the flow.
The result is one of :class:`Done`, :class:`Suspended`, :class:`Crashed` or
:class:`Nondeterministic`, carrying the entries to append to the log. The driver does no
I/O of its own: the store reads and writes the log, and hands in how side effects are run.

Call-style suspension, not generators. A flow is an ordinary function: ``ctx.wait(tag)``
returns the value, helpers can wait without ``yield from`` plumbing, and a traceback reads
like any other. To suspend, ``ctx.wait`` raises :class:`FlowSignal`, which derives from
``BaseException`` so a flow's own ``except Exception`` cannot swallow it. A flow that
swallows it anyway (a bare ``except:``) gains nothing: the context remembers that it
stopped, refuses every later call and reports the stop, not what the flow did next.

Determinism. Replaying, the flow must ask for the same (kind, name) sequence the log
holds. A step named differently, a wait where a step was, or a flow that ends before the
log does is :class:`Nondeterministic`, naming the position and both names: the driver
never hands one step's recorded result to another.

Error entries record a failed step or body for the operator; replays skip them, so a
retried instance runs the failed step again.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from .effects import post_to_outbox
from .matching import Match
from .values import NotJSON, check_json

STEP, WAIT, NOW, ERROR = "step", "wait", "now", "error"
RECEIVE, SLEEP = "receive", "sleep"  # an arriving activity; a timer that fired
TIMEOUT = "timeout"  # a wait's or a receive's deadline passed first
# What a suspended instance waits for (FlowInstance.waiting_kind).
OPERATOR, ACTIVITY, TIMER = "operator", "activity", "timer"
FOREVER = None  # ctx.receive(..., timeout=FOREVER): no deadline
MAX_TAG_LENGTH = 200  # FlowLogEntry.tag


class Entry(NamedTuple):
    """One log entry as the driver sees it (the store adds seq and time)."""

    kind: str
    tag: str
    value: Any


Entries = tuple[Entry, ...]


@dataclass(frozen=True)
class Done:
    value: Any
    entries: Entries = ()


@dataclass(frozen=True)
class Suspended:
    tag: str
    entries: Entries = ()
    waiting: str = OPERATOR  # OPERATOR, ACTIVITY or TIMER
    match: dict | None = None  # for ACTIVITY: Match.as_dict()
    wake_at: datetime | None = None  # TIMER, or ACTIVITY with a deadline


@dataclass(frozen=True)
class Crashed:
    error: str  # one line: "ValueError: boom (in step 'send')"
    traceback: str = ""
    entries: Entries = ()


@dataclass(frozen=True)
class Nondeterministic:
    position: int
    logged: str  # what the log holds at position, e.g. "wait 'approval'"
    asked: str  # what the code asked for there, e.g. "step 'notify'"
    entries: Entries = ()

    @property
    def detail(self) -> str:
        return (
            f"at log position {self.position} the log has {self.logged}"
            f" but the flow asked for {self.asked}"
        )


@dataclass(frozen=True)
class Blocked:
    """Replay-only drives stop here: the flow wants a new side effect or clock reading."""

    kind: str
    tag: str
    entries: Entries = ()


Result = Done | Suspended | Crashed | Nondeterministic | Blocked


class FlowSignal(BaseException):
    """Unwinds a flow that has stopped (suspended, crashed or diverged).

    A ``BaseException`` so that a flow's ``except Exception`` lets it through.
    """


# What a flow's failure may not turn into data: the driver's own signal and the process
# being told to stop. Everything else a flow raises, BaseExceptions such as
# asyncio.CancelledError included, is a crash of that flow: escaping, it rolled back the
# whole batch of entries it was started from, and the task behind it gave up on all of them.
PROPAGATED = (FlowSignal, KeyboardInterrupt, SystemExit)


def describe(kind: str, tag: str) -> str:
    return kind if kind == NOW else f"{kind} {tag!r}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _call(fn: Callable, *args: Any) -> Any:
    return fn(*args)


def _one_line(exc: BaseException) -> str:
    text = storable(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def storable(text: str) -> str:
    """Text the database can hold: Postgres refuses U+0000, and a flow's error message
    carrying one made recording its crash fail, and with it the whole batch, every retry."""
    return text.replace("\x00", "\\x00")


def _check_tag(tag: Any, what: str) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"a {what} is a string of 1-{MAX_TAG_LENGTH} characters, got {tag!r}")
    if "\x00" in tag:  # the log could not store it: the flow's crash, not the store's
        raise ValueError(f"a {what} may not contain U+0000, got {tag!r}")
    return tag


_MISSING = object()


class Context:
    """What a flow function gets as ``ctx``."""

    def __init__(
        self,
        log: Sequence[Sequence[Any]],
        *,
        instance_id: int | None = None,
        live: bool = True,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        run_effect: Callable[..., Any] = _call,
    ):
        self.instance_id = instance_id
        self._log = log
        self._pos = 0
        self._new: list[Entry] = []
        self._live = live
        self._clock = clock
        self._sleep = sleep
        self._run_effect = run_effect
        self._in_step = False
        self._stopped: Result | None = None
        self._replayed = ""

    # ── the flow's API ────────────────────────────────────────────────────────────────

    def wait(self, tag: str, *, timeout: Any = FOREVER, default: Any = None) -> Any:
        """The value an operator's resume supplies for ``tag``; until then the flow is
        suspended. With a ``timeout`` (seconds, a ``timedelta`` or an aware ``datetime``)
        it returns ``default`` once that passes without an answer."""
        _check_tag(tag, "wait tag")
        value = self._replay(WAIT, tag, TIMEOUT)
        if value is _MISSING:
            wake_at = None if timeout is FOREVER else self._deadline(timeout, "timeout")
            raise self._stop(Suspended(tag, wake_at=wake_at))
        return default if self._replayed == TIMEOUT else value

    def receive(self, match: dict[str, Any] | Match, *, timeout: Any) -> dict[str, Any] | None:
        """The first arriving activity that matches (see ``flows.matching``), or ``None``
        when ``timeout`` passes first. ``timeout`` must be given: seconds, a ``timedelta``,
        an aware ``datetime`` (a deadline), or ``FOREVER`` (``None``, written out).

        An answer that arrived before the wait was registered (a fast peer) is found in
        the inbox log; each inbox entry answers an instance at most once."""
        try:
            spec = Match.parse(match)
        except ValueError as exc:
            raise self._crash(exc, None) from None
        value = self._replay(RECEIVE, spec.tag, TIMEOUT)
        if value is _MISSING:
            wake_at = None if timeout is FOREVER else self._deadline(timeout, "timeout")
            raise self._stop(
                Suspended(spec.tag, waiting=ACTIVITY, match=spec.as_dict(), wake_at=wake_at)
            )
        return None if self._replayed == TIMEOUT else value.get("activity")

    def sleep(self, delay: Any) -> None:
        """Suspend until ``delay`` (seconds, a ``timedelta``, or an aware ``datetime``) has
        passed: a durable timer, woken by the periodic tick, surviving every restart."""
        value = self._replay(SLEEP, "sleep")
        if value is _MISSING:
            wake_at = self._deadline(delay, "sleep")
            raise self._stop(Suspended("sleep", waiting=TIMER, wake_at=wake_at))

    def _deadline(self, when: Any, what: str) -> datetime:
        try:
            return deadline(when, self._clock)
        except (TypeError, ValueError) as exc:
            raise self._crash(exc, None) from None

    def step(
        self, name: str, fn: Callable[..., Any], *args: Any, retries: int = 0, backoff: float = 1.0
    ) -> Any:
        """Run ``fn(*args)`` once and log its JSON result; replays return the logged result.

        A failing ``fn`` is tried ``retries`` more times, sleeping ``backoff`` seconds, then
        twice that, and so on; if it still fails the instance is crashed.
        """
        _check_tag(name, "step name")
        value = self._replay(STEP, name)
        if value is not _MISSING:
            return value
        if not self._live:
            raise self._stop(Blocked(STEP, name))
        return self._run_step(name, fn, args, retries, backoff)

    def send(self, activity: dict[str, Any], *, actor: str) -> str:
        """Post ``activity`` (or a bare object, wrapped in a Create) through the outbox as
        the local ``actor`` (its id or name) and return the minted id. A step: it commits
        with the flow's transaction, and a replay returns the same id and posts nothing."""
        kind = activity.get("type") if isinstance(activity, dict) else None
        name = f"send {kind}" if isinstance(kind, str) and kind else "send"
        return self.step(name[:MAX_TAG_LENGTH].replace("\x00", ""), post_to_outbox, actor, activity)

    def now(self) -> datetime:
        """The current time (UTC), logged: a replay sees the time of the first run."""
        value = self._replay(NOW, "")
        if value is _MISSING:
            if not self._live:
                raise self._stop(Blocked(NOW, ""))
            value = self._clock().isoformat()
            self._new.append(Entry(NOW, "", value))
        return datetime.fromisoformat(value)

    # ── the driver's side ─────────────────────────────────────────────────────────────

    def _replay(self, kind: str, tag: str, alternative: str | None = None) -> Any:
        """The logged value for this call, or _MISSING once the log is used up. A call that
        can also time out accepts an ``alternative`` kind (TIMEOUT) under the same tag;
        ``_replayed`` says which kind answered."""
        if self._stopped is not None:
            raise FlowSignal("the flow has stopped")  # it swallowed our signal: stop again
        if self._in_step:
            raise RuntimeError(f"{describe(kind, tag)} called inside a step's function")
        log = self._log
        while self._pos < len(log) and log[self._pos][0] == ERROR:
            self._pos += 1
        if self._pos == len(log):
            return _MISSING
        logged_kind, logged_tag, value = log[self._pos]
        if logged_kind not in (kind, alternative) or logged_tag != tag:
            raise self._stop(
                Nondeterministic(self._pos, describe(logged_kind, logged_tag), describe(kind, tag))
            )
        self._pos += 1
        self._replayed = logged_kind
        return value

    def _run_step(self, name: str, fn: Callable, args: tuple, retries: int, backoff: float) -> Any:
        attempt = 0
        while True:
            attempt += 1
            self._in_step = True
            try:
                result = self._run_effect(fn, *args)
            except PROPAGATED:
                raise
            except BaseException as exc:  # CancelledError and the like are the flow's too
                if attempt <= retries:
                    self._sleep(backoff * 2 ** (attempt - 1))
                    continue
                raise self._crash(exc, name, attempt) from None
            finally:
                self._in_step = False
            try:
                check_json(result, f"step {name!r} result")
            except NotJSON as exc:
                raise self._crash(exc, name, attempt) from None
            self._new.append(Entry(STEP, name, result))
            return result

    def _crash(self, exc: BaseException, step: str | None, attempts: int = 1) -> FlowSignal:
        where = f" (in step {step!r}" + (f", after {attempts} attempts)" if attempts > 1 else ")")
        error = _one_line(exc) + (where if step else "")
        value = {"error": _one_line(exc)}
        if attempts > 1:
            value["attempts"] = attempts
        self._new.append(Entry(ERROR, step or "", value))
        tb = storable("".join(traceback.format_exception(exc)))
        return self._stop(Crashed(error, tb))

    def _stop(self, result: Result) -> FlowSignal:
        if self._stopped is None:
            self._stopped = result
        return FlowSignal(type(result).__name__)

    def _finish(self, value: Any) -> None:
        """The flow returned: every logged entry must have been asked for."""
        log = self._log
        while self._pos < len(log) and log[self._pos][0] == ERROR:
            self._pos += 1
        if self._pos < len(log):
            kind, tag, _ = log[self._pos]
            self._stop(Nondeterministic(self._pos, describe(kind, tag), "the end of the flow"))
            return
        try:
            check_json(value, "the flow's result")
        except NotJSON as exc:
            self._crash(exc, None)
            return
        self._stop(Done(value))

    def _result(self) -> Result:
        assert self._stopped is not None
        return replace(self._stopped, entries=tuple(self._new))


def deadline(when: Any, clock: Callable[[], datetime] = _utcnow) -> datetime:
    """An absolute, aware time from seconds, a timedelta or an aware datetime."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("a deadline datetime must be timezone-aware")
        return when.astimezone(UTC)
    if isinstance(when, timedelta):
        return clock() + when
    if isinstance(when, int | float) and not isinstance(when, bool) and when >= 0:
        if when > 100 * 365 * 86400:
            raise ValueError("a delay of more than a century is a mistake")
        return clock() + timedelta(seconds=when)
    raise TypeError(
        f"a timeout is seconds, a timedelta or an aware datetime, not {type(when).__name__}"
    )


def drive(
    flow: Callable[[Context, Any], Any],
    input: Any,
    log: Sequence[Sequence[Any]] = (),
    *,
    instance_id: int | None = None,
    live: bool = True,
    clock: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], None] = time.sleep,
    run_effect: Callable[..., Any] = _call,
) -> Result:
    """Run ``flow(ctx, input)`` against ``log`` (a sequence of (kind, tag, value)).

    ``live=False`` replays only: where the flow would run a new step or read the clock it
    stops with :class:`Blocked` instead, so nothing outside happens. ``run_effect(fn,
    *args)`` runs each new side effect (the store wraps it in a savepoint).
    """
    ctx = Context(
        log, instance_id=instance_id, live=live, clock=clock, sleep=sleep, run_effect=run_effect
    )
    try:
        value = flow(ctx, input)
    except FlowSignal:
        pass
    except PROPAGATED:
        raise
    except BaseException as exc:  # CancelledError and the like crash the flow, not its caller
        if ctx._stopped is None:
            ctx._crash(exc, None)
    else:
        if ctx._stopped is None:
            ctx._finish(value)
    return ctx._result()
