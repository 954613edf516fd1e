"""What this kernel can build, probed by building it in a scratch namespace.

    ok, reason = probe_kind("vlan")      # (False, "Error: Unknown device type.")
    require_kind("vlan")                 # in a test: skip if the kernel lacks it
    require_qdisc("fq_codel")
    require_feature("bridge-vlan-filtering")

A kind the kernel lacks (it answers "Unknown device type", "not supported", ...)
is a skip whose reason says so: "kernel lacks vlan: Error: Unknown device type.".
Any other failure (not root, no `ip`, the namespace cannot be made, an error the
kernel does not use for a missing feature) skips locally and FAILS under CI=true.
Results are cached for the test session (one pytest process).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from typing import Callable

import pytest

from .netns import (CommandError, add_veth, environment_problem, fresh_netns, ip, links, run_in,
                    skip_or_fail, tc)

# What the kernel answers when it lacks a device kind, qdisc, filter, action or
# feature (the module is not built). Nothing else counts as "the kernel lacks it".
KERNEL_LACKS = re.compile(
    r"Unknown device type"                 # rtnetlink: no such link kind
    r"|Specified qdisc kind is unknown"    # tc: no such qdisc
    r"|Unknown qdisc"
    r"|Specified filter kind is unknown|Unknown filter"
    r"|Specified action kind is unknown|Unknown action|Failed to load TC action module"
    r"|Operation not supported|not supported"  # e.g. bridge vlan_filtering without CONFIG_BRIDGE_VLAN_FILTERING
    r"|Protocol not supported|Address family not supported"
    r"|no /sys/bus/netdevsim|no /dev/net/tun"
    r"|no InfiniBand",
    re.IGNORECASE,
)

LINK_KINDS = ("bridge", "bond", "team", "vlan", "vxlan", "macvlan", "macvtap", "ipvlan",
              "ipvtap", "macsec", "veth", "vcan", "vxcan", "nlmon", "dummy", "ifb", "ipoib",
              "netdevsim", "tun", "tap")
QDISC_KINDS = ("sfq", "fq_codel", "tbf", "ingress", "clsact", "htb", "prio", "netem", "pfifo")
FEATURES = ("bridge-vlan-filtering", "u32-mirred")


@dataclass(frozen=True)
class Probe:
    ok: bool
    reason: str          # "" when ok; else the error text
    kernel_lacks: bool   # the failure is the kernel saying it lacks the thing

    def __iter__(self):  # `ok, reason = probe` (the two-value form)
        return iter((self.ok, self.reason))


_cache: dict[tuple[str, str], Probe] = {}


def clear_cache() -> None:
    _cache.clear()


def _attempt(steps: Callable[[str], None]) -> Probe:
    problem = environment_problem(("ip", "tc"))
    if problem:
        return Probe(False, problem, False)
    try:
        with fresh_netns() as ns:
            steps(ns)
    except CommandError as exc:
        text = (exc.stderr or exc.stdout or str(exc)).strip().replace("\n", " ")
        return Probe(False, text, bool(KERNEL_LACKS.search(text)))
    except _Lacks as exc:
        return Probe(False, str(exc), True)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return Probe(False, f"{type(exc).__name__}: {exc}", False)
    return Probe(True, "", False)


class _Lacks(Exception):
    """The kernel lacks something, found without asking rtnetlink (e.g. no sysfs bus)."""


def _lower(ns: str) -> str:
    add_veth(ns, "lw0", "lw1", up=False)
    return "lw0"


def _create_link(kind: str, ns: str) -> str:
    """Create one device of KIND in NS (a lower veth first where it needs one); its name."""
    name = f"t-{kind}"[:15]
    if kind in ("bridge", "bond", "team", "dummy", "ifb", "vcan", "nlmon"):
        ip(ns, "link", "add", name, "type", kind)
    elif kind in ("veth", "vxcan"):
        ip(ns, "link", "add", name, "type", kind, "peer", "name", f"{name}-p"[:15])
    elif kind == "vlan":
        ip(ns, "link", "add", "link", _lower(ns), "name", name, "type", "vlan", "id", "10")
    elif kind == "vxlan":
        ip(ns, "link", "add", name, "type", "vxlan", "id", "10", "dstport", "4789")
    elif kind in ("macvlan", "macvtap", "ipvlan", "ipvtap", "macsec"):
        ip(ns, "link", "add", "link", _lower(ns), "name", name, "type", kind)
    elif kind == "ipoib":
        try:
            ip(ns, "link", "add", "link", _lower(ns), "name", name, "type", "ipoib")
        except CommandError as exc:
            text = (exc.stderr or "").strip()
            if KERNEL_LACKS.search(text):
                raise
            # the kernel has ipoib, but a veth is no InfiniBand device and there is none here
            raise _Lacks(f"no InfiniBand lower device ({text})") from exc
    elif kind in ("tun", "tap"):
        if not os.path.exists("/dev/net/tun"):
            raise _Lacks("no /dev/net/tun")
        ip(ns, "tuntap", "add", "dev", name, "mode", kind)
    elif kind == "netdevsim":
        bus = "/sys/bus/netdevsim"
        if not os.path.isdir(bus):
            raise _Lacks("no /sys/bus/netdevsim (netdevsim is not built)")
        dev_id = str(10000 + secrets.randbelow(50000))
        # new_device creates the netdev in the writer's namespace: write from inside NS
        run_in(ns, "sh", "-c", f"echo '{dev_id} 1' > {bus}/new_device")
        try:
            names = [n for n in links(ns) if n != "lo"]
            if not names:
                raise _Lacks("netdevsim created no netdev")
            return names[0]
        finally:
            run_in(ns, "sh", "-c", f"echo '{dev_id}' > {bus}/del_device", check=False)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return name


def create_link(ns: str, kind: str) -> str:
    """Create one device of KIND in NS the way the probe does; returns its name."""
    return _create_link(kind, ns)


def probe(kind: str) -> Probe:
    """The full probe result for a link kind (cached)."""
    key = ("link", kind)
    if key not in _cache:
        _cache[key] = _attempt(lambda ns: _create_link(kind, ns))
    return _cache[key]


def probe_kind(kind: str) -> tuple[bool, str]:
    """(True, "") if a KIND device can be created in a namespace here, else (False, error)."""
    ok, reason = probe(kind)
    return ok, reason


def _add_qdisc(kind: str, ns: str) -> None:
    add_veth(ns, "q0", "q1", up=False)
    if kind in ("ingress", "clsact"):
        tc(ns, "qdisc", "add", "dev", "q0", kind)
        return
    args = {
        "tbf": ["rate", "1mbit", "burst", "32k", "latency", "50ms"],
        "htb": ["default", "10"],
        "netem": ["delay", "1ms"],
    }.get(kind, [])
    tc(ns, "qdisc", "add", "dev", "q0", "root", "handle", "1:", kind, *args)


def probe_qdisc_full(kind: str) -> Probe:
    key = ("qdisc", kind)
    if key not in _cache:
        _cache[key] = _attempt(lambda ns: _add_qdisc(kind, ns))
    return _cache[key]


def probe_qdisc(kind: str) -> tuple[bool, str]:
    """(True, "") if a root (or ingress/clsact) qdisc KIND can be added here."""
    ok, reason = probe_qdisc_full(kind)
    return ok, reason


def _feature(name: str, ns: str) -> None:
    if name == "bridge-vlan-filtering":
        ip(ns, "link", "add", "t-br", "type", "bridge")
        ip(ns, "link", "set", "t-br", "type", "bridge", "vlan_filtering", "1")
    elif name == "u32-mirred":
        add_veth(ns, "f0", "f1", up=False)
        tc(ns, "qdisc", "add", "dev", "f0", "clsact")
        tc(ns, "filter", "add", "dev", "f0", "ingress", "protocol", "all", "u32",
           "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "f1")
    else:
        raise ValueError(f"unknown feature {name!r}")


def probe_feature_full(name: str) -> Probe:
    key = ("feature", name)
    if key not in _cache:
        _cache[key] = _attempt(lambda ns: _feature(name, ns))
    return _cache[key]


def probe_feature(name: str) -> tuple[bool, str]:
    ok, reason = probe_feature_full(name)
    return ok, reason


def _require(what: str, result: Probe) -> None:
    if result.ok:
        return
    if result.kernel_lacks:
        pytest.skip(f"kernel lacks {what}: {result.reason}")
    skip_or_fail(f"cannot probe {what}: {result.reason}")


def require_kind(kind: str) -> None:
    """Skip the test if the kernel lacks KIND; under CI=true fail on any other problem."""
    _require(kind, probe(kind))


def require_qdisc(kind: str) -> None:
    _require(f"qdisc {kind}", probe_qdisc_full(kind))


def require_feature(name: str) -> None:
    _require(name, probe_feature_full(name))


def probe_table() -> dict[str, Probe]:
    """Every known kind, qdisc and feature probed (for reports and `python -m`)."""
    table = {k: probe(k) for k in LINK_KINDS}
    table.update({f"qdisc {k}": probe_qdisc_full(k) for k in QDISC_KINDS})
    table.update({k: probe_feature_full(k) for k in FEATURES})
    return table


if __name__ == "__main__":  # python -m harness.kernel (from tests/)
    for what, result in probe_table().items():
        state = "ok" if result.ok else ("LACKS" if result.kernel_lacks else "ERROR")
        print(f"{what:24} {state:6} {result.reason}")
