"""systemd-networkd creating a site's links from `vnetc build -t networkd` files, timed.

The networkd column of bench/apply.py. networkd runs unmodified, not as PID 1, in
the sandbox of the tests' harness (tests/harness/networkd.py: a private mount
namespace over a fresh network namespace, networkd's state in a throwaway tmpfs).
That sandbox is started "gated": it mounts and copies everything, says so, and
starts networkd only when told; the clock starts when it is told. From then on two
moments are taken, from events rather than by polling (a poll of 3,000 links would
take CPU from the process it times, on a 2-CPU machine):

- **links in state**: the kernel's link notifications (rtnetlink group RTNLGRP_LINK,
  read in the namespace) show every expected link present, up, and enslaved to
  the master the site names;
- **configured**: networkd's own per-link state files (/run/systemd/netif/links/INDEX,
  watched with inotify through /proc/PID/root) say ADMIN_STATE=configured for
  every expected link: networkd has finished with them (what networkd-wait-online
  waits for).

A moment networkd never reaches (it gives up: STALL seconds without a sign of work) is None.
Once both are taken, the watch may go on for a while (untimed, `linger`), then networkd is
stopped (and waited for). Its log must have no warning about the files (the harness's filter
of sandbox noise), or the run is void. What else goes wrong is returned for the report, not
hidden: networkd's other warnings, and every link that networkd no longer calls configured at
the end of the watch or that `ip -j link` does not show as expected once it has stopped. (At
3,000 links networkd 252 logs "Could not bring up interface, ignoring: Connection timed out"
and "Failed to sync link information: Connection timed out": replies to its own netlink
requests that did not come within sd-netlink's 25 s; it then fails links it had configured.)
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .harness import ROOT, BenchError

_libc = ctypes.CDLL(None, use_errno=True)


def harness():
    """The tests' networkd harness (it imports pytest: installed with `pip install -e '.[test]'`)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from harness import networkd
    return networkd


def unavailable() -> str | None:
    """Why networkd cannot be benchmarked here, or None."""
    try:
        nd = harness()
    except ImportError as exc:
        return f"the tests' networkd harness cannot be imported ({exc}); pip install -e '.[test]'"
    return nd.networkd_problem()


# --- the kernel's link notifications ------------------------------------------------------

_HDR = struct.Struct("=IHHII")        # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")    # ifinfomsg: family, type, index, flags, change
_NLA = struct.Struct("=HH")
RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
IFLA_IFNAME, IFLA_MASTER = 3, 10
IFF_UP = 1
CLONE_NEWNET = 0x40000000
SO_RCVBUFFORCE = 33


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def _socket_in(ns: str) -> socket.socket:
    """A NETLINK_ROUTE socket subscribed to link changes, made inside namespace NS (this
    thread goes there and comes back; the socket stays bound to NS)."""
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)   # thousands of links change at once
    sock.bind((0, RTMGRP_LINK))
    return sock


class Links:
    """The links of one namespace as its notifications tell them, and whether they are as expected:
    {name: master name or None}, every one of them up."""

    def __init__(self, ns: str, expected: dict[str, str | None]):
        self.sock = _socket_in(ns)
        self.expected = expected
        self.children: dict[str, list[str]] = {}
        for name, master in expected.items():
            if master is not None:
                self.children.setdefault(master, []).append(name)
        self.by_index: dict[int, tuple[str, int, int]] = {}   # index -> (name, flags, master index)
        self.index: dict[str, int] = {}
        self.good: set[str] = set()
        self.messages = 0      # notifications and dump replies taken in, for "is networkd still at work"
        self.dump()

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    @property
    def done(self) -> bool:
        return len(self.good) == len(self.expected)

    def dump(self) -> None:
        """Ask for every link; the replies come in order with the notifications (see read)."""
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        self.sock.send(_HDR.pack(_HDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)

    def read(self) -> list[int]:
        """Take in what is waiting; the indexes of links that (re)appeared. Lost notifications
        (ENOBUFS) are made up for by a new dump."""
        appeared = []
        while True:
            try:
                data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return appeared
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.dump()
                continue
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, _, _, _ = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    break
                self.messages += 1
                if kind in (RTM_NEWLINK, RTM_DELLINK):
                    index = self._message(kind, data, offset + _HDR.size, offset + length)
                    if index is not None:
                        appeared.append(index)
                offset += (length + 3) & ~3

    def _message(self, kind: int, data: bytes, start: int, end: int) -> int | None:
        family, _, index, flags, _ = _IFINFO.unpack_from(data, start)
        if family != socket.AF_UNSPEC:      # AF_BRIDGE: a bridge's view of its port, not the link
            return None
        old = self.by_index.pop(index, None)
        if old is not None and self.index.get(old[0]) == index:
            del self.index[old[0]]
        if kind == RTM_DELLINK:
            self._recheck(old[0] if old else None)
            return None
        name, master = None, 0
        pos = start + _IFINFO.size
        while pos + 4 <= end:
            alen, atype = _NLA.unpack_from(data, pos)
            if alen < 4:
                break
            atype &= 0x3FFF
            if atype == IFLA_IFNAME:
                name = data[pos + 4:pos + alen].split(b"\0", 1)[0].decode()
            elif atype == IFLA_MASTER:
                master = struct.unpack_from("=I", data, pos + 4)[0]
            pos += (alen + 3) & ~3
        if name is None:
            return None
        self.by_index[index] = (name, flags, master)
        self.index[name] = index
        if old is not None and old[0] != name:
            self._recheck(old[0])
        self._recheck(name)
        return index if old is None else None

    def _recheck(self, name: str | None) -> None:
        if name is None:
            return
        for one in [name, *self.children.get(name, ())]:
            if one in self.expected and self._good(one):
                self.good.add(one)
            else:
                self.good.discard(one)

    def _good(self, name: str) -> bool:
        index = self.index.get(name)
        if index is None:
            return False
        _, flags, master = self.by_index[index]
        want = self.expected[name]
        if want is None:
            return bool(flags & IFF_UP)
        found = self.by_index.get(master)
        return bool(flags & IFF_UP) and found is not None and found[0] == want

    def name_of(self, index: int) -> str | None:
        found = self.by_index.get(index)
        return found[0] if found else None


# --- networkd's per-link state files ---------------------------------------------------------

_EVENT = struct.Struct("=iIII")    # inotify_event: wd, mask, cookie, len (then the name)
IN_CLOSE_WRITE, IN_MOVED_TO, IN_Q_OVERFLOW = 0x8, 0x80, 0x4000


class States:
    """ADMIN_STATE of each link, from the state files networkd writes (write to a temporary
    file, rename over INDEX), followed with inotify."""

    def __init__(self, directory: str, links: Links):
        self.directory = directory
        self.links = links
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or _libc.inotify_add_watch(self.fd, directory.encode(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0:
            code = ctypes.get_errno()
            raise BenchError(f"inotify on {directory}: {os.strerror(code)}")
        self.state: dict[int, str] = {}
        self.configured: set[str] = set()
        self.events = 0        # state files written, for "is networkd still at work"

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        os.close(self.fd)

    @property
    def done(self) -> bool:
        return len(self.configured) == len(self.links.expected)

    def read(self) -> None:
        try:
            data = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return
        offset, changed = 0, set()
        while offset + _EVENT.size <= len(data):
            _, mask, _, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size:offset + _EVENT.size + length].split(b"\0", 1)[0].decode()
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                changed.update(int(n) for n in os.listdir(self.directory) if n.isdigit())
            elif name.isdigit():
                changed.add(int(name))
        self.events += len(changed)
        for index in changed:
            self._load(index)

    def _load(self, index: int) -> None:
        try:
            with open(f"{self.directory}/{index}", encoding="utf-8") as f:
                state = next((line.strip().split("=", 1)[1] for line in f if line.startswith("ADMIN_STATE=")), "")
        except FileNotFoundError:
            state = ""
        self.state[index] = state
        self.note(index)

    def note(self, index: int) -> None:
        """Count link INDEX as configured or not (also when the link's name becomes known)."""
        name = self.links.name_of(index)
        if name in self.links.expected:
            if self.state.get(index) == "configured":
                self.configured.add(name)
            else:
                self.configured.discard(name)


# --- one run -----------------------------------------------------------------------------

@dataclass
class Timing:
    links: float | None        # seconds from the start to every link in state (0: they were already)
    configured: float | None   # seconds from the start to every link configured
    warnings: list[str] = field(default_factory=list)   # what networkd complained of, not about the files
    undone: list[str] = field(default_factory=list)     # links not as expected at the end (see run)


# networkd's own stop takes one RCU grace period per link (closing each link's packet socket,
# in packet_release): ~1 min for 3,000 links. It is waited for (untimed), so that nothing of it
# overlaps the next measurement.
STOP_GRACE = 600.0

# Seconds without any sign of work from networkd (a link notification, a state file, a log line)
# after which it is taken to have given up on what is not done yet: its netlink requests time out
# after 25 s.
STALL = 30.0

# What networkd says, rightly, of a link that is there already when it starts.
PRESENT = re.compile(r"^\S+: netdev exists, using existing without changing its parameters$")


def run(ns: str, config_dir: Path, expected: dict[str, str | None], timeout: float, present: bool = False,
        linger: float = 0.0) -> Timing:
    """Start networkd on CONFIG_DIR in NS (which exists); time it; stop it. See the module docs.

    A moment networkd does not reach (it gave up: STALL seconds without a sign of work; or
    `timeout` seconds passed) is None, and the links short of it are in `undone`.
    present: the links are expected to be in state already (a restart): then `links` is 0.
    linger: seconds to go on watching once both moments are taken (untimed). A link networkd
      no longer calls configured by then (it fails one when the reply to a request of its own
      times out, 25 s after it was sent), or that the kernel does not show as expected once
      networkd has stopped, is in `undone`, with its state."""
    nd = harness()
    proc = nd.start(ns, config_dir, "info", gated=True)
    reader = nd.LogReader(proc.stdout)
    reader.start()
    links = states = None
    try:
        deadline = time.monotonic() + 30
        while not any(text == nd.GATE_READY for _, text in reader.snapshot()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"networkd's sandbox did not start:\n{_tail(reader)}")
            time.sleep(0.005)
        links = Links(ns, expected)
        states = States(f"/proc/{proc.pid}/root/run/systemd/netif/links", links)
        links.read()
        if present and not links.done:
            raise BenchError(f"{len(expected) - len(links.good)} links not in state before networkd's restart")
        assert proc.stdin is not None
        start = time.monotonic()
        proc.stdin.write("\n")
        proc.stdin.flush()
        timing = Timing(0.0 if links.done else None, None)
        deadline, both, progress, seen = start + timeout, None, start, None
        while both is None or time.monotonic() < both + linger:
            select.select([links, states], [], [], 0.5)
            now = time.monotonic()
            for index in links.read():
                states.note(index)
            states.read()
            if timing.links is None and links.done:
                timing.links = now - start
            if timing.configured is None and states.done:
                timing.configured = now - start
            if both is None and timing.links is not None and timing.configured is not None:
                both = now
            if proc.poll() is not None:
                raise BenchError(f"networkd exited ({proc.returncode}) before the links were done:\n{_tail(reader)}")
            if (mark := (links.messages, states.events, len(reader.lines))) != seen:
                seen, progress = mark, now
            if both is None and (now - progress > STALL or now > deadline):
                break
        timing.undone = [f"{name}: {states.state.get(links.index.get(name, -1)) or 'no state'} in networkd"
                         for name in sorted(set(expected) - states.configured)]
    finally:
        for watch in (links, states):
            if watch is not None:
                watch.close()
        nd.stop(proc, grace=STOP_GRACE)
        reader.join(timeout=5)
    warnings = [w for w in nd.warnings_of(reader.snapshot()) if not PRESENT.match(w)]
    about_files = [w for w in warnings if nd.CONFIG_MENTION.search(w)]
    if about_files:
        raise BenchError("networkd warned about the files:\n" + "\n".join(about_files[:10]))
    timing.warnings = warnings
    timing.undone += check_links(ns, expected)
    return timing


def check_links(ns: str, expected: dict[str, str | None]) -> list[str]:
    """What `ip -j link` shows that differs from EXPECTED (every link up, with its master):
    "NAME: missing", "NAME: down", "NAME: not enslaved to its master"."""
    found = {link["ifname"]: link for link in json.loads(subprocess.run(
        ["ip", "-n", ns, "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)}
    problems = []
    for name, master in expected.items():
        link = found.get(name)
        if link is None:
            problems.append(f"{name}: missing")
        elif "UP" not in link.get("flags", []):
            problems.append(f"{name}: down")
        elif link.get("master") != master:
            problems.append(f"{name}: not enslaved to its master")
    return problems


def _tail(reader) -> str:
    return "\n".join(text for _, text in reader.snapshot()[-15:])
