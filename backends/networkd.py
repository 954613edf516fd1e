"""systemd-networkd: `.netdev` and `.network` files (systemd 252 and later).

Each created device gets `10-vnetc-NAME.netdev` (its [NetDev] and kind
section) and every device of the host's own namespace `10-vnetc-NAME.network`
([Match] by name; `20-`/`30-vnetc-NAME.network`, by MAC/driver, for an
`interface` that says so: networkd takes the first file that matches), which
brings it up, gives it addresses, routes, DNS and DHCP, enslaves it, sets its
bridge-port options and names the devices stacked on it (`VLAN=`, `MACVLAN=`,
…) — without those keys networkd never creates a stacked device.

What networkd cannot do goes to the residual (performed by `vnetc apply` after
systemd-networkd): team (teamd), netdevsim (sysfs), devices in other
namespaces, the IFB redirect filter, MACsec's send-sci. MACsec MKA needs
wpa_supplicant: an error.

The tables below are the whole mapping from the language to networkd; a kind's
rendering is its row in NETDEV_SECTIONS plus the shared .network code.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

from vnetc.compiler.ir import Device, DeviceRef, Host, Site
from vnetc.compiler.schema import Qdisc, Route, python_name
from vnetc.compiler.values import VlanRange, format_duration

from . import Artifact, Gap, Rendering, Target, nobody_can
from .ini import comment, section, yes_no
from .ini import render as render_ini

INSTALL_DIR = "etc/systemd/network"
PREFIX = "10-vnetc-"

#: .network file name prefix by what its [Match] names: networkd configures a device with the first
#: file (in name order) that matches it, so exact names come first, then MACs (a bridge may carry its
#: NIC's MAC, a failover master always does), then drivers (which match every NIC of the driver)
MATCH_PREFIX = {"name": PREFIX, "mac": "20-vnetc-", "driver": "30-vnetc-"}


#: how a value is written (the builtins themselves where they suffice: no call in between)
_dur = format_duration
_same = str
_bool = yes_no


def _join(values: tuple) -> str:
    return " ".join(str(v) for v in values)


#: kind -> (networkd Kind=, section name, [(property, key, format)])
NETDEV_SECTIONS: dict[str, tuple[str, str | None, list[tuple[str, str, Callable[[Any], str]]]]] = {
    "bridge": ("bridge", "Bridge", [
        ("stp", "STP", _bool), ("vlan-filtering", "VLANFiltering", _bool), ("default-pvid", "DefaultPVID", _same),
        ("multicast-snooping", "MulticastSnooping", _bool), ("forward-delay", "ForwardDelaySec", _dur),
        ("hello-time", "HelloTimeSec", _dur), ("max-age", "MaxAgeSec", _dur),
        ("ageing-time", "AgeingTimeSec", _dur), ("priority", "Priority", _same)]),
    "bond": ("bond", "Bond", [
        ("mode", "Mode", _same), ("miimon", "MIIMonitorSec", _dur), ("updelay", "UpDelaySec", _dur),
        ("downdelay", "DownDelaySec", _dur), ("lacp-rate", "LACPTransmitRate", _same),
        ("xmit-hash-policy", "TransmitHashPolicy", _same), ("arp-interval", "ARPIntervalSec", _dur),
        ("arp-ip-target", "ARPIPTargets", _join), ("min-links", "MinLinks", _same)]),
    "vlan": ("vlan", "VLAN", [("id", "Id", _same), ("protocol", "Protocol", _same)]),
    "vxlan": ("vxlan", "VXLAN", [
        ("vni", "VNI", _same), ("remote", "Remote", _same), ("group", "Group", _same), ("local", "Local", _same),
        ("port", "DestinationPort", _same), ("ttl", "TTL", _same), ("learning", "MacLearning", _bool)]),
    "macvlan": ("macvlan", "MACVLAN", [("mode", "Mode", _same), ("source-macs", "SourceMACAddress", _join)]),
    "macvtap": ("macvtap", "MACVTAP", [("mode", "Mode", _same), ("source-macs", "SourceMACAddress", _join)]),
    "ipvlan": ("ipvlan", "IPVLAN", [("mode", "Mode", str.upper), ("flags", "Flags", _same)]),
    "ipvtap": ("ipvtap", "IPVTAP", [("mode", "Mode", str.upper), ("flags", "Flags", _same)]),
    "macsec": ("macsec", "MACsec", [("port", "Port", _same), ("encrypt", "Encrypt", _bool)]),
    "veth": ("veth", "Peer", []),
    "vxcan": ("vxcan", "VXCAN", []),
    "ipoib": ("ipoib", "IPoIB", [
        ("pkey", "PartitionKey", lambda v: f"0x{v:04x}"), ("mode", "Mode", _same),
        ("umcast", "IgnoreUserspaceMulticastGroups", lambda v: yes_no(not v))]),
    "tap": ("tap", "Tap", [
        ("owner", "User", _same), ("group", "Group", _same), ("multi-queue", "MultiQueue", _bool),
        ("vnet-hdr", "VNetHeader", _bool), ("packet-info", "PacketInfo", _bool)]),
    "tun": ("tun", "Tun", [
        ("owner", "User", _same), ("group", "Group", _same), ("multi-queue", "MultiQueue", _bool),
        ("vnet-hdr", "VNetHeader", _bool), ("packet-info", "PacketInfo", _bool)]),
    "dummy": ("dummy", None, []),
    "vcan": ("vcan", None, []),
    "nlmon": ("nlmon", None, []),
    "ifb": ("ifb", None, []),
}

#: NETDEV_SECTIONS as (IR attribute, key, format) per kind: what _netdev reads, derived once
_NETDEV_ATTRIBUTES = {kind: [(python_name(prop), key, fmt) for prop, key, fmt in props]
                      for kind, (_, _, props) in NETDEV_SECTIONS.items()}

#: kind -> the [Network] key that the lower link's .network uses to name it
STACKING_KEYS = {"vlan": "VLAN", "macvlan": "MACVLAN", "macvtap": "MACVTAP", "ipvlan": "IPVLAN",
                 "ipvtap": "IPVTAP", "vxlan": "VXLAN", "macsec": "MACsec", "ipoib": "IPoIB"}

#: kinds whose MTU is set in the .network ([Link] MTUBytes=), not the .netdev: an MTU given at creation
#: does not last on a bridge (the kernel lowers it to its smallest port's as ports join); one set
#: afterwards does (and networkd sets it only if it differs from the current MTU)
MTU_ON_LINK = {"bridge"}

#: kinds that have no carrier of their own (a tap/tun until a program opens it, a bridge until a port
#: has one): networkd waits for a carrier before it sets addresses and routes, unless told not to
NO_CARRIER_KINDS = {"bridge", "tap", "tun"}

#: kind -> why networkd cannot create it (the executor does)
RESIDUAL_KINDS = {
    "team": "networkd has no team; vnetc apply runs teamd with the generated JSON config",
    "netdevsim": "netdevsim devices are created through sysfs (/sys/bus/netdevsim), not by networkd",
}

#: qdisc kind -> (networkd section, {qdisc parameter: (key, format)})
QDISC_SECTIONS: dict[str, tuple[str, dict[str, tuple[str, Callable[[Any], str]]]]] = {
    "sfq": ("StochasticFairnessQueueing", {"perturb": ("PerturbPeriodSec", _dur)}),
    "tbf": ("TokenBucketFilter", {"rate": ("Rate", _same), "burst": ("BurstBytes", _same),
                                  "latency": ("LatencySec", _dur), "limit": ("LimitBytes", _same),
                                  "peakrate": ("PeakRate", _same), "mtu": ("MTUBytes", _same),
                                  "mpu": ("MPUBytes", _same)}),
    "fq_codel": ("FairQueueingControlledDelay", {"limit": ("PacketLimit", _same), "flows": ("Flows", _same),
                                                 "target": ("TargetSec", _dur), "interval": ("IntervalSec", _dur),
                                                 "quantum": ("QuantumBytes", _same), "ecn": ("ECN", _bool),
                                                 "noecn": ("ECN", lambda v: yes_no(not v))}),
    "codel": ("ControlledDelay", {"limit": ("PacketLimit", _same), "target": ("TargetSec", _dur),
                                  "interval": ("IntervalSec", _dur), "ecn": ("ECN", _bool),
                                  "noecn": ("ECN", lambda v: yes_no(not v))}),
    "fq": ("FairQueueing", {"limit": ("PacketLimit", _same), "flow_limit": ("FlowLimit", _same),
                            "quantum": ("QuantumBytes", _same), "maxrate": ("MaximumRate", _same)}),
    "pfifo": ("PFIFO", {"limit": ("PacketLimit", _same)}),
    "bfifo": ("BFIFO", {"limit": ("LimitBytes", _same)}),
    "pfifo_fast": ("PFIFOFast", {}),
}

_DHCP = {"off": None, "v4": "ipv4", "v6": "ipv6", "both": "yes"}
_VLANS = VlanRange()


def _text(value: str | None) -> str | None:
    """Free text on one line (systemd values cannot hold a newline)."""
    return None if value is None else " ".join(value.split())


class _Host:
    """Renders one host; the index of its devices is built once."""

    def __init__(self, site: Site, host: Host):
        self.by_ref = {d.ref: d for d in host.devices}   # in the host's order (dependency order)
        self.out = Rendering()
        self.stacked: dict[DeviceRef, list[Device]] = {}
        self.redirected: dict[DeviceRef, Device] = {}
        self.port_settings: dict[DeviceRef, Any] = {}   # bridge port -> its `port NAME { … }` record
        for device in host.devices:
            for record in device.get("port") if device.kind == "bridge" else ():
                self.port_settings[record.name] = record
            lower = device.lower
            if lower is not None and self._managed(device):
                self.stacked.setdefault(lower, []).append(device)
            for source in device.get("redirect-ingress") or ():
                self.redirected[source] = device

    def _managed(self, device: Device) -> bool:
        """Whether networkd creates (or configures) this device itself."""
        return device.netns is None and device.kind not in RESIDUAL_KINDS

    def render(self) -> Rendering:
        for ref, device in self.by_ref.items():
            self._device(device, ref)
        return self.out

    def _gap(self, device: Device, what: str, reason: str, span_key: str | None = None) -> None:
        span = device.spans.get(span_key) if span_key else device.span
        self.out.residual.append(Gap(device, what, reason, span or device.span))

    def _device(self, device: Device, ref: DeviceRef) -> None:
        if device.netns is not None:
            if device.created_by is not None:
                reason = (f"the {device.kind} peer lives in namespace '{device.netns}', which networkd does not "
                          f"manage; vnetc apply creates the pair and moves it")
            else:
                reason = f"it lives in namespace '{device.netns}', which networkd does not manage"
            self._gap(device, "device", reason, "netns")
            return
        if device.kind in RESIDUAL_KINDS:
            self._gap(device, "device", RESIDUAL_KINDS[device.kind])
            return
        error = nobody_can(device, "networkd")
        if error is not None:
            self.out.errors.append(error)
            return
        if device.get("send-sci") is not None:
            self._gap(device, "send-sci", "networkd has no send-sci setting; vnetc apply sets it", "send-sci")
        head = _header(device)
        if device.creates:
            netdev = self._netdev(device, head)
            if netdev is not None:
                self.out.files.append(netdev)
        if device.master is not None and self.by_ref[device.master].kind == "team":
            # teamd takes the port down and enslaves it; a .network would fight it.
            self._gap(device, "master", "teamd enslaves team ports; networkd leaves this port alone", "master")
            return
        self.out.files.append(self._network(device, ref, head))

    # --- .netdev ---------------------------------------------------------------

    def _netdev(self, device: Device, head: str) -> Artifact | None:
        """The .netdev of a device networkd creates: [NetDev], then its kind's row of NETDEV_SECTIONS."""
        kind = device.kind
        peer = self._peer(device) if kind in ("veth", "vxcan") else None
        if peer is not None and peer.netns is not None:
            return None  # the peer's own gap hands the pair to vnetc apply
        netdev_kind, name, _ = NETDEV_SECTIONS[kind]
        sections = [section("NetDev", (("Name", device.name), ("Kind", netdev_kind),
                                       ("Description", _text(device.description)),
                                       ("MTUBytes", None if kind in MTU_ON_LINK else device.mtu),
                                       ("MACAddress", device.mac)))]
        if name is not None:
            if kind == "veth":
                pairs = [("Name", peer.name), ("MACAddress", peer.mac)]
            elif kind == "vxcan":
                pairs = [("Peer", peer.name)]
            else:
                pairs = [(key, fmt(value)) for attribute, key, fmt in _NETDEV_ATTRIBUTES[kind]
                         if (value := getattr(device, attribute, None)) not in (None, ())]
                if kind == "vxlan" and device.get("dev") is None:
                    pairs.append(("Independent", "yes"))
            sections.append(section(name, pairs))
        file_name = f"{PREFIX}{device.name}.netdev"
        if kind == "macsec":
            sections += _macsec_sections(device)
            if _has_inline_key(device):
                return Artifact(file_name, INSTALL_DIR, render_ini(head, sections), mode=0o640,
                                group="systemd-network")
        return Artifact(file_name, INSTALL_DIR, render_ini(head, sections))

    def _peer(self, device: Device) -> Device | None:
        ref = device.get("peer")
        return self.by_ref.get(ref) if ref is not None else None

    # --- .network --------------------------------------------------------------

    def _network(self, device: Device, ref: DeviceRef, head: str) -> Artifact:
        kind = device.kind
        how = "name"
        if kind == "interface" and (device.get("match-mac") or device.get("match-driver")):
            how = "mac" if device.get("match-mac") else "driver"
            sections = [section("Match", (("MACAddress", device.get("match-mac")),
                                          ("Driver", device.get("match-driver"))))]
        else:
            sections = [section("Match", (("Name", device.name),))]
        down = "down" if device.state == "down" else None
        if not device.creates or device.created_by is not None:
            sections.append(section("Link", (("MACAddress", device.mac), ("MTUBytes", device.mtu),
                                             ("ActivationPolicy", down))))
        elif kind in MTU_ON_LINK:
            sections.append(section("Link", (("MTUBytes", device.mtu), ("ActivationPolicy", down))))
        elif down:
            sections.append(section("Link", (("ActivationPolicy", down),)))

        network: list[tuple[str, Any]] = [("Description", _text(device.description)), ("DHCP", _DHCP[device.dhcp])]
        network += [("Address", a) for a in device.address]
        network += [("Gateway", g) for g in device.gateway]
        network += [("DNS", d) for d in device.dns]
        if kind in NO_CARRIER_KINDS and (device.address or device.gateway or device.route):
            network.append(("ConfigureWithoutCarrier", "yes"))
        master = self.by_ref.get(device.master) if device.master else None
        if master is not None:
            network.append(("Bond" if master.kind == "bond" else "Bridge", master.name))
            network.append(("LinkLocalAddressing", "no"))
            if master.kind == "bond" and master.get("primary") == ref:
                network.append(("PrimarySlave", "yes"))
        elif not device.address and device.dhcp == "off" and not device.gateway:
            network.append(("LinkLocalAddressing", "no"))
        if ref in self.stacked:
            network += [(STACKING_KEYS[upper.kind], upper.name) for upper in self.stacked[ref]]
        sections.append(section("Network", network))

        for route in device.route:
            sections += _route_sections(route)
        if master is not None and master.kind == "bridge":
            sections += _bridge_port_sections(self.port_settings.get(ref))
        if kind == "bridge" and device.get("vlan-filtering"):
            sections += self._bridge_self_vlans(device)
        if kind == "ifb" and device.get("qdisc") is not None:
            sections += self._qdisc(device, device.get("qdisc"))
        if ref in self.redirected:
            ifb = self.redirected[ref]
            sections.append(section("QDisc", (("Parent", "ingress"), ("Handle", "ffff"))))
            self._gap(ifb, "redirect-ingress",
                      f"networkd adds the ingress qdisc on '{device.name}' but has no tc filter; "
                      f"vnetc apply adds the match-all filter redirecting it into '{ifb.name}'", "redirect-ingress")
        return Artifact(f"{MATCH_PREFIX[how]}{device.name}.network", INSTALL_DIR, render_ini(head, sections))

    def _bridge_self_vlans(self, bridge: Device) -> list:
        """A VLAN-filtering bridge must itself be a member of the VLANs of the devices stacked on it."""
        ids = sorted({d.get("id") for d in self.stacked.get(bridge.ref, ()) if d.kind == "vlan"})
        return [section("BridgeVLAN", [("VLAN", i)]) for i in ids]

    def _qdisc(self, device: Device, qdisc: Qdisc) -> list:
        name, keys = QDISC_SECTIONS[qdisc.kind]
        missing = [p for p, _ in qdisc.params if p not in keys]
        if missing:
            self._gap(device, "qdisc", f"networkd's [{name}] has no {', '.join(missing)}; vnetc apply sets the qdisc",
                      "qdisc")
            return []
        pairs: list[tuple[str, Any]] = [("Parent", "root")]
        pairs += [(keys[p][0], keys[p][1](v)) for p, v in qdisc.params]
        return [section(name, pairs)]


def _route_sections(route: Route) -> list:
    destinations: list[Any]
    if route.prefix == "default":
        destinations = [None] if route.via is not None else ["0.0.0.0/0", "::/0"]
    else:
        destinations = [route.prefix]
    return [section("Route", [("Destination", dest), ("Gateway", route.via), ("Metric", route.metric),
                              ("Table", route.table)]) for dest in destinations]


def _bridge_port_sections(settings: Any) -> list:
    if settings is None:
        return []
    out = [section("Bridge", [("Cost", settings.cost), ("Priority", settings.priority),
                              ("HairPin", None if settings.hairpin is None else yes_no(settings.hairpin)),
                              ("Isolated", None if settings.isolated is None else yes_no(settings.isolated))])]
    for ids in settings.vlans:
        out.append(section("BridgeVLAN", [("VLAN", _VLANS.render(ids))]))
    for ids in settings.untagged:
        out.append(section("BridgeVLAN", [("EgressUntagged", _VLANS.render(ids))]))
    if settings.pvid is not None:
        out.append(section("BridgeVLAN", [("PVID", settings.pvid)]))
    return out


def _macsec_sections(device: Device) -> list:
    out = []
    for sa in device.get("tx-sa"):
        # networkd 252 ignores a transmit SA without PacketNumber=; a new SA starts at 1
        out.append(section("MACsecTransmitAssociation", _sa_pairs(sa, default_pn=1)
                           + [("Activate", "yes"), ("UseForEncoding", "yes")]))
    for channel in device.get("rx-channel"):
        out.append(section("MACsecReceiveChannel", [("Port", channel.port), ("MACAddress", channel.mac)]))
        for sa in channel.sa:
            out.append(section("MACsecReceiveAssociation", [("Port", channel.port), ("MACAddress", channel.mac)]
                               + _sa_pairs(sa) + [("Activate", "yes")]))
    return out


def _sa_pairs(sa, default_pn: int | None = None) -> list:
    pn = sa.pn if sa.pn is not None else default_pn
    return [("PacketNumber", pn), ("KeyId", sa.key_id), ("Key", sa.key), ("KeyFile", sa.key_file)]


def _has_inline_key(device: Device) -> bool:
    sas = list(device.get("tx-sa")) + [sa for ch in device.get("rx-channel") for sa in ch.sa]
    return any(sa.key is not None for sa in sas)


def _header(device: Device) -> str:
    """The comment that opens each file: `# Generated by vnetc from FILE:LINE; do not edit.`"""
    if device.span is None:
        return comment("Generated by vnetc from ?; do not edit.")
    return f"{_generated_from(device.span.source.path)}{device.span.line}; do not edit.\n"


@functools.lru_cache(maxsize=None)   # a site has a few files and many devices
def _generated_from(path: str) -> str:
    """The header up to the line number (a file name may hold a newline: one comment line more)."""
    return comment(f"Generated by vnetc from {os.path.basename(path)}:")[:-1]


def render(site: Site, host: Host) -> Rendering:
    rendering = _Host(site, host).render()
    return rendering


TARGET = Target("networkd", "systemd-networkd .netdev/.network", render, "systemd-networkd.service")
