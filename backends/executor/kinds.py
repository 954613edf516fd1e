"""Every kind of the language as the kernel sees it: ONE table.

A row says how a device of the kind comes to exist (`make`: over rtnetlink, by
the tun/tap ioctl, by teamd, through sysfs, or not at all), the kernel's
IFLA_INFO_KIND, and how each of the kind's properties becomes an attribute of
IFLA_INFO_DATA — and whether the kernel can change that attribute on a live
device (`in_place`) or the device must be recreated. The planner compares
the attribute bytes it would send with the bytes the kernel dumps, so one
encoder per property serves creating, comparing and changing.

A newcomer looking for how `vxlan` is built: KINDS["vxlan"].
"""

from __future__ import annotations

import grp
import ipaddress
import pwd
import struct
from operator import attrgetter
from typing import Any, Callable

from vnetc.compiler.schema import KINDS as SCHEMA_KINDS, python_name

from . import netlink as nl

Resolve = Callable[[Any], int]   # a DeviceRef -> its ifindex


def _u8(value: Any) -> bytes:
    return struct.pack("=B", int(value))


def _u16(value: Any) -> bytes:
    return struct.pack("=H", int(value))


def _be16(value: Any) -> bytes:
    return struct.pack("!H", int(value))


def _u32(value: Any) -> bytes:
    return struct.pack("=I", int(value))


def _clock(us: int) -> bytes:
    """A bridge timer: the kernel takes clock_t (1/100 s)."""
    return _u32(us // 10_000)


def _ms(us: int) -> bytes:
    return _u32(us // 1000)


def _choice(table: dict[str, int], pack: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    return lambda value: pack(table[value])


def _show_int(raw: bytes) -> str:
    return str(int.from_bytes(raw, "little")) if raw else "?"


class Attr:
    """A property carried by one IFLA_INFO_DATA attribute. (The classes of this table are plain
    classes, not dataclasses: defining those is paid at every start-up.)"""

    def __init__(self, prop: str, nla: int, encode: Callable[[Any], bytes], in_place: bool = True,
                 nla6: int | None = None, ref: bool = False, fresh: bytes | None = None):
        self.prop, self.nla, self.encode, self.in_place = prop, nla, encode, in_place
        self.nla6 = nla6                # the attribute for an IPv6 value (vxlan local/remote)
        self.ref = ref                  # the value names a device: its ifindex is sent
        # What a newly created device has: recreating a deleted device (an undo) leaves it
        # unsent. Needed where a kernel dumps a value it refuses to be sent, even unchanged.
        self.fresh = fresh

    def number(self, value: Any) -> int:
        if self.nla6 is not None and getattr(value, "version", 4) == 6:
            return self.nla6
        return self.nla

    def payload(self, value: Any, resolve: Resolve) -> bytes:
        return _u32(resolve(value)) if self.ref else self.encode(value)

    def wanted(self, value: Any, resolve: Resolve) -> dict[int, bytes]:
        """{attribute: payload} this value is sent as (what the kernel should dump back)."""
        return {self.number(value): self.payload(value, resolve)}

    def observed(self, data: dict[int, bytes], value: Any) -> dict[int, bytes | None]:
        number = self.number(value)
        return {number: data.get(number)}

    def show(self, raw: bytes | None) -> str:
        return "unset" if raw is None else _show_int(raw)


class IPAttr(Attr):
    def show(self, raw: bytes | None) -> str:
        return "unset" if not raw else str(ipaddress.ip_address(bytes(raw)))


class ChoiceAttr(Attr):
    """An enum property: the kernel's number for each language word."""

    def __init__(self, prop: str, nla: int, table: dict[str, int], pack: Callable[[Any], bytes],
                 in_place: bool = True):
        super().__init__(prop, nla, _choice(table, pack), in_place)
        self.names = {pack(v): k for k, v in table.items()}

    def show(self, raw: bytes | None) -> str:
        return "unset" if raw is None else self.names.get(bytes(raw), _show_int(raw))


class BoolAttr(Attr):
    def show(self, raw: bytes | None) -> str:
        return "unset" if raw is None else ("on" if int.from_bytes(raw, "little") else "off")


class DurationAttr(Attr):
    def __init__(self, prop: str, nla: int, encode: Callable[[Any], bytes], unit_us: int):
        super().__init__(prop, nla, encode)
        self.unit_us = unit_us

    def show(self, raw: bytes | None) -> str:
        from vnetc.compiler.values import format_duration
        if raw is None:
            return "unset"
        return format_duration(int.from_bytes(raw, "little") * self.unit_us)


class SourceMacs(Attr):
    """macvlan `source-macs`: set as a list (MACADDR_MODE set), dumped as MACADDR_DATA."""

    MODE, MACADDR, DATA = 3, 4, 5
    SET = 3

    def __init__(self) -> None:
        super().__init__("source-macs", self.DATA, lambda v: b"")

    def wanted(self, value: Any, resolve: Resolve) -> dict[int, bytes]:
        return {self.DATA: b"".join(nl.nla(self.MACADDR, _mac(m)) for m in sorted(value))}

    def observed(self, data: dict[int, bytes], value: Any) -> dict[int, bytes | None]:
        raw = data.get(self.DATA)
        if raw is None:
            return {self.DATA: None}
        macs = sorted(bytes(v) for k, v in nl.attr_list(memoryview(raw)) if k == self.MACADDR)
        return {self.DATA: b"".join(nl.nla(self.MACADDR, m) for m in macs)}

    def send(self, value: Any) -> bytes:
        entries = b"".join(nl.nla(self.MACADDR, _mac(m)) for m in value)
        return nl.u32(self.MODE, self.SET) + nl.nested(self.DATA, entries)

    def show(self, raw: bytes | None) -> str:
        if not raw:
            return "none"
        return " ".join(":".join(f"{b:02x}" for b in bytes(v)) for _, v in nl.attr_list(memoryview(raw)))


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def _ip(value: Any) -> bytes:
    return ipaddress.ip_address(value).packed


def _uid(name: str) -> int:
    return int(name) if name.isdigit() else pwd.getpwnam(name).pw_uid


def _gid(name: str) -> int:
    return int(name) if name.isdigit() else grp.getgrnam(name).gr_gid


class KindSpec:
    """How the executor makes and compares a device of one kind."""

    def __init__(self, make: str, info_kind: str | None = None, attrs: tuple[Attr, ...] = (),
                 lower: int | None = None, lower_data: int | None = None, peer: int | None = None,
                 elsewhere: tuple[str, ...] = (), unreported: tuple[str, ...] = ()):
        self.make = make                # rtnetlink | tuntap | teamd | sysfs | existing
        self.info_kind = info_kind      # IFLA_INFO_KIND as the kernel names it
        self.attrs = attrs
        self.lower = lower              # the link attribute carrying the lower link's ifindex (IFLA_LINK)
        self.lower_data = lower_data    # ... or the INFO_DATA attribute carrying it (vxlan's IFLA_VXLAN_LINK)
        self.peer = peer                # the INFO_DATA attribute holding the peer (veth, vxcan)
        self.elsewhere = elsewhere      # the kind's other properties, and the module that carries them out
        # those of `elsewhere` the kernel does not report: set when the device is made, compared with
        # the fingerprint apply recorded then (originals.py), the device recreated when they differ
        self.unreported = unreported
        read = attrgetter(*(python_name(a.prop) for a in attrs)) if attrs else lambda device: ()
        self._read = read if len(attrs) != 1 else lambda device: (read(device),)

    def values(self, device: Any) -> list[tuple[Attr, Any]]:
        """The kind properties the device sets, in table order: (attribute, value)."""
        return [(attr, value) for attr, value in zip(self.attrs, self._read(device))
                if value is not None and value != ()]

    @property
    def by_prop(self) -> dict[str, Attr]:
        return {a.prop: a for a in self.attrs}


KINDS: dict[str, KindSpec] = {
    "interface": KindSpec("existing", elsewhere=("match-mac", "match-driver")),
    "failover": KindSpec("existing", elsewhere=("primary", "standby")),
    "bridge": KindSpec("rtnetlink", "bridge", (
        BoolAttr("stp", 5, _u32),
        # a kernel without CONFIG_BRIDGE_VLAN_FILTERING dumps 0 and refuses even 0 (EOPNOTSUPP)
        BoolAttr("vlan-filtering", 7, _u8, fresh=b"\x00"),
        Attr("default-pvid", 39, _u16),
        BoolAttr("multicast-snooping", 23, _u8),
        DurationAttr("forward-delay", 1, _clock, 10_000),
        DurationAttr("hello-time", 2, _clock, 10_000),
        DurationAttr("max-age", 3, _clock, 10_000),
        DurationAttr("ageing-time", 4, _clock, 10_000),
        Attr("priority", 6, _u16),
    ), elsewhere=("ports", "port")),
    "bond": KindSpec("rtnetlink", "bond", (
        ChoiceAttr("mode", 1, {"balance-rr": 0, "active-backup": 1, "balance-xor": 2, "broadcast": 3,
                               "802.3ad": 4, "balance-tlb": 5, "balance-alb": 6}, _u8, in_place=False),
        DurationAttr("miimon", 3, _ms, 1000),
        DurationAttr("updelay", 4, _ms, 1000),
        DurationAttr("downdelay", 5, _ms, 1000),
        DurationAttr("arp-interval", 7, _ms, 1000),
        Attr("arp-ip-target", 8, lambda v: b"".join(nl.nla(i, _ip(a)) for i, a in enumerate(v))),
        Attr("primary", 11, _u32, ref=True),
        ChoiceAttr("xmit-hash-policy", 14, {"layer2": 0, "layer3+4": 1, "layer2+3": 2, "encap2+3": 3,
                                            "encap3+4": 4}, _u8),
        Attr("min-links", 18, _u32),
        ChoiceAttr("lacp-rate", 21, {"slow": 0, "fast": 1}, _u8),
    ), elsewhere=("ports",)),
    "team": KindSpec("teamd", "team", elsewhere=("ports", "runner", "link-watch", "config"),
                     unreported=("runner", "link-watch", "config")),
    "vlan": KindSpec("rtnetlink", "vlan", (
        Attr("id", 1, _u16, in_place=False),
        ChoiceAttr("protocol", 5, {"802.1q": 0x8100, "802.1ad": 0x88A8}, _be16, in_place=False),
    ), lower=nl.IFLA_LINK, elsewhere=("link",)),
    "vxlan": KindSpec("rtnetlink", "vxlan", (
        Attr("vni", 1, _u32, in_place=False),
        IPAttr("remote", 2, _ip, in_place=False, nla6=16),
        IPAttr("group", 2, _ip, in_place=False, nla6=16),
        IPAttr("local", 4, _ip, in_place=False, nla6=17),
        Attr("port", 15, _be16, in_place=False),
        Attr("ttl", 5, _u8),
        BoolAttr("learning", 7, _u8),
    ), lower_data=3, elsewhere=("dev",)),
    "macvlan": KindSpec("rtnetlink", "macvlan", (
        ChoiceAttr("mode", 1, {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}, _u32,
                   in_place=False),
        SourceMacs(),
    ), lower=nl.IFLA_LINK, elsewhere=("link",)),
    "ipvlan": KindSpec("rtnetlink", "ipvlan", (
        ChoiceAttr("mode", 1, {"l2": 0, "l3": 1, "l3s": 2}, _u16),
        ChoiceAttr("flags", 2, {"bridge": 0, "private": 1, "vepa": 2}, _u16),
    ), lower=nl.IFLA_LINK, elsewhere=("link",)),
    "macsec": KindSpec("rtnetlink", "macsec", (
        Attr("port", 2, _be16, in_place=False),
        BoolAttr("encrypt", 7, _u8),
        BoolAttr("send-sci", 9, _u8),
    ), lower=nl.IFLA_LINK, elsewhere=("link", "tx-sa", "rx-channel", "mka-cak", "mka-cak-file", "mka-ckn"),
        unreported=("tx-sa", "rx-channel", "mka-cak", "mka-cak-file", "mka-ckn")),
    "veth": KindSpec("rtnetlink", "veth", peer=1, elsewhere=("peer",)),
    "vcan": KindSpec("rtnetlink", "vcan"),
    "vxcan": KindSpec("rtnetlink", "vxcan", peer=1, elsewhere=("peer",)),
    "ipoib": KindSpec("rtnetlink", "ipoib", (
        Attr("pkey", 1, _u16, in_place=False),
        ChoiceAttr("mode", 2, {"datagram": 0, "connected": 1}, _u16),
        BoolAttr("umcast", 3, _u16),
    ), lower=nl.IFLA_LINK, elsewhere=("link",)),
    "nlmon": KindSpec("rtnetlink", "nlmon"),
    "dummy": KindSpec("rtnetlink", "dummy"),
    "ifb": KindSpec("rtnetlink", "ifb", elsewhere=("qdisc", "redirect-ingress")),
    "netdevsim": KindSpec("sysfs", "netdevsim", elsewhere=("id", "ports", "vfs", "vf", "hw-tc-offload",
                                                         "xdp-offload"),
                          unreported=("id", "ports", "vfs", "vf", "hw-tc-offload", "xdp-offload")),
    "tap": KindSpec("tuntap", "tun", (
        Attr("owner", 1, lambda v: _u32(_uid(v))),
        Attr("group", 2, lambda v: _u32(_gid(v))),
        BoolAttr("multi-queue", 7, _u8, in_place=False),
        BoolAttr("vnet-hdr", 5, _u8, in_place=False),
        BoolAttr("packet-info", 4, _u8, in_place=False),
    )),
}
KINDS["macvtap"] = KindSpec("rtnetlink", "macvtap", KINDS["macvlan"].attrs, lower=nl.IFLA_LINK, elsewhere=("link",))
KINDS["ipvtap"] = KindSpec("rtnetlink", "ipvtap", KINDS["ipvlan"].attrs, lower=nl.IFLA_LINK, elsewhere=("link",))
KINDS["tun"] = KINDS["tap"]


# Bridge port settings (a bridge's `port NAME { … }`): IFLA_INFO_SLAVE_DATA of the port.
PORT_ATTRS: tuple[Attr, ...] = (
    Attr("priority", 2, _u16),
    Attr("cost", 3, _u32),
    BoolAttr("hairpin", 4, _u8),
    BoolAttr("isolated", 33, _u8),
)

def fingerprint(device: Any) -> dict[str, str]:
    """The device's unreported properties that it sets, each as a digest of its IR value (keys
    included: a digest, never the key; a key file by its path, not its content)."""
    import hashlib
    out = {}
    for prop in KINDS[device.kind].unreported:
        value = device.get(prop)
        if value is not None and value != ():
            out[prop] = hashlib.sha256(repr(value).encode()).hexdigest()[:16]
    return out


assert set(KINDS) == set(SCHEMA_KINDS), f"kinds.py and the schema disagree: {set(KINDS) ^ set(SCHEMA_KINDS)}"
for _name, _spec in KINDS.items():   # every property of every kind is carried out somewhere
    assert {a.prop for a in _spec.attrs} | set(_spec.elsewhere) == set(SCHEMA_KINDS[_name].props), _name
