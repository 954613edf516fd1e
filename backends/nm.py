"""NetworkManager: one keyfile per device, `etc/NetworkManager/system-connections/vnetc-NAME.nmconnection` (0600).

Targets NetworkManager 1.42 (Debian 12). ``--nm-version`` names a newer release
and turns on what it added (SINCE: ipvlan in 1.52). Every keyfile is read by
libnm's own keyfile reader in the tests (tests/backends/test_nm.py): no
warning, no unknown section or key, ``verify()`` passes, and the connections
form a graph (every port's controller and every parent exists).

Each device of the host's own namespace is one connection, and that connection
is also its port profile (there are no separate port files):

- [connection]: ``id`` = the device name; ``uuid`` = uuid5 of (site file,
  host, device), so a rebuild never changes it; ``type``; ``interface-name``
  (an `interface` matched by MAC or driver has [ethernet] ``mac-address`` /
  [match] ``driver`` instead); ``autoconnect=false`` for `state down`
  (NetworkManager then leaves the device alone: a NIC stays down, a virtual
  device is not created until `nmcli connection up`); a port names its
  controller's connection by UUID (``master``, ``slave-type``) and carries the
  port setting: [bridge-port] (cost, priority, hairpin, VLANs), [bond-port],
  [team-port].
- the kind's setting: its row in PROFILES (section, property -> key, value
  format, fixed keys). A stacked device names its lower link's connection by
  UUID (``parent``; IPoIB by interface name, as NetworkManager requires). A
  team's [team] ``config`` is the teamd JSON (runner, link watch, `config`
  merged over them).
- [ethernet] ``mtu`` and ``cloned-mac-address`` (IPoIB: [infiniband] ``mtu``).
- [ipv4]/[ipv6], per IP version: ``method=auto`` with DHCP, ``manual`` with
  addresses, else ``disabled`` — for IPv6 ``link-local`` when the device has any
  IP configuration or IPv6 routes (networkd's default link-local addressing);
  ``address1=ADDR/LEN[,GATEWAY]``, ``routeN=DEST/LEN[,VIA[,METRIC]]`` and
  ``routeN_options=table=N``, ``dns=A;B;``. A gateway without an address of its
  version is a default route. Ports have no [ipv4]/[ipv6]: libnm refuses them
  ("setting not allowed in slave connection").

Keys are written in NetworkManager's own order (nmcli's): [connection] ``id``,
``uuid``, ``type`` first, then every section's keys by name.

What NetworkManager 1.42 cannot do goes to the residual, performed by `vnetc
apply` after NetworkManager.service: the kinds of RESIDUAL_KINDS (and ipvlan
before 1.52), devices in other namespaces and veth pairs with an end there,
devices stacked on a device NetworkManager does not have, MACsec with static
SAs, IPoIB without a P_Key or not named PARENT.PKEY, and the properties whose
gaps are raised below (values it takes only in whole seconds/milliseconds or as
numeric IDs, a bridge port's `isolated`, IPoIB `umcast` and MAC, macvlan
source MACs, IPv4 routes on a device without IPv4 address or DHCP). MACsec MKA
with a pre-shared CAK/CKN is NetworkManager's own (it runs wpa_supplicant), so
this target, unlike the others, accepts it; a CAK in a file (`mka-cak-file`) is
an error: NetworkManager keeps the CAK in its keyfile.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import os
import re
import uuid
from typing import Any, Callable, NamedTuple

from vnetc.compiler.ir import Device, DeviceRef, Host, Site, port_vlans, vlan_runs
from vnetc.compiler.schema import KINDS, Route, python_name

from . import Artifact, Gap, Rendering, Target, nobody_can
from .ini import comment
from .teamd import team_config

INSTALL_DIR = "etc/NetworkManager/system-connections"
PREFIX = "vnetc-"
SUFFIX = ".nmconnection"
DEFAULT_VERSION = (1, 42)
#: what a newer NetworkManager release has: kind -> the first release with it
SINCE = {"ipvlan": (1, 52)}
#: connection UUIDs are uuid5(UUID_NAMESPACE, "SITE/HOST/DEVICE")
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://vnetc/nm")

_APPLY = "vnetc apply creates it"

#: kind -> why NetworkManager cannot create it (the executor does)
RESIDUAL_KINDS = {
    "ipvtap": f"NetworkManager has no ipvtap; {_APPLY}",
    "vcan": f"NetworkManager has no vcan; {_APPLY}",
    "vxcan": f"NetworkManager has no vxcan; {_APPLY}",
    "nlmon": f"NetworkManager has no nlmon; {_APPLY}",
    "ifb": "NetworkManager has no ifb; vnetc apply creates it, its qdisc and the tc filters redirecting into it",
    "netdevsim": "netdevsim devices are created through sysfs (/sys/bus/netdevsim), not by NetworkManager",
}


class Cannot(Exception):
    """A value NetworkManager cannot take (its message says why): the property goes to the residual."""


def _dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


#: how a value is written (the builtins themselves where they suffice: no call in between)
_same = str
_upper = str.upper


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _name(ref: DeviceRef) -> str:
    return ref.name


def _commas(values: tuple) -> str:
    return ",".join(str(v) for v in values)


def _whole(unit_us: int, unit: str) -> Callable[[int], str]:
    def fmt(us: int) -> str:
        if us % unit_us:
            raise Cannot(f"NetworkManager takes whole {unit}")
        return str(us // unit_us)
    return fmt


def _numeric_id(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,10}", value) or int(value) > 2**31 - 1:
        raise Cannot(f"NetworkManager takes a numeric ID, not '{value}'")
    return value


def _mapped(table: dict[str, Any]) -> Callable[[str], str]:
    return {key: str(value) for key, value in table.items()}.__getitem__


def _at_most(high: int, what: str) -> Callable[[int], str]:
    def fmt(value: int) -> str:
        if value > high:
            raise Cannot(f"NetworkManager takes {what} up to {high}")
        return str(value)
    return fmt


def _lacks(reason: str) -> Callable[[Any], str]:
    """The format of a property NetworkManager has no key for."""
    def fmt(value: Any) -> str:
        raise Cannot(reason)
    return fmt


_SECONDS = _whole(1_000_000, "seconds")
_MS = _whole(1000, "milliseconds")
MACVLAN_MODES = {"vepa": 1, "bridge": 2, "private": 3, "passthru": 4, "source": 5}
IPVLAN_MODES = {"l2": 1, "l3": 2, "l3s": 3}
VLAN_PROTOCOLS = {"802.1q": "802.1Q", "802.1ad": "802.1ad"}

Keys = list[tuple[str, str | None, Callable[[Any], str]]]

#: kind -> (connection type, its setting's section, [(property, key, format)], {key: value written when
#: no property gave it}). The section is always written (libnm requires it, even empty). A format that
#: raises Cannot sends the property to the residual (_lacks: NetworkManager has no key for it).
PROFILES: dict[str, tuple[str, str, Keys, dict[str, str]]] = {
    "interface": ("ethernet", "ethernet", [], {}),
    "failover": ("ethernet", "ethernet", [], {}),
    "bridge": ("bridge", "bridge", [
        ("stp", "stp", _bool), ("vlan-filtering", "vlan-filtering", _bool),
        ("default-pvid", "vlan-default-pvid", _same), ("multicast-snooping", "multicast-snooping", _bool),
        ("forward-delay", "forward-delay", _SECONDS), ("hello-time", "hello-time", _SECONDS),
        ("max-age", "max-age", _SECONDS), ("ageing-time", "ageing-time", _SECONDS),
        ("priority", "priority", _same)], {}),
    "bond": ("bond", "bond", [   # [bond] holds the kernel's option names (bond.options)
        ("mode", "mode", _same), ("miimon", "miimon", _MS), ("updelay", "updelay", _MS),
        ("downdelay", "downdelay", _MS), ("primary", "primary", _name), ("lacp-rate", "lacp_rate", _same),
        ("xmit-hash-policy", "xmit_hash_policy", _same), ("arp-interval", "arp_interval", _MS),
        ("arp-ip-target", "arp_ip_target", _commas), ("min-links", "min_links", _same)], {}),
    "team": ("team", "team", [], {}),      # config: teamd_config()
    "vlan": ("vlan", "vlan", [("id", "id", _same), ("protocol", "protocol", _mapped(VLAN_PROTOCOLS))], {}),
    "vxlan": ("vxlan", "vxlan", [
        ("vni", "id", _same), ("remote", "remote", _same), ("group", "remote", _same), ("local", "local", _same),
        ("port", "destination-port", _same), ("ttl", "ttl", _same), ("learning", "learning", _bool)], {}),
    **{kind: ("macvlan", "macvlan", [
        ("mode", "mode", _mapped(MACVLAN_MODES)),
        ("source-macs", None, _lacks("NetworkManager has no macvlan source MAC list"))], {"tap": tap})
       for kind, tap in (("macvlan", "false"), ("macvtap", "true"))},
    "ipvlan": ("ipvlan", "ipvlan", [
        ("mode", "mode", _mapped(IPVLAN_MODES)), ("flags", "private", lambda f: _bool(f == "private")),
        ("flags", "vepa", lambda f: _bool(f == "vepa"))], {}),
    "macsec": ("macsec", "macsec", [
        ("encrypt", "encrypt", _bool), ("mka-cak", "mka-cak", _same), ("mka-ckn", "mka-ckn", _same),
        ("port", "port", _same), ("send-sci", "send-sci", _bool)], {"mode": "0"}),   # 0: pre-shared key (MKA)
    "veth": ("veth", "veth", [("peer", "peer", _name)], {}),
    "dummy": ("dummy", "dummy", [], {}),
    "ipoib": ("infiniband", "infiniband", [
        ("pkey", "p-key", _same), ("mode", "transport-mode", _same),
        ("umcast", None, _lacks("NetworkManager has no IPoIB umcast setting"))], {"transport-mode": "datagram"}),
    # an `interface` that is the link of an IPoIB device (and not matched by a 6-byte MAC) is an InfiniBand NIC
    "infiniband-nic": ("infiniband", "infiniband", [], {"transport-mode": "datagram"}),
    **{kind: ("tun", "tun", [
        ("owner", "owner", _numeric_id), ("group", "group", _numeric_id), ("multi-queue", "multi-queue", _bool),
        ("vnet-hdr", "vnet-hdr", _bool), ("packet-info", "pi", _bool)], {"mode": mode})
       for kind, mode in (("tun", "1"), ("tap", "2"))},
}

#: bond properties NetworkManager takes only in some modes (verify() refuses them in the others, or
#: normalizing drops them; the kernel ignores them there too)
BOND_MODES = {
    "lacp-rate": ("802.3ad",),
    "primary": ("active-backup", "balance-tlb", "balance-alb"),
    **dict.fromkeys(("arp-interval", "arp-ip-target"), ("balance-rr", "active-backup", "balance-xor", "broadcast")),
}


def _bond_refused(bond: Device, written: set[str]) -> dict[str, str]:
    """Which of the bond properties that would be WRITTEN NetworkManager 1.42 refuses or drops, and why
    (libnm-core's bond verify() and its option normalizing)."""
    refused = {prop: f"NetworkManager takes it only in mode {', '.join(modes)}" for prop, modes in BOND_MODES.items()
               if prop in written and bond.get("mode") not in modes}
    if any(target.version == 6 for target in bond.get("arp-ip-target")):
        refused["arp-ip-target"] = "NetworkManager 1.42 has IPv4 ARP targets only"

    def on(prop: str) -> bool:
        return prop in written and prop not in refused and bool(bond.get(prop))

    arp, targets, miimon = on("arp-interval"), on("arp-ip-target"), on("miimon")
    if arp != targets:
        missing, present = ("arp-ip-target", "arp-interval") if arp else ("arp-interval", "arp-ip-target")
        refused[present] = f"NetworkManager takes it only with {missing}"
        arp = False
    elif arp and miimon:
        for prop in ("arp-interval", "arp-ip-target"):
            refused[prop] = "NetworkManager leaves ARP monitoring out when miimon is set"
        arp = False
    if "miimon" not in written:
        miimon = not arp       # NetworkManager's default: 100 ms, 0 with ARP monitoring
    for prop in ("updelay", "downdelay"):
        if on(prop) and not miimon:
            refused[prop] = "NetworkManager takes it only with miimon"
    return refused


#: kind -> which of the properties to be written NetworkManager refuses in their combination, with why
REFUSED: dict[str, Callable[[Device, set[str]], dict[str, str]]] = {"bond": _bond_refused}

#: connection type -> (the setting holding the link properties, [(property, key, format)]); the rest: ETHERNET
LINK_KEYS: dict[str, tuple[str, Keys]] = {"infiniband": ("infiniband", [
    ("mtu", "mtu", _at_most(65520, "an InfiniBand MTU")),
    ("mac", None, _lacks("NetworkManager cannot set the MAC of an InfiniBand device"))])}
ETHERNET: tuple[str, Keys] = ("ethernet", [
    ("match-mac", "mac-address", _upper), ("mtu", "mtu", _same), ("mac", "cloned-mac-address", _upper)])

#: bridge `port NAME { … }` settings -> [bridge-port] key (vlans/untagged/pvid become `vlans`)
BRIDGE_PORT_KEYS: Keys = [
    ("cost", "path-cost", _same), ("priority", "priority", _same), ("hairpin", "hairpin-mode", _bool),
    ("isolated", None, _lacks(f"NetworkManager {_dotted(DEFAULT_VERSION)} has no per-port isolated"))]

#: kinds whose `parent` names the lower link's interface, not its connection
PARENT_BY_NAME = {"ipoib"}

#: [section] keys written in this order first; the rest follow sorted by name
_FIRST = {"connection": ("id", "uuid", "type")}
_NUMBERED = re.compile(r"^([a-z-]+?)(\d+)(_options)?$")


def parse_version(text: str) -> tuple[int, int]:
    """`--nm-version`: "MAJOR.MINOR", at least 1.42."""
    match = re.fullmatch(r"(\d{1,3})\.(\d{1,3})", text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not a NetworkManager release (write e.g. 1.42)")
    version = (int(match[1]), int(match[2]))
    if version < DEFAULT_VERSION:
        raise ValueError(f"vnetc writes keyfiles for NetworkManager {_dotted(DEFAULT_VERSION)} and later, not {text}")
    return version


def connection_uuid(site: Site, host: Host, name: str) -> str:
    """The UUID of a device's connection: the same for the same site file, host and device name."""
    return connection_uuids(site, host)(name)


#: the hex digit that holds a UUID's variant (RFC 4122: its top two bits 0b10), by the hash's digit there
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def connection_uuids(site: Site, host: Host) -> Callable[[str], str]:
    """connection_uuid() of SITE and HOST for each device name: `str(uuid.uuid5(…))`, computed as uuid.uuid5
    does (the SHA-1 of the namespace and the name, its first 16 bytes with the version and variant set), with
    the SHA-1 of the part all the host's names share taken once, and no UUID object on the way to the text."""
    site_name = os.path.splitext(os.path.basename(site.files[0]))[0] if site.files else ""
    shared = hashlib.sha1(UUID_NAMESPACE.bytes + f"{site_name}/{host.name or ''}/".encode())

    def of(name: str) -> str:
        sha1 = shared.copy()
        sha1.update(name.encode())
        digits = sha1.hexdigest()   # the version, 5, is digit 12; the variant is in digit 16
        return (f"{digits[:8]}-{digits[8:12]}-5{digits[13:16]}-{_VARIANT_DIGIT[digits[16]]}{digits[17:20]}-"
                f"{digits[20:32]}")
    return of


def teamd_config(team: Device) -> str:
    return json.dumps(team_config(team))


def _has_nul(value: Any) -> bool:
    if isinstance(value, dict):
        return any("\0" in key or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return isinstance(value, str) and "\0" in value


def vlan_list(ids: set[int], pvid: int | None = None, untagged: set[int] = frozenset()) -> str:
    """NetworkManager's VLAN list: "1 pvid untagged,101-104" (runs of ids with the same flags)."""
    members = {vid: tuple(flag for flag, on in (("pvid", vid == pvid), ("untagged", vid in untagged)) if on)
               for vid in sorted(ids)}
    return ",".join(f"{low}" + (f"-{high}" if high != low else "") + "".join(f" {flag}" for flag in flags)
                    for low, high, flags in vlan_runs(members))


def _sort_key(section: str, key: str) -> tuple:
    first = _FIRST.get(section, ())
    if key in first:
        return (0, first.index(key))
    numbered = _NUMBERED.match(key)
    if numbered:   # address1, route2, route2_options: in number order at their name's place
        return (1, numbered[1], int(numbered[2]), numbered[3] or "")
    return (1, key, 0, "")


def _escape(value: str | tuple[str, ...]) -> str:
    """A GLib key file value: a string, or a tuple for a list ("a;b;"), with the escapes GLib writes."""
    if isinstance(value, tuple):
        return "".join(_escape(item).replace(";", "\\;") + ";" for item in value)
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return "\\s" + value[1:] if value.startswith(" ") else value


#: a keyfile's layout: (each section's name and keys, in the order given) -> (its text with a {} for each value,
#: the keys in NetworkManager's order; its number of lines). Connections with the same keys share one (all the
#: VLANs with one address), so it is worked out once.
_LAYOUTS: dict[tuple, tuple[str, int]] = {}


def _layout(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, int]:
    sections, first = [], 0    # first: the index of the section's first value among all the values
    for name, keys in shape:
        order = sorted(range(len(keys)), key=lambda i: _sort_key(name, keys[i]))
        sections.append(f"[{name}]\n" + "".join(f"{keys[i]}={{{first + i}}}\n" for i in order))
        first += len(keys)
    text = "\n".join(sections)
    return text, text.count("\n")


def keyfile(sections: dict[str, dict[str, Any]], header: str) -> str:
    """HEADER and SECTIONS (name -> {key: value: a string, or a tuple for a list}) as a keyfile.

    Names and words hold no blank or control character, so a value seldom needs an escape: the values go in
    as they are (but lists), and all of them again through _escape() only when the text shows one that may."""
    shape = tuple([(name, tuple(keys)) for name, keys in sections.items()])
    layout = _LAYOUTS.get(shape)
    if layout is None:
        layout = _LAYOUTS[shape] = _layout(shape)
    text, lines = layout
    body = text.format(*[value if value.__class__ is str else _escape(value)
                         for keys in sections.values() for value in keys.values()])
    if ("\\" in body or "\t" in body or "\r" in body or "= " in body   # "= ": a value starting with a blank
            or body.count("\n") != lines):                             # a newline in a value
        body = text.format(*[_escape(value) for keys in sections.values() for value in keys.values()])
    return header + body


Row = tuple[str, str, str | None, Callable[[Any], str]]   # (property, its IR attribute, key, format)


class _Profile(NamedTuple):
    """A row of PROFILES with what each of its connections needs worked out once: the IR attribute of each
    property (Row), and its connection type's link setting and keys (LINK_KEYS, else ETHERNET)."""

    conn_type: str
    setting: str
    rows: tuple[Row, ...]
    fixed: dict[str, str]
    link_setting: str
    link_rows: tuple[Row, ...]


def _rows(keys: Keys) -> tuple[Row, ...]:
    return tuple((prop, python_name(prop), key, fmt) for prop, key, fmt in keys)


def _profile(conn_type: str, setting: str, keys: Keys, fixed: dict[str, str]) -> _Profile:
    link_setting, link_keys = LINK_KEYS.get(conn_type, ETHERNET)
    return _Profile(conn_type, setting, _rows(keys), fixed, link_setting, _rows(link_keys))


_PROFILES = {name: _profile(*row) for name, row in PROFILES.items()}


class _Host:
    """Renders one host; the index of its devices is built once."""

    def __init__(self, site: Site, host: Host, version: tuple[int, int]):
        self.site = site
        self.host = host
        self.version = version
        self.by_ref = {d.ref: d for d in host.devices}
        self.out = Rendering()
        self.native: set[DeviceRef] = set()       # the devices NetworkManager has a connection for
        self.uuid = functools.cache(connection_uuids(site, host))   # device name -> its connection's UUID
        self.port_settings: dict[DeviceRef, Any] = {}
        self.stacked: dict[DeviceRef, list[Device]] = {}
        for device in host.devices:
            for record in device.get("port") if device.kind == "bridge" else ():
                self.port_settings[record.name] = record
            lower = device.lower
            if lower is not None:
                self.stacked.setdefault(lower, []).append(device)

    def render(self) -> Rendering:
        native = []
        for device in self.host.devices:        # dependency order: lower links, masters and creators first
            if self._native(device):
                self.native.add(device.ref)
                native.append(device)
        self.out.files += [self._connection(device) for device in native]
        return self.out

    def _gap(self, device: Device, what: str, reason: str, span_key: str | None = None) -> None:
        span = device.spans.get(span_key) if span_key else device.span
        self.out.residual.append(Gap(device, what, reason, span or device.span))

    def _error(self, device: Device, what: str, reason: str) -> None:
        self.out.errors.append(Gap(device, what, reason, device.spans.get(what, device.span)))

    # --- what NetworkManager can have -------------------------------------------

    def _native(self, device: Device) -> bool:
        """Whether NetworkManager gets a connection for DEVICE; if not, why (a residual gap, or an error)."""
        if device.netns is not None:
            self._gap(device, "device", f"it lives in namespace '{device.netns}', which NetworkManager does not "
                                        f"manage; {_APPLY}", "netns")
            return False
        if device.created_by is not None and device.created_by not in self.native:
            creator = self.by_ref[device.created_by]
            self._gap(device, "device", f"it is the peer of {creator.kind} '{creator.name}', which NetworkManager "
                                        f"does not create; {_APPLY}")
            return False
        if device.kind in RESIDUAL_KINDS:
            self._gap(device, "device", RESIDUAL_KINDS[device.kind])
            return False
        if device.kind in SINCE and self.version < SINCE[device.kind]:
            since = _dotted(SINCE[device.kind])
            self._gap(device, "device", f"NetworkManager has {device.kind} only since {since} (vnetc build "
                                        f"--nm-version {since}); {_APPLY}")
            return False
        peer = self.by_ref[device.get("peer")] if device.get("peer") is not None else None
        if peer is not None and peer.netns is not None:
            self._gap(device, "device", f"its peer '{peer.name}' lives in namespace '{peer.netns}', which "
                                        f"NetworkManager does not manage; vnetc apply creates the pair and moves it")
            return False
        error = nobody_can(device, "NetworkManager", TARGET.can)
        if error is not None:
            self.out.errors.append(error)
            return False
        lower = device.lower
        if lower is not None and lower not in self.native:
            self._gap(device, "device", f"its lower link '{lower}' is not NetworkManager's; {_APPLY}",
                      KINDS[device.kind].lower)
            return False
        if device.kind == "macsec" and device.get("mka-cak") is None:
            self._gap(device, "device", f"NetworkManager creates MACsec only with MKA, not with static SAs; "
                                        f"{_APPLY} with its SAs")
            return False
        if device.kind == "macsec" and len(device.get("mka-cak")) != 32:
            self._error(device, "mka-cak", "NetworkManager 1.42 takes only a 128-bit MKA CAK (32 hex digits), and "
                                           "vnetc apply does not run MKA")
            return False
        if device.kind == "ipoib":
            if device.get("pkey") is None:
                self._gap(device, "device", f"NetworkManager creates an IPoIB device only for a P_Key; {_APPLY}")
                return False
            kernel_name = f"{lower.name}.{device.get('pkey'):04x}"
            if device.name != kernel_name:
                self._gap(device, "device", f"NetworkManager names the P_Key {device.get('pkey'):#06x} child of "
                                            f"'{lower.name}' '{kernel_name}', not '{device.name}'; {_APPLY}")
                return False
        return True

    # --- the connection ------------------------------------------------------------

    def _connection(self, device: Device) -> Artifact:
        name = device.name
        match_mac, match_driver = device.get("match-mac"), device.get("match-driver")
        kind = device.kind
        if (kind == "interface" and match_mac is None
                and any(d.kind == "ipoib" for d in self.stacked.get(device.ref, ()))):
            kind = "infiniband-nic"
        profile = _PROFILES[kind]
        master = self.by_ref[device.master] if device.master is not None else None
        connection = {"id": name, "uuid": self.uuid(name), "type": profile.conn_type}
        if match_mac is None and match_driver is None:
            connection["interface-name"] = name
        if device.state == "down":
            connection["autoconnect"] = "false"
        if master is not None:   # a master's kind (bridge, bond, team) is NetworkManager's name of its ports' type
            connection["master"] = self.uuid(master.name)
            connection["slave-type"] = master.kind

        sections: dict[str, dict[str, Any]] = {"connection": connection}
        link = {key: value for _, key, value in self._formatted(device, profile.link_rows)}
        if link or profile.setting == profile.link_setting:
            sections[profile.link_setting] = link
        sections.setdefault(profile.setting, {}).update(self._kind_keys(device, profile))
        if master is not None:
            sections[f"{master.kind}-port"] = self._port_keys(device, master)
        if match_driver is not None:
            sections["match"] = {"driver": (match_driver,)}
        if master is None:
            sections.update(self._ip(device))
        return Artifact(f"{PREFIX}{name}{SUFFIX}", INSTALL_DIR, keyfile(sections, _header(device)), mode=0o600)

    def _formatted(self, device: Device, rows: tuple[Row, ...]) -> list[tuple[str, str, str]]:
        """(property, key, value) of each property of ROWS the device has; what NetworkManager cannot take
        (a format raising Cannot) goes to the residual."""
        out = []
        for prop, attribute, key, fmt in rows:
            value = getattr(device, attribute, None)
            if value is None or (value.__class__ is tuple and not value):   # unset, or an empty list
                continue
            try:
                out.append((prop, key, fmt(value)))
            except Cannot as exc:
                self._gap(device, prop, f"{exc}; vnetc apply sets it", prop)
        return out

    def _kind_keys(self, device: Device, profile: _Profile) -> dict[str, str]:
        formatted = self._formatted(device, profile.rows)
        refused = REFUSED[device.kind](device, {prop for prop, _, _ in formatted}) if device.kind in REFUSED else {}
        for prop in refused:
            self._gap(device, prop, f"{refused[prop]}; vnetc apply sets it", prop)
        keys = {key: value for prop, key, value in formatted if prop not in refused}
        if profile.fixed:
            keys = {**profile.fixed, **keys}
        lower = device.lower
        if lower is not None:
            keys["parent"] = lower.name if device.kind in PARENT_BY_NAME else self.uuid(lower.name)
        if device.kind == "team":
            if device.get("config") is not None and _has_nul(json.loads(device.get("config"))):
                self._error(device, "config", "the teamd JSON holds a NUL character (\\u0000), which "
                                              "NetworkManager's JSON reader refuses, as teamd's does")
            keys["config"] = teamd_config(device)
        if device.kind == "bridge" and device.get("vlan-filtering"):
            # a VLAN-filtering bridge must itself be a member of the VLANs stacked on it
            ids = {d.get("id") for d in self.stacked.get(device.ref, ()) if d.kind == "vlan" and d.ref in self.native}
            if ids:
                keys["vlans"] = vlan_list(ids)
        return keys

    def _port_keys(self, device: Device, master: Device) -> dict[str, str]:
        settings = self.port_settings.get(device.ref) if master.kind == "bridge" else None
        if settings is None:
            return {}
        keys = {}
        for prop, key, fmt in BRIDGE_PORT_KEYS:
            if settings.get(prop) is None:
                continue
            try:
                keys[key] = fmt(settings.get(prop))
            except Cannot as exc:   # the bridge's `port` block holds it, as the networkd target has it
                self._gap(master, "port", f"{exc} (port '{device.name}'); vnetc apply sets it", "port")
        members = port_vlans(settings)
        if members:
            keys["vlans"] = vlan_list(members, settings.pvid, {v for v, f in members.items() if "untagged" in f})
        return keys

    # --- IP configuration ------------------------------------------------------------

    def _ip(self, device: Device) -> dict[str, dict[str, Any]]:
        configured = bool(device.address or device.gateway or device.dhcp != "off")
        out = {}
        for version, name, dhcp in ((4, "ipv4", ("both", "v4")), (6, "ipv6", ("both", "v6"))):
            # (an empty tuple is not looked through: most devices have an address at most)
            addresses = [a for a in device.address if a.version == version] if device.address else []
            gateway = next((g for g in device.gateway if g.version == version), None) if device.gateway else None
            routes = [r for route in device.route for r in _routes(route, version)] if device.route else []
            dns = [d for d in device.dns if d.version == version] if device.dns else []
            if gateway is not None and not addresses:   # libnm: "gateway cannot be set if there are no addresses"
                routes.insert(0, Route(_default(version), gateway))
            if device.dhcp in dhcp:
                method = "auto"
            elif addresses:
                method = "manual"
            elif version == 6 and (configured or routes):
                method = "link-local"
            else:
                method = "disabled"
            if routes and method == "disabled":
                what = "route" if any(_routes(r, version) for r in device.route) else "gateway"
                self._gap(device, what, f"NetworkManager {_dotted(DEFAULT_VERSION)} adds IPv{version} routes (a "
                                        f"gateway is one) only to a device with an IPv{version} address or DHCP; "
                                        f"vnetc apply adds them", what)
                routes = []
            if dns and method not in ("auto", "manual"):
                self._error(device, "dns", f"NetworkManager takes IPv{version} DNS servers only on a device with "
                                           f"an IPv{version} address or DHCP")
            keys = out[name] = {"method": method}
            for i, address in enumerate(addresses, 1):
                keys[f"address{i}"] = str(address) + (f",{gateway}" if i == 1 and gateway else "")
            for i, route in enumerate(routes, 1):
                fields = [str(route.prefix)]
                if route.via is not None or route.metric is not None:
                    fields.append(str(route.via if route.via is not None else _default(version).network_address))
                if route.metric is not None:
                    fields.append(str(route.metric))
                keys[f"route{i}"] = ",".join(fields)
                if route.table is not None:
                    keys[f"route{i}_options"] = f"table={route.table}"
            if dns:
                keys["dns"] = tuple(str(d) for d in dns)
        return out


def _default(version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")


def _routes(route: Route, version: int) -> list[Route]:
    """ROUTE's share of IP version VERSION: a default route without `via` is one of each version."""
    if route.prefix == "default":
        if route.via is not None and route.via.version != version:
            return []
        return [Route(_default(version), route.via, route.metric, route.table)]
    return [route] if route.prefix.version == version else []


def _header(device: Device) -> str:
    """The comment lines that open each keyfile: where the device is defined, and its description."""
    if device.span:
        header = f"{_generated_from(device.span.source.path)}{device.span.line}; do not edit.\n"
    else:
        header = "# Generated by vnetc from ?; do not edit.\n"
    if device.description:
        header += f"# {' '.join(device.description.split())}\n"
    return header


@functools.lru_cache(maxsize=None)   # a site has a few files and many devices
def _generated_from(path: str) -> str:
    """The header up to the line number (a file name may hold a newline: one comment line more)."""
    return comment(f"Generated by vnetc from {os.path.basename(path)}:")[:-1]


def render(site: Site, host: Host, version: tuple[int, int] = DEFAULT_VERSION) -> Rendering:
    return _Host(site, host, version).render()


TARGET = Target("nm", f"NetworkManager keyfiles (NetworkManager {_dotted(DEFAULT_VERSION)})", render,
                "NetworkManager.service", can=("mka-cak", "mka-ckn"))
