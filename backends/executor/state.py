"""The observed state: what the kernel holds in one namespace, read by netlink dumps.

Only what the planner compares is decoded: a link's name, kind, flags, MTU,
MAC, master, lower link, alias, group and its kind attributes (kept as raw
bytes, compared with the bytes kinds.py would send); addresses; routes; the
qdiscs and ingress filters of the devices that matter; bridge VLANs when asked.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from . import netlink as nl

_ADDR = struct.Struct("=BBBBI")           # ifaddrmsg
_RT = struct.Struct("=BBBBBBBBI")         # rtmsg
_TC = struct.Struct("=BxxxiIII")          # tcmsg: family, ifindex, handle, parent, info


@dataclass(slots=True)
class Link:
    index: int
    name: str
    kind: str | None
    flags: int
    mtu: int
    mac: str | None
    master: int
    link: int                                       # lower link / veth peer ifindex (0: none)
    link_netnsid: int | None                        # set when `link` is in another namespace
    alias: str | None
    group: int
    data: nl.LazyAttrs = field(default_factory=nl.LazyAttrs)      # IFLA_INFO_DATA
    slave: nl.LazyAttrs = field(default_factory=nl.LazyAttrs)     # IFLA_INFO_SLAVE_DATA

    @property
    def up(self) -> bool:
        return bool(self.flags & nl.IFF_UP)


@dataclass(frozen=True, slots=True)
class Address:
    index: int
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    proto: int


@dataclass(frozen=True, slots=True)
class RouteEntry:
    family: int
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    oif: int
    metric: int
    table: int
    proto: int
    scope: int
    type: int


@dataclass(frozen=True, slots=True)
class TcObject:
    index: int
    handle: int
    parent: int
    kind: str
    options: bytes


@dataclass
class State:
    """One namespace as the kernel holds it."""

    netns: str | None                  # the named namespace (None: this process's own)
    exists: bool = True
    links: dict[str, Link] = field(default_factory=dict)
    addresses: dict[int, list[Address]] = field(default_factory=dict)
    routes: list[RouteEntry] = field(default_factory=list)     # not the kernel's own
    qdiscs: dict[int, list[TcObject]] = field(default_factory=dict)
    filters: dict[int, list[TcObject]] = field(default_factory=dict)    # ingress filters by device
    bridge_vlans: dict[int, dict[int, int]] = field(default_factory=dict)   # index -> {vid: flags}

    def __post_init__(self) -> None:
        self.by_index: dict[int, Link] = {link.index: link for link in self.links.values()}
        self._routes_by_oif: dict[int, list[RouteEntry]] | None = None

    def routes_of(self, index: int) -> list[RouteEntry]:
        if self._routes_by_oif is None:
            self._routes_by_oif = {}
            for route in self.routes:
                self._routes_by_oif.setdefault(route.oif, []).append(route)
        return self._routes_by_oif.get(index, [])

    def add(self, link: Link) -> None:
        self.links[link.name] = link
        self.by_index[link.index] = link

    def name_of(self, index: int) -> str | None:
        link = self.by_index.get(index)
        return link.name if link else None


def read(sock: nl.Socket, netns: str | None, tc: bool = False, vlans: bool = False) -> State:
    """Dump one namespace: links, addresses and routes; qdiscs and ingress filters with `tc`;
    bridge VLANs with `vlans`."""
    state = State(netns)
    request = nl.ifinfo() + nl.u32(nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_SKIP_STATS)
    for _, body in sock.dump_all(nl.RTM_GETLINK, request):
        state.add(_link(body))
    for _, body in sock.dump_all(nl.RTM_GETADDR, _ADDR.pack(nl.AF_UNSPEC, 0, 0, 0, 0)):
        address = _address(body)
        if address is not None:
            state.addresses.setdefault(address.index, []).append(address)
    for family in (nl.AF_INET, nl.AF_INET6):
        for _, body in sock.dump_all(nl.RTM_GETROUTE, _RT.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)):
            route = _route(body)
            if route is not None:
                state.routes.append(route)
    if tc:
        for _, body in sock.dump_all(nl.RTM_GETQDISC, _TC.pack(nl.AF_UNSPEC, 0, 0, 0, 0)):
            obj = _tc(body)
            state.qdiscs.setdefault(obj.index, []).append(obj)
        for index, qdiscs in state.qdiscs.items():
            if any(q.kind in ("ingress", "clsact") for q in qdiscs):
                request = _TC.pack(nl.AF_UNSPEC, index, 0, INGRESS_QDISC, 0)
                state.filters[index] = [_tc(b) for _, b in sock.dump_all(nl.RTM_GETTFILTER, request)
                                        if _has_options(b)]
    if vlans:
        request = nl.ifinfo(family=nl.AF_BRIDGE) + nl.u32(nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_BRVLAN)
        for _, body in sock.dump_all(nl.RTM_GETLINK, request):
            index = struct.unpack_from("=i", body, 4)[0]
            spec = nl.attrs(body, nl.IFINFO_SIZE).get(nl.IFLA_AF_SPEC)
            if spec is None:
                continue
            found: dict[int, int] = {}
            for kind, value in nl.attr_list(spec):
                if kind == nl.IFLA_BRIDGE_VLAN_INFO:
                    flags, vid = struct.unpack_from("=HH", value)
                    found[vid] = flags & (nl.BRIDGE_VLAN_INFO_PVID | nl.BRIDGE_VLAN_INFO_UNTAGGED)
            state.bridge_vlans[index] = found
    return state


_LINK_ATTRS = frozenset({nl.IFLA_ADDRESS, nl.IFLA_IFNAME, nl.IFLA_MTU, nl.IFLA_LINK, nl.IFLA_MASTER, nl.IFLA_LINKINFO,
                         nl.IFLA_IFALIAS, nl.IFLA_GROUP, nl.IFLA_LINK_NETNSID})
_ADDR_ATTRS = frozenset({nl.IFA_ADDRESS, nl.IFA_LOCAL, nl.IFA_PROTO})
_ROUTE_ATTRS = frozenset({nl.RTA_TABLE, nl.RTA_DST, nl.RTA_GATEWAY, nl.RTA_OIF, nl.RTA_PRIORITY})
RT_TABLE_LOCAL, RTPROT_KERNEL = 255, 2
_EMPTY = nl.LazyAttrs()
INGRESS_QDISC = 0xFFFF0000      # the handle ffff: of an ingress qdisc: its filters are dumped under it


def _link(body: memoryview) -> Link:
    _, _, index, flags, _ = struct.unpack_from("=BxHiII", body)
    a = nl.pick(body, nl.IFINFO_SIZE, _LINK_ATTRS)
    kind = None
    data = slave = _EMPTY
    info = a.get(nl.IFLA_LINKINFO)
    if info is not None:
        parts = nl.attrs(info)
        if nl.IFLA_INFO_KIND in parts:
            kind = nl.get_str(parts[nl.IFLA_INFO_KIND])
        if nl.IFLA_INFO_DATA in parts:
            data = nl.LazyAttrs(parts[nl.IFLA_INFO_DATA])
        if nl.IFLA_INFO_SLAVE_DATA in parts:
            slave = nl.LazyAttrs(parts[nl.IFLA_INFO_SLAVE_DATA])
    mac = a.get(nl.IFLA_ADDRESS)
    return Link(
        index=index,
        name=nl.get_str(a[nl.IFLA_IFNAME]),
        kind=kind,
        flags=flags,
        mtu=nl.get_u32(a[nl.IFLA_MTU]) if nl.IFLA_MTU in a else 0,
        mac=":".join(f"{b:02x}" for b in bytes(mac)) if mac is not None and len(mac) == 6 else None,
        master=nl.get_u32(a[nl.IFLA_MASTER]) if nl.IFLA_MASTER in a else 0,
        link=nl.get_u32(a[nl.IFLA_LINK]) if nl.IFLA_LINK in a else 0,
        link_netnsid=nl.get_i32(a[nl.IFLA_LINK_NETNSID]) if nl.IFLA_LINK_NETNSID in a else None,
        alias=nl.get_str(a[nl.IFLA_IFALIAS]) if nl.IFLA_IFALIAS in a else None,
        group=nl.get_u32(a[nl.IFLA_GROUP]) if nl.IFLA_GROUP in a else 0,
        data=data,
        slave=slave,
    )


def _address(body: memoryview) -> Address | None:
    """An address; None for IPv6 link-local ones (the kernel's own, never vnetc's)."""
    family, prefixlen, _, _, index = _ADDR.unpack_from(body)
    a = nl.pick(body, _ADDR.size, _ADDR_ATTRS)
    raw = a.get(nl.IFA_LOCAL) if family == nl.AF_INET else a.get(nl.IFA_ADDRESS)
    if raw is None or family == nl.AF_INET6 and raw[0] == 0xFE and raw[1] & 0xC0 == 0x80:
        return None
    ip = ipaddress.ip_address(bytes(raw))
    proto = a[nl.IFA_PROTO][0] if nl.IFA_PROTO in a else 0
    return Address(index, ipaddress.ip_interface(f"{ip}/{prefixlen}"), proto)


def _route(body: memoryview) -> RouteEntry | None:
    """A route; None for the kernel's own (prefix routes of addresses, the local table)."""
    family, dst_len, _, _, table, proto, scope, rtype, _ = _RT.unpack_from(body)
    if proto == RTPROT_KERNEL or table == RT_TABLE_LOCAL:
        return None
    a = nl.pick(body, _RT.size, _ROUTE_ATTRS)
    if nl.RTA_TABLE in a:
        table = nl.get_u32(a[nl.RTA_TABLE])
    if table == RT_TABLE_LOCAL:
        return None
    size = 4 if family == nl.AF_INET else 16
    dst = bytes(a[nl.RTA_DST]) if nl.RTA_DST in a else b"\0" * size
    gateway = ipaddress.ip_address(bytes(a[nl.RTA_GATEWAY])) if nl.RTA_GATEWAY in a else None
    return RouteEntry(
        family=family,
        dst=ipaddress.ip_network((dst, dst_len)),
        gateway=gateway,
        oif=nl.get_u32(a[nl.RTA_OIF]) if nl.RTA_OIF in a else 0,
        metric=nl.get_u32(a[nl.RTA_PRIORITY]) if nl.RTA_PRIORITY in a else 0,
        table=table,
        proto=proto,
        scope=scope,
        type=rtype,
    )


def _tc(body: memoryview) -> TcObject:
    _, index, handle, parent, _ = _TC.unpack_from(body)
    a = nl.attrs(body, _TC.size)
    kind = nl.get_str(a[nl.TCA_KIND]) if nl.TCA_KIND in a else ""
    return TcObject(index, handle, parent, kind, bytes(a.get(nl.TCA_OPTIONS, b"")))


def _has_options(body: memoryview) -> bool:
    return nl.TCA_OPTIONS in nl.attrs(body, _TC.size)
