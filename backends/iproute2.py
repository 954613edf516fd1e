"""iproute2: one POSIX shell script per host (`etc/vnetc/iproute2.sh`) of `ip`, `tc`,
`bridge`, `teamd`, `ethtool` and sysfs commands — the seed document's own idiom.

The script runs with `sh` (dash), under `set -eu`, in phases; within each phase
the devices come in the IR's dependency order (a lower link before what is
stacked on it, a master before its ports, a veth before its peer):

1. check: the NICs it configures exist (with their MAC and driver, when the site
   finds them so), no device it creates exists yet, key files and tools are
   there — it stops here, having changed nothing, on a second run;
2. namespaces (each created unless it exists; its loopback brought up);
3. devices, each with what is set at creation (`ip link add … type KIND …`,
   `ip tuntap add`, `teamd -d`, netdevsim's sysfs `new_device`), then MTU/MAC
   where creation cannot take them, MACsec SAs, netdevsim VFs and offloads;
4. ports (`ip link set … master`, `teamdctl … port add`), bridge port settings and VLANs;
5. IFB root qdiscs and the ingress redirect chain (`tc`);
6. addresses; 7. up/down; 8. routes (the kernel takes none on a device that is down);
9. what it does not do, as comments: DHCP clients, DNS servers, and the routes of a
   device that stays down. Each is also reported by the build ("not done by
   iproute2: …"; `--strict` makes it an error, exit 3).

One quoting function (`shlex.quote`) writes every word. MACsec keys given with
`key-file` are read at run time (`"$(cat FILE)"`); an inline key makes the
script mode 0700 and the build says so. MACsec MKA is an error, as for every target.

The tables below are the whole mapping: a kind's rendering is its row in
LINK_TYPES (or CREATORS for kinds `ip link add` does not make), plus the shared
phase code.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any, Callable

from vnetc.compiler.ir import Device, DeviceRef, Host, Site, port_vlans, vlan_runs
from vnetc.compiler.schema import KINDS, Qdisc, Route

from . import Artifact, Gap, Rendering, Target, nobody_can
from .ini import comment
from .teamd import team_config

INSTALL_DIR = "etc/vnetc"
FILE_NAME = "iproute2.sh"

# --------------------------------------------------------------------------
# words and lines

#: POSIX shell reserved words: shlex.quote leaves them bare, and a bare one is valid as an argument
#: (`ip link add fi …`), but it reads like syntax, and ShellCheck takes it for some (SC1010)
_RESERVED = frozenset({"case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then", "until",
                       "while"})


def q(word: str) -> str:
    """The one quoting function: every word of every command goes through it (shlex.quote, and a
    reserved word quoted too)."""
    return f"'{word}'" if word in _RESERVED else shlex.quote(word)


class Raw(str):
    """Shell text written as is (already quoted): a `"$(cat FILE)"` key."""


def cmd(*words: Any) -> str:
    return " ".join(w if isinstance(w, Raw) else q(str(w)) for w in words)


def _ns(flag_ns: str | None) -> tuple[str, ...]:
    return ("-n", flag_ns) if flag_ns is not None else ()


def ip(ns: str | None, *words: Any) -> str:
    return cmd("ip", *_ns(ns), *words)


def tc(ns: str | None, *words: Any) -> str:
    return cmd("tc", *_ns(ns), *words)


def bridge(ns: str | None, *words: Any) -> str:
    return cmd("bridge", *_ns(ns), *words)


def run_in(ns: str | None, *words: Any) -> str:
    """A program that has no -n option, run in namespace NS."""
    return cmd(*(("ip", "netns", "exec", ns) if ns is not None else ()), *words)


def shell_in(ns: str | None, snippet: str) -> str:
    """Shell text (redirections, loops) run in namespace NS."""
    return snippet if ns is None else cmd("ip", "netns", "exec", ns, "sh", "-c", snippet)


# --------------------------------------------------------------------------
# value formats: property value -> the words ip/tc/bridge take

Args = Callable[[Any], list[str]]


def arg(keyword: str, fmt: Callable[[Any], str] = str) -> Args:
    return lambda value: [keyword, fmt(value)]


def on_off(keyword: str) -> Args:
    return lambda value: [keyword, "on" if value else "off"]


def one_zero(keyword: str) -> Args:
    return lambda value: [keyword, "1" if value else "0"]


def flag(on: str, off: str | None = None) -> Args:
    return lambda value: [on] if value else ([off] if off else [])


def centiseconds(us: int) -> str:
    """Bridge times: the kernel takes clock_t (1/100 s)."""
    return str(round(us / 10_000))


def milliseconds(us: int) -> str:
    return str(round(us / 1000))


def name_of(ref: DeviceRef) -> str:
    return ref.name


#: kind -> (`ip link add … type TYPE`, [(property, its words after TYPE)]). Every property of the
#: kind's schema row that `ip link add` takes is here; the others are named in the comment.
LINK_TYPES: dict[str, tuple[str, list[tuple[str, Args]]]] = {
    # ports: the ports phase; vlan-filtering off is a new bridge's default, and saying it fails on
    # kernels without bridge VLAN filtering (their stub refuses even 0)
    "bridge": ("bridge", [
        ("stp", one_zero("stp_state")), ("vlan-filtering", lambda on: ["vlan_filtering", "1"] if on else []),
        ("default-pvid", arg("vlan_default_pvid")), ("multicast-snooping", one_zero("mcast_snooping")),
        ("forward-delay", arg("forward_delay", centiseconds)), ("hello-time", arg("hello_time", centiseconds)),
        ("max-age", arg("max_age", centiseconds)), ("ageing-time", arg("ageing_time", centiseconds)),
        ("priority", arg("priority"))]),
    # ports, primary: the ports phase (the primary is named once it is a port)
    "bond": ("bond", [
        ("mode", arg("mode")), ("miimon", arg("miimon", milliseconds)), ("updelay", arg("updelay", milliseconds)),
        ("downdelay", arg("downdelay", milliseconds)), ("lacp-rate", arg("lacp_rate")),
        ("xmit-hash-policy", arg("xmit_hash_policy")), ("arp-interval", arg("arp_interval", milliseconds)),
        ("arp-ip-target", lambda ips: ["arp_ip_target", ",".join(str(i) for i in ips)]),
        ("min-links", arg("min_links"))]),
    "vlan": ("vlan", [("id", arg("id")), ("protocol", arg("protocol", lambda p: p.replace("q", "Q")))]),
    "vxlan": ("vxlan", [
        ("vni", arg("id")), ("remote", arg("remote")), ("group", arg("group")), ("local", arg("local")),
        ("dev", arg("dev", name_of)), ("port", arg("dstport")), ("ttl", arg("ttl")),
        ("learning", flag("learning", "nolearning"))]),
    "macvlan": ("macvlan", [("mode", arg("mode")), ("source-macs", lambda macs: ["macaddr", "set", *macs])]),
    "macvtap": ("macvtap", [("mode", arg("mode")), ("source-macs", lambda macs: ["macaddr", "set", *macs])]),
    "ipvlan": ("ipvlan", [("mode", arg("mode")), ("flags", lambda f: [f])]),
    "ipvtap": ("ipvtap", [("mode", arg("mode")), ("flags", lambda f: [f])]),
    # tx-sa, rx-channel: `ip macsec add` after creation; the first tx-sa encodes
    "macsec": ("macsec", [
        ("port", arg("port")), ("encrypt", on_off("encrypt")), ("send-sci", on_off("send_sci")),
        ("tx-sa", lambda sas: ["encodingsa", str(sas[0].an)])]),
    "veth": ("veth", []),     # peer: `peer name NAME [its link options]`
    "vxcan": ("vxcan", []),   # peer: as veth
    "ipoib": ("ipoib", [("pkey", arg("pkey", lambda v: f"0x{v:04x}")), ("mode", arg("mode")),
                        ("umcast", one_zero("umcast"))]),
    "vcan": ("vcan", []),
    "nlmon": ("nlmon", []),
    "dummy": ("dummy", []),
    "ifb": ("ifb", []),        # qdisc, redirect-ingress: the tc phase
}

#: `ip tuntap add dev NAME mode tap|tun …`
TUNTAP_ARGS: list[tuple[str, Args]] = [
    ("owner", arg("user")), ("group", arg("group")), ("multi-queue", flag("multi_queue")),
    ("vnet-hdr", flag("vnet_hdr")), ("packet-info", flag("pi"))]

#: kinds whose MTU is set right after creation, not in `ip link add`: a bridge keeps an MTU set so
#: (the kernel marks it the user's) when smaller ports join, and one given at creation it lowers
MTU_AFTER_CREATE = {"bridge"}

#: tools beyond iproute2 a kind needs: kind -> [(program, Debian package)]
TOOLS = {"team": [("teamd", "libteam-utils"), ("teamdctl", "libteam-utils")]}

#: qdisc parameter value type -> tc's words (tc times: s/ms/us only; rates: bit/s; sizes: bytes)
QDISC_TIME = {"perturb": "s", "target": "us", "interval": "us", "latency": "us"}
RATE_PARAMS = {"rate", "peakrate", "maxrate"}
SIZE_PARAMS = {"burst", "quantum", "mtu", "mpu"}
SIZE_LIMIT_QDISCS = {"tbf", "bfifo"}     # their `limit` is bytes; elsewhere packets


def tc_time(us: int, bare: str) -> str:
    if bare == "s":                     # sfq perturb: whole seconds
        return str(max(1, round(us / 1_000_000)))
    for unit, scale in (("s", 1_000_000), ("ms", 1000)):
        if us and us % scale == 0:
            return f"{us // scale}{unit}"
    return f"{us}us"


def tc_rate(bits: int) -> str:
    for unit, scale in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 1000)):
        if bits % scale == 0:
            return f"{bits // scale}{unit}"
    return f"{bits}bit"


def tc_size(size: int) -> str:
    for unit, scale in (("m", 1024**2), ("k", 1024)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def qdisc_words(qdisc: Qdisc) -> list[str]:
    words = [qdisc.kind]
    for name, value in qdisc.params:
        if value is True:               # a bare flag (ecn)
            words.append(name)
        elif name in QDISC_TIME:
            words += [name, tc_time(value, QDISC_TIME[name])]
        elif name in RATE_PARAMS:
            words += [name, tc_rate(value)]
        elif name in SIZE_PARAMS or (name == "limit" and qdisc.kind in SIZE_LIMIT_QDISCS):
            words += [name, tc_size(value)]
        else:
            words += [name, str(value)]
    return words


# --------------------------------------------------------------------------
# the script

#: phase -> its heading; the script is the phases in this order
PHASES = {
    "check": "Checks: the NICs it configures are there, no device it creates is (a second run stops\n"
             "# here), and what it reads at run time. Nothing has changed before this point.",
    "namespaces": "Network namespaces, each created unless it exists.",
    "create": "Devices, in dependency order, with what is set at creation.",
    "ports": "Ports (bond and team ports must be down to join); bridge port settings and VLANs.",
    "tc": "IFB: the root qdisc, and the ingress of each redirected device sent into it.",
    "addresses": "Addresses.",
    "state": "Up and down.",
    "routes": "Routes and gateways, once the devices are up (the kernel takes no route on a device that is down).",
    "undone": "Not done by this script: configure these by other means.",
}

#: shell helpers, written into a script only when it uses them (name -> definition)
HELPERS = {
    "check_new": '''\
# check_new DEVICE [NETNS]: stop if DEVICE exists: this script creates it
check_new() {
    if ip ${2:+-n "$2"} link show dev "$1" >/dev/null 2>&1; then
        fail "$1 exists already${2:+ in namespace $2}: this script creates it; it runs once, on a host without the site's devices"
    fi
}''',
    "check_nic": '''\
# check_nic DEVICE [NETNS]: stop unless DEVICE exists: this script configures it but never creates it
check_nic() {
    ip ${2:+-n "$2"} link show dev "$1" >/dev/null 2>&1 || fail "$1 is missing${2:+ in namespace $2}: this script configures it but never creates it"
}''',
    "check_mac": '''\
# check_mac DEVICE MAC [NETNS]: stop unless DEVICE has MAC (the site finds the NIC by its MAC)
check_mac() {
    ip ${3:+-n "$3"} link show dev "$1" | grep -qiF "link/ether $2 " || fail "$1 does not have MAC $2: the site finds this NIC by its MAC"
}''',
    "check_driver": '''\
# check_driver DEVICE DRIVER [NETNS]: stop unless DRIVER drives DEVICE (the site finds the NIC by its driver)
check_driver() {
    case "$(${3:+ip netns exec "$3"} readlink "/sys/class/net/$1/device/driver")" in
        */"$2") ;;
        *) fail "$1 is not driven by $2: the site finds this NIC by its driver" ;;
    esac
}''',
}


#: after the checks: an error says that the script stopped half-way
ON_ERROR = [
    "stopped() {",
    "    status=$?",
    "    if [ \"$status\" -ne 0 ]; then",
    "        printf 'vnetc: stopped by an error (exit %s); what the script made so far is left in place\\n' \"$status\" >&2",
    "    fi",
    "}",
    "trap stopped EXIT",
]


class _Host:
    """Renders one host; the index of its devices is built once."""

    def __init__(self, site: Site, host: Host):
        self.site = site
        self.host = host
        self.by_ref = {d.ref: d for d in host.devices}
        self.out = Rendering()
        self.lines: dict[str, list[str]] = {phase: [] for phase in PHASES}
        self.helpers: set[str] = set()
        self.tools: dict[str, tuple[str, list[str]]] = {}   # program -> (package, devices needing it)
        self.secret = False
        self.port_settings: dict[DeviceRef, Any] = {}     # bridge port -> its `port NAME { … }` record
        self.vlan_uppers: dict[DeviceRef, list[Device]] = {}
        for device in host.devices:
            for record in device.get("port") if device.kind == "bridge" else ():
                self.port_settings[record.name] = record
            if device.kind == "vlan":
                self.vlan_uppers.setdefault(device.get("link"), []).append(device)

    def add(self, phase: str, *lines: str) -> None:
        self.lines[phase].extend(lines)

    def helper(self, name: str, *args: Any) -> str:
        self.helpers.add(name)
        return cmd(name, *args)

    def _residual(self, device: Device, what: str, reason: str, span_key: str) -> None:
        self.out.residual.append(Gap(device, what, reason, device.spans.get(span_key, device.span)))

    # --- the phases, device by device ------------------------------------------

    def render(self) -> Rendering:
        rendered = []
        for device in self.host.devices:
            error = nobody_can(device, "the iproute2 script")
            if error is not None:
                self.out.errors.append(error)
                continue
            rendered.append(device)
        for device in rendered:
            self._check(device)
            self._create(device)
        for device in rendered:
            self._ports(device)
        for device in rendered:
            self._tc(device)
        for device in rendered:
            ns = device.netns
            self.add("addresses", *(ip(ns, "address", "replace", a, "dev", device.name) for a in device.address))
            self.add("state", ip(ns, "link", "set", "dev", device.name, "down" if device.state == "down" else "up"))
            self._routes(device)
            self._undone(device)
        for program, (package, devices) in sorted(self.tools.items()):
            self.add("check", f"command -v {q(program)} >/dev/null || "
                              f"fail {q(f'{program} is not installed (package {package}); {devices[0]} needs it')}")
        for name in self.host.declared_netns:
            self.add("namespaces", f"{ip(name, 'link', 'show', 'dev', 'lo')} >/dev/null 2>&1 || "
                                   f"{cmd('ip', 'netns', 'add', name)}", ip(name, "link", "set", "dev", "lo", "up"))
        if self.secret:
            self.out.residual.extend(
                Gap(d, "key", "an inline MACsec key is written into the script: it is mode 0700 (root only)",
                    d.span) for d in rendered if d.kind == "macsec" and any(sa.key for sa in _sas(d)))
        mode = 0o700 if self.secret else 0o755
        self.out.files.append(Artifact(FILE_NAME, INSTALL_DIR, self._text(), mode=mode))
        return self.out

    def _check(self, device: Device) -> None:
        ns, name = device.netns, device.name
        if device.creates or device.created_by is not None:
            self.add("check", self.helper("check_new", name, *_opt(ns)))
        else:
            self.add("check", self.helper("check_nic", name, *_opt(ns)))
            if device.get("match-mac"):
                self.add("check", self.helper("check_mac", name, device.get("match-mac"), *_opt(ns)))
            if device.get("match-driver"):
                self.add("check", self.helper("check_driver", name, device.get("match-driver"), *_opt(ns)))
        for program, package in TOOLS.get(device.kind, ()):
            self.tools.setdefault(program, (package, []))[1].append(name)
        if device.kind == "macsec":
            for sa in _sas(device):
                if sa.key_file is not None:
                    self.add("check", f"[ -r {q(sa.key_file)} ] || "
                                      f"fail {q(f'cannot read the MACsec key file {sa.key_file} of {name}')}")
        if device.get("xdp-offload"):
            path = device.get("xdp-offload")
            self.add("check", f"[ -r {q(path)} ] || fail {q(f'cannot read the XDP object {path} of {name}')}")

    def _create(self, device: Device) -> None:
        if device.created_by is not None:
            return   # created with its veth/vxcan
        where = os.path.basename(device.span.source.path) + f":{device.span.line}" if device.span else "?"
        about = f"# {device.kind} {device.name}" + (f" in namespace {device.netns}" if device.netns else "")
        about += f" ({_one_line(where)})" + (f": {_one_line(device.description)}" if device.description else "")
        self.add("create", about)
        ns = device.netns
        if device.kind in LINK_TYPES:
            self.add("create", self._link_add(device))
            after = [("mtu", device.mtu)] if device.kind in MTU_AFTER_CREATE and device.mtu else []
        else:
            if device.creates:
                CREATORS[device.kind](self, device)
            after = [("mtu", device.mtu), ("address", device.mac)]
        words = [w for key, value in after if value is not None for w in (key, value)]
        if words:
            self.add("create", ip(ns, "link", "set", "dev", device.name, *words))
        if device.kind == "macsec":
            self._macsec_sas(device)
        if device.kind == "netdevsim":
            self._netdevsim_extras(device)

    def _link_add(self, device: Device) -> str:
        kind, props = LINK_TYPES[device.kind]
        lower = device.lower
        # made where its lower link is (and moved to its own namespace at creation), or in its own namespace
        where = lower.netns if lower is not None else device.netns
        if device.kind in ("veth", "vxcan"):
            where = None   # as the seed: made in the host's namespace, each end sent to its own
        words: list[Any] = ["link", "add"]
        if KINDS[device.kind].lower == "link":
            words += ["link", lower.name]
        words += ["name", device.name, *_link_options(device, where), "type", kind]
        for prop, render in props:
            value = device.get(prop)
            if value not in (None, ()):
                words += render(value)
        peer = self.by_ref.get(device.get("peer")) if device.kind in ("veth", "vxcan") else None
        if peer is not None:
            words += ["peer", "name", peer.name, *_link_options(peer, where)]
        return ip(where, *words)

    def _macsec_sas(self, device: Device) -> None:
        ns, name = device.netns, device.name
        for sa in device.get("tx-sa"):
            self.add("create", ip(ns, "macsec", "add", name, "tx", "sa", sa.an, "pn", sa.pn or 1, "on",
                                  "key", sa.key_id, self._key(sa)))
        for channel in device.get("rx-channel"):
            sci = ["port", channel.port, "address", channel.mac]
            self.add("create", ip(ns, "macsec", "add", name, "rx", *sci, "on"))
            for sa in channel.sa:
                self.add("create", ip(ns, "macsec", "add", name, "rx", *sci, "sa", sa.an, "pn", sa.pn or 1, "on",
                                      "key", sa.key_id, self._key(sa)))

    def _key(self, sa: Any) -> Any:
        if sa.key_file is not None:
            return Raw(f'"$(cat {q(sa.key_file)})"')
        self.secret = True
        return sa.key

    def _netdevsim_extras(self, device: Device) -> None:
        ns, name = device.netns, device.name
        if device.get("vfs") is not None:
            self.add("create", shell_in(ns, f"echo {device.get('vfs')} > {q(f'/sys/class/net/{name}/device/sriov_numvfs')}"))
        for vf in device.get("vf"):
            words = [w for key, value in (("mac", vf.mac), ("vlan", vf.vlan)) if value is not None for w in (key, value)]
            words += [w for key in ("spoofchk", "trust") if vf.get(key) is not None
                      for w in on_off(key)(vf.get(key))]
            if words:
                self.add("create", ip(ns, "link", "set", "dev", name, "vf", vf.index, *words))
        if device.get("hw-tc-offload") is not None:
            self.tools.setdefault("ethtool", ("ethtool", []))[1].append(name)
            self.add("create", run_in(ns, "ethtool", "-K", name, *on_off("hw-tc-offload")(device.get("hw-tc-offload"))))
        if device.get("xdp-offload"):
            self.add("create", ip(ns, "link", "set", "dev", name, "xdpoffload", "obj", device.get("xdp-offload")))

    def _ports(self, device: Device) -> None:
        ns, name = device.netns, device.name
        if device.kind == "bridge" and device.get("vlan-filtering"):
            # a VLAN-filtering bridge passes its own VLAN uppers' traffic only as a member of their VLANs
            for upper in self.vlan_uppers.get(device.ref, ()):
                self.add("ports", bridge(ns, "vlan", "add", "dev", name, "vid", upper.get("id"), "self"))
        if device.master is None:
            return
        master = self.by_ref[device.master]
        if master.kind in ("bond", "team"):
            self.add("ports", ip(ns, "link", "set", "dev", name, "down"))
        if master.kind == "team":
            self.add("ports", run_in(ns, "teamdctl", master.name, "port", "add", name))
            return
        self.add("ports", ip(ns, "link", "set", "dev", name, "master", master.name))
        if master.kind == "bond" and master.get("primary") == device.ref:
            self.add("ports", ip(ns, "link", "set", "dev", master.name, "type", "bond", "primary", name))
        settings = self.port_settings.get(device.ref)
        if master.kind == "bridge" and settings is not None:
            words = [w for key in ("cost", "priority") if settings.get(key) is not None
                     for w in (key, settings.get(key))]
            words += [w for key in ("hairpin", "isolated") if settings.get(key) is not None
                      for w in on_off(key)(settings.get(key))]
            if words:
                self.add("ports", bridge(ns, "link", "set", "dev", name, *words))
            if master.get("vlan-filtering"):
                self._port_vlans(device, master, settings)

    def _port_vlans(self, port: Device, master: Device, settings: Any) -> None:
        """The port's VLANs exactly: the default PVID the kernel gave it goes unless listed, and each
        `bridge vlan add` carries a VLAN's full flags (re-adding one resets the flags it omits)."""
        members = port_vlans(settings)
        if not members:
            return
        ns, name = port.netns, port.name
        default = master.get("default-pvid") or 1
        if default not in members:
            self.add("ports", bridge(ns, "vlan", "del", "dev", name, "vid", default))
        for low, high, flags in vlan_runs(members):
            vid = str(low) if low == high else f"{low}-{high}"
            self.add("ports", bridge(ns, "vlan", "add", "dev", name, "vid", vid, *flags))

    def _tc(self, device: Device) -> None:
        if device.kind != "ifb":
            return
        ns, name = device.netns, device.name
        if device.get("qdisc") is not None:
            self.add("tc", tc(ns, "qdisc", "add", "dev", name, "root", *qdisc_words(device.get("qdisc"))))
        for source in device.get("redirect-ingress"):
            self.add("tc", tc(ns, "qdisc", "add", "dev", source.name, "handle", "ffff:", "ingress"))
            self.add("tc", tc(ns, "filter", "add", "dev", source.name, "parent", "ffff:", "u32", "match", "u32", "0",
                              "0", "action", "mirred", "egress", "redirect", "dev", name))

    def _routes(self, device: Device) -> None:
        ns, name = device.netns, device.name
        lines = [ip(ns, f"-{gateway.version}", "route", "replace", "default", "via", gateway, "dev", name)
                 for gateway in device.gateway]
        for route in device.route:
            for version, prefix in _route_prefixes(route):
                words = ["route", "replace", prefix]
                words += ["via", route.via] if route.via is not None else []
                words += ["dev", name]
                words += ["metric", route.metric] if route.metric is not None else []
                words += ["table", route.table] if route.table is not None else []
                lines.append(ip(ns, f"-{version}", *words))
        if device.state != "down":
            self.add("routes", *lines)
        elif lines:
            self.add("undone", f"# {_where(device)}: stays down, and the kernel takes no route on a device that is "
                               f"down; once it is up:", *(f"#   {line}" for line in lines))
            self._residual(device, "route", "the kernel takes no route on a device that is down, and this one "
                                            "stays down; the iproute2 script lists its routes in a comment",
                           "route" if device.route else "gateway")

    def _undone(self, device: Device) -> None:
        where = _where(device)
        if device.dhcp != "off":
            family = {"v4": "IPv4", "v6": "IPv6", "both": "IPv4 and IPv6"}[device.dhcp]
            self.add("undone", f"# {where}: DHCP ({family}): start a DHCP client on it")
            self._residual(device, "dhcp", f"the iproute2 script runs no DHCP client ({family}); "
                                           f"it leaves a comment", "dhcp")
        if device.dns:
            servers = " ".join(str(d) for d in device.dns)
            self.add("undone", f"# {where}: DNS servers {servers}: give them to the resolver")
            self._residual(device, "dns", f"the iproute2 script sets no DNS servers ({servers}); "
                                          f"it leaves a comment", "dns")

    # --- the text ---------------------------------------------------------------

    def _text(self) -> str:
        source = ", ".join(os.path.basename(f) for f in self.site.files[:1]) or "?"
        for_host = f" for host {self.host.name}" if self.host.name is not None else ""
        out = [
            "#!/bin/sh",
            comment(f"Generated by vnetc from {source}{for_host}; do not edit.")[:-1],  # (a name may hold "\n")
            "#",
            "# Builds this host's virtual network devices with ip, tc, bridge, teamd and sysfs. Run it",
            "# once, as root, with sh, on a host without them (e.g. at boot): it first checks that every",
            "# NIC it configures is there and that no device it creates is, and changes nothing if not.",
            "# After that it stops at the first error (set -e), saying so, and leaves what it made in place.",
            "",
            "set -eu",
            "",
            "fail() {",
            "    printf 'vnetc: %s\\n' \"$*\" >&2",
            "    exit 1",
            "}",
        ]
        out += ["", *(HELPERS[name] for name in HELPERS if name in self.helpers)] if self.helpers else []
        for phase, heading in PHASES.items():
            if not self.lines[phase]:
                continue
            out += ["", f"# --- {heading}", *self.lines[phase]]
            if phase == "check":
                out += ["", *ON_ERROR]
        return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# kinds `ip link add` does not create


def _tuntap(h: _Host, device: Device) -> None:
    words = [w for prop, render in TUNTAP_ARGS if device.get(prop) is not None for w in render(device.get(prop))]
    h.add("create", ip(device.netns, "tuntap", "add", "dev", device.name, "mode", device.kind, *words))


def _team(h: _Host, device: Device) -> None:
    text = json.dumps(team_config(device), ensure_ascii=False)
    h.add("create", run_in(device.netns, "teamd", "-d", "-U", "-t", device.name, "-c", text))


def _netdevsim(h: _Host, device: Device) -> None:
    bus = "/sys/bus/netdevsim"
    first = f"id={device.get('id')}" if device.get("id") is not None else \
        f'id=0\nwhile [ -e "{bus}/devices/netdevsim$id" ]; do id=$((id + 1)); done'
    snippet = "\n".join([
        first,
        f'echo "$id {device.get("ports")}" > {bus}/new_device',
        "if command -v udevadm >/dev/null; then udevadm settle; fi",
        f'for port in "{bus}/devices/netdevsim$id"/net/*; do',
        f'    if [ "$(cat "$port/phys_port_name")" = p0 ]; then ip link set dev "${{port##*/}}" name {q(device.name)}; fi',
        "done",
    ])
    h.add("create", "# its first port (p0) takes the name; the others keep the kernel's",
          shell_in(device.netns, snippet))


#: kind -> how the script creates a device `ip link add` does not make
CREATORS: dict[str, Callable[[_Host, Device], None]] = {
    "tap": _tuntap, "tun": _tuntap, "team": _team, "netdevsim": _netdevsim,
}

assert set(LINK_TYPES) | set(CREATORS) | {"interface", "failover"} == set(KINDS), "a kind without a rendering"


# --------------------------------------------------------------------------


def _opt(ns: str | None) -> tuple[str, ...]:
    return (ns,) if ns is not None else ()


def _link_options(device: Device, where: str | None) -> list[Any]:
    """`ip link add` options of DEVICE made in namespace WHERE: MTU (but see MTU_AFTER_CREATE), MAC, netns."""
    words: list[Any] = []
    if device.mtu is not None and device.kind not in MTU_AFTER_CREATE:
        words += ["mtu", device.mtu]
    if device.mac is not None:
        words += ["address", device.mac]
    if device.netns != where:
        words += ["netns", device.netns]
    return words


def _where(device: Device) -> str:
    return device.name + (f" (namespace {device.netns})" if device.netns else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _sas(device: Device) -> list:
    return list(device.get("tx-sa")) + [sa for channel in device.get("rx-channel") for sa in channel.sa]


def _route_prefixes(route: Route) -> list[tuple[int, str]]:
    if route.prefix != "default":
        return [(route.prefix.version, str(route.prefix))]
    if route.via is not None:
        return [(route.via.version, "default")]
    return [(4, "default"), (6, "default")]


def render(site: Site, host: Host) -> Rendering:
    return _Host(site, host).render()


# The script is the whole of this target: nothing goes to `vnetc apply` (no residual file or unit);
# what it cannot do (DHCP, DNS) is reported by the build as not done (an error under --strict).
TARGET = Target("iproute2", "POSIX shell script of ip/tc/bridge/teamd commands", render, service="",
                residual_files=False, hands_over=False)
