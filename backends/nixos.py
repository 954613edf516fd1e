"""NixOS: one module, `vnetc.nix`, holding the systemd-networkd configuration as NixOS options.

The module is built FROM the networkd target's rendering (``networkd.render``):
each `.netdev`/`.network` file becomes ``systemd.network.netdevs.<stem>`` /
``systemd.network.networks.<stem>`` (the file stem, so NixOS writes the same
file names and networkd reads them in the same order), each INI section the
NixOS option that holds it. The two targets therefore cannot disagree.
How a section becomes an attribute is decided in one place, ``_plan``; render
writes the Nix text of a file straight from its text (``_Units``) and takes the
general way (``parse_ini`` → ``unit_attrs`` → ``unit_nix``) for what that
does not cover, with the same result.

Option names and per-section allow-lists follow nixpkgs
``nixos/modules/system/boot/networkd.nix`` as of NixOS 25.05 (the version
whose `routes`, `bridgeVLANs` and `macsec*` list items are plain attribute sets;
the older ``routeConfig = { … }`` wrappers are only a deprecated alias there).
nixpkgs checks every section with ``assertOnlyFields`` (and some keys with
``assertInt``/``assertRange``): a key the allow-list lacks, or a value its check
would reject, goes to ``extraConfig`` as INI text instead — the whole section
for repeatable sections ([Route], [BridgeVLAN], [MACsec…]), since a header there
starts a new entry; just the key, under a repeated header, for the others
(systemd merges a section given twice).

Secrets: the Nix store is world-readable, so an inline MACsec ``key`` is an
error for this target (use ``key-file``, which becomes ``KeyFile=``).

The residual (what networkd cannot do) becomes ``systemd.services."vnetc-residual-nixos"``
running ``vnetc apply --residual`` on the file given by ``environment.etc``.

The module uses no ``lib``/``pkgs`` function, so it evaluates to plain data
with stub arguments (tests/backends/test_nixos.py).
"""

from __future__ import annotations

import functools
import operator
import re
from typing import Any, NamedTuple

from vnetc.compiler.ir import Host, Site

from . import Artifact, Gap, Rendering, Target
from . import networkd
from .residual import RESIDUAL_DIR, residual_artifacts

INSTALL_DIR = "etc/nixos"
MODULE_NAME = "vnetc.nix"
SERVICE = "vnetc-residual-nixos"

# --------------------------------------------------------------------------
# nixpkgs data (nixos/modules/system/boot/networkd.nix, NixOS 25.05: `check.netdev.*`,
# `check.network.*` and the option declarations of netdevOptions / networkOptions)

#: .netdev section -> NixOS option of systemd.network.netdevs.<name>
NETDEV_OPTIONS: dict[str, str] = {
    "NetDev": "netdevConfig", "Bridge": "bridgeConfig", "VLAN": "vlanConfig", "MACVLAN": "macvlanConfig",
    "MACVTAP": "macvtapConfig", "IPVLAN": "ipvlanConfig", "IPVTAP": "ipvtapConfig", "VXLAN": "vxlanConfig",
    "MACsec": "macsecConfig", "Peer": "peerConfig", "VXCAN": "vxcanConfig", "Tun": "tunConfig",
    "Tap": "tapConfig", "Bond": "bondConfig", "IPoIB": "ipoibConfig",
}
#: repeatable .netdev sections -> NixOS list option (each item a plain attribute set)
NETDEV_LISTS: dict[str, str] = {
    "MACsecTransmitAssociation": "macsecTransmitAssociations",
    "MACsecReceiveChannel": "macsecReceiveChannels",
    "MACsecReceiveAssociation": "macsecReceiveAssociations",
}
#: .network section -> NixOS option of systemd.network.networks.<name>
NETWORK_OPTIONS: dict[str, str] = {
    "Match": "matchConfig", "Link": "linkConfig", "Network": "networkConfig", "Bridge": "bridgeConfig",
    "QDisc": "qdiscConfig", "TokenBucketFilter": "tokenBucketFilterConfig",
    "StochasticFairnessQueueing": "stochasticFairnessQueueingConfig",
    "FairQueueingControlledDelay": "fairQueueingControlledDelayConfig",
    "ControlledDelay": "controlledDelayConfig", "FairQueueing": "fairQueueingConfig",
    "PFIFO": "pfifoConfig", "BFIFO": "bfifoConfig", "PFIFOFast": "pfifoFastConfig",
}
NETWORK_LISTS: dict[str, str] = {"Route": "routes", "BridgeVLAN": "bridgeVLANs"}
#: [Network] keys NixOS has a list option of its own for (networkOptions: address, gateway, dns, …)
NETWORK_KEY_LISTS: dict[str, str] = {
    "Address": "address", "Gateway": "gateway", "DNS": "dns", "Bridge": "bridge", "Bond": "bond",
    "VLAN": "vlan", "MACVLAN": "macvlan", "IPVLAN": "ipvlan", "MACVTAP": "macvtap", "VXLAN": "vxlan",
}

#: (file kind, section) -> the keys nixpkgs' assertOnlyFields allows (only the sections vnetc writes).
#: [Match] has no check (attrsOf unitOption).
ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("netdev", "NetDev"): ("Description", "Name", "Kind", "MTUBytes", "MACAddress"),
    ("netdev", "Bridge"): ("HelloTimeSec", "MaxAgeSec", "ForwardDelaySec", "AgeingTimeSec", "Priority",
                           "GroupForwardMask", "DefaultPVID", "MulticastQuerier", "MulticastSnooping",
                           "VLANFiltering", "VLANProtocol", "STP", "MulticastIGMPVersion", "FDBMaxLearned",
                           "LinkLocalLearning"),
    ("netdev", "VLAN"): ("Id", "Protocol", "GVRP", "MVRP", "LooseBinding", "ReorderHeader", "EgressQOSMaps",
                         "IngressQOSMaps"),
    ("netdev", "MACVLAN"): ("Mode", "SourceMACAddress", "BroadcastMulticastQueueLength", "BroadcastQueueThreshold"),
    ("netdev", "MACVTAP"): ("Mode", "SourceMACAddress", "BroadcastMulticastQueueLength", "BroadcastQueueThreshold"),
    ("netdev", "IPVLAN"): ("Mode", "Flags"),
    ("netdev", "IPVTAP"): ("Mode", "Flags"),
    ("netdev", "VXLAN"): ("VNI", "Remote", "Local", "Group", "TOS", "TTL", "MacLearning", "FDBAgeingSec",
                          "MaximumFDBEntries", "ReduceARPProxy", "L2MissNotification", "L3MissNotification",
                          "RouteShortCircuit", "UDPChecksum", "UDP6ZeroChecksumTx", "UDP6ZeroChecksumRx",
                          "RemoteChecksumTx", "RemoteChecksumRx", "GroupPolicyExtension",
                          "GenericProtocolExtension", "DestinationPort", "PortRange", "FlowLabel",
                          "IPDoNotFragment", "Independent", "External", "VNIFilter"),
    ("netdev", "MACsec"): ("Port", "Encrypt"),
    ("netdev", "MACsecReceiveChannel"): ("Port", "MACAddress"),
    ("netdev", "MACsecTransmitAssociation"): ("PacketNumber", "KeyId", "Key", "KeyFile", "Activate",
                                              "UseForEncoding"),
    ("netdev", "MACsecReceiveAssociation"): ("Port", "MACAddress", "PacketNumber", "KeyId", "Key", "KeyFile",
                                             "Activate"),
    ("netdev", "Peer"): ("Name", "MACAddress"),
    ("netdev", "VXCAN"): ("Peer",),
    ("netdev", "Tun"): ("MultiQueue", "PacketInfo", "VNetHeader", "User", "Group", "KeepCarrier"),
    ("netdev", "Tap"): ("MultiQueue", "PacketInfo", "VNetHeader", "User", "Group", "KeepCarrier"),
    ("netdev", "Bond"): ("Mode", "TransmitHashPolicy", "LACPTransmitRate", "MIIMonitorSec", "PeerNotifyDelaySec",
                         "UpDelaySec", "DownDelaySec", "LearnPacketIntervalSec", "AdSelect",
                         "AdActorSystemPriority", "AdUserPortKey", "AdActorSystem", "FailOverMACPolicy",
                         "ARPValidate", "ARPIntervalSec", "ARPIPTargets", "ARPAllTargets",
                         "PrimaryReselectPolicy", "ResendIGMP", "PacketsPerSlave", "GratuitousARP",
                         "AllSlavesActive", "DynamicTransmitLoadBalancing", "MinLinks", "ARPMissedMax"),
    ("netdev", "IPoIB"): ("PartitionKey", "Mode", "IgnoreUserspaceMulticastGroups"),
    ("network", "Link"): ("MACAddress", "MTUBytes", "ARP", "Multicast", "AllMulticast", "Promiscuous", "Unmanaged",
                          "Group", "RequiredForOnline", "RequiredFamilyForOnline", "ActivationPolicy"),
    ("network", "Network"): (
        "Description", "DHCP", "DHCPServer", "LinkLocalAddressing", "IPv6LinkLocalAddressGenerationMode",
        "IPv6StableSecretAddress", "IPv4LLStartAddress", "IPv4LLRoute", "DefaultRouteOnDevice", "LLMNR",
        "MulticastDNS", "DNSOverTLS", "DNSSEC", "DNSSECNegativeTrustAnchors", "LLDP", "EmitLLDP", "BindCarrier",
        "Address", "Gateway", "DNS", "UseDomains", "Domains", "DNSDefaultRoute", "NTP", "IPForward",
        "IPv4Forwarding", "IPv6Forwarding", "IPMasquerade", "IPv6PrivacyExtensions", "IPv6AcceptRA",
        "IPv6DuplicateAddressDetection", "IPv6HopLimit", "IPv6RetransmissionTimeSec",
        "IPv4DuplicateAddressDetectionTimeoutSec", "IPv4ReversePathFilter", "MulticastIGMPVersion",
        "IPv4AcceptLocal", "IPv4RouteLocalnet", "IPv4ProxyARP", "IPv4ProxyARPPrivateVLAN", "IPv6ProxyNDP",
        "IPv6ProxyNDPAddress", "IPv6SendRA", "DHCPPrefixDelegation", "IPv6MTUBytes", "MPLSRouting", "KeepMaster",
        "BatmanAdvanced", "Bridge", "Bond", "VRF", "IPoIB", "IPVLAN", "IPVTAP", "MACsec", "MACVLAN", "MACVTAP",
        "Tunnel", "VLAN", "VXLAN", "Xfrm", "ActiveSlave", "PrimarySlave", "ConfigureWithoutCarrier",
        "IgnoreCarrierLoss", "KeepConfiguration"),
    ("network", "Route"): ("Gateway", "GatewayOnLink", "Destination", "Source", "Metric", "IPv6Preference", "Scope",
                           "PreferredSource", "Table", "HopLimit", "Protocol", "Type", "InitialCongestionWindow",
                           "InitialAdvertisedReceiveWindow", "QuickAck", "FastOpenNoCookie", "MTUBytes",
                           "TCPAdvertisedMaximumSegmentSize", "TCPCongestionControlAlgorithm",
                           "TCPRetransmissionTimeoutSec", "MultiPathRoute", "NextHop"),
    ("network", "Bridge"): ("UnicastFlood", "MulticastFlood", "MulticastToUnicast", "NeighborSuppression",
                            "Learning", "HairPin", "Isolated", "UseBPDU", "FastLeave", "AllowPortToBeRoot",
                            "ProxyARP", "ProxyARPWiFi", "MulticastRouter", "Cost", "Priority", "Locked",
                            "MACAuthenticationBypass", "VLANTunnel"),
    ("network", "BridgeVLAN"): ("VLAN", "EgressUntagged", "PVID"),
    ("network", "QDisc"): ("Parent", "Handle"),
    ("network", "TokenBucketFilter"): ("Parent", "Handle", "LatencySec", "LimitBytes", "BurstBytes", "Rate",
                                       "MPUBytes", "PeakRate", "MTUBytes"),
    ("network", "StochasticFairnessQueueing"): ("Parent", "Handle", "PerturbPeriodSec"),
    ("network", "BFIFO"): ("Parent", "Handle", "LimitBytes"),
    ("network", "PFIFO"): ("Parent", "Handle", "PacketLimit"),
    ("network", "PFIFOFast"): ("Parent", "Handle"),
    ("network", "ControlledDelay"): ("Parent", "Handle", "PacketLimit", "TargetSec", "IntervalSec", "ECN",
                                     "CEThresholdSec"),
    ("network", "FairQueueingControlledDelay"): ("Parent", "Handle", "PacketLimit", "MemoryLimitBytes", "Flows",
                                                 "TargetSec", "IntervalSec", "QuantumBytes", "ECN",
                                                 "CEThresholdSec"),
    ("network", "FairQueueing"): ("Parent", "Handle", "PacketLimit", "FlowLimit", "QuantumBytes",
                                  "InitualQuantumBytes", "MaximumRate", "Buckets", "OrphanMask", "Pacing",
                                  "CEThresholdSec"),
}

#: (file kind, section, key) nixpkgs checks with assertInt / assertRange / assertPort: the value must be
#: a Nix integer there, so a value that is not a plain decimal number goes to extraConfig
INT_KEYS: frozenset[tuple[str, str, str]] = frozenset({
    ("netdev", "Bridge", "HelloTimeSec"), ("netdev", "Bridge", "MaxAgeSec"), ("netdev", "Bridge", "ForwardDelaySec"),
    ("netdev", "Bridge", "AgeingTimeSec"), ("netdev", "Bridge", "Priority"), ("netdev", "Bridge", "DefaultPVID"),
    ("netdev", "VLAN", "Id"),
    ("netdev", "VXLAN", "VNI"), ("netdev", "VXLAN", "TTL"), ("netdev", "Bond", "MinLinks"),
    ("netdev", "MACsec", "Port"), ("netdev", "MACsecReceiveChannel", "Port"),
    ("netdev", "MACsecTransmitAssociation", "PacketNumber"), ("netdev", "MACsecTransmitAssociation", "KeyId"),
    ("netdev", "MACsecReceiveAssociation", "Port"), ("netdev", "MACsecReceiveAssociation", "PacketNumber"),
    ("netdev", "MACsecReceiveAssociation", "KeyId"),
    ("network", "Route", "Metric"), ("network", "Bridge", "Cost"), ("network", "Bridge", "Priority"),
    ("network", "BridgeVLAN", "PVID"), ("network", "StochasticFairnessQueueing", "PerturbPeriodSec"),
    ("network", "PFIFO", "PacketLimit"), ("network", "FairQueueingControlledDelay", "PacketLimit"),
    ("network", "FairQueueingControlledDelay", "Flows"), ("network", "FairQueueing", "PacketLimit"),
    ("network", "FairQueueing", "FlowLimit"),
})

_INT = re.compile(r"0|[1-9][0-9]{0,17}")

Section = tuple[str, list[tuple[str, str]]]


# --------------------------------------------------------------------------
# INI text -> sections (the networkd target's own output, read back)


def parse_ini(text: str) -> list[Section]:
    """The sections of a systemd unit file, in order (comments and blank lines dropped)."""
    sections: list[Section] = []
    pairs: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            pairs = []
            sections.append((line[1:-1], pairs))
        elif pairs is None:
            raise ValueError(f"key outside a section: {line!r}")
        else:
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return sections


def render_ini(sections: list[Section]) -> str:
    return "".join(f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in pairs) for name, pairs in sections)


# --------------------------------------------------------------------------
# Nix text


def nix_string(value: str) -> str:
    """A double-quoted Nix string (escapes: \\ " \\n \\r \\t and ${ as \\${)."""
    if value.isprintable() and '"' not in value and "\\" not in value and "${" not in value:
        return f'"{value}"'     # most values: nothing to escape (cheaper to see so than by a regex)
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{out}"'


def nix_indented(value: str, indent: int) -> str | None:
    """A multi-line value as a Nix indented string ('' ... ''), if it can be one exactly; else None.
    No Python loop over the lines: the residual JSON it holds has 300,000 of them for 16,000 devices."""
    if value.count("\n") < 2 or not value.endswith("\n") or "\t" in value or "\r" in value:
        return None
    body = value[:-1]
    if body.startswith(" ") or "" in map(str.strip, body.split("\n")):
        return None  # blank lines or an indented first line would change what Nix strips
    pad = "  " * (indent + 1)
    escaped = body.replace("''", "'''").replace("${", "''${")
    return "''\n" + pad + escaped.replace("\n", "\n" + pad) + "\n" + "  " * indent + "''"


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
_KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}


@functools.lru_cache(maxsize=4096)   # attribute names repeat in every unit
def nix_name(name: str) -> str:
    return name if _IDENT.fullmatch(name) and name not in _KEYWORDS else nix_string(name)


def nix_value(value: Any, indent: int) -> str:
    if isinstance(value, str):
        return nix_indented(value, indent) or nix_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    pad = "  " * indent
    if isinstance(value, list):
        if not value:
            return "[ ]"
        if all(not isinstance(v, (dict, list)) for v in value):
            return "[ " + " ".join(nix_value(v, indent) for v in value) + " ]"
        return "[\n" + "".join(f"{pad}  {nix_value(v, indent + 1)}\n" for v in value) + f"{pad}]"
    if isinstance(value, dict):
        if not value:
            return "{ }"
        return "{\n" + "".join(f"{pad}  {nix_name(k)} = {nix_value(v, indent + 1)};\n"
                               for k, v in value.items()) + f"{pad}}}"
    raise TypeError(f"no Nix form for {value!r}")


#: The indents of a unit's text (unit_nix and _Units write the same layout): an option of the unit,
#: a key of an option's attribute set (or the braces of a list's set), a key of a set in a list.
_OPTION, _KEY, _ITEM_KEY = "  " * 4, "  " * 5, "  " * 6


def unit_nix(attrs: dict[str, Any]) -> str:
    """``nix_value(attrs, 3)`` for the attributes of a unit (systemd.network.netdevs.<name>, at depth 3),
    written for their usual shape instead of by recursion: an option is an attribute set of keys or
    a list of such sets, a key's value a string, number or boolean (16,000 devices: 130,000 keys)."""
    parts = ["{\n"]
    for option, value in attrs.items():
        if type(value) is dict and value:
            parts.append(f"{_OPTION}{nix_name(option)} = {{\n")
            parts += [f"{_KEY}{nix_name(k)} = {_leaf(v, 5)};\n" for k, v in value.items()]
            parts.append(f"{_OPTION}}};\n")
        elif type(value) is list and value and type(value[0]) is dict:
            parts.append(f"{_OPTION}{nix_name(option)} = [\n")
            for item in value:
                if type(item) is dict and item:
                    parts.append(f"{_KEY}{{\n")
                    parts += [f"{_ITEM_KEY}{nix_name(k)} = {_leaf(v, 6)};\n" for k, v in item.items()]
                    parts.append(f"{_KEY}}}\n")
                else:
                    parts.append(f"{_KEY}{nix_value(item, 5)}\n")
            parts.append(f"{_OPTION}];\n")
        else:
            parts.append(f"{_OPTION}{nix_name(option)} = {_leaf(value, 4)};\n")
    parts.append("      }")
    return "".join(parts)


def _leaf(value: Any, indent: int) -> str:
    """nix_value(value, indent), the values of unit files first: one-line strings, numbers, booleans
    and lists of one-line strings (Address=, VLAN=, …)."""
    kind = type(value)
    if kind is str and "\n" not in value:
        return nix_string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is list and value and all(type(v) is str and "\n" not in v for v in value):
        return "[ " + " ".join(map(nix_string, value)) + " ]"
    return nix_value(value, indent)


class _Plan(NamedTuple):
    """How a section of a .netdev/.network file becomes NixOS attributes (unit_attrs and _Units both
    follow it)."""

    option: str | None          # the NixOS attribute it goes to; None: none (extraConfig)
    repeatable: bool            # a list of attribute sets, one per section
    allowed: frozenset[str] | None   # the keys nixpkgs allows; None: any
    int_keys: frozenset[str]    # the keys nixpkgs requires to be Nix integers
    key_lists: dict[str, str]   # keys with a list attribute of their own ([Network] Address= -> address)


@functools.cache   # (file kind, section): made on first use
def _plan(kind: str, section: str) -> _Plan:
    options, lists = (NETDEV_OPTIONS, NETDEV_LISTS) if kind == "netdev" else (NETWORK_OPTIONS, NETWORK_LISTS)
    allowed = ALLOWED.get((kind, section))
    option = lists.get(section) or options.get(section)
    return _Plan(option, section in lists, None if allowed is None else frozenset(allowed),
                 frozenset(k for f, s, k in INT_KEYS if (f, s) == (kind, section)),
                 NETWORK_KEY_LISTS if option == "networkConfig" else {})


_BOOLS = {"yes": True, "no": False}


def _collect(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Pairs -> attributes; a key given more than once becomes a list (systemd repeats it)."""
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    out = {}
    for key, value in pairs:
        if key in out:
            out[key] = (out[key] if isinstance(out[key], list) else [out[key]]) + [value]
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------
# one unit file -> NixOS attributes


def unit_attrs(kind: str, sections: list[Section]) -> dict[str, Any]:
    """The attributes of systemd.network.{netdevs,networks}.<name> for one .netdev/.network file."""
    attrs: dict[str, Any] = {}
    extra: list[Section] = []
    for name, pairs in sections:
        plan = _plan(kind, name)
        if plan.option is None:
            extra.append((name, pairs))
            continue
        # each value as Nix takes it (a number, a boolean, a string), unless nixpkgs' checks would
        # reject it: a key the allow-list lacks, a non-number where it asserts an integer
        allowed, int_keys = plan.allowed, plan.int_keys
        ok: list[tuple[str, Any]] = []
        bad: list[tuple[str, str]] = []
        for key, value in pairs:
            if allowed is not None and key not in allowed:
                bad.append((key, value))
            elif value.isdigit() and _INT.fullmatch(value):
                ok.append((key, int(value)))
            elif key in int_keys:
                bad.append((key, value))
            else:
                ok.append((key, _BOOLS.get(value, value)))
        if plan.repeatable:
            if bad:
                extra.append((name, pairs))            # a repeated header would start a new entry
            else:
                attrs.setdefault(plan.option, []).append(_collect(ok))
            continue
        if bad:
            extra.append((name, bad))                  # systemd merges a section given twice
        if plan.key_lists:
            rest = []
            for key, value in ok:
                if key in plan.key_lists:
                    attrs.setdefault(plan.key_lists[key], []).append(value)
                else:
                    rest.append((key, value))
            ok = rest
        if ok:
            attrs.setdefault(plan.option, {}).update(_collect(ok))
    if extra:
        attrs["extraConfig"] = render_ini(extra)
    return _ordered(attrs, kind)


def _attribute_order(options: dict[str, str], lists: dict[str, str], kind: str) -> dict[str, int]:
    """The order of a unit's attributes: that of the sections they come from (deterministic, readable)."""
    order = list(options.values())
    if kind == "network":
        order = order[:3] + list(NETWORK_KEY_LISTS.values()) + order[3:]
    order += list(lists.values()) + ["extraConfig"]
    return {name: i for i, name in reversed(list(enumerate(order)))}   # a name listed twice: its first place


_ATTRIBUTE_ORDER = {"netdev": _attribute_order(NETDEV_OPTIONS, NETDEV_LISTS, "netdev"),
                    "network": _attribute_order(NETWORK_OPTIONS, NETWORK_LISTS, "network")}


def _ordered(attrs: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: attrs[k] for k in sorted(attrs, key=_ATTRIBUTE_ORDER[kind].__getitem__)}


# --------------------------------------------------------------------------
# one unit file -> Nix text, directly (what render uses)
#
# unit_nix(unit_attrs(kind, parse_ini(text))) builds lists and dicts for each file only to write them
# out again (16,000 devices: 20,000 files, 130,000 keys). _Units writes the same text straight from the
# file's lines when all its sections are plain (see _Units), which networkd's files are but for the
# values nixpkgs rejects (extraConfig) or that need care (a non-printable character); any other file
# takes the general way.


class _Section:
    """What _Units knows of one section name of one file kind: its plan, how each of its keys is written
    and (some of) its lines — `STP=no` or `Parent=root` recurs in thousands of files."""

    __slots__ = ("plan", "option", "repeatable", "keys", "lines")

    def __init__(self, kind: str, name: str) -> None:
        self.plan = _plan(kind, name)
        self.option, self.repeatable = self.plan.option, self.plan.repeatable
        self.keys: dict[str, tuple[str, str | None, bool] | None] = {}   # key -> self._key(key)
        self.lines: dict[str, tuple[str, str | None, str]] = {}          # line -> self.line(line)

    def _key(self, key: str) -> tuple[str, str | None, bool] | None:
        """How a key is written: (the start of its lines: `Key = `, or "" for a key whose values go to a
        list attribute of their own; that attribute ([Network] Address= -> address) or None; whether nixpkgs
        wants an integer). None if nixpkgs rejects the key (extraConfig) or parse_ini might read its lines
        otherwise (every systemd key is alphanumeric)."""
        plan = self.plan
        if not key.isalnum() or plan.allowed is not None and key not in plan.allowed:
            return None
        attribute = plan.key_lists.get(key)
        pad = _ITEM_KEY if plan.repeatable else _KEY
        return "" if attribute else f"{pad}{nix_name(key)} = ", attribute, key in plan.int_keys

    def line(self, line: str) -> tuple[str, str | None, str] | None:
        """How a `key=value` line is written: (key, the list attribute of its own or None, the Nix text:
        `Key = value;` in the section's attribute set, or the value alone in that list). None if unit_attrs
        would not take it as it stands (its key or value goes to extraConfig) or parse_ini might read it
        otherwise (it strips lines and splits them at every line break: the value must be printable and
        not end in a space)."""
        key, equals, value = line.partition("=")
        how = self.keys.get(key, False)
        if how is False:
            how = self.keys[key] = self._key(key)
        if how is None or not equals or not value.isprintable() or value.endswith(" "):
            return None
        start, attribute, integer = how
        if value.isdigit() and _INT.fullmatch(value):
            literal = value                            # the Nix integer, as written
        elif integer:
            return None
        else:
            literal = _NIX_BOOLS.get(value) or nix_string(value)
        entry = key, attribute, f"{start}{literal};\n" if start else literal
        if len(self.lines) < _LINES_KEPT:
            self.lines[line] = entry
        return entry


_NIX_BOOLS = {"yes": "true", "no": "false"}

#: the lines a _Section keeps, at most: those that recur (`Kind=vlan`, `STP=no`) come up in the first
#: files; keeping every unique one (`Name=…`, 4 per VLAN) makes the rendering slower, not faster
_LINES_KEPT = 256


def _frames(kind: str) -> dict[str, tuple[str, str, str]]:
    """Unit attribute -> (opening, separator, closing) around its parts, as unit_nix writes it: an
    attribute set of `Key = value;` lines, a list of such sets, or a list of values."""
    options, lists = (NETDEV_OPTIONS, NETDEV_LISTS) if kind == "netdev" else (NETWORK_OPTIONS, NETWORK_LISTS)
    frames = {o: (f"{_OPTION}{nix_name(o)} = {{\n", "", f"{_OPTION}}};\n") for o in options.values()}
    frames.update({o: (f"{_OPTION}{nix_name(o)} = [\n", "", f"{_OPTION}];\n") for o in lists.values()})
    if kind == "network":
        frames.update({a: (f"{_OPTION}{nix_name(a)} = [ ", " ", " ];\n") for a in NETWORK_KEY_LISTS.values()})
    return frames


_FRAMES = {"netdev": _frames("netdev"), "network": _frames("network")}


class _Units:
    """The Nix text of the unit files of one rendering, `<stem> = { … };` after the file's comment line,
    each with the attributes ``unit_nix(unit_attrs(kind, parse_ini(text)))``.

    Written directly for a file in the form networkd writes (ini.render: one comment line, then
    `[Section]`s of `key=value` lines, one blank line apart) whose sections are all plain: each has an
    option (_Plan), a section without a list option comes once (unit_attrs would merge two), no key
    comes twice in a section (unit_attrs would make a list), every line is one _Section.line takes.
    Any other file takes the general way."""

    def __init__(self) -> None:
        self._sections: dict[str, dict[str, _Section]] = {"netdev": {}, "network": {}}   # kind -> name -> …

    def unit(self, kind: str, stem: str, text: str) -> str:
        head, *sections = text.rstrip("\n").split("\n\n[")
        nix = self._plain(kind, sections) if head[:1] == "#" and head.isprintable() else None
        if nix is None:
            nix = unit_nix(unit_attrs(kind, parse_ini(text)))
            head = text.partition("\n")[0]
            head = head.splitlines()[0] if head else ""
        if head.startswith("# "):                      # the file's comment line, kept
            return f"      {head}\n      {nix_name(stem)} = {nix};"
        return f"      {nix_name(stem)} = {nix};"

    def _plain(self, kind: str, sections: list[str]) -> str | None:
        """The attributes of a file's sections (`Name]\\nKey=value…`) if they are all plain, else None."""
        table = self._sections[kind]
        parts: dict[str, Any] = {}                     # unit attribute -> its parts (keys, items or values)
        for text in sections:
            name, _, body = text.partition("]\n")
            section = table.get(name)
            if section is None:
                section = table[name] = _Section(kind, name)
            option = section.option
            if option is None or option in parts and not section.repeatable:
                return None                            # extraConfig, or a section given twice
            known = section.lines
            lines = body.split("\n")
            own: dict[str, str] = {}                   # key -> its `Key = value;`
            listed = 0                                 # lines whose value went to a list attribute of its own
            for line in lines:
                entry = known.get(line) or section.line(line)
                if entry is None:
                    return None
                key, attribute, nix = entry
                if attribute is None:
                    own[key] = nix
                else:
                    parts.setdefault(attribute, []).append(nix)
                    listed += 1
            if len(own) + listed != len(lines):
                return None                            # a key given twice: unit_attrs makes a list of it
            if section.repeatable:
                parts.setdefault(option, []).append(f"{_KEY}{{\n" + "".join(own.values()) + f"{_KEY}}}\n")
            elif own:
                parts[option] = own.values()
        frames = _FRAMES[kind]
        out = ["{\n"]
        for attribute in sorted(parts, key=_ATTRIBUTE_ORDER[kind].__getitem__):
            opening, separator, closing = frames[attribute]
            out += opening, separator.join(parts[attribute]), closing
        out.append("      }")
        return "".join(out)


# --------------------------------------------------------------------------
# the target


def _inline_key_errors(host: Host) -> list[Gap]:
    errors = []
    for device in host.devices:
        if device.kind != "macsec":
            continue
        sas = [("tx-sa", sa) for sa in device.get("tx-sa")] + [
            ("rx-channel sa", sa) for ch in device.get("rx-channel") for sa in ch.sa]
        for where, sa in sas:
            if sa.key is not None:
                span = sa.spans.get("key") or sa.span or device.span
                errors.append(Gap(device, "key", f"an inline key in {where} {sa.an} would land in the world-readable "
                                                 f"Nix store; hint: put the key in a file (mode 0600) and give "
                                                 f"`key-file \"/etc/vnetc/keys/{device.name}-{sa.an}.key\"` instead",
                                  span))
    return errors


def render(site: Site, host: Host) -> Rendering:
    inner = networkd.render(site, host)
    out = Rendering(residual=list(inner.residual), errors=list(inner.errors) + _inline_key_errors(host))
    out.files.append(Artifact(MODULE_NAME, INSTALL_DIR, module_text(site, host, _unit_texts(inner.files),
                                                                    out.residual)))
    return out


def _unit_texts(files: list[Artifact]) -> dict[str, list[str]]:
    """Each unit's Nix text (`<stem> = { … };` after its comment line) by file kind, in file name order."""
    units: dict[str, list[str]] = {"netdev": [], "network": []}
    writer = _Units()
    for artifact in sorted(files, key=_by_name):
        stem, _, ext = artifact.name.rpartition(".")
        units[ext].append(writer.unit(ext, stem, artifact.content))
    return units


_by_name = operator.attrgetter("name")


def module_text(site: Site, host: Host, units: dict[str, list[str]], residual: list[Gap]) -> str:
    """The module: UNITS, each unit's `<stem> = { … };` (after its comment line) by file kind."""
    lines = ["# Generated by vnetc; do not edit.",
             "# NixOS module: import it from configuration.nix (imports = [ ./vnetc.nix ];).",
             "{ ... }:", "{", "  systemd.network = {", "    enable = true;"]
    for option, ext in (("netdevs", "netdev"), ("networks", "network")):
        if not units[ext]:
            lines.append(f"    {option} = {{ }};")
            continue
        lines.append(f"    {option} = {{")
        lines += units[ext]
        lines.append("    };")
    lines.append("  };")
    if residual:
        files = residual_artifacts(TARGET, site, host, residual)
        data = next(a for a in files if a.name.endswith(".json"))
        path = f"/{RESIDUAL_DIR}/{data.name}"
        etc = path.removeprefix("/etc/")
        service = {
            "description": "vnetc: the part of the network configuration systemd-networkd.service cannot do",
            "wants": ["systemd-networkd.service"],
            "after": ["systemd-networkd.service"],
            "wantedBy": ["multi-user.target"],
            "unitConfig": {"ConditionPathExists": path},
            "serviceConfig": {"Type": "oneshot", "RemainAfterExit": True,
                              "ExecStart": f"vnetc apply --residual {path} --yes"},
        }
        lines.append(f"  systemd.services.{nix_name(SERVICE)} = {nix_value(service, 1)};")
        etc_attrs: dict[str, Any] = {"text": data.content}
        if data.mode != 0o644:
            etc_attrs["mode"] = f"0{data.mode:o}"
        lines.append(f"  environment.etc.{nix_string(etc)} = {nix_value(etc_attrs, 1)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


TARGET = Target("nixos", "NixOS module (systemd.network options)", render, "systemd-networkd.service",
                residual_files=False)
