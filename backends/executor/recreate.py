"""The undo of a delete: the deleted devices again, as the kernel had them.

A device is recreated from what the state read before the run: the same
ifindex, name, kind and the kind attributes vnetc knows (kinds.py), MTU, MAC,
link group, lower link; then, once every device of the undo exists again, its
master and bridge-port settings (and the site's other devices that were its
ports are enslaved again), alias, up/down, addresses and vnetc's routes,
and its root qdisc. A veth/vxcan peer comes back with its device, in its own
namespace, and is finished likewise. A tun/tap is made again through
/dev/net/tun (TUNSETIFINDEX keeps its ifindex).

What the kernel does not dump (MACsec keys, netdevsim VFs, a team's teamd)
cannot come back this way: its recreate fails, the others go on, and the run
ends in exit 5 listing what remains (apply.py compares the namespaces after
the undo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import kinds as K
from . import netlink as nl
from .ops import Context, Op

if TYPE_CHECKING:
    from .plan import Planner
    from .state import Link

PORT_NUMBERS = {a.nla for a in K.PORT_ATTRS}
#: IFLA_INFO_KIND -> the kind's row of kinds.py (tap and tun share one)
_BY_INFO_KIND: dict[str, K.KindSpec] = {}
for _spec in K.KINDS.values():
    if _spec.info_kind:
        _BY_INFO_KIND.setdefault(_spec.info_kind, _spec)
IFLA_BRPORT_NO = 18


def _port_number(link: Link) -> int:
    raw = link.slave.get(IFLA_BRPORT_NO)
    return int.from_bytes(raw, "little") if raw else 0


def recreate_op(planner: Planner, ns: str | None, links: list[Link], phase: int, text: str) -> Op:
    """One op recreating LINKS of namespace NS (with their peers), or failing with every error.
    What it needs is worked out when it runs: an undo seldom does, and a plan may delete many."""
    def run(ctx: Context) -> None:
        # (namespace, link, its peer) of each device; a peer is made with its device
        devices = [(ns, link, planner.peer_of(ns, link)) for link in links]
        finished = [(n, link) for n, link, _ in devices] + [peer for _, _, peer in devices if peer is not None]
        made = {link.index for n, link in finished if n == ns}
        # the site's other devices that were ports of a deleted one (an `interface` in a bridge)
        ports = [(ns, link) for link in planner.states[ns].links.values()
                 if link.master in made and link.index not in made]
        errors: list[tuple[int, str]] = []
        for device_ns, link, peer in devices:
            _attempt(errors, f"recreate {link.kind} {link.name}", lambda: _make(planner, ctx, device_ns, link, peer))
        # in the order of their port numbers, which the kernel gives out lowest first
        enslaved = sorted([(n, link) for n, link in finished if link.master] + ports,
                          key=lambda item: (item[1].master, _port_number(item[1])))
        for device_ns, link in enslaved:
            _attempt(errors, f"enslave {link.name} again", lambda: _enslave(ctx.socket(planner.k(device_ns)), link))
        for device_ns, link in finished:
            _attempt(errors, f"configure {link.name} again", lambda: _finish(planner, ctx, device_ns, link))
        if errors:
            raise nl.KernelError(errors[0][0], "; ".join(message for _, message in errors))

    return Op(planner.k(ns), text, phase, run=run)


def _attempt(errors: list, what: str, action) -> None:
    try:
        action()
    except OSError as exc:
        errors.append((exc.errno or 1, f"{what}: {exc.strerror or exc}"))


def _make(planner: Planner, ctx: Context, ns: str | None, link: Link, peer: tuple[str | None, Link] | None) -> None:
    """The device (and its PEER, if any), down and without a master."""
    kns = planner.k(ns)
    if link.kind == "tun":
        from .tuntap import recreate
        recreate(kns, link)
        body = (nl.ifinfo(link.index) + nl.u32(nl.IFLA_MTU, link.mtu) + nl.u32(nl.IFLA_GROUP, link.group)
                + (nl.nla(nl.IFLA_ADDRESS, K._mac(link.mac)) if link.mac else b""))
        ctx.socket(kns).request(nl.RTM_SETLINK, 0, body)
        return
    spec = _BY_INFO_KIND.get(link.kind)
    numbers = {a.nla for a in spec.attrs} | {a.nla6 for a in spec.attrs if a.nla6} if spec else set()
    fresh = {a.nla: a.fresh for a in spec.attrs if a.fresh is not None} if spec else {}
    data = b"".join(nl.nla(n, v) for n, v in link.data.items() if n in numbers and fresh.get(n) != v)
    if spec is not None and spec.lower_data and spec.lower_data in link.data:
        data += nl.nla(spec.lower_data, link.data[spec.lower_data])
    if peer is not None:
        peer_ns, peer_link = peer
        peer_body = (nl.ifinfo(peer_link.index) + nl.string(nl.IFLA_IFNAME, peer_link.name)
                     + nl.u32(nl.IFLA_MTU, peer_link.mtu) + nl.u32(nl.IFLA_GROUP, peer_link.group))
        if peer_link.mac:
            peer_body += nl.nla(nl.IFLA_ADDRESS, K._mac(peer_link.mac))
        if peer_ns != ns:
            peer_body += nl.u32(nl.IFLA_NET_NS_FD, ctx.netns_fd(planner.k(peer_ns)))
        data += nl.nested(1, peer_body)
    info = nl.string(nl.IFLA_INFO_KIND, link.kind or "")
    if data:
        info += nl.nested(nl.IFLA_INFO_DATA, data)
    body = (nl.ifinfo(link.index) + nl.string(nl.IFLA_IFNAME, link.name)
            + nl.u32(nl.IFLA_MTU, link.mtu) + nl.u32(nl.IFLA_GROUP, link.group))
    if link.mac:
        body += nl.nla(nl.IFLA_ADDRESS, K._mac(link.mac))
    if link.link and link.kind not in ("veth", "vxcan") and link.link_netnsid is None:
        body += nl.u32(nl.IFLA_LINK, link.link)
    ctx.socket(kns).request(nl.RTM_NEWLINK, nl.CREATE, body + nl.nested(nl.IFLA_LINKINFO, info))


def _finish(planner: Planner, ctx: Context, ns: str | None, link: Link) -> None:
    """MTU, alias, up/down, addresses, vnetc's routes, root qdisc."""
    from .plan import _addr, _entry_as_wanted, _route_msg
    from .tc import ROOT_HANDLE, tcmsg
    from . import owner as mark
    kns, state, index = planner.k(ns), planner.states[ns], link.index
    sock = ctx.socket(kns)
    # the MTU again: a bridge's follows its ports when they are enslaved, unless it is set after
    sock.request(nl.RTM_SETLINK, 0, nl.ifinfo(index, link.flags & nl.IFF_UP, nl.IFF_UP)
                 + nl.u32(nl.IFLA_MTU, link.mtu) + nl.string(nl.IFLA_IFALIAS, link.alias or ""))
    requests = [_addr(nl.RTM_NEWADDR, nl.CREATE, index, a.interface, a.proto) for a in state.addresses.get(index, [])]
    requests += [_route_msg(nl.RTM_NEWROUTE, nl.CREATE, index, _entry_as_wanted(r))
                 for r in state.routes_of(index) if r.proto == mark.PROTO]
    requests += [(nl.RTM_NEWQDISC, nl.CREATE, tcmsg(index, q.handle, q.parent) + nl.string(nl.TCA_KIND, q.kind)
                  + nl.nla(nl.TCA_OPTIONS, q.options))
                 for q in state.qdiscs.get(index, []) if q.parent == nl.TC_H_ROOT and q.handle == ROOT_HANDLE]
    for request in requests:
        sock.request(*request)


def _enslave(sock: nl.Socket, link: Link) -> None:
    """LINK to its master again, with the bridge-port settings vnetc knows."""
    sock.request(nl.RTM_SETLINK, 0, nl.ifinfo(link.index) + nl.u32(nl.IFLA_MASTER, link.master))
    port = b"".join(nl.nla(n, v) for n, v in link.slave.items() if n in PORT_NUMBERS)
    if port:
        sock.request(nl.RTM_NEWLINK, 0, nl.ifinfo(link.index)
                     + nl.nested(nl.IFLA_LINKINFO, nl.nested(nl.IFLA_INFO_SLAVE_DATA, port)))
