"""The planner: desired (the IR of one host) against observed (the kernel) -> steps.

    plan = Planner(host, states, options).plan()

For every device, in the IR's dependency order: create it if it is missing,
recreate it if the kernel cannot change what differs in place (a kind
attribute marked in_place=False in kinds.py, its kind, its lower link or its
peer), change it in place otherwise; then configure what every device has
(master, MTU, MAC, up/down, addresses, routes, bridge port settings and VLANs)
and what some kinds add (tc for IFB, MACsec SAs, netdevsim VFs, …). Devices
the owner created that the site no longer has are deleted. Every op carries
its undo. Nothing here talks to the kernel: the plan is a pure function of the
IR and the observed state, so plans are golden-tested without root.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, NamedTuple

from vnetc.backends import NOBODY_CAN
from vnetc.compiler.ir import Device, DeviceRef, Host, port_vlans
from vnetc.compiler.schema import KINDS as SCHEMA_KINDS

from . import kinds as K
from . import netlink as nl
from . import originals
from . import owner as mark
from .ops import Context, Op, Plan, Step, phase
from .recreate import recreate_op
from .state import Link, State
from .tools import Found

INDEX_GAP = 64
_RT = "=BBBBBBBBI"
#: kind -> the properties of NOBODY_CAN it has
_NOBODY_CAN = {kind: tuple(p for p in NOBODY_CAN if p in SCHEMA_KINDS[kind].props) for kind in SCHEMA_KINDS}


class Options:
    """What the planner needs besides the IR and the kernel."""

    def __init__(self, owner: str, netns_names: dict[str | None, str | None], adopt: bool = False,
                 residual: dict[tuple[str | None, str], set[str]] | None = None, sysfs_root: str = "/sys",
                 residual_target: str | None = None, offline: bool = False,
                 tools: dict[str, str | None] | None = None, originals: Path | None = None):
        self.owner = owner                      # owner id (owner.owner_id)
        self.netns_names = netns_names          # the site's namespace -> the kernel's name for it
        self.adopt = adopt
        self.residual = residual                # residual items: device -> {what}
        self.sysfs_root = sysfs_root
        self.residual_target = residual_target  # the file target whose residual this is
        self.offline = offline                  # planning against an imagined kernel: no machine checks
        self.tools = tools if tools is not None else Found(offline)     # tool -> path (None: missing)
        self.originals = originals              # the file of what apply changed on devices it does not own


class Planner:
    def __init__(self, host: Host, states: dict[str | None, State], options: Options,
                 recorded: dict[originals.Key, originals.Record] | None = None):
        self.host = host
        self.states = states            # by the site's namespace name (None: the host's own)
        self.o = options
        self.recorded = recorded or {}  # what apply changed on devices it does not own (originals.py)
        self.plan = Plan()
        self.by_ref = {d.ref: d for d in host.devices}
        # Indexes for the devices vnetc creates over rtnetlink are chosen here (so that one batch can
        # create a bridge and enslave a port to it); they start above those the kernel hands out
        # meanwhile to devices made by tools (tun/tap, netdevsim, teamd) and by others.
        made_by_tools = sum(1 for d in host.devices if K.KINDS[d.kind].make in ("tuntap", "teamd", "sysfs"))
        gap = INDEX_GAP + made_by_tools + sum(d.get("ports") or 0 for d in host.devices if d.kind == "netdevsim")
        self.next_index = {ns: max([1, *state.by_index]) + gap for ns, state in states.items()}
        self.indexes: dict[tuple[str | None, str], int] = {}
        for ns, state in states.items():
            kns = self.k(ns)
            self.indexes.update(((kns, name), link.index) for name, link in state.links.items())
        self.fresh: set[DeviceRef] = set()          # devices (re)created by this plan
        self.netdevsim_ids: set[int] = set()        # bus ids given to netdevsim devices of this plan
        self.redirected = {source for d in host.devices if d.kind == "ifb" for source in d.get("redirect-ingress")}
        self.group = mark.group(options.owner)
        self.aliases: dict[str | None, str] = {}     # description -> the alias (_alias)
        # (bridge, port) -> the bridge's `port PORT { … }` record (only bridges have them)
        self.port_records = {(d.ref, record.name): record for d in host.devices if d.kind == "bridge"
                             for record in d.get("port")}

    # --- helpers -----------------------------------------------------------------

    def k(self, ns: str | None) -> str | None:
        """The kernel's name of a site namespace."""
        return self.o.netns_names[ns]

    def link_of(self, ref: DeviceRef) -> Link | None:
        if ref in self.fresh:
            return None
        return self.states[ref.netns].links.get(ref.name)

    def index_of(self, ref: DeviceRef) -> int:
        return self.indexes[(self.k(ref.netns), ref.name)]

    def resolver(self, ctx: Context):
        return lambda ref: ctx.index(self.k(ref.netns), ref.name)

    def owned(self, link: Link) -> bool:
        return mark.marks(link.alias, self.o.owner)

    def new_index(self, ns: str | None, name: str) -> int:
        index = self.next_index[ns]
        self.next_index[ns] = index + 1
        self.indexes[(self.k(ns), name)] = index
        return index

    def in_residual(self, device: Device, what: str) -> bool:
        if self.o.residual is None:
            return True
        items = self.o.residual.get((device.netns, device.name), set())
        peer = device.get("peer")
        if peer is not None and "device" in self.o.residual.get((peer.netns, peer.name), set()):
            items = items | {"device"}       # a pair handed over by its peer's item: vnetc makes both ends
        return "device" in items or what in items

    @staticmethod
    def subject(device: Device) -> str:
        where = f"{device.netns}/" if device.netns else ""
        return f"{device.kind} {where}{device.name}"

    # --- the plan ------------------------------------------------------------------------

    def make(self) -> Plan:
        self._namespaces()
        self._deletions()
        for device in self.host.devices:
            self._device(device)
        self._stale_filters()
        self.plan.indexes = self.indexes
        return self.plan

    def destroy(self) -> Plan:
        """Everything this owner made: its devices (one bulk delete per namespace where the link
        group holds only them), its addresses, routes and redirect filters on the site's existing
        devices, and the namespaces it created once they are empty."""
        gone: set = set()
        for ns, state in self.states.items():
            owned = [link for link in state.links.values() if self.owned(link) and (ns, link.index) not in gone]
            if not owned:
                continue
            in_group = [link for link in state.links.values() if link.group == self.group]
            if len(owned) > 1 and {l.index for l in in_group} == {l.index for l in owned}:
                self._delete_group(ns, owned)      # (phase "teardown", as every delete of destroy)
                for link in owned:
                    peer = self.peer_of(ns, link)
                    if peer is not None:
                        gone.add((peer[0], peer[1].index))
                continue
            owned.sort(key=lambda link: 0 if link.link and link.kind not in ("veth", "vxcan") else 1)
            for link in owned:
                if (ns, link.index) not in gone:
                    self._delete_link(ns, link, gone, when=phase("teardown"))
        steps: dict[tuple[str | None, str], Step] = {}
        for device in self.host.devices:
            if K.KINDS[device.kind].make != "existing":
                continue
            link = self.link_of(device.ref)
            if link is None:
                continue
            step = steps[(device.netns, device.name)] = Step("configure", self.subject(device))
            bare = type(device)(name=device.name, netns=device.netns, state=device.state)
            self._addresses(bare, link, step, owned=False)
            self._routes(bare, link, step)
            self._add(step)
        self._restore(steps)
        self._forget_unreported()
        self._stale_filters(destroying=True)
        from .namespaces import owner_of, remove_op
        for ns in self.host.declared_netns:
            state = self.states[ns]
            if state.exists and owner_of(self.k(ns)) == self.o.owner and \
                    all(self.owned(l) or l.name == "lo" for l in state.links.values()):
                self.plan.steps.append(Step("delete", f"netns {self.k(ns)}", ["created by vnetc for this site"],
                                            [remove_op(self.k(ns), self.o.owner)]))
        self.plan.indexes = self.indexes
        return self.plan

    def _forget_unreported(self) -> None:
        """destroy: the records of what vnetc made devices with (originals.unreported_op) go, in
        the step deleting them (teardown: after everything that can fail and be undone)."""
        deleting = [step for step in self.plan.steps if step.action == "delete"]
        for key, record in self.recorded.items():
            if originals.UNREPORTED in record and key[0] in self.o.netns_names.values() and deleting:
                deleting[-1].ops.append(originals.forget_op(self.o.originals, key, phase("teardown")))

    def _delete_group(self, ns: str | None, owned: list[Link]) -> None:
        group, kns = self.group, self.k(ns)
        indexes = {link.index for link in owned}
        made = [link for link in owned            # (a veth pair is made once, by its first end)
                if not (link.kind in ("veth", "vxcan") and link.link_netnsid is None
                        and link.link in indexes and link.link < link.index)]
        op = Op(kns, f"delete the {len(owned)} devices of link group {group}", phase("teardown"),
                request=lambda ctx: (nl.RTM_DELLINK, 0, nl.ifinfo(0) + nl.u32(nl.IFLA_GROUP, group)),
                undo=recreate_op(self, ns, made, phase("teardown"), "recreate the deleted devices"))
        where = f"{ns}/" if ns else ""
        details = [f"{link.kind or 'device'} {where}{link.name}" for link in owned]
        self.plan.steps.append(Step("delete", f"{len(owned)} devices{' in netns ' + kns if ns else ''}",
                                    details, [op], count=len(owned)))

    def _namespaces(self) -> None:
        from .namespaces import create_op
        for ns in self.host.declared_netns:
            if not self.states[ns].exists:
                self.plan.steps.append(Step("create", f"netns {self.k(ns)}", [], [create_op(self.k(ns), self.o.owner)]))

    def _deletions(self) -> None:
        wanted = {(d.netns, d.name) for d in self.host.devices}
        gone: set[tuple[str | None, int]] = set()
        for ns, state in self.states.items():
            doomed = [link for link in state.links.values() if self.owned(link) and (ns, link.name) not in wanted]
            doomed.sort(key=lambda link: 0 if link.link and link.kind not in ("veth", "vxcan") else 1)
            for link in doomed:
                peer = self.peer_of(ns, link)
                if (ns, link.index) in gone or peer is not None and (peer[0], peer[1].name) in wanted:
                    continue     # gone already, or the peer of a device the site keeps
                self._delete_link(ns, link, gone)

    def peer_of(self, ns: str | None, link: Link) -> tuple[str | None, Link] | None:
        """The other end of a veth/vxcan, in whichever of the site's namespaces it is."""
        if link.kind not in ("veth", "vxcan") or not link.link:
            return None
        if link.link_netnsid is None:
            peer = self.states[ns].by_index.get(link.link)
            return (ns, peer) if peer is not None else None
        for other_ns, state in self.states.items():
            peer = state.by_index.get(link.link)
            if other_ns != ns and peer is not None and peer.kind == link.kind and peer.link == link.index \
                    and peer.link_netnsid is not None:
                return other_ns, peer
        return None

    def _delete_link(self, ns: str | None, link: Link, gone: set, reason: str = "", when: int = phase("delete")) -> Op:
        peer = self.peer_of(ns, link)
        if peer is not None:
            gone.add((peer[0], peer[1].index))     # the peer goes with it
        gone.add((ns, link.index))
        kns = self.k(ns)
        op = Op(kns, f"delete {link.kind or 'device'} {link.name}", when,
                request=lambda ctx, i=link.index: (nl.RTM_DELLINK, 0, nl.ifinfo(i)),
                undo=recreate_op(self, ns, [link], when, f"recreate {link.kind} {link.name}"))
        if not reason:
            self.plan.steps.append(Step("delete", f"{link.kind or 'device'} "
                                        f"{ns + '/' if ns else ''}{link.name}",
                                        ["made by vnetc for this site, no longer in it"], [op]))
        return op

    # --- one device --------------------------------------------------------------------

    def _device(self, device: Device) -> None:
        spec = K.KINDS[device.kind]
        for prop in _NOBODY_CAN[device.kind]:
            if device.get(prop) is not None:
                self.plan.errors.append(f"{self.subject(device)}: {prop}: MACsec MKA needs wpa_supplicant "
                                        f"(macsec_linux driver); vnetc apply does not run it")
                return
        step = Step("configure", self.subject(device))
        link = self.link_of(device.ref)
        if self.o.residual is not None and not self.in_residual(device, "device"):
            self._residual_items(device, step, link)
            self._add(step)
            return
        creator = self.by_ref.get(device.created_by) if device.created_by else None
        if creator is not None:
            if creator.ref in self.fresh:
                self.fresh.add(device.ref)
                link = None
                step.action = "create"
                step.details.append(f"made with {creator.kind} {creator.ref}")
            elif link is None:
                self.plan.errors.append(f"{self.subject(device)}: missing, but its {creator.kind} "
                                        f"'{creator.name}' exists; delete that and apply again")
                return
            else:
                step.action = "change"
        elif spec.make == "existing":
            if link is None:
                self.plan.errors.append(f"{self.subject(device)} does not exist (vnetc configures an existing "
                                        f"{device.kind}, never creates it)")
                return
        else:
            if link is not None and not self.owned(link):
                if not self.o.adopt:
                    self.plan.errors.append(
                        f"{self.subject(device)}: the name is taken by a device vnetc did not create for this "
                        f"site ({link.kind or 'a physical device'}, alias {link.alias!r}); rename it, delete it, "
                        f"or pass --adopt to take it over")
                    return
                step.details.append(f"adopt the existing {link.kind or 'device'} (mark it as vnetc's)")
            values = spec.values(device)
            reason = self._recreate_reason(device, link, values) if link is not None else ""
            if link is None or reason:
                if link is not None:
                    step.action, step.reason = "recreate", reason
                    step.ops.append(self._delete_link(device.netns, link, set(), reason=reason))
                else:
                    step.action = "create"
                self.fresh.add(device.ref)
                if device.get("peer") is not None:
                    self.fresh.add(device.get("peer"))
                self._create(device, step)
                link = None
            else:
                step.action = "change"
                self._change_attrs(device, link, step, values)
        self._configure(device, link, step)
        self._add(step)

    def _add(self, step: Step) -> None:
        self.plan.steps.append(step)

    def _recreate_reason(self, device: Device, link: Link, values: list[tuple[K.Attr, Any]]) -> str:
        spec = K.KINDS[device.kind]
        if spec.info_kind != link.kind:
            return f"it is a {link.kind or 'device without a kind'} in the kernel"
        lower = device.lower
        if lower is not None:
            if lower in self.fresh:
                return f"its lower link {lower.name} is recreated"
            want = self.index_of(lower) if (self.k(lower.netns), lower.name) in self.indexes else None
            have = link.data.get(spec.lower_data) if spec.lower_data else None
            have_index = int.from_bytes(have, "little") if have else link.link
            if link.link_netnsid is None and want != have_index:
                return f"its lower link is not {lower.name}"
        peer_ref = device.get("peer")
        if peer_ref is not None:
            peer_state = self.states[peer_ref.netns]
            peer = peer_state.links.get(peer_ref.name)
            if peer is None or (peer.index != link.link):
                return f"its peer is not {peer_ref}"
        for attr, value in values:
            if not attr.in_place and self._differs(attr, value, link):
                return f"the kernel cannot change {attr.prop} in place"
        if spec.unreported:
            changed = originals.changed_unreported(self.recorded.get((self.k(device.netns), device.name)),
                                                   (self.states[device.netns].inode, link.index),
                                                   K.fingerprint(device))
            if changed:
                return (f"{', '.join(changed)} changed since vnetc made it; the kernel does not report "
                        f"{'it' if len(changed) == 1 else 'them'}, vnetc compares what it recorded")
        return ""

    def _differs(self, attr: K.Attr, value: Any, link: Link) -> bool:
        if attr.ref:
            ref_link = self.indexes.get((self.k(value.netns), value.name))
            return link.data.get(attr.nla) != (K._u32(ref_link) if ref_link else None)
        return attr.wanted(value, lambda r: 0) != attr.observed(link.data, value)

    # --- create ------------------------------------------------------------------------

    def _create(self, device: Device, step: Step) -> None:
        spec = K.KINDS[device.kind]
        if spec.make == "tuntap" and not self.o.offline:
            for prop, lookup in (("owner", K._uid), ("group", K._gid)):
                if device.get(prop) is not None:
                    try:
                        lookup(device.get(prop))
                    except KeyError:
                        self.plan.errors.append(f"{self.subject(device)}: no {'user' if prop == 'owner' else 'group'} "
                                                f"'{device.get(prop)}' on this machine")
        for attr, value in spec.values(device):
            step.details.append(f"{attr.prop} {_show_value(attr.prop, value)}")
        if spec.make == "rtnetlink":
            self._create_rtnetlink(device, step)
        elif spec.make == "tuntap":
            from .tuntap import create_op
            self.indexes.pop((self.k(device.netns), device.name), None)
            step.ops.append(create_op(self.k(device.netns), device))
        elif spec.make == "teamd":
            from .teamd import create_ops
            self.indexes.pop((self.k(device.netns), device.name), None)
            step.ops += create_ops(self, device, step)
        elif spec.make == "sysfs":
            from .sysfs import create_ops
            self.indexes.pop((self.k(device.netns), device.name), None)
            step.ops += create_ops(self, device, step)
        if spec.make != "rtnetlink":
            step.ops.append(self._mark(device, phase("create"), learn=True))
        digests = K.fingerprint(device) if spec.unreported and self.o.originals is not None else None
        if digests:
            step.ops.append(originals.unreported_op(self.o.originals, (self.k(device.netns), device.name), digests))

    def _create_rtnetlink(self, device: Device, step: Step) -> None:
        spec = K.KINDS[device.kind]
        ns = device.netns
        lower = device.lower
        make_ns = lower.netns if lower is not None and lower.netns != ns else ns
        index = self.new_index(ns, device.name)
        peer_ref = device.get("peer")
        peer = self.by_ref.get(peer_ref) if peer_ref is not None else None
        peer_index = self.new_index(peer.netns, peer.name) if peer is not None else None
        if peer is not None:
            step.details.append(f"peer {peer_ref}")
        up = device.state != "down"
        group = self.group
        master = device.master
        master_kind = self.by_ref[master].kind if master else None

        def build(ctx: Context) -> tuple[int, int, bytes]:
            resolve = self.resolver(ctx)
            body = nl.ifinfo(index, nl.IFF_UP if up else 0, nl.IFF_UP) + nl.string(nl.IFLA_IFNAME, device.name)
            body += nl.u32(nl.IFLA_GROUP, group)
            if device.mtu is not None and device.kind != "bridge":
                body += nl.u32(nl.IFLA_MTU, device.mtu)
            if device.mac is not None:
                body += nl.nla(nl.IFLA_ADDRESS, K._mac(device.mac))
            if master is not None and master_kind != "team":
                body += nl.u32(nl.IFLA_MASTER, resolve(master))
            if lower is not None and spec.lower is not None:
                body += nl.u32(spec.lower, resolve(lower))
            if make_ns != ns:
                body += nl.u32(nl.IFLA_NET_NS_FD, ctx.netns_fd(self.k(ns)))
            data = b""
            for attr, value in spec.values(device):
                data += attr.send(value) if isinstance(attr, K.SourceMacs) else \
                    nl.nla(attr.number(value), attr.payload(value, resolve))
            if lower is not None and spec.lower_data is not None:
                data += nl.u32(spec.lower_data, resolve(lower))
            if peer is not None:
                peer_body = nl.ifinfo(peer_index) + nl.string(nl.IFLA_IFNAME, peer.name) + nl.u32(nl.IFLA_GROUP, group)
                if peer.mtu is not None:
                    peer_body += nl.u32(nl.IFLA_MTU, peer.mtu)
                if peer.mac is not None:
                    peer_body += nl.nla(nl.IFLA_ADDRESS, K._mac(peer.mac))
                if peer.netns != make_ns:
                    peer_body += nl.u32(nl.IFLA_NET_NS_FD, ctx.netns_fd(self.k(peer.netns)))
                data += nl.nested(spec.peer, peer_body)
            info = nl.string(nl.IFLA_INFO_KIND, spec.info_kind)
            if data:
                info += nl.nested(nl.IFLA_INFO_DATA, data)
            return nl.RTM_NEWLINK, nl.CREATE, body + nl.nested(nl.IFLA_LINKINFO, info)

        kns = self.k(ns)
        undo = Op(kns, f"delete {device.kind} {device.name}", phase("create"),
                  request=lambda ctx: (nl.RTM_DELLINK, 0, nl.ifinfo(ctx.index(kns, device.name))))
        step.ops.append(Op(self.k(make_ns), f"create {self.subject(device)}", phase("create"), request=build, undo=undo))
        step.ops.append(self._mark(device, phase("create")))

    def _mark(self, device: Device, at: int, learn: bool = False) -> Op:
        """Set the ownership alias (and, for devices a tool made, the group)."""
        kns, name = self.k(device.netns), device.name
        text = self._alias(device.description)
        group = self.group

        def build(ctx: Context) -> tuple[int, int, bytes]:
            index = ctx.learn(kns, name) if learn else ctx.index(kns, name)
            body = nl.ifinfo(index) + nl.string(nl.IFLA_IFALIAS, text)
            if learn:
                body += nl.u32(nl.IFLA_GROUP, group)
            return nl.RTM_SETLINK, 0, body

        return Op(kns, f"mark {device.name} as vnetc's", at, request=build)

    # --- change in place -----------------------------------------------------------------

    def _change_attrs(self, device: Device, link: Link, step: Step, values: list[tuple[K.Attr, Any]]) -> None:
        """Change in place the kind attributes (`values`: spec.values(device)) that differ."""
        spec = K.KINDS[device.kind]
        if not spec.info_kind or spec.make != "rtnetlink" and spec.make != "tuntap":
            return
        changed = []
        for attr, value in values:
            if not self._differs(attr, value, link):
                continue
            old = attr.observed(link.data, value)
            step.details.append(f"{attr.prop} {attr.show(next(iter(old.values())))} -> {_show_value(attr.prop, value)}")
            changed.append((attr, value, old))
        if not changed:
            return
        if spec.make == "tuntap":
            from .tuntap import change_op
            step.ops.append(change_op(self.k(device.netns), device, link))
            return
        kns, index, info_kind = self.k(device.netns), link.index, spec.info_kind

        def build(ctx: Context) -> tuple[int, int, bytes]:
            resolve = self.resolver(ctx)
            data = b"".join(a.send(v) if isinstance(a, K.SourceMacs) else nl.nla(a.number(v), a.payload(v, resolve))
                            for a, v, _ in changed)
            info = nl.string(nl.IFLA_INFO_KIND, info_kind) + nl.nested(nl.IFLA_INFO_DATA, data)
            return nl.RTM_NEWLINK, 0, nl.ifinfo(index) + nl.nested(nl.IFLA_LINKINFO, info)

        def build_undo(ctx: Context) -> tuple[int, int, bytes]:
            data = b"".join(nl.nla(n, raw) for _, _, old in changed for n, raw in old.items() if raw is not None)
            info = nl.string(nl.IFLA_INFO_KIND, info_kind) + nl.nested(nl.IFLA_INFO_DATA, data)
            return nl.RTM_NEWLINK, 0, nl.ifinfo(index) + nl.nested(nl.IFLA_LINKINFO, info)

        step.ops.append(Op(kns, f"change {self.subject(device)}", phase("create"), request=build,
                           undo=Op(kns, f"restore {self.subject(device)}", phase("create"), request=build_undo)))

    # --- what every device has ---------------------------------------------------------

    def _configure(self, device: Device, link: Link | None, step: Step) -> None:
        fresh = link is None
        make = K.KINDS[device.kind].make
        # configured after it exists: a peer (made with its veth) or a device a tool made
        peer = device.created_by is not None or (fresh and make != "rtnetlink")
        kns, name = self.k(device.netns), device.name
        # a peer is vnetc's when its veth is (its alias, lost, is then set again)
        owned = fresh or self.owned(link) or self._owned_creator(device) or self.o.adopt and make != "existing"
        setlink: list[tuple[str, int, bytes, bytes | None]] = []    # (detail, attribute, new, old)
        late: list[tuple[str, int, bytes, bytes | None]] = []
        if owned and make != "existing":
            text = self._alias(device.description)
            if not fresh and link.alias != text:
                setlink.append(("description " + repr(device.description or ""), nl.IFLA_IFALIAS,
                                text.encode() + b"\0", (link.alias or "").encode() + b"\0"))
            if not fresh and link.group != self.group:
                setlink.append(("", nl.IFLA_GROUP, K._u32(self.group), K._u32(link.group)))
            if peer and fresh:
                step.ops.append(self._mark(device, phase("link")))
        if device.mtu is not None and (not fresh or peer or device.kind == "bridge"):
            if link is None or link.mtu != device.mtu:
                target = late if device.kind == "bridge" else setlink
                target.append((f"mtu {link.mtu if link else '(kernel default)'} -> {device.mtu}", nl.IFLA_MTU,
                               K._u32(device.mtu), K._u32(link.mtu) if link else None))
        if device.mac is not None and not fresh and (link.mac or "") != device.mac.lower():
            setlink.append((f"mac {link.mac} -> {device.mac}", nl.IFLA_ADDRESS, K._mac(device.mac),
                            K._mac(link.mac) if link.mac else None))
        self._master(device, link, step)
        up = device.state != "down"
        flags_op = None
        if (not fresh and link.up != up) or (fresh and peer and up):
            step.details.append(f"state {'down' if up else 'up'} -> {device.state}" if not fresh
                                else f"state {device.state}")
            flags_op = (nl.IFF_UP if up else 0, 0 if up else nl.IFF_UP, not fresh)
        if setlink or late or flags_op:
            if make == "existing" and self.o.originals is not None:
                self._remember(device, link, setlink + late, flags_op, step)
            self._set(kns, name, fresh, setlink, late, flags_op, step)
        if device.master and self.port_records:         # (the calls below only when they may find something)
            self._port_settings(device, link, step)
            self._bridge_vlans(device, step)
        state = self.states[device.netns]
        if device.address or link is not None and link.index in state.addresses:
            self._addresses(device, link, step, owned)
        if device.gateway or device.route or link is not None and state.routes_of(link.index):
            self._routes(device, link, step)
        if device.kind == "ifb" or self.redirected and device.ref in self.redirected:
            from .tc import plan_tc
            plan_tc(self, device, link, step)
        if device.kind == "macsec" and (device.get("tx-sa") or device.get("rx-channel")):
            from .macsec import plan_sas
            plan_sas(self, device, link, step)
        if self.o.residual is None:
            for prop, value in (("dhcp", device.dhcp), ("dns", device.dns)):
                if value not in (None, (), "off"):
                    self.plan.notes.append(f"{self.subject(device)}: {prop} is left to a network daemon; "
                                           f"vnetc apply configures the kernel only")

    def _set(self, kns: str | None, name: str, fresh: bool, setlink: list, late: list, flags_op: tuple | None,
             step: Step) -> None:
        """The RTM_SETLINKs of _configure: an existing device's MTU first (what is created on it then
        inherits it, as it does when networkd or the iproute2 script configure the lower link before
        stacking on it), the rest with the up/down flag, a bridge's MTU once its ports are in."""
        early = [] if fresh else [a for a in setlink if a[1] == nl.IFLA_MTU]
        setlink = [a for a in setlink if a not in early]
        for detail, _, _, _ in early + setlink + late:
            if detail:
                step.details.append(detail)
        if early:
            step.ops.append(self._setlink(kns, name, early, None, phase("create")))
        if setlink or flags_op:
            step.ops.append(self._setlink(kns, name, setlink, flags_op, phase("link")))
        if late:
            step.ops.append(self._setlink(kns, name, late, None, phase("port")))

    def _remember(self, device: Device, link: Link, attrs: list, flags_op: tuple | None, step: Step) -> None:
        """Record what the device had before vnetc changes its MTU, MAC or up/down (originals.py)."""
        changes: dict[str, tuple[Any, Any]] = {}
        for _, number, _, _ in attrs:
            if number == nl.IFLA_MTU:
                changes["mtu"] = (link.mtu, device.mtu)
            elif number == nl.IFLA_ADDRESS:
                changes["mac"] = (link.mac, device.mac.lower())
        if flags_op is not None:
            changes["up"] = (link.up, device.state != "down")
        key = (self.k(device.netns), device.name)
        identity = (self.states[device.netns].inode, link.index)
        step.ops.append(originals.record_op(self.o.originals, key, identity, self.recorded.get(key), changes))

    def _restore(self, steps: dict[tuple[str | None, str], Step]) -> None:
        """destroy: put back what apply changed on devices it does not own, where vnetc's value is
        still there, and forget the records. `steps`: the configure steps of the site's devices."""
        namespaces = {kns: ns for ns, kns in self.o.netns_names.items()}
        for key, record in self.recorded.items():
            kns, name = key
            if kns not in namespaces or originals.UNREPORTED in record:
                continue    # (the record of a device vnetc made: forgotten with the device)
            ns = namespaces[kns]
            step = steps.get((ns, name))
            if step is None:
                step = Step("configure", f"device {ns + '/' if ns else ''}{name}")
                self._add(step)
            link = self.states[ns].links.get(name)
            if link is None or record["identity"] != (self.states[ns].inode, link.index):
                step.details.append(f"{name} is {'gone' if link is None else 'not the device vnetc changed'}: "
                                    f"vnetc forgets what it had before")
                step.ops.append(originals.forget_op(self.o.originals, key))
                continue
            attrs, flags_op = [], None
            for prop, values in originals.changes(record).items():
                now = {"mtu": link.mtu, "mac": link.mac, "up": link.up}[prop]
                if now != values["set"]:
                    step.details.append(f"{_LABEL[prop]} {_show_state(prop, now)} was changed since vnetc set "
                                        f"{_show_state(prop, values['set'])}: left as it is")
                    continue
                before = values["before"]
                if before is None:          # a device without a MAC before (vnetc sets none such)
                    continue
                step.details.append(f"{_LABEL[prop]} {_show_state(prop, now)} -> {_show_state(prop, before)} "
                                    f"(as before vnetc)")
                if prop == "up":
                    flags_op = (nl.IFF_UP if before else 0, nl.IFF_UP if now else 0, True)
                elif prop == "mtu":
                    attrs.append(("", nl.IFLA_MTU, K._u32(before), K._u32(now)))
                else:
                    attrs.append(("", nl.IFLA_ADDRESS, K._mac(before), K._mac(now)))
            if attrs or flags_op:
                step.ops.append(self._setlink(kns, name, attrs, flags_op, phase("link")))
            step.ops.append(originals.forget_op(self.o.originals, key))

    def _alias(self, description: str | None) -> str:
        """The alias marking a device of this owner with this description (made once per text)."""
        text = self.aliases.get(description)
        if text is None:
            text = self.aliases[description] = mark.alias(self.o.owner, description)
        return text

    def _owned_creator(self, device: Device) -> bool:
        if device.created_by is None:
            return False
        creator = self.link_of(device.created_by)
        return creator is not None and self.owned(creator)

    def _setlink(self, kns: str | None, name: str, attrs: list, flags: tuple | None, at: int) -> Op:
        def build(ctx: Context, old: bool = False) -> tuple[int, int, bytes]:
            index = ctx.index(kns, name)
            if flags is None:
                head = nl.ifinfo(index)
            else:
                new_flags, old_flags, _ = flags
                head = nl.ifinfo(index, old_flags if old else new_flags, nl.IFF_UP)
            body = b"".join(nl.nla(n, (o if old else v)) for _, n, v, o in attrs if (o if old else v) is not None)
            return nl.RTM_SETLINK, 0, head + body

        undoable = flags is None or flags[2]
        undo = Op(kns, f"restore {name}", at, request=lambda ctx: build(ctx, old=True)) if undoable else None
        return Op(kns, f"set {name}", at, request=build, undo=undo)

    def _master(self, device: Device, link: Link | None, step: Step) -> None:
        kns, name = self.k(device.netns), device.name
        master = device.master
        master_device = self.by_ref.get(master) if master else None
        if master_device is not None and master_device.kind == "team":
            return    # teamd enslaves its ports
        fresh = link is None
        if fresh and device.created_by is None and K.KINDS[device.kind].make == "rtnetlink":
            return    # enslaved when created
        have = link.master if link else 0
        if master is None:
            if have and (link is not None and self.owned(link)):
                old_master = self.states[device.netns].name_of(have)
                step.details.append(f"master {old_master} -> none")
                step.ops.append(Op(kns, f"release {name}", phase("link"),
                                   request=lambda ctx: (nl.RTM_SETLINK, 0, nl.ifinfo(ctx.index(kns, name))
                                                        + nl.u32(nl.IFLA_MASTER, 0)),
                                   undo=Op(kns, f"enslave {name}", phase("link"),
                                           request=lambda ctx: (nl.RTM_SETLINK, 0, nl.ifinfo(ctx.index(kns, name))
                                                                + nl.u32(nl.IFLA_MASTER, have)))))
            return
        if not fresh and master not in self.fresh and have == self.indexes.get((kns, master.name)):
            return
        old_name = self.states[device.netns].name_of(have) if have else None
        step.details.append(f"master {old_name or 'none'} -> {master.name}")
        step.ops.append(Op(kns, f"enslave {name} to {master.name}", phase("link"),
                           request=lambda ctx: (nl.RTM_SETLINK, 0, nl.ifinfo(ctx.index(kns, name))
                                                + nl.u32(nl.IFLA_MASTER, ctx.index(kns, master.name))),
                           undo=Op(kns, f"release {name}", phase("link"),
                                   request=lambda ctx: (nl.RTM_SETLINK, 0, nl.ifinfo(ctx.index(kns, name))
                                                        + nl.u32(nl.IFLA_MASTER, have)))))

    def _port_settings(self, device: Device, link: Link | None, step: Step) -> None:
        record = self.port_records.get((device.master, device.ref))
        if record is None:
            return
        fresh = link is None or device.master in self.fresh
        changed = []
        for attr in K.PORT_ATTRS:
            value = record.get(attr.prop)
            if value is None:
                continue
            want = attr.wanted(value, lambda r: 0)
            have = {} if fresh else attr.observed(link.slave, value)
            if want != have:
                old = next(iter(have.values()), None) if have else None
                step.details.append(f"bridge port {attr.prop} {attr.show(old) if old is not None else ''}"
                                    f"{' -> ' if old is not None else ''}{_show_value(attr.prop, value)}")
                changed.append((attr, value, have))
        if not changed:
            return
        kns, name = self.k(device.netns), device.name

        def build(ctx: Context, old: bool = False) -> tuple[int, int, bytes]:
            if old:
                data = b"".join(nl.nla(n, raw) for _, _, h in changed for n, raw in h.items() if raw is not None)
            else:
                data = b"".join(nl.nla(a.nla, a.encode(v)) for a, v, _ in changed)
            return (nl.RTM_NEWLINK, 0, nl.ifinfo(ctx.index(kns, name))
                    + nl.nested(nl.IFLA_LINKINFO, nl.nested(nl.IFLA_INFO_SLAVE_DATA, data)))

        step.ops.append(Op(kns, f"set bridge port {name}", phase("port"), request=build,
                           undo=None if fresh else Op(kns, f"restore bridge port {name}", phase("port"),
                                                      request=lambda ctx: build(ctx, True))))

    def _bridge_vlans(self, device: Device, step: Step) -> None:
        """A bridge port's `vlans`, `untagged` and `pvid` (port NAME { … } of a vlan-filtering bridge)."""
        record = self.port_records.get((device.master, device.ref))
        if record is None or not (record.vlans or record.pvid) or not self.by_ref[device.master].get("vlan-filtering"):
            return
        bits = {"pvid": nl.BRIDGE_VLAN_INFO_PVID, "untagged": nl.BRIDGE_VLAN_INFO_UNTAGGED}
        want = {vid: sum(bits[flag] for flag in flags) for vid, flags in port_vlans(record).items()}
        state = self.states[device.netns]
        link = self.link_of(device.ref)
        have = state.bridge_vlans.get(link.index, {}) if link is not None else {}
        if want == have:
            return
        kns, name = self.k(device.netns), device.name
        add = sorted(want.items())
        remove = sorted(v for v in have if v not in want)
        step.details.append("bridge vlans " + " ".join(_vid_text(v, f) for v, f in add))

        def entries(items) -> bytes:
            return b"".join(nl.nla(nl.IFLA_BRIDGE_VLAN_INFO, K._u16(f) + K._u16(v)) for v, f in items)

        def build(ctx: Context, undo: bool = False) -> tuple[int, int, bytes]:
            index = ctx.index(kns, name)
            if undo:
                return (nl.RTM_DELLINK, 0, nl.ifinfo(index, family=nl.AF_BRIDGE)
                        + nl.nested(nl.IFLA_AF_SPEC, entries(add)))
            return (nl.RTM_SETLINK, 0, nl.ifinfo(index, family=nl.AF_BRIDGE)
                    + nl.nested(nl.IFLA_AF_SPEC, entries(add)))

        step.ops.append(Op(kns, f"set bridge vlans of {name}", phase("port"), request=build,
                           undo=Op(kns, f"remove bridge vlans of {name}", phase("port"),
                                   request=lambda ctx: build(ctx, True))))
        if remove:
            step.ops.append(Op(kns, f"remove bridge vlans of {name}", phase("port"),
                               request=lambda ctx: (nl.RTM_DELLINK, 0, nl.ifinfo(ctx.index(kns, name),
                                                                                  family=nl.AF_BRIDGE)
                                                    + nl.nested(nl.IFLA_AF_SPEC,
                                                                entries([(v, 0) for v in remove]))),
                               undo=Op(kns, f"restore bridge vlans of {name}", phase("port"),
                                       request=lambda ctx: (nl.RTM_SETLINK, 0,
                                                            nl.ifinfo(ctx.index(kns, name), family=nl.AF_BRIDGE)
                                                            + nl.nested(nl.IFLA_AF_SPEC,
                                                                        entries([(v, have[v]) for v in remove]))))))

    def _addresses(self, device: Device, link: Link | None, step: Step, owned: bool) -> None:
        found = self.states[device.netns].addresses.get(link.index) if link else None
        kns, name = self.k(device.netns), device.name
        have = {a.interface: a for a in found or ()}
        want = list(dict.fromkeys(device.address))
        for interface in want:
            if interface in have:
                continue
            step.details.append(f"+ address {interface}")
            step.ops.append(Op(kns, f"add address {interface} to {name}", phase("address"),
                               request=lambda ctx, i=interface: _addr(nl.RTM_NEWADDR, nl.CREATE, ctx.index(kns, name), i),
                               undo=Op(kns, f"remove address {interface} from {name}", phase("address"),
                                       request=lambda ctx, i=interface: _addr(nl.RTM_DELADDR, 0,
                                                                              ctx.index(kns, name), i))))
        for interface, address in have.items():
            if interface in want or interface.ip.is_link_local:
                continue
            if not (owned and K.KINDS[device.kind].make != "existing") and address.proto != mark.PROTO:
                continue   # an address vnetc did not add to a device it does not own
            index = link.index
            step.details.append(f"- address {interface}")
            step.ops.append(Op(kns, f"remove address {interface} from {name}", phase("address"),
                               request=lambda ctx, i=interface: _addr(nl.RTM_DELADDR, 0, index, i),
                               undo=Op(kns, f"add address {interface} to {name}", phase("address"),
                                       request=lambda ctx, i=interface: _addr(nl.RTM_NEWADDR, nl.CREATE, index, i,
                                                                              address.proto))))

    def _routes(self, device: Device, link: Link | None, step: Step) -> None:
        """The routes to add and (vnetc's own, protocol 118) to remove; a removal runs before the
        additions, which may reuse its key (a route whose gateway changed is one of each)."""
        have = self.states[device.netns].routes_of(link.index) if link is not None else []
        kns, name = self.k(device.netns), device.name
        want = _wanted_routes(device)
        matched = set()
        adds = []
        for route in want:
            found = next((r for r in have if _same_route(route, r)), None)
            if found is not None:
                matched.add(found)
                continue
            step.details.append(f"+ route {_route_text(route)}")
            adds.append(Op(kns, f"add route {_route_text(route)}", phase("route"),
                           request=lambda ctx, r=route: _route_msg(nl.RTM_NEWROUTE, nl.CREATE, ctx.index(kns, name), r),
                           undo=Op(kns, f"remove route {_route_text(route)}", phase("route"),
                                   request=lambda ctx, r=route: _route_msg(nl.RTM_DELROUTE, 0,
                                                                           ctx.index(kns, name), r))))
        for route in have:
            if route in matched or route.proto != mark.PROTO:
                continue
            entry = _entry_as_wanted(route)
            step.details.append(f"- route {_route_text(entry)}")
            index = link.index
            step.ops.append(Op(kns, f"remove route {_route_text(entry)}", phase("route"),
                               request=lambda ctx, r=entry: _route_msg(nl.RTM_DELROUTE, 0, index, r),
                               undo=Op(kns, f"add route {_route_text(entry)}", phase("route"),
                                       request=lambda ctx, r=entry: _route_msg(nl.RTM_NEWROUTE, nl.CREATE, index, r))))
        step.ops += adds

    def _stale_filters(self, destroying: bool = False) -> None:
        from .tc import plan_stale_filters
        plan_stale_filters(self, destroying)

    def _residual_items(self, device: Device, step: Step, link: Link | None) -> None:
        """A device the file target's daemon made: only the residual's items for it."""
        if link is None:
            self.plan.errors.append(f"{self.subject(device)} does not exist: the residual expects "
                                    f"{self.o.residual_target or 'the network daemon'} to have made it")
            return
        items = self.o.residual.get((device.netns, device.name), set())
        if "redirect-ingress" in items or "qdisc" in items or self._redirected_residual(device):
            from .tc import plan_tc
            plan_tc(self, device, link, step)
        if "send-sci" in items:
            attr = K.KINDS["macsec"].by_prop["send-sci"]
            if self._differs(attr, device.get("send-sci"), link):
                self._change_attrs(device, link, step, K.KINDS[device.kind].values(device))

    def _redirected_residual(self, device: Device) -> bool:
        return any(device.ref in (d.get("redirect-ingress") or ()) and "redirect-ingress" in
                   self.o.residual.get((d.netns, d.name), set()) for d in self.host.devices if d.kind == "ifb")


# --- addresses and routes ---------------------------------------------------------------

def _addr(kind: int, flags: int, index: int, interface, proto: int = mark.PROTO) -> tuple[int, int, bytes]:
    import struct
    family = nl.AF_INET if interface.version == 4 else nl.AF_INET6
    body = struct.pack("=BBBBI", family, interface.network.prefixlen, 0, 0, index)
    packed = interface.ip.packed
    body += nl.nla(nl.IFA_LOCAL, packed) if family == nl.AF_INET else b""
    body += nl.nla(nl.IFA_ADDRESS, packed)
    if kind == nl.RTM_NEWADDR:
        body += nl.u32(nl.IFA_FLAGS, nl.IFA_F_PERMANENT) + nl.u8(nl.IFA_PROTO, proto)
    return kind, flags, body


class WantedRoute(NamedTuple):
    dst: Any                    # ip_network
    via: Any                    # ip_address | None
    metric: int | None
    table: int | None


def _wanted_routes(device: Device) -> list[WantedRoute]:
    out = []
    for gateway in device.gateway:
        dst = ipaddress.ip_network("0.0.0.0/0" if gateway.version == 4 else "::/0")
        out.append(WantedRoute(dst, gateway, None, None))
    for route in device.route:
        if route.prefix == "default":
            versions = [route.via.version] if route.via is not None else [4, 6]
            for v in versions:
                out.append(WantedRoute(ipaddress.ip_network("0.0.0.0/0" if v == 4 else "::/0"), route.via,
                                       route.metric, route.table))
        else:
            out.append(WantedRoute(route.prefix, route.via, route.metric, route.table))
    return list(dict.fromkeys(out))


def route_tables(host: Host, netns: str | None) -> frozenset[int]:
    """The tables of the routes the site wants in a namespace: the state reads every route of
    these (and vnetc's own in any table), which is all `_routes` compares."""
    return frozenset(route.table or nl.RT_TABLE_MAIN for device in host.devices if device.netns == netns
                     for route in _wanted_routes(device))


def _metric(route: WantedRoute) -> int:
    if route.metric is not None:
        return route.metric
    return 0 if route.dst.version == 4 else 1024


def _same_route(want: WantedRoute, have) -> bool:
    return (have.dst == want.dst and have.gateway == want.via and have.metric == _metric(want)
            and have.table == (want.table or nl.RT_TABLE_MAIN))


def _entry_as_wanted(entry) -> WantedRoute:
    return WantedRoute(entry.dst, entry.gateway, entry.metric, entry.table)


def _route_text(route: WantedRoute) -> str:
    dst = "default" if route.dst.prefixlen == 0 else str(route.dst)
    text = dst + (f" via {route.via}" if route.via else "")
    if route.metric is not None:
        text += f" metric {route.metric}"
    if route.table not in (None, nl.RT_TABLE_MAIN):
        text += f" table {route.table}"
    if route.dst.prefixlen == 0:
        text += f" (IPv{route.dst.version})"
    return text


def _route_msg(kind: int, flags: int, index: int, route: WantedRoute) -> tuple[int, int, bytes]:
    import struct
    family = nl.AF_INET if route.dst.version == 4 else nl.AF_INET6
    table = route.table or nl.RT_TABLE_MAIN
    scope = nl.RT_SCOPE_UNIVERSE if route.via is not None else nl.RT_SCOPE_LINK
    if kind == nl.RTM_DELROUTE:
        scope = 253 if route.via is None else 0
    body = struct.pack(_RT, family, route.dst.prefixlen, 0, 0, table if table < 256 else 0, mark.PROTO,
                       scope, nl.RTN_UNICAST, 0)
    if route.dst.prefixlen:
        body += nl.nla(nl.RTA_DST, route.dst.network_address.packed)
    if route.via is not None:
        body += nl.nla(nl.RTA_GATEWAY, route.via.packed)
    body += nl.u32(nl.RTA_OIF, index) + nl.u32(nl.RTA_PRIORITY, _metric(route)) + nl.u32(nl.RTA_TABLE, table)
    return kind, flags, body


_LABEL = {"mtu": "mtu", "mac": "mac", "up": "state"}     # a recorded property as the plan names it


def _show_state(prop: str, value: Any) -> str:
    """A recorded value (originals.py) as the plan shows it."""
    if prop == "up":
        return "up" if value else "down"
    return "none" if value is None else str(value)


def _vid_text(vid: int, flags: int) -> str:
    extra = [w for bit, w in ((nl.BRIDGE_VLAN_INFO_PVID, "pvid"), (nl.BRIDGE_VLAN_INFO_UNTAGGED, "untagged"))
             if flags & bit]
    return f"{vid}{'(' + ','.join(extra) + ')' if extra else ''}"


def _show_value(prop: str, value: Any) -> str:
    from vnetc.compiler.values import format_duration
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, DeviceRef):
        return str(value)
    if isinstance(value, tuple):
        return " ".join(_show_value(prop, v) for v in value)
    if prop in ("forward-delay", "hello-time", "max-age", "ageing-time", "miimon", "updelay", "downdelay",
                "arp-interval"):
        return format_duration(value)
    return str(value)
