"""The executor: `vnetc plan`, `vnetc apply` and `vnetc destroy` over netlink.

    netlink.py    the socket: requests in batches, dumps decoded on demand
    state.py      the observed state of a namespace
    kinds.py      every kind: how it is made and its kind attributes (ONE table)
    plan.py       desired (IR) vs observed -> steps of ops, each with its undo
    apply.py      running the ops: journal, rollback, lock, exit 4/5
    owner.py      the ownership mark (interface alias, link group)
    originals.py  what apply changed on interfaces, for destroy to put back; digests of what
                  the kernel does not report (MACsec SAs, team runner, netdevsim VFs)
    recreate.py   the undo of a delete: the device again, as the kernel had it
    tc.py         IFB root qdisc, the redirect-ingress chain
    tuntap.py, teamd.py, sysfs.py (netdevsim), macsec.py, namespaces.py, tools.py
    residual.py   reading a file target's residual

This module is the façade the command line calls.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from vnetc.compiler.ir import Host, Site

from . import kinds as K
from . import netlink as nl
from . import originals
from . import owner as mark
from .apply import EXIT_OK, Fault, LockBusy, Outcome, execute, lock
from .ops import Context, Plan
from .plan import Options, Planner, route_tables
from .state import Link, State, read


class SetupError(Exception):
    """The request cannot be planned here (a usage problem: no such namespace, host)."""


class Target(NamedTuple):
    """What one invocation works on: one host of a site, in the kernel's namespaces."""

    host: Host
    options: Options



def select_host(site: Site, name: str | None) -> Host:
    if name is not None:
        for host in site.hosts:
            if host.name == name:
                return host
        raise SetupError(f"no host '{name}' in the site (hosts: {', '.join(str(h.name) for h in site.hosts)})")
    if len(site.hosts) != 1:
        raise SetupError(f"the site has {len(site.hosts)} hosts ({', '.join(str(h.name) for h in site.hosts)}): "
                         f"choose one with --host")
    return site.hosts[0]


def target(site: Site, path: str, host_name: str | None = None, netns: str | None = None, adopt: bool = False,
           residual: dict | None = None, residual_target: str | None = None, offline: bool = False) -> Target:
    """What to plan for; `offline`: against an imagined kernel (plan --against-empty), so no
    question is asked of this machine (tools, key files, sysfs, the namespace)."""
    from . import sysfs
    host = select_host(site, host_name)
    names: dict[str | None, str | None] = {None: netns}
    for declared in host.declared_netns:
        names[declared] = f"{netns}-{declared}" if netns else declared
    owner = mark.owner_id(path, host.name)
    options = Options(owner=owner, netns_names=names, adopt=adopt, residual=residual, sysfs_root=sysfs.root(),
                      residual_target=residual_target, offline=offline,
                      originals=None if offline else originals.path(_lock_name(netns), owner))
    if netns is not None and not offline and not _netns_exists(netns):
        raise SetupError(f"no network namespace '{netns}' (create it with `ip netns add {netns}`)")
    return Target(host, options)


def _netns_exists(name: str) -> bool:
    import os
    return os.path.exists(nl.netns_path(name))


def _needs_vlans(host: Host) -> bool:
    return any(d.kind == "bridge" and d.get("vlan-filtering") and d.get("port") for d in host.devices)


def observe(t: Target) -> dict[str | None, State]:
    """Read every namespace of the target from the kernel (a missing declared one is empty)."""
    states = {}
    tc = any(d.kind == "ifb" for d in t.host.devices)
    vlans = _needs_vlans(t.host)
    for ns, kns in t.options.netns_names.items():
        if kns is not None and not _netns_exists(kns):
            states[ns] = State(kns, exists=False)
            continue
        with nl.Socket(kns) as sock:
            states[ns] = read(sock, kns, tc=tc, vlans=vlans, route_tables=route_tables(t.host, ns))
    return states


def empty_kernel(t: Target) -> dict[str | None, State]:
    """A kernel holding only the site's existing devices (`interface`, `failover`), unconfigured:
    what `vnetc plan --against-empty` compares with (golden tests, review without root)."""
    states = {ns: State(kns, exists=ns is None) for ns, kns in t.options.netns_names.items()}
    index = 2
    for device in t.host.devices:
        if K.KINDS[device.kind].make == "existing":
            mac = device.get("match-mac") or f"02:00:00:00:00:{index:02x}"
            states[device.netns].add(Link(index, device.name, None, 0, 1500, mac, 0, 0, None, None, 0))
            index += 1
    return states


def make_plan(t: Target, states: dict[str | None, State], destroy: bool = False) -> Plan:
    """The plan (under the lock: it reads what earlier applies recorded, originals.py)."""
    recorded = originals.read(t.options.originals) if t.options.originals is not None else {}
    planner = Planner(t.host, states, t.options, recorded)
    return planner.destroy() if destroy else planner.make()


def snapshot(t: Target) -> Callable[[], dict]:
    """A function reading what a rollback must restore: per namespace, each device's kind,
    up/down, master and addresses."""
    def read_all() -> dict:
        out: dict = {}
        for kns in t.options.netns_names.values():
            if kns is not None and not _netns_exists(kns):
                out[kns] = None
                continue
            with nl.Socket(kns) as sock:
                state = read(sock, kns, route_tables=None)
            out[kns] = {link.name: (link.kind, link.up, state.name_of(link.master),
                                    tuple(sorted(str(a.interface) for a in state.addresses.get(link.index, [])
                                                 if not a.interface.ip.is_link_local)))
                        for link in state.links.values()}
        return out
    return read_all


def lock_name(t: Target) -> str:
    return _lock_name(t.options.netns_names[None])


def _lock_name(netns: str | None) -> str:
    return f"netns-{netns}" if netns else "host"


def run(t: Target, plan: Plan, fault: Fault | None = None) -> Outcome:
    ctx = Context(plan.indexes)
    try:
        return execute(plan, ctx, snapshot(t), fault)
    finally:
        ctx.close()


__all__ = ["Target", "SetupError", "LockBusy", "Outcome", "Plan", "target", "observe", "empty_kernel",
           "make_plan", "run", "lock", "lock_name", "EXIT_OK"]
