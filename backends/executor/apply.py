"""Carrying out a plan: all or nothing.

Ops run by phase (ops.PHASES), in plan order within a phase. Consecutive
netlink requests for one namespace go to the kernel in one `sendmsg` (up to
BATCH), each with its own acknowledgement; every op that succeeded puts its
undo on the journal. When one fails — the kernel refuses, a tool fails, a
device vanished, SIGTERM/SIGINT arrived — the journal is undone in reverse,
then the namespaces are read again and compared with how they were before:
equal is exit 4 (rolled back), different is exit 5 with what remains.

Two applies never interleave: each holds an exclusive lock (flock) on
RUN_DIR/LOCK_NAME.lock, RUN_DIR being /run/vnetc or $VNETC_RUN_DIR.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import time
from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple

from . import netlink as nl
from .ops import Context, Op, Plan

BATCH = 512
EXIT_OK, EXIT_ROLLED_BACK, EXIT_NOT_ROLLED_BACK = 0, 4, 5


def run_dir() -> str:
    return os.environ.get("VNETC_RUN_DIR", "/run/vnetc")


class LockBusy(Exception):
    pass


@contextmanager
def lock(name: str, wait: float) -> Iterator[None]:
    """An exclusive lock on RUN_DIR/NAME.lock, waiting up to `wait` seconds for it."""
    os.makedirs(run_dir(), mode=0o755, exist_ok=True)
    path = os.path.join(run_dir(), f"{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise LockBusy(f"another vnetc apply or destroy (pid {holder}) holds {path}; "
                                   f"nothing was changed") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class Interrupted(Exception):
    pass


class Failure(Exception):
    def __init__(self, op: Op, error: BaseException):
        self.op, self.error = op, error
        super().__init__(f"{op.text}: {error}")


#: called before the n-th kernel operation (0-based) is sent; tests make it raise or remove a device
Fault = Callable[[int, Op], None]


class Outcome(NamedTuple):
    status: int
    done: int = 0                      # ops carried out (before a rollback)
    message: str = ""
    remains: tuple[str, ...] | list[str] = ()


@contextmanager
def _signals_raise() -> Iterator[list[int]]:
    """SIGTERM, SIGINT and SIGHUP set a flag the runner checks between batches."""
    caught: list[int] = []
    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        old[sig] = signal.signal(sig, lambda number, frame: caught.append(number))
    try:
        yield caught
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def execute(plan: Plan, ctx: Context, snapshot: Callable[[], dict], fault: Fault | None = None) -> Outcome:
    """Run the plan's ops; on a failure undo what was done. `snapshot()` reads the namespaces
    (compared before and after a rollback)."""
    journal: list[Op] = []
    with _signals_raise() as caught:
        before = snapshot()
        try:
            _run(plan.ops, ctx, journal, fault, caught)
            return Outcome(EXIT_OK, len(journal))
        except (Failure, Interrupted) as exc:
            if isinstance(exc, Interrupted):
                message = f"interrupted by signal {signal.Signals(caught[0]).name}"
            else:
                message = str(exc)
            done = len(journal)
            undo_errors = _rollback(journal, ctx)
            after = snapshot()
            remains = _differences(before, after) + undo_errors
            if remains:
                return Outcome(EXIT_NOT_ROLLED_BACK, done, message, remains)
            return Outcome(EXIT_ROLLED_BACK, done, message)


def _run(ops: list[Op], ctx: Context, journal: list[Op], fault: Fault | None, caught: list[int]) -> None:
    count = 0
    i = 0
    while i < len(ops):
        if caught:
            raise Interrupted()
        op = ops[i]
        if op.run is not None:
            try:
                if fault:
                    fault(count, op)
                count += 1
                op.run(ctx)
            except (OSError, nl.KernelError) as exc:
                raise Failure(op, exc) from None
            journal.append(op)
            i += 1
            continue
        batch: list[Op] = []
        requests = []
        stop: Failure | None = None
        while i < len(ops) and ops[i].request is not None and ops[i].netns == op.netns and len(batch) < BATCH:
            try:
                if fault:
                    fault(count, ops[i])
                requests.append(ops[i].request(ctx))
            except (OSError, nl.KernelError) as exc:
                stop = Failure(ops[i], exc)
                break
            count += 1
            batch.append(ops[i])
            i += 1
        try:
            results = ctx.socket(op.netns).batch(requests)
        except OSError as exc:
            raise Failure(batch[0], exc) from None
        failed = None
        for member, error in zip(batch, results):
            if error is None:
                journal.append(member)
            elif failed is None:
                failed = Failure(member, error)
        if failed or stop:
            raise failed or stop


def _rollback(journal: list[Op], ctx: Context) -> list[str]:
    """Undo the journal in reverse; what could not be undone."""
    errors = []
    undos = [op.undo for op in reversed(journal) if op.undo is not None]
    i = 0
    while i < len(undos):
        op = undos[i]
        if op.run is not None:
            try:
                op.run(ctx)
            except (OSError, nl.KernelError) as exc:
                errors.append(f"could not {op.text}: {exc}")
            i += 1
            continue
        batch, requests = [], []
        while i < len(undos) and undos[i].request is not None and undos[i].netns == op.netns and len(batch) < BATCH:
            try:
                requests.append(undos[i].request(ctx))
                batch.append(undos[i])
            except (OSError, nl.KernelError) as exc:
                errors.append(f"could not {undos[i].text}: {exc}")
            i += 1
        try:
            results = ctx.socket(op.netns).batch(requests)
        except OSError as exc:
            results = [nl.KernelError(exc.errno or errno.EIO, str(exc))] * len(requests)
        for member, error in zip(batch, results):
            if error is not None and error.errno not in (errno.ENODEV, errno.ENOENT, errno.EADDRNOTAVAIL, errno.ESRCH):
                errors.append(f"could not {member.text}: {error}")
    return errors


def _differences(before: dict, after: dict) -> list[str]:
    """What differs between two snapshots ({namespace: {device: (kind, up, addresses)}})."""
    out = []
    for ns in sorted(set(before) | set(after), key=str):
        where = f"netns {ns}: " if ns else ""
        old, new = before.get(ns), after.get(ns)
        if old == new:
            continue
        if old is None or new is None:
            out.append(f"{where}namespace {'created' if old is None else 'removed'}")
            continue
        for name in sorted(set(old) | set(new)):
            if name not in new:
                out.append(f"{where}{name} was removed")
            elif name not in old:
                out.append(f"{where}{name} ({new[name][0]}) remains")
            elif old[name] != new[name]:
                out.append(f"{where}{name} differs: was {old[name]}, is {new[name]}")
    return out
