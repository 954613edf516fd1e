"""Does the kernel hold what the IR says? One comparison for every test that builds
devices for real (systemd-networkd, netplan's rendering, `vnetc apply`, the
iproute2 script).

    state = kernel_state(ns)                 # or anything with .links/.addresses/.routes
    problems = device_problems(device, state) + route_problems(device, state)

Each problem is a line naming the device, what the kernel has and what the IR says.
"""

from __future__ import annotations

import grp
import ipaddress
import pwd
from dataclasses import dataclass

from vnetc.compiler.ir import Device

from . import netns

# the kind `ip -d link` reports for a device of a kind
KERNEL_KIND = {"interface": "veth", "tap": "tun", "tun": "tun"}



@dataclass
class KernelState:
    """What the harness readers see in a namespace (the fields NetworkdRun has too)."""

    links: dict[str, dict]
    addresses: dict[str, list[str]]
    routes: list[dict]
    qdiscs: list[dict]


def kernel_state(ns: str) -> KernelState:
    return KernelState(netns.links(ns), netns.addresses(ns), netns.routes(ns), netns.qdiscs(ns))


def exists(table, name: str) -> bool:
    """Whether user/group NAME resolves here (a numeric id needs no entry)."""
    if name.isdigit():
        return True
    try:
        (pwd.getpwnam if table == "passwd" else grp.getgrnam)(name)
    except KeyError:
        return False
    return True


def addresses_of(values) -> set:
    return {ipaddress.ip_interface(str(v)) for v in values if " peer " not in str(v)}


def device_problems(device: Device, state) -> list[str]:
    """Every difference between the IR and the kernel for one device."""
    name = device.name
    link = state.links.get(name)
    if link is None:
        return [f"{name}: does not exist"]
    problems = []

    def check(what: str, want, got) -> None:
        if want != got:
            problems.append(f"{name}: {what} is {got!r}, the IR says {want!r}")

    check("kind", KERNEL_KIND.get(device.kind, device.kind), link["kind"])
    check("master", device.master.name if device.master else None, link["master"])
    data = link["data"]
    if device.kind in ("vlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "macsec", "ipoib"):
        check("lower link", device.get("link").name, link["link"])
    if device.kind in ("veth", "vxcan") and device.get("peer") is not None:
        check("peer", device.get("peer").name, link["link"])
    if device.kind == "vlan":
        check("vlan id", device.get("id"), data.get("id"))
        check("vlan protocol", device.get("protocol").lower(), str(data.get("protocol")).lower())
    if device.kind == "vxlan":
        dev = device.get("dev")
        check("vxlan dev", dev.name if dev else None, data.get("dev"))
        check("vxlan VNI", device.get("vni"), data.get("id"))
        for prop in ("local", "remote", "group"):
            want = device.get(prop)
            check(f"vxlan {prop}", str(want) if want is not None else None, data.get(prop))
        check("vxlan port", device.get("port"), data.get("port"))
        if device.get("ttl") is not None:
            check("vxlan ttl", device.get("ttl"), data.get("ttl"))
        if device.get("learning") is not None:
            check("vxlan learning", device.get("learning"), data.get("learning"))
    if device.kind in ("macvlan", "macvtap", "ipvlan", "ipvtap"):
        check(f"{device.kind} mode", device.get("mode"), str(data.get("mode")).lower())
    if device.kind in ("tap", "tun"):
        check("tun type", device.kind, data.get("type"))
        info = link["info"]
        for prop, key in (("packet-info", "pi"), ("vnet-hdr", "vnet_hdr"), ("multi-queue", "multi_queue")):
            if device.get(prop) is not None:
                check(prop, device.get(prop), info.get(key))
        for prop, table in (("owner", "passwd"), ("group", "group")):
            if device.get(prop) is not None and exists(table, device.get(prop)):
                check(prop, as_ip_prints(table, device.get(prop)), info.get("user" if prop == "owner" else "group"))
    if device.kind == "bridge":
        check("stp", 1 if device.get("stp") else 0, data.get("stp_state"))
        if device.get("vlan-filtering") is not None:
            check("vlan_filtering", int(device.get("vlan-filtering")), data.get("vlan_filtering"))
    check("addresses", addresses_of(device.address), addresses_of(state.addresses.get(name, [])))
    if device.mtu is not None:
        check("MTU", device.mtu, link["mtu"])
    if device.mac is not None:
        check("MAC", device.mac.lower(), link["address"])
    if device.kind == "interface" and device.get("match-mac"):
        check("MAC (match-mac)", device.get("match-mac").lower(), link["address"])
    check("admin up", device.state != "down", link["up"])
    return problems


def as_ip_prints(table: str, name: str) -> str:
    """How `ip -d link` shows a tun owner/group: the name when this machine knows the id."""
    if not name.isdigit():
        return name
    try:
        return (pwd.getpwuid if table == "passwd" else grp.getgrgid)(int(name))[0]
    except KeyError:
        return name


def route_problems(device: Device, state) -> list[str]:
    """Each `gateway` is a default route via it on the device, each `route` a route (in its table,
    with its metric when the IR gives one)."""
    wanted = []
    for gateway in device.gateway:
        wanted.append(("0.0.0.0/0" if gateway.version == 4 else "::/0", str(gateway), None, "main"))
    for route in device.route:
        table = str(route.table) if route.table is not None else "main"
        via = str(route.via) if route.via is not None else None
        if route.prefix == "default":
            families = [route.via.version] if route.via is not None else [4, 6]
            prefixes = ["0.0.0.0/0" if v == 4 else "::/0" for v in families]
        else:
            prefixes = [str(route.prefix)]
        wanted += [(prefix, via, route.metric, table) for prefix in prefixes]
    problems = []
    for dst, via, metric, table in wanted:
        if not any(r["dst"] == dst and r["gateway"] == via and r["dev"] == device.name and r["table"] == table
                   and (metric is None or r["metric"] == metric) for r in state.routes):
            problems.append(f"{device.name}: no route {dst} via {via} metric {metric} table {table}")
    return problems
