"""Kernel operations, each with its undo, and the run-time context they are built in.

An :class:`Op` is one netlink request (built when it is sent, so that it can
name devices made earlier in the same run) or one other action (a sysfs write,
an ioctl, starting teamd). Its `undo` is the operation that takes it back.
"""

from __future__ import annotations

import os
import socket
from typing import Callable

from . import netlink as nl

#: the order of the phases of a plan; ops run by phase, then in plan order. "teardown" holds what
#: no undo restores exactly (destroy's deletions of devices, the removal of namespaces): it runs
#: last, so that a failure of anything else is rolled back without recreating a device.
PHASES = ("namespaces", "delete", "create", "link", "port", "address", "route", "tc", "extra", "teardown")


def phase(name: str) -> int:
    return PHASES.index(name)


class Op:
    """One operation: a netlink `request` (built when it is sent) or a `run`, and its `undo`.

    The classes of this module are plain slotted classes, not dataclasses: they are defined at
    every start-up, and a re-apply is timed to the millisecond (docs/executor.md, "Speed")."""

    __slots__ = ("netns", "text", "phase", "request", "run", "undo")

    def __init__(self, netns: str | None, text: str, phase: int,
                 request: Callable[["Context"], tuple[int, int, bytes]] | None = None,
                 run: Callable[["Context"], None] | None = None, undo: "Op | None" = None):
        self.netns = netns            # the kernel namespace it runs in (None: vnetc's own)
        self.text = text              # what it does, for messages
        self.phase = phase
        self.request = request
        self.run = run
        self.undo = undo


class Context:
    """What ops need while they run: ifindexes (planned, or learnt when a tool made the
    device), namespace descriptors and sockets."""

    def __init__(self, indexes: dict[tuple[str | None, str], int]):
        self.indexes = dict(indexes)
        self._fds: dict[str, int] = {}
        self._sockets: dict[str | None, nl.Socket] = {}   # by namespace; generic ones by 'genl:NS'

    def index(self, netns: str | None, name: str) -> int:
        try:
            return self.indexes[(netns, name)]
        except KeyError:
            raise nl.KernelError(19, f"no device {name}") from None   # ENODEV

    def learn(self, netns: str | None, name: str) -> int:
        """Look a device up by name (one a tool made): its ifindex is used from now on."""
        try:
            index = nl.in_netns(netns, lambda: socket.if_nametoindex(name))
        except OSError:
            raise nl.KernelError(19, f"no device {name}") from None
        self.indexes[(netns, name)] = index
        return index

    def netns_fd(self, netns: str) -> int:
        if netns not in self._fds:
            self._fds[netns] = os.open(nl.netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
        return self._fds[netns]

    def socket(self, netns: str | None) -> nl.Socket:
        if netns not in self._sockets:
            self._sockets[netns] = nl.Socket(netns)
        return self._sockets[netns]

    def generic(self, netns: str | None) -> nl.Socket:
        """A generic netlink socket in the namespace (MACsec)."""
        key = f"genl:{netns}"
        if key not in self._sockets:
            self._sockets[key] = nl.Socket(netns, socket.NETLINK_GENERIC)
        return self._sockets[key]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        for sock in self._sockets.values():
            sock.close()
        self._fds.clear()
        self._sockets.clear()


class Step:
    """What the plan shows for one device (or namespace): an action, details, and its ops."""

    __slots__ = ("action", "subject", "details", "ops", "reason", "count")

    def __init__(self, action: str, subject: str, details: list[str] | None = None, ops: list[Op] | None = None,
                 count: int = 1):
        self.action = action          # create | recreate | change | configure | delete
        self.subject = subject        # "bridge br0", "netns blue"
        self.details = details if details is not None else []
        self.ops = ops if ops is not None else []
        self.reason = ""              # why a recreate is needed
        self.count = count            # the devices it stands for (a group delete: all of them)


SYMBOL = {"create": "+", "recreate": "-/+", "change": "~", "configure": "~", "delete": "-"}


class Plan:
    __slots__ = ("steps", "errors", "notes", "indexes")

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.errors: list[str] = []       # the site cannot be applied here as it is
        self.notes: list[str] = []        # what the executor leaves to others (DHCP, DNS)
        self.indexes: dict[tuple[str | None, str], int] = {}

    @property
    def ops(self) -> list[Op]:
        ordered = [(op.phase, n, op) for n, op in enumerate(o for s in self.steps for o in s.ops)]
        return [op for _, _, op in sorted(ordered, key=lambda t: (t[0], t[1]))]

    @property
    def empty(self) -> bool:
        return not any(step.ops for step in self.steps)

    def render(self) -> str:
        """The plan as a reviewable diff (never a secret in it)."""
        lines = []
        counts: dict[str, int] = {}
        for step in self.steps:
            if not step.ops:
                continue
            counts[step.action] = counts.get(step.action, 0) + step.count
            head = f"{SYMBOL[step.action]} {step.subject}: {step.action}"
            lines.append(head + (f" ({step.reason})" if step.reason else ""))
            lines += [f"    {d}" for d in step.details]
        for note in self.notes:
            lines.append(f"note: {note}")
        for error in self.errors:
            lines.append(f"error: {error}")
        if counts:
            order = ("create", "recreate", "change", "configure", "delete")
            lines.append("Plan: " + ", ".join(f"{counts[a]} to {a}" for a in order if a in counts) + ".")
        else:
            lines.append("No changes: the kernel matches the site.")
        return "\n".join(lines) + "\n"
