"""The observed state: what the kernel holds in one namespace, read by netlink dumps.

Only what the planner compares is decoded: a link's name, kind, flags, MTU,
MAC, master, lower link, alias, group and its kind attributes (kept as raw
bytes, compared with the bytes kinds.py would send); addresses; routes; the
qdiscs and ingress filters of the devices that matter; bridge VLANs when asked.
"""

from __future__ import annotations

import errno
import ipaddress
import struct
from typing import NamedTuple

from . import netlink as nl
from . import owner as mark

_ADDR = struct.Struct("=BBBBI")           # ifaddrmsg
_RT = struct.Struct("=BBBBBBBBI")         # rtmsg
_TC = struct.Struct("=BxxxiIII")          # tcmsg: family, ifindex, handle, parent, info
_EMPTY = nl.LazyAttrs()


class Link(NamedTuple):
    """One link as the kernel dumps it (named tuples here: the state is read whole on every run,
    and a named tuple costs a quarter of a dataclass to define at start-up)."""

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
    data: nl.LazyAttrs = _EMPTY                     # IFLA_INFO_DATA
    slave: nl.LazyAttrs = _EMPTY                    # IFLA_INFO_SLAVE_DATA

    @property
    def up(self) -> bool:
        return bool(self.flags & nl.IFF_UP)


class Address(NamedTuple):
    index: int
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    proto: int


class RouteEntry(NamedTuple):
    family: int
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    oif: int
    metric: int
    table: int
    proto: int
    scope: int
    type: int


class TcObject(NamedTuple):
    index: int
    handle: int
    parent: int
    kind: str
    options: bytes


class State:
    """One namespace as the kernel holds it."""

    def __init__(self, netns: str | None, exists: bool = True, inode: int | None = None):
        self.netns = netns                 # the named namespace (None: this process's own)
        self.exists = exists
        self.inode = inode                 # its identity (netlink.netns_inode; None: not read)
        self.links: dict[str, Link] = {}
        self.by_index: dict[int, Link] = {}
        self.addresses: dict[int, list[Address]] = {}
        self.routes: list[RouteEntry] = []          # those the planner compares (_read_routes)
        self.qdiscs: dict[int, list[TcObject]] = {}
        self.filters: dict[int, list[TcObject]] = {}        # ingress filters by device
        self.bridge_vlans: dict[int, dict[int, int]] = {}   # index -> {vid: flags}
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


def read(sock: nl.Socket, netns: str | None, tc: bool = False, vlans: bool = False,
         route_tables: frozenset[int] | None = frozenset()) -> State:
    """Dump one namespace: links and addresses; qdiscs and ingress filters with `tc`; bridge
    VLANs with `vlans`; the routes the planner compares unless `route_tables` is None (see
    _read_routes)."""
    state = State(netns, inode=nl.netns_inode(netns))
    request = nl.ifinfo() + nl.u32(nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_SKIP_STATS)
    pick = nl.Picker(nl.IFINFO_SIZE, _LINK_ATTRS)
    for _, body in sock.dump_all(nl.RTM_GETLINK, request):
        state.add(_link(body, pick))
    for _, body in sock.dump_all(nl.RTM_GETADDR, _ADDR.pack(nl.AF_UNSPEC, 0, 0, 0, 0)):
        address = _address(body)
        if address is not None:
            state.addresses.setdefault(address.index, []).append(address)
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
    if route_tables is not None:
        state.routes = _read_routes(sock, route_tables)      # last: it makes the socket's dumps strict
    return state


def _read_routes(sock: nl.Socket, tables: frozenset[int]) -> list[RouteEntry]:
    """The routes the planner compares: vnetc's own (protocol 118) in every table, and every other
    route in `tables` (those the site's routes are in). Never the kernel's own (prefix routes of
    addresses, the local table) nor cached exceptions. A kernel that filters dumps (Linux 4.20)
    sends only these, not the three routes of every IPv6 link (fe80::/64, its local and its
    multicast route); an older one sends all, and they are sorted out here alike."""
    if sock.filter_dumps():
        # (table, protocol): vnetc's routes anywhere, then every route of each of the tables
        selections = [(nl.RT_TABLE_UNSPEC, mark.PROTO), *((table, 0) for table in sorted(tables))]
    else:
        selections = [(nl.RT_TABLE_UNSPEC, 0)]
    found: dict[RouteEntry, None] = {}
    for family in (nl.AF_INET, nl.AF_INET6):
        for table, proto in selections:
            request = _RT.pack(family, 0, 0, 0, table if table < 256 else nl.RT_TABLE_UNSPEC, proto, 0, 0, 0)
            if table:
                request += nl.u32(nl.RTA_TABLE, table)
            try:
                bodies = sock.dump_all(nl.RTM_GETROUTE, request)
            except nl.KernelError as exc:
                if exc.errno != errno.ENOENT:        # a table that does not exist (yet) holds no route
                    raise
                continue
            for _, body in bodies:
                route = _route(body)
                if route is not None and (route.proto == mark.PROTO or route.table in tables):
                    found[route] = None
    return list(found)


_LINK_ATTRS = nl.wanted(nl.IFLA_ADDRESS, nl.IFLA_IFNAME, nl.IFLA_MTU, nl.IFLA_LINK, nl.IFLA_MASTER, nl.IFLA_LINKINFO,
                        nl.IFLA_IFALIAS, nl.IFLA_GROUP, nl.IFLA_LINK_NETNSID)
_ADDR_ATTRS = nl.wanted(nl.IFA_ADDRESS, nl.IFA_LOCAL, nl.IFA_PROTO)
_ROUTE_ATTRS = nl.wanted(nl.RTA_TABLE, nl.RTA_DST, nl.RTA_GATEWAY, nl.RTA_OIF, nl.RTA_PRIORITY)
RT_TABLE_LOCAL, RTPROT_KERNEL, RTM_F_CLONED = 255, 2, 0x200
INGRESS_QDISC = 0xFFFF0000      # the handle ffff: of an ingress qdisc: its filters are dumped under it
_IFINFO = struct.Struct("=BxHiII").unpack_from
_U32, _I32 = struct.Struct("=I").unpack_from, struct.Struct("=i").unpack_from


def _link(body: memoryview, pick: nl.Picker) -> Link:
    """One link of a dump (called for every link of every namespace: kept lean, reading the
    payloads where the picker says they are)."""
    _, _, index, flags, _ = _IFINFO(body)
    at = pick(body).get
    kind = None
    data = slave = _EMPTY
    span = at(nl.IFLA_LINKINFO)
    if span is not None:
        parts = nl.attrs(body[span[0]:span[1]])
        if nl.IFLA_INFO_KIND in parts:
            kind = nl.get_str(parts[nl.IFLA_INFO_KIND])
        if nl.IFLA_INFO_DATA in parts:
            data = nl.LazyAttrs(parts[nl.IFLA_INFO_DATA])
        if nl.IFLA_INFO_SLAVE_DATA in parts:
            slave = nl.LazyAttrs(parts[nl.IFLA_INFO_SLAVE_DATA])
    name, mac, mtu, master = at(nl.IFLA_IFNAME), at(nl.IFLA_ADDRESS), at(nl.IFLA_MTU), at(nl.IFLA_MASTER)
    lower, netnsid, alias, group = at(nl.IFLA_LINK), at(nl.IFLA_LINK_NETNSID), at(nl.IFLA_IFALIAS), at(nl.IFLA_GROUP)
    return Link(index, nl.get_str(body[name[0]:name[1]]), kind, flags,
                _U32(body, mtu[0])[0] if mtu is not None else 0,
                body[mac[0]:mac[1]].hex(":") if mac is not None and mac[1] - mac[0] == 6 else None,
                _U32(body, master[0])[0] if master is not None else 0,
                _U32(body, lower[0])[0] if lower is not None else 0,
                _I32(body, netnsid[0])[0] if netnsid is not None else None,
                nl.get_str(body[alias[0]:alias[1]]) if alias is not None else None,
                _U32(body, group[0])[0] if group is not None else 0,
                data, slave)


def _address(body: memoryview) -> Address | None:
    """An address; None for IPv6 link-local ones (the kernel's own, never vnetc's: the kernel
    gives an IPv6 address scope link exactly when it is in fe80::/10)."""
    family, prefixlen, _, scope, index = _ADDR.unpack_from(body)
    if family == nl.AF_INET6 and scope == nl.RT_SCOPE_LINK:
        return None
    a = nl.pick(body, _ADDR.size, _ADDR_ATTRS)
    raw = a.get(nl.IFA_LOCAL) if family == nl.AF_INET else a.get(nl.IFA_ADDRESS)
    if raw is None:
        return None
    ip = ipaddress.ip_address(bytes(raw))
    proto = a[nl.IFA_PROTO][0] if nl.IFA_PROTO in a else 0
    return Address(index, ipaddress.ip_interface(f"{ip}/{prefixlen}"), proto)


def _route(body: memoryview) -> RouteEntry | None:
    """A route; None for the kernel's own (prefix routes of addresses, the local table) and for
    cached exceptions (PMTU, redirects)."""
    family, dst_len, _, _, table, proto, scope, rtype, flags = _RT.unpack_from(body)
    if proto == RTPROT_KERNEL or table == RT_TABLE_LOCAL or flags & RTM_F_CLONED:
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
