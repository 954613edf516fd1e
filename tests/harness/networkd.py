"""The real systemd-networkd, run on a directory of .netdev/.network files inside a
throwaway network namespace (the recipe of shared/design/testing.md).

    run = run_networkd(config_dir, fake_nics=["eth0"], expect=["br0"])
    assert run.ready, run.log()
    assert run.warnings == []
    assert run.links["eth0"]["master"] == "br0"

What happens:
  1. a fresh namespace; each fake NIC is a veth pair NIC <-> p-NIC, both up, both in it;
  2. `ip netns exec NS unshare -m --propagation private sh -c SCRIPT`: in that private
     mount namespace only, tmpfs over /run/systemd (netif dirs owned by
     systemd-network) and over /etc/systemd/network (filled from config_dir),
     sysfs remounted read-only (networkd then does not wait for udev); then
     /lib/systemd/systemd-networkd runs with its log on the console;
  3. the kernel state is polled until every expected device exists and networkd
     is done with it (or `timeout`);
  4. the state is read, networkd stopped (SIGTERM, then SIGKILL), its whole log
     kept, the namespace deleted (whatever happened).

The machine's own /etc/systemd/network, /run/systemd, D-Bus and network namespace
are never touched: every mount is made inside the unshared mount namespace (the
script refuses to run if it is not in a new one), and networkd is pointed at a
D-Bus socket that does not exist.

Step 2 alone is `start(ns, config_dir, log_level)`; the benchmark (bench/_networkd.py)
starts it `gated`, to time networkd without the sandbox's own set-up.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .netns import (CommandError, add_veth, addresses, bridge_vlans, environment_problem, fresh_netns, links,
                    links_and_indexes, qdiscs, routes, skip_or_fail)

NETWORKD = "/lib/systemd/systemd-networkd"
CONFIG_DIR_IN_SANDBOX = "/etc/systemd/network"

# Runs as `sh -c SCRIPT sh CONFIG_DIR HOST_MNT_NS LOG_LEVEL [gated]`. `set -e`: a mount that
# fails stops everything (nothing is ever copied onto the real /etc/systemd/network).
# "gated" (bench/_networkd.py): print GATE_READY once the sandbox is in place and start
# networkd only when a line arrives on stdin, so that a benchmark times networkd alone.
GATE_READY = "vnetc-harness: sandbox ready"
SANDBOX_SCRIPT = r"""
set -eu
if [ "$(readlink /proc/self/ns/mnt)" = "$2" ]; then
    echo "vnetc-harness: not in a private mount namespace, refusing" >&2; exit 99
fi
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir -p /run/systemd/netif/links /run/systemd/netif/leases /run/systemd/netif/lldp
# user AND group: with the group left root (as `chown -R systemd-network` does),
# networkd 252 warns "owned by 998:0 ... refusing" and "Could not create runtime directory"
chown -R systemd-network:systemd-network /run/systemd/netif
umount /sys
mount -t sysfs -o ro sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/network
cp -a "$1"/. /etc/systemd/network/
# cp -a gives the mount point the source directory's mode (a pytest tmp_path is
# 0700): networkd, running as systemd-network, then silently finds no files
chmod 0755 /etc/systemd/network
if [ "${4:-}" = gated ]; then echo "vnetc-harness: sandbox ready"; read -r _; fi
exec env SYSTEMD_LOG_LEVEL="$3" SYSTEMD_LOG_TARGET=console \
    SYSTEMD_LOG_COLOR=1 SYSTEMD_COLORS=true \
    DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/systemd/no-such-bus \
    /lib/systemd/systemd-networkd
"""

# Variables of the calling environment that would connect networkd to the outside
# (a service manager's notify socket, a real bus) or change its logging.
_SCRUB_ENV = re.compile(r"^(NOTIFY_SOCKET|WATCHDOG_\w+|LISTEN_\w+|SYSTEMD_\w+|DBUS_\w+|INVOCATION_ID|JOURNAL_STREAM)$")

# --------------------------------------------------------------------------
# the log

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEADING_ANSI = re.compile(r"^\x1b\[([0-9;]*)m")


def parse_log_line(raw: str) -> tuple[str, str]:
    """(level, text) of one console line. networkd colours its console log by
    priority when SYSTEMD_LOG_COLOR=1 and SYSTEMD_COLORS=true: red = err or worse,
    yellow = warning, bold = notice, grey = debug, plain = info."""
    m = _LEADING_ANSI.match(raw)
    text = _ANSI.sub("", raw).rstrip("\r\n")
    if not m:
        return "info", text
    # systemd 252 ansi-color.h: HIGHLIGHT_RED 0;1;31, HIGHLIGHT_YELLOW 0;1;38;5;185
    # (0;1;33 with 16 colours), HIGHLIGHT 0;1;39, GREY 0;38;5;245 (0;2;37).
    codes = m.group(1).split(";")
    if codes[-1] == "31" and "38" not in codes:
        return "err", text
    if codes[-1] in ("185", "33"):
        return "warning", text
    if codes[-1] in ("245", "90") or codes[-2:] == ["2", "37"]:
        return "debug", text
    if codes[-1] in ("39", "1"):
        return "notice", text
    return "info", text


SEVERE = frozenset({"emerg", "alert", "crit", "err", "warning"})

# A diagnostic about a configuration file: "PATH.netdev:6: ...", also for drop-ins
# ("x.network.d/10-a.conf:3: ...").
CONFIG_DIAGNOSTIC = re.compile(r"\.(netdev|network|link)(\.d/[^:\s]+\.conf)?:\d+:")
# A line that names the configuration directory ("Failed to search for files in
# /etc/systemd/network, ignoring: Permission denied" is logged at debug level only).
CONFIG_DIR_MENTION = re.compile(re.escape(CONFIG_DIR_IN_SANDBOX) + r"\b")
# A line that names one of the configuration files at all.
CONFIG_MENTION = re.compile(re.escape(CONFIG_DIR_IN_SANDBOX) + r"/|\.(netdev|network|link)\b")
# Words of a problem, for lines below warning level (and for any line if the log
# has no colours, i.e. no levels).
PROBLEM_WORDS = re.compile(
    r"ignor|invalid|unknown|fail|error|not supported|unsupported|deprecated|obsolete|"
    r"missing|cannot|can't|could not|refus|without|not allowed|out of range|conflict|"
    r"too (many|long|short|large|small)|duplicate",
    re.IGNORECASE,
)

# The sandbox's own noise: lines that are about the throwaway environment, not
# about the configuration under test. Applied only to lines that name no
# configuration file (a line naming one is always reported). Each entry: regex,
# why it is noise.
NOISE: list[tuple[re.Pattern[str], str]] = [(re.compile(rx), why) for rx, why in [
    (r'^Directory "/run/systemd/netif" already exists, but is owned by',
     "state dir ownership: the recipe's `chown -R systemd-network` leaves group root"),
    (r"^Could not create runtime directory",
     "same cause: networkd refuses the state dir the sandbox made for it"),
    (r"/run/systemd/netif|[Ff]ailed to (save|write|update|open) (link|state|lease|lldp|LLDP)",
     "state files live in a throwaway tmpfs nobody reads"),
    (r"PID 1\b",
     "PID 1 is the container's init, not systemd: its $container / namespace is unreadable"),
    (r"^Found (container|VM|vm) virtualization|[Dd]etect(ed|ing)? virtualization",
     "virtualization detection inside the container"),
    (r"SELinux|AppArmor|[Ss]mack",
     "no security module policy in the sandbox"),
    (r"sd-bus|[Bb]us bus-api|bus-api-|system bus|D-Bus|dbus|no-such-bus|[Ff]ailed to connect to bus|[Bb]us connection",
     "no D-Bus in the sandbox (DBUS_SYSTEM_BUS_ADDRESS points nowhere on purpose)"),
    (r"org\.freedesktop\.(hostname1|resolve1|timedate1|login1|PolicyKit1)|systemd-(hostnamed|resolved|timesyncd|logind)|polkit",
     "the other systemd daemons do not run in the sandbox"),
    (r"sd_notify|NOTIFY_SOCKET|[Ww]atchdog|[Cc]redential",
     "networkd is not started by a service manager"),
    (r"\budev\b|sd-device|sd_device",
     "udev does not run; sysfs is read-only on purpose"),
    (r"wireless LAN|nl80211|wiphy|\bwlan\b",
     "no wireless devices or nl80211 in the namespace"),
    (r": Failed to get driver|ethtool|[Pp]ermanent (hardware|MAC) address",
     "loopback and virtual NICs have no ethtool driver or permanent MAC"),
    (r"rtnl: received .*ignoring",
     "netlink messages of families networkd does not track (bridge neighbours, IPv6 rules)"),
    (r"DHCPv6 lease lost|NDISC: Stopping|LLDP Rx: Stopping|DHCPv4 client: Stopping",
     "shutdown: the dynamic clients stop (no router in a namespace)"),
]]


def is_noise(text: str) -> bool:
    return any(rx.search(text) for rx, _ in NOISE)


def is_warning(level: str | None, text: str) -> bool:
    """Whether one log line is a problem worth reporting (see module docs)."""
    names_config = bool(CONFIG_MENTION.search(text) or CONFIG_DIR_MENTION.search(text))
    if CONFIG_DIAGNOSTIC.search(text):
        return True
    if level in SEVERE:
        candidate = True
    elif level in ("notice", "info", None):
        candidate = bool(PROBLEM_WORDS.search(text))
    else:  # debug: file:line diagnostics (above) and problems reading the config dir
        candidate = bool(CONFIG_DIR_MENTION.search(text) and PROBLEM_WORDS.search(text))
    return candidate and (names_config or not is_noise(text))


def warnings_of(lines: Iterable[tuple[str, str]]) -> list[str]:
    return [text for level, text in lines if is_warning(level, text)]


# --------------------------------------------------------------------------
# the run


@dataclass
class NetworkdRun:
    log_lines: list[str]                       # networkd's whole console log, colours stripped
    links: dict[str, dict]
    addresses: dict[str, list[str]]
    routes: list[dict]
    qdiscs: list[dict]
    warnings: list[str]                        # problems, sandbox noise filtered out
    levels: list[str] = field(default_factory=list)   # the level of each log line
    bridge_vlans: dict[str, list[dict]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)   # ifname -> networkd's ADMIN_STATE
    expect: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)        # expected, never appeared
    ready: bool = False                        # everything expected settled before the timeout
    failed_netdevs: list[str] = field(default_factory=list)  # "NAME: netdev could not be created"
    returncode: int | None = None
    exited_early: bool = False                 # networkd died on its own
    elapsed: float = 0.0                       # seconds, namespace creation to deletion
    ns: str = ""                               # the namespace (deleted by now)
    extra: Any = None                          # what the `inspect` callback returned

    def log(self) -> str:
        return "\n".join(f"[{lvl}] {line}" for lvl, line in zip(self.levels, self.log_lines))

    def describe(self) -> str:
        """For assertion messages: state, warnings and the log."""
        return (f"ready={self.ready} missing={self.missing} states={self.states} "
                f"failed={self.failed_netdevs} rc={self.returncode}\n"
                f"warnings={self.warnings}\n--- networkd log ---\n{self.log()}")


def networkd_problem() -> str | None:
    """Why networkd cannot be run here (no root, a tool, networkd or its user missing), or None."""
    problem = environment_problem(("ip", "tc", "bridge", "unshare"))
    if problem is not None:
        return problem
    if not os.access(NETWORKD, os.X_OK):
        return f"no {NETWORKD} (Debian package systemd)"
    try:
        import pwd
        pwd.getpwnam("systemd-network")
    except KeyError:
        return "no systemd-network user (Debian package systemd)"
    if not os.path.isdir(CONFIG_DIR_IN_SANDBOX) or not os.path.isdir("/run/systemd"):
        return (f"{CONFIG_DIR_IN_SANDBOX} or /run/systemd missing: nothing to mount over "
                "(the harness never creates them on the machine)")
    return None


def require_networkd() -> None:
    """Skip (locally) or fail (CI=true) when networkd cannot be run here."""
    problem = networkd_problem()
    if problem is not None:
        skip_or_fail(problem)


_SECTION = re.compile(r"^\s*\[(\w+)\]\s*$")
_NAME = re.compile(r"^\s*Name\s*=\s*(\S+)\s*$")


def netdev_files(config_dir: Path) -> dict[str, str]:
    """{Name= of the [NetDev] section: file name} for every .netdev file in config_dir."""
    names: dict[str, str] = {}
    for path in sorted(Path(config_dir).glob("*.netdev")):
        section = None
        for line in path.read_text(errors="replace").splitlines():
            if m := _SECTION.match(line):
                section = m.group(1)
            elif section == "NetDev" and (m := _NAME.match(line)):
                names.setdefault(m.group(1), path.name)
    return names


def netdev_names(config_dir: Path) -> list[str]:
    return list(netdev_files(config_dir))


_CHECK_READY = re.compile(r"^(?P<name>[^:\s]+): link_check_ready\(\): (?P<why>.*)$")
# link_check_ready() gets past every static step (addresses, routes, bridge, tc...)
# before it checks these two, so either means "static configuration done".
_STATIC_DONE_WHY = re.compile(r"^(IPv6LL is not configured yet|dynamic addresses or routes are not configured)")
_NETDEV_FAILED = re.compile(r"^(?P<name>[^:\s]+): (netdev could not be created|Failed to create netdev|"
                            r"Could not create netdev|netdev creation failed)")
SETTLED_STATES = frozenset({"configured", "unmanaged", "failed", "linger"})


class LogReader(threading.Thread):
    """Reads networkd's console log as it comes: (level, text) per line."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        for raw in iter(self.stream.readline, ""):
            parsed = parse_log_line(raw)
            with self.lock:
                self.lines.append(parsed)

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.lines)


def _link_states(pid: int, index_by_name: dict[str, int]) -> dict[str, str]:
    """ADMIN_STATE per link, from networkd's state files in its own mount namespace
    (/proc/PID/root). Empty until the process is networkd itself."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            if not f.read().startswith("systemd-network"):
                return {}
    except OSError:
        return {}
    states = {}
    base = f"/proc/{pid}/root/run/systemd/netif/links"
    for name, index in index_by_name.items():
        try:
            with open(f"{base}/{index}") as f:
                for line in f:
                    if line.startswith("ADMIN_STATE="):
                        states[name] = line.strip().split("=", 1)[1]
                        break
        except OSError:
            pass
    return states


def stop(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def start(ns: str, config_dir: Path, log_level: str, gated: bool = False) -> subprocess.Popen:
    """networkd on CONFIG_DIR in NS, in its sandbox (SANDBOX_SCRIPT); its console log on stdout.

    gated: the sandbox prints GATE_READY when it is in place and waits for a line on
    stdin before it starts networkd (stdin is then a pipe; else /dev/null)."""
    env = {k: v for k, v in os.environ.items() if not _SCRUB_ENV.match(k)}
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
         "sh", "-c", SANDBOX_SCRIPT, "sh", str(config_dir), os.readlink("/proc/self/ns/mnt"), log_level,
         *(["gated"] if gated else [])],
        stdin=subprocess.PIPE if gated else subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", env=env, start_new_session=True,
    )


def run_networkd(
    config_dir: str | os.PathLike,
    fake_nics: Iterable[str] = ("eth0",),
    expect: Iterable[str] | None = None,
    timeout: float = 5.0,
    log_level: str = "debug",
    settle: float = 0.3,
    poll: float = 0.03,
    inspect: Callable[[str], Any] | None = None,
) -> NetworkdRun:
    """Run networkd on CONFIG_DIR in a fresh namespace; see the module docs.

    expect: device names to wait for (default: every [NetDev] Name= in config_dir
      plus the fake NICs). A device networkd reports it could not create is not
      waited for. `ready` says whether everything settled before `timeout`.
    settle: how long the kernel state must stay unchanged before a link networkd
      still calls "configuring" counts as done (it stays "configuring" while it
      waits for an IPv6 router advertisement that never comes in a namespace).
      At log_level debug networkd says when its static configuration is done, and
      that is used instead.
    inspect: called with the namespace name before networkd is stopped (to read
      more state, e.g. harness.netns.filters); its result is `run.extra`.
    """
    require_networkd()
    config_dir = Path(config_dir).resolve()
    if not config_dir.is_dir():
        raise FileNotFoundError(config_dir)
    fake_nics = list(fake_nics)
    for nic in fake_nics:
        if len(nic) > 13:
            raise ValueError(f"fake NIC name {nic!r} too long for its peer p-{nic} (IFNAMSIZ)")
    expected = list(dict.fromkeys(list(expect) if expect is not None else netdev_names(config_dir) + fake_nics))
    started = time.monotonic()
    result: NetworkdRun | None = None
    with fresh_netns() as ns:
        for nic in fake_nics:
            add_veth(ns, nic, f"p-{nic}", up=True)
        proc = start(ns, config_dir, log_level)
        reader = LogReader(proc.stdout)
        reader.start()
        try:
            ready, states, failed, last_index = _wait(proc, ns, reader, expected, netdev_files(config_dir),
                                                      timeout, settle, poll)
            state = dict(links=links(ns), addresses=addresses(ns), routes=routes(ns),
                         qdiscs=qdiscs(ns), bridge_vlans=bridge_vlans(ns))
            extra = inspect(ns) if inspect is not None else None
            # final ADMIN_STATEs (the kernel state above was read after them)
            states = _link_states(proc.pid, last_index) or states
            exited_early = proc.poll() is not None
        finally:
            stop(proc)
            reader.join(timeout=5)
        lines = reader.snapshot()
        result = NetworkdRun(
            log_lines=[t for _, t in lines],
            levels=[lvl for lvl, _ in lines],
            warnings=warnings_of(lines),
            states=states,
            expect=expected,
            missing=[n for n in expected if n not in state["links"]],
            ready=ready,
            failed_netdevs=failed,
            returncode=proc.returncode,
            exited_early=exited_early,
            ns=ns,
            extra=extra,
            **state,
        )
    result.elapsed = time.monotonic() - started
    return result


def _wait(proc, ns, reader, expected, files, timeout, settle, poll):
    """Poll until every expected link is settled; returns (ready, states, failed, index).

    A link is settled when networkd's ADMIN_STATE for it is final (configured,
    unmanaged, failed, linger), or it is "configuring" but its static configuration
    is done (debug log) or neither the kernel state nor the log has changed for
    `settle` seconds.
    An expected device that does not exist is settled when networkd said it could
    not create it, or when the state is stable and a warning names the device or
    its .netdev file (networkd refused the file). Nothing may be pending.
    """
    deadline = time.monotonic() + timeout
    min_stable = max(2 * poll, 0.1)
    last_snapshot, stable_since = None, time.monotonic()
    states: dict[str, str] = {}
    index: dict[str, int] = {}
    failed: list[str] = []
    while True:
        now = time.monotonic()
        try:
            now_links, index = links_and_indexes(ns)
            snap = (now_links, addresses(ns), routes(ns), qdiscs(ns))
        except CommandError:
            snap = None
        log = reader.snapshot()
        # "stable": neither the kernel state nor networkd's log changed
        if (snap, len(log)) != last_snapshot:
            last_snapshot, stable_since = (snap, len(log)), now
        states = _link_states(proc.pid, index)
        last_check: dict[str, str] = {}
        for _, text in log:
            if m := _CHECK_READY.match(text):
                last_check[m.group("name")] = m.group("why")
        static_done = {n for n, why in last_check.items() if _STATIC_DONE_WHY.match(why)}
        failed = sorted({m.group("name") for _, t in log if (m := _NETDEV_FAILED.match(t))})
        stable = snap is not None and now - stable_since >= settle
        warned = [t for lvl, t in log if is_warning(lvl, t)]

        def settled(name: str) -> bool:
            if name not in index:
                if name in failed:
                    return True
                file = files.get(name)
                return stable and any(t.startswith(f"{name}: ") or (file and file in t) for t in warned)
            st = states.get(name)
            if st in SETTLED_STATES:
                return True
            return st == "configuring" and (name in static_done or stable)

        busy = any(st in ("pending", "initialized") for st in states.values())
        if (states and not busy and snap is not None and now - stable_since >= min_stable
                and all(settled(n) for n in expected)):
            return True, states, failed, index
        if proc.poll() is not None or now >= deadline:
            return False, states, failed, index
        time.sleep(poll)
