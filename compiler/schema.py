"""The schema: every kind and property of the language (language.md §3) as data.

One table per kind. A :class:`Prop` is a property statement (``mtu 9000``), a
:class:`Section` a property that opens a block of its own (``port eth0 { pvid 10 }``).
The checker (check.py) is generic over these tables; the IR classes (ir.py) are
generated from them; the backends name properties exactly as written here.
Adding a kind or a property means adding a row here, and nothing in the grammar.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from .values import (CIDR, IP, MAC, BadValue, Bool, Duration, Enum, Hex, Int, JSONObject, Name, Path,
                     Prefix, Rate, Size, Text, ValueType, VlanRange, Word, parse_int)

U32 = 2**32 - 1


@dataclass(frozen=True)
class Prop:
    """A property statement: NAME VALUE… ."""

    name: str
    type: ValueType
    many: bool = False       # takes several values in one statement (`ports eth0 eth1`)
    repeat: bool = False     # may be given again; the values accumulate
    required: bool = False
    default: Any = None
    ref: bool = False        # the values name devices, resolved by the checker
    doc: str = ""
    #: derived, stored once (the checker asks for every property statement it reads):
    is_list: bool = field(init=False, repr=False, compare=False)     # many or repeat: the IR holds a tuple
    multiword: bool = field(init=False, repr=False, compare=False)   # the value is read from all the words at once (route, qdisc)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_list", self.many or self.repeat)
        object.__setattr__(self, "multiword", bool(getattr(self.type, "words", False)))


@dataclass(frozen=True)
class Section:
    """A property with label words and a block: ``tx-sa 0 { key-id 01; … }``."""

    name: str
    keys: tuple[tuple[str, ValueType], ...]   # (label name, type) of each word after NAME
    props: dict[str, Prop | Section]
    block_required: bool = True
    required: bool = False   # the device must have at least one
    single: bool = False     # at most one per device (veth's `peer`)
    ref: bool = False        # the first label names a device (bridge `port NAME`)
    doc: str = ""


@dataclass(frozen=True)
class Kind:
    name: str
    seed: str                          # the seed document's section
    props: dict[str, Prop | Section]
    creates: bool = True               # False: vnetc configures it but never creates it
    lower: str | None = None           # the property naming the lower link, if any
    master: bool = False               # may have ports
    doc: str = ""


# --- multi-word values ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Route:
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network | str   # "default": both families' default
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    metric: int | None = None
    table: int | None = None


class RouteType(ValueType):
    """``PREFIX [via IP] [metric N] [table N]``."""

    describe = "a route"
    words = True
    OPTIONS = {"via": IP(multicast=False), "metric": Int(0, U32, "route metric"), "table": Int(1, U32, "route table")}

    def parse_words(self, texts: list[str]) -> Route:
        prefix = Prefix().parse(texts[0])
        found: dict[str, Any] = {}
        i = 1
        while i < len(texts):
            option = texts[i]
            if option not in self.OPTIONS:
                raise BadValue(f"unknown route option '{option}'",
                               "a route is written: PREFIX [via IP] [metric N] [table N]", word=i)
            if option in found:
                raise BadValue(f"'{option}' is given twice in this route", word=i)
            if i + 1 >= len(texts):
                raise BadValue(f"'{option}' needs a value", word=i)
            try:
                found[option] = self.OPTIONS[option].parse(texts[i + 1])
            except BadValue as exc:
                exc.word = i + 1
                raise
            i += 2
        via = found.get("via")
        if via is not None and prefix != "default" and via.version != prefix.version:
            raise BadValue(f"gateway {via} is IPv{via.version} but the route {prefix} is IPv{prefix.version}",
                           word=texts.index("via") + 1)
        return Route(prefix, via, found.get("metric"), found.get("table"))


@dataclass(frozen=True, slots=True)
class Qdisc:
    kind: str
    params: tuple[tuple[str, Any], ...]

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


FLAG = None  # a qdisc parameter that is a bare word (`ecn`)

#: The root qdiscs an IFB may carry, with their tc parameters (bare tc times are µs).
QDISCS: dict[str, dict[str, ValueType | None]] = {
    "sfq": {"perturb": Duration("s"), "quantum": Size(), "limit": Int(1, 65535, "sfq limit"),
            "divisor": Int(1, 65536, "sfq divisor")},
    "fq_codel": {"limit": Int(1, U32, "fq_codel limit"), "flows": Int(1, 65536, "fq_codel flows"),
                 "target": Duration("us"), "interval": Duration("us"), "quantum": Size(),
                 "ecn": FLAG, "noecn": FLAG},
    "codel": {"limit": Int(1, U32, "codel limit"), "target": Duration("us"), "interval": Duration("us"),
              "ecn": FLAG, "noecn": FLAG},
    "tbf": {"rate": Rate(), "burst": Size(), "latency": Duration("us"), "limit": Size(),
            "peakrate": Rate(), "mtu": Size(), "mpu": Size()},
    "fq": {"limit": Int(1, U32, "fq limit"), "flow_limit": Int(1, U32, "fq flow_limit"),
           "quantum": Size(), "maxrate": Rate()},
    "pfifo": {"limit": Int(1, U32, "pfifo limit")},
    "bfifo": {"limit": Size()},
    "pfifo_fast": {},
}


class QdiscType(ValueType):
    """``KIND [PARAM VALUE | FLAG]…`` with the parameters of QDISCS[KIND]."""

    describe = "a qdisc"
    words = True

    def parse_words(self, texts: list[str]) -> Qdisc:
        kind = texts[0]
        if kind not in QDISCS:
            from .diagnostics import did_you_mean
            raise BadValue(f"unknown qdisc '{kind}'",
                           did_you_mean(kind, QDISCS) or "vnetc knows: " + ", ".join(QDISCS))
        table = QDISCS[kind]
        params: dict[str, Any] = {}
        i = 1
        while i < len(texts):
            name = texts[i]
            if name not in table:
                from .diagnostics import did_you_mean
                known = ", ".join(table) or "none"
                raise BadValue(f"unknown {kind} parameter '{name}'",
                               did_you_mean(name, table) or f"{kind} takes: {known}", word=i)
            if name in params:
                raise BadValue(f"'{name}' is given twice", word=i)
            kind_of_value = table[name]
            if kind_of_value is FLAG:
                params[name] = True
                i += 1
                continue
            if i + 1 >= len(texts):
                raise BadValue(f"'{name}' needs a value", word=i)
            try:
                params[name] = kind_of_value.parse(texts[i + 1])
            except BadValue as exc:
                exc.word = i + 1
                raise
            i += 2
        if kind == "tbf":
            for need in ("rate", "burst"):
                if need not in params:
                    raise BadValue(f"tbf needs '{need}'", "e.g. qdisc tbf rate 1mbit burst 32kbit latency 400ms")
            if ("latency" in params) == ("limit" in params):
                raise BadValue("tbf needs exactly one of 'latency' and 'limit'",
                               "e.g. qdisc tbf rate 1mbit burst 32kbit latency 400ms")
        if "ecn" in params and "noecn" in params:
            raise BadValue("'ecn' and 'noecn' contradict each other")
        return Qdisc(kind, tuple(params.items()))


# --- the properties every kind has ------------------------------------------------

COMMON: dict[str, Prop | Section] = {p.name: p for p in (
    Prop("state", Enum(("up", "down"), "state"), default="up", doc="desired administrative state"),
    Prop("mtu", Int(68, 65535, "MTU")),
    Prop("mac", MAC(unicast=True)),
    Prop("address", CIDR(), many=True, repeat=True),
    Prop("gateway", IP(multicast=False), repeat=True, doc="at most one IPv4 and one IPv6"),
    Prop("route", RouteType(), repeat=True),
    Prop("dns", IP(), many=True, repeat=True),
    Prop("dhcp", Enum(("off", "v4", "v6", "both"), "dhcp mode"), default="off"),
    Prop("master", Name(), ref=True, doc="a bridge, bond or team"),
    Prop("netns", Name(), doc="a namespace declared with `netns`"),
    Prop("description", Text()),
)}

#: The properties given to a device from inside its creator's block (veth/vxcan `peer`).
PEER = Section("peer", (("name", Name()),), COMMON, block_required=False, required=True, single=True,
               doc="the other end, with its own namespace, addresses, …")

_PORTS = Prop("ports", Name(), many=True, repeat=True, ref=True)


def _macvlan_props() -> dict[str, Prop | Section]:
    return _table(
        Prop("link", Name(), required=True, ref=True),
        Prop("mode", Enum(("private", "vepa", "bridge", "passthru", "source"), "macvlan mode"), default="bridge"),
        Prop("source-macs", MAC(), many=True, repeat=True, doc="only with mode source"),
    )


def _ipvlan_props() -> dict[str, Prop | Section]:
    return _table(
        Prop("link", Name(), required=True, ref=True),
        Prop("mode", Enum(("l2", "l3", "l3s"), "ipvlan mode"), default="l3"),
        Prop("flags", Enum(("bridge", "private", "vepa"), "ipvlan flag"), default="bridge"),
    )


def _sa_props() -> dict[str, Prop | Section]:
    return _table(
        Prop("key-id", Hex("MACsec key id", low=1, high=16)),
        Prop("key", Hex("a MACsec key", sizes=(16, 32))),
        Prop("key-file", Path()),
        Prop("pn", Int(1, U32, "packet number")),
    )


def _table(*items: Prop | Section) -> dict[str, Prop | Section]:
    return {item.name: item for item in items}


_DURATION_MS = Duration("ms", 0, 2**31 * 1000)

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("interface", "(an existing NIC)", _table(
        Prop("match-mac", MAC(unicast=True)),
        Prop("match-driver", Word()),
    ), creates=False, doc="an existing device: configured, never created or deleted"),

    Kind("bridge", "Bridge", _table(
        _PORTS,
        Section("port", (("name", Name()),), _table(
            Prop("pvid", Int(1, 4094, "PVID")),
            Prop("vlans", VlanRange(), many=True),
            Prop("untagged", VlanRange(), many=True),
            Prop("cost", Int(1, 65535, "port cost")),
            Prop("priority", Int(0, 63, "port priority")),
            Prop("hairpin", Bool()),
            Prop("isolated", Bool()),
        ), block_required=False, ref=True, doc="per-port settings; also enslaves"),
        Prop("stp", Bool(), default=False),
        Prop("vlan-filtering", Bool()),
        Prop("default-pvid", Int(1, 4094, "default PVID")),
        Prop("multicast-snooping", Bool()),
        Prop("forward-delay", Duration("s", 2_000_000, 30_000_000)),
        Prop("hello-time", Duration("s", 1_000_000, 10_000_000)),
        Prop("max-age", Duration("s", 6_000_000, 40_000_000)),
        Prop("ageing-time", Duration("s", 0, 1_000_000 * 1_000_000)),
        Prop("priority", Int(0, 65535, "bridge priority")),
    ), master=True),

    Kind("bond", "Bonded interface", _table(
        _PORTS,
        Prop("mode", Enum(("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
                           "balance-tlb", "balance-alb"), "bond mode"), default="balance-rr"),
        Prop("miimon", _DURATION_MS),
        Prop("updelay", _DURATION_MS),
        Prop("downdelay", _DURATION_MS),
        Prop("primary", Name(), ref=True),
        Prop("lacp-rate", Enum(("slow", "fast"), "LACP rate")),
        Prop("xmit-hash-policy", Enum(("layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4"),
                                      "transmit hash policy")),
        Prop("arp-interval", _DURATION_MS),
        Prop("arp-ip-target", IP(multicast=False), many=True),
        Prop("min-links", Int(0, 65535, "min-links")),
    ), master=True),

    Kind("team", "Team device", _table(
        _PORTS,
        Prop("runner", Enum(("broadcast", "roundrobin", "activebackup", "loadbalance", "lacp", "random"),
                            "team runner"), default="roundrobin"),
        Prop("link-watch", Enum(("ethtool", "arp_ping", "nsna_ping"), "link watch"), default="ethtool"),
        Prop("config", JSONObject(), doc="raw teamd JSON merged over the generated one"),
    ), master=True),

    Kind("failover", "net_failover", _table(
        Prop("primary", Name(), required=True, ref=True, doc="the passthrough VF"),
        Prop("standby", Name(), required=True, ref=True, doc="the paravirtual NIC"),
    ), creates=False, doc="the kernel (virtio_net) creates the failover master"),

    Kind("vlan", "VLAN", _table(
        Prop("link", Name(), required=True, ref=True),
        Prop("id", Int(1, 4094, "VLAN id"), required=True),
        Prop("protocol", Enum(("802.1q", "802.1ad"), "VLAN protocol"), default="802.1q"),
    ), lower="link"),

    Kind("vxlan", "VXLAN", _table(
        Prop("vni", Int(0, 16777215, "VNI"), required=True),
        Prop("remote", IP(multicast=False)),
        Prop("group", IP(multicast=True)),
        Prop("local", IP(multicast=False)),
        Prop("dev", Name(), ref=True, doc="the underlay device"),
        Prop("port", Int(1, 65535, "UDP port"), default=4789),
        Prop("ttl", Int(1, 255, "TTL")),
        Prop("learning", Bool()),
    ), lower="dev"),

    Kind("macvlan", "MACVLAN", _macvlan_props(), lower="link"),
    Kind("macvtap", "MACVTAP", _macvlan_props(), lower="link"),
    Kind("ipvlan", "IPVLAN", _ipvlan_props(), lower="link"),
    Kind("ipvtap", "IPVTAP", _ipvlan_props(), lower="link"),

    Kind("macsec", "MACsec", _table(
        Prop("link", Name(), required=True, ref=True),
        Prop("port", Int(1, 65535, "MACsec port")),
        Prop("encrypt", Bool(), default=True),
        Prop("send-sci", Bool()),
        Section("tx-sa", (("an", Int(0, 3, "association number")),), _sa_props()),
        Section("rx-channel", (("mac", MAC(unicast=True)), ("port", Int(1, 65535, "MACsec port"))), _table(
            Section("sa", (("an", Int(0, 3, "association number")),), _sa_props()),
        )),
        Prop("mka-cak", Hex("an MKA CAK", sizes=(16, 32))),
        Prop("mka-cak-file", Path()),
        Prop("mka-ckn", Hex("an MKA CKN", low=1, high=32)),
    ), lower="link"),

    Kind("veth", "VETH", _table(PEER)),
    Kind("vcan", "VCAN", {}),
    Kind("vxcan", "VXCAN", _table(PEER)),

    Kind("ipoib", "IPOIB", _table(
        Prop("link", Name(), required=True, ref=True, doc="the InfiniBand device"),
        Prop("pkey", Int(0x0001, 0xFFFF, "P_Key")),
        Prop("mode", Enum(("datagram", "connected"), "IPoIB mode")),
        Prop("umcast", Bool()),
    ), lower="link"),

    Kind("nlmon", "NLMON", {}),
    Kind("dummy", "Dummy", {}),

    Kind("ifb", "IFB", _table(
        Prop("qdisc", QdiscType(), doc="the root qdisc"),
        Prop("redirect-ingress", Name(), many=True, repeat=True, ref=True),
    )),

    Kind("netdevsim", "netdevsim", _table(
        Prop("id", Int(0, 2**31 - 1, "netdevsim id")),
        Prop("ports", Int(1, 128, "netdevsim port count"), default=1),
        Prop("vfs", Int(0, 128, "VF count")),
        Section("vf", (("index", Int(0, 127, "VF index")),), _table(
            Prop("mac", MAC(unicast=True)),
            Prop("vlan", Int(1, 4094, "VF VLAN id")),
            Prop("trust", Bool()),
            Prop("spoofchk", Bool()),
        )),
        Prop("hw-tc-offload", Bool()),
        Prop("xdp-offload", Path(), doc="a BPF object loaded in offload mode"),
    )),

    *(Kind(name, "(TUN/TAP)", _table(
        Prop("owner", Word()),
        Prop("group", Word()),
        Prop("multi-queue", Bool()),
        Prop("vnet-hdr", Bool()),
        Prop("packet-info", Bool()),
    )) for name in ("tap", "tun")),
)}

#: Kinds whose devices can have ports.
MASTER_KINDS = tuple(name for name, kind in KINDS.items() if kind.master)

#: Top-level statements that are not devices.
KEYWORDS = ("include", "let", "for", "netns", "host")


_PROPS_OF: dict[str, dict[str, Prop | Section]] = {}


def props_of(kind: Kind) -> dict[str, Prop | Section]:
    """All properties a device of this kind accepts: the common ones, then its own (do not mutate)."""
    table = _PROPS_OF.get(kind.name)
    if table is None:
        table = _PROPS_OF[kind.name] = {**COMMON, **kind.props}
    return table


_PYTHON_NAMES: dict[str, str] = {}


def python_name(prop_name: str) -> str:
    """The IR attribute of a property: `vlan-filtering` -> `vlan_filtering`."""
    found = _PYTHON_NAMES.get(prop_name)
    if found is None:
        found = _PYTHON_NAMES[prop_name] = prop_name.replace("-", "_")
    return found


__all__ = ["Prop", "Section", "Kind", "KINDS", "COMMON", "PEER", "MASTER_KINDS", "KEYWORDS", "QDISCS",
           "Route", "Qdisc", "props_of", "python_name", "parse_int"]
