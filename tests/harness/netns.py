"""Throwaway network namespaces, and the kernel state inside one as plain dicts.

Every helper here names a namespace explicitly (`ip -n NS`, `tc -n NS`,
`ip netns exec NS`): nothing in this module reads or changes the machine's own
namespace. `fresh_netns()` creates a uniquely named namespace and always deletes
it again, killing whatever still runs in it.

    with fresh_netns() as ns:
        ip(ns, "link", "add", "br0", "type", "bridge")
        assert links(ns)["br0"]["kind"] == "bridge"

or, as a fixture (import it into the test module: `from harness.netns import netns`):

    def test_x(netns):
        ...

The readers (`links`, `addresses`, `routes`, `qdiscs`, `filters`, `bridge_vlans`)
return kernel state normalised for comparison: keyed by interface name where that
is natural, volatile fields (timers, counters, reference counts, ifindexes)
dropped, lists sorted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

PREFIX = "vnetc-t"
CMD_TIMEOUT = 20  # seconds; one iproute2 command never legitimately takes longer


# --------------------------------------------------------------------------
# environment: root and iproute2, or skip (locally) / fail (under CI=true)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def environment_problem(tools: tuple[str, ...] = ("ip",)) -> str | None:
    """Why namespaces cannot be used here (not root, a tool missing), or None."""
    if os.geteuid() != 0:
        return "not running as root (network namespaces need root)"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"no `{tool}` binary on PATH (Debian package iproute2)"
    return None


def skip_or_fail(reason: str) -> None:
    """A test cannot run for a reason other than the kernel: skip it locally,
    fail it under CI=true (where the machine is supposed to have everything)."""
    if in_ci():
        pytest.fail(f"{reason} [CI=true: this must not be skipped]", pytrace=False)
    pytest.skip(reason)


def require_netns(tools: tuple[str, ...] = ("ip",)) -> None:
    problem = environment_problem(tools)
    if problem is not None:
        skip_or_fail(problem)


# --------------------------------------------------------------------------
# commands


class CommandError(RuntimeError):
    def __init__(self, cmd: list[str], proc: subprocess.CompletedProcess):
        self.cmd = cmd
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        super().__init__(f"`{' '.join(cmd)}` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")


def _run(cmd: list[str], check: bool = True, timeout: float = CMD_TIMEOUT,
         input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise CommandError(cmd, proc)
    return proc


def _check_ns(ns: str) -> str:
    if not ns or "/" in ns or ns.startswith("-"):
        raise ValueError(f"not a namespace name: {ns!r}")
    return ns


def ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`ip -n NS ARGS`."""
    return _run(["ip", "-n", _check_ns(ns), *args], check=check)


def tc(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`tc -n NS ARGS`."""
    return _run(["tc", "-n", _check_ns(ns), *args], check=check)


def bridge(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`bridge -n NS ARGS`."""
    return _run(["bridge", "-n", _check_ns(ns), *args], check=check)


def run_in(ns: str, *cmd: str, check: bool = True, timeout: float = CMD_TIMEOUT,
           input: str | None = None) -> subprocess.CompletedProcess:
    """Run CMD inside the namespace (`ip netns exec NS CMD`)."""
    return _run(["ip", "netns", "exec", _check_ns(ns), *cmd], check=check, timeout=timeout, input=input)


def _json(proc: subprocess.CompletedProcess) -> Any:
    text = proc.stdout.strip()
    return json.loads(text) if text else []


# --------------------------------------------------------------------------
# namespaces


def unique_name(prefix: str = PREFIX) -> str:
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def list_netns() -> list[str]:
    out = _run(["ip", "-j", "netns", "list"], check=False)
    try:
        return [entry["name"] for entry in _json(out)]
    except (ValueError, KeyError, TypeError):
        return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def netns_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", _check_ns(ns)], check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def delete_netns(ns: str, timeout: float = 5.0) -> None:
    """Kill every process still in NS, then delete it. Idempotent."""
    _check_ns(ns)
    if ns not in list_netns():
        return
    deadline = time.monotonic() + timeout
    while True:
        pids = netns_pids(ns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    _run(["ip", "netns", "delete", ns], check=False)
    if ns in list_netns():
        raise RuntimeError(f"network namespace {ns} could not be deleted")


@contextmanager
def fresh_netns(prefix: str = PREFIX, loopback_up: bool = True) -> Iterator[str]:
    """A new, uniquely named network namespace, deleted on exit whatever happens."""
    name = unique_name(prefix)
    _run(["ip", "netns", "add", name])
    try:
        if loopback_up:
            ip(name, "link", "set", "lo", "up")
        yield name
    finally:
        delete_netns(name)


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh namespace for one test (skips/fails without root or iproute2)."""
    require_netns()
    with fresh_netns() as name:
        yield name


def add_veth(ns: str, name: str, peer: str | None = None, up: bool = True) -> str:
    """A veth pair NAME <-> PEER (default `p-NAME`), both inside NS; returns the peer."""
    peer = peer or f"p-{name}"
    ip(ns, "link", "add", name, "type", "veth", "peer", "name", peer)
    if up:
        ip(ns, "link", "set", name, "up")
        ip(ns, "link", "set", peer, "up")
    return peer


# --------------------------------------------------------------------------
# kernel state, normalised

# Fields of linkinfo.info_data that change by themselves (timers) or say nothing
# about configuration; dropped so that two snapshots of one setup compare equal.
VOLATILE_INFO = frozenset({
    "hello_timer", "tcn_timer", "topology_change_timer", "gc_timer",
    "root_id", "bridge_id", "designated_root", "designated_bridge",
    "forward_delay_timer", "hold_timer", "message_age_timer",
    "topology_change", "topology_change_detected", "topology_change_ack",
    "root_port", "root_path_cost", "config_pending",
    "usedbcqueuelen",
})

# A compact, kind-specific summary of info_data (`link["data"]`): the settings a
# configuration file chooses. Keys are renamed to one spelling across kinds.
KIND_DATA: dict[str, dict[str, str]] = {
    "vlan": {"id": "id", "protocol": "protocol"},
    "vxlan": {"id": "id", "local": "local", "remote": "remote", "group": "group",
              "port": "port", "link": "dev", "ttl": "ttl", "learning": "learning"},
    "macvlan": {"mode": "mode"},
    "macvtap": {"mode": "mode"},
    "ipvlan": {"mode": "mode"},
    "ipvtap": {"mode": "mode"},
    "bond": {"mode": "mode", "miimon": "miimon"},
    "bridge": {"vlan_filtering": "vlan_filtering", "stp_state": "stp_state",
               "vlan_protocol": "vlan_protocol", "vlan_default_pvid": "vlan_default_pvid",
               "forward_delay": "forward_delay", "priority": "priority"},
    "macsec": {"sci": "sci", "encrypt": "encrypt"},
    "veth": {},
    "tun": {"type": "type"},
}


def _raw_links(ns: str) -> list[dict]:
    return _json(ip(ns, "-j", "-d", "link", "show"))


def normalise_link(raw: dict, names_by_index: dict[int, str] | None = None) -> dict:
    info = raw.get("linkinfo") or {}
    kind = info.get("info_kind")
    data = {k: v for k, v in (info.get("info_data") or {}).items() if k not in VOLATILE_INFO}
    lower = raw.get("link")
    if lower is None and "link_index" in raw and "link_netnsid" not in raw and names_by_index:
        lower = names_by_index.get(raw["link_index"])
    flags = sorted(raw.get("flags", []))
    return {
        "name": raw["ifname"],
        "kind": kind,
        "master": raw.get("master"),
        # the lower device by name; None when there is none, or when it is in another
        # namespace (then `link_netnsid` says which)
        "link": lower,
        "link_netnsid": raw.get("link_netnsid"),
        "mtu": raw.get("mtu"),
        "address": raw.get("address"),
        "up": "UP" in flags,
        "operstate": raw.get("operstate"),
        "flags": flags,
        "info": data,
        "data": {new: data[old] for old, new in KIND_DATA.get(kind, {}).items() if old in data},
        "slave_kind": info.get("info_slave_kind"),
        "slave": {k: v for k, v in (info.get("info_slave_data") or {}).items() if k not in VOLATILE_INFO},
    }


def links(ns: str) -> dict[str, dict]:
    """Every link in NS by name (`ip -j -d link show`), normalised (see normalise_link)."""
    return links_from_raw(_raw_links(ns))


def links_from_raw(raw: list[dict]) -> dict[str, dict]:
    by_index = {r["ifindex"]: r["ifname"] for r in raw if "ifindex" in r}
    return {r["ifname"]: normalise_link(r, by_index) for r in raw}


def links_and_indexes(ns: str) -> tuple[dict[str, dict], dict[str, int]]:
    """links(ns) and {name: ifindex} from one `ip` call."""
    raw = _raw_links(ns)
    return links_from_raw(raw), {r["ifname"]: r["ifindex"] for r in raw}


def ifindexes(ns: str) -> dict[str, int]:
    return {r["ifname"]: r["ifindex"] for r in _raw_links(ns)}


def _is_link_local(family: str, addr: str) -> bool:
    return family == "inet6" and addr.lower().startswith("fe80:")


def addresses(ns: str, link_local: bool = False, loopback: bool = False) -> dict[str, list[str]]:
    """{ifname: sorted ["10.0.0.1/24", "fd00::1/64", "10.9.0.1 peer 10.9.0.2/32"]}.

    IPv6 link-local addresses (the kernel's own, from the MAC) and the loopback
    device are left out unless asked for; interfaces without an address are left out.
    """
    out: dict[str, list[str]] = {}
    for entry in _json(ip(ns, "-j", "addr", "show")):
        name = entry["ifname"]
        if name == "lo" and not loopback:
            continue
        for a in entry.get("addr_info", []):
            local = a.get("local")
            if local is None:
                continue
            if not link_local and _is_link_local(a.get("family", ""), local):
                continue
            text = f"{local}/{a['prefixlen']}"
            if a.get("address") and a["address"] != local:
                text = f"{local} peer {a['address']}/{a['prefixlen']}"
            out.setdefault(name, []).append(text)
    return {k: sorted(v) for k, v in out.items()}


def _full_dst(dst: str, family: str) -> str:
    if dst == "default":
        return "0.0.0.0/0" if family == "inet" else "::/0"
    if "/" not in dst:
        return f"{dst}/{32 if family == 'inet' else 128}"
    return dst


ROUTE_KEYS = ("dst", "gateway", "dev", "metric", "table", "protocol", "scope", "type", "prefsrc", "src")


def routes(ns: str, kernel: bool = False, local: bool = False) -> list[dict]:
    """Routes of both families in every table, sorted, as dicts of ROUTE_KEYS.

    `dst` is always a prefix ("0.0.0.0/0" for default); `table` defaults to "main",
    `type` to "unicast". The kernel's own routes (protocol kernel: prefix routes
    of addresses, IPv6 link-local and multicast) and the `local` table are left out
    unless asked for.
    """
    result = []
    for family, flag in (("inet", "-4"), ("inet6", "-6")):
        for r in _json(ip(ns, "-j", flag, "route", "show", "table", "all")):
            route = {
                "family": family,
                "dst": _full_dst(r.get("dst", "default"), family),
                "gateway": r.get("gateway"),
                "dev": r.get("dev"),
                "metric": r.get("metric"),
                "table": str(r.get("table", "main")),
                "protocol": r.get("protocol", "boot"),
                "scope": r.get("scope"),
                "type": r.get("type", "unicast"),
                "prefsrc": r.get("prefsrc"),
            }
            if r.get("nexthops"):
                route["nexthops"] = [{"gateway": h.get("gateway"), "dev": h.get("dev"),
                                      "weight": h.get("weight")} for h in r["nexthops"]]
            if route["protocol"] == "kernel" and not kernel:
                continue
            if route["table"] == "local" and not local:
                continue
            result.append(route)
    return sorted(result, key=lambda r: json.dumps(r, sort_keys=True))


def qdiscs(ns: str, defaults: bool = False) -> list[dict]:
    """Qdiscs from `tc -j qdisc show`: [{dev, kind, handle, parent, options}], sorted.

    `parent` is "root" for a root qdisc. The kernel's default root qdisc
    (handle 0:, e.g. noqueue on a veth, pfifo_fast on a tap) is left out unless
    `defaults`.
    """
    result = []
    for q in _json(tc(ns, "-j", "qdisc", "show")):
        root = bool(q.get("root"))
        handle = q.get("handle")
        if not defaults and (q.get("kind") in ("noqueue", "noop") or (root and handle == "0:")):
            continue
        result.append({
            "dev": q.get("dev"),
            "kind": q.get("kind"),
            "handle": handle,
            "parent": "root" if root else q.get("parent"),
            "options": _strip(q.get("options") or {}),
        })
    return sorted(result, key=lambda r: json.dumps(r, sort_keys=True))


# Counters and bookkeeping inside tc's JSON (filters, actions).
VOLATILE_TC = frozenset({"ref", "bind", "installed", "last_used", "expires", "first_used",
                         "stats", "not_in_hw", "in_hw", "in_hw_count", "index", "order", "refcnt"})


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_TC}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def filters(ns: str, dev: str, parent: str = "ingress") -> list[dict]:
    """Filters of DEV under PARENT ("ingress", "egress", "root", "1:", ...).

    tc prints, per priority, a header entry and then one entry per filter (u32
    also prints its hash tables). Only entries that carry a filter are kept:
    [{protocol, pref, kind, chain, handle, options}] with counters stripped.
    """
    result = []
    for f in _json(tc(ns, "-j", "filter", "show", "dev", dev, parent)):
        options = f.get("options")
        if not options:
            continue  # the per-priority header
        if f.get("kind") == "u32" and set(options) <= {"fh", "ht_divisor"}:
            continue  # a u32 hash table, not a filter
        opts = _strip(options)
        result.append({
            "protocol": f.get("protocol"),
            "pref": f.get("pref"),
            "kind": f.get("kind"),
            "chain": f.get("chain", 0),
            "handle": opts.pop("fh", None),
            "options": opts,
        })
    return result


def bridge_vlans(ns: str) -> dict[str, list[dict]]:
    """`bridge -j vlan show` as {ifname: [{"vid", "pvid", "untagged"}]}, ranges expanded."""
    return normalise_bridge_vlans(_json(bridge(ns, "-j", "vlan", "show")))


def normalise_bridge_vlans(raw: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entry in raw:
        vids = []
        for v in entry.get("vlans", []):
            flags = v.get("flags", [])
            for vid in range(v["vlan"], v.get("vlanEnd", v["vlan"]) + 1):
                vids.append({"vid": vid, "pvid": "PVID" in flags, "untagged": "Egress Untagged" in flags})
        out[entry["ifname"]] = sorted(vids, key=lambda d: d["vid"])
    return out


def snapshot(ns: str) -> dict:
    """Everything the readers above see, in one dict (for comparing two setups)."""
    shot = {
        "links": links(ns),
        "addresses": addresses(ns),
        "routes": routes(ns),
        "qdiscs": qdiscs(ns),
        "bridge_vlans": bridge_vlans(ns),
    }
    shot["filters"] = {q["dev"]: filters(ns, q["dev"]) for q in shot["qdiscs"] if q["kind"] in ("ingress", "clsact")}
    return shot
