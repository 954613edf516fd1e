"""netplan: one YAML document per host (`etc/netplan/90-vnetc.yaml`, mode 0600).

Targets netplan 0.106 (Debian 12's netplan.io), `network: {version: 2,
renderer: networkd}`. netplan's own device types carry what it can express:
`ethernets` (an `interface`, with `match` + `set-name` when it is matched by
MAC or driver, and a `failover` master, which virtio_net creates and netplan
only configures by name), `bridges`, `bonds`, `vlans` and `tunnels` with
`mode: vxlan`; on each: addresses, routes (a `gateway` is a default route),
nameservers, dhcp4/dhcp6, mtu, macaddress, `activation-mode: off` for a device
that is down, and `link-local: []` where the networkd target turns link-local
addressing off.

Every key this module writes was checked against the real netplan 0.106
(`netplan generate --root-dir`, tests/backends/test_netplan.py). What 0.106
cannot express goes to the residual (performed by `vnetc apply` after
systemd-networkd), as in the networkd target: the kinds netplan has no device
type for (veth and dummy only arrive in 0.107), devices in other namespaces,
devices stacked on or created with one of those, a team's ports, a VLAN's
802.1ad protocol, a bridge's VLAN filtering, default PVID and multicast
snooping, and the per-port VLAN, hairpin and isolation settings. MACsec MKA is
an error, as for networkd.

The YAML is written here, deterministically, in a small safe subset: block
mappings, JSON-quoted strings (JSON strings are YAML), bare integers and
booleans, flow lists of scalars, block lists of mappings.

`render(..., renderer="NetworkManager")` (`vnetc build -t netplan
--netplan-renderer NetworkManager`) writes the same document for
NetworkManager; the residual then runs after NetworkManager.service. There, 0.106 refuses
`activation-mode: off` (a device that is down goes to the residual) and warns
on every vxlan tunnel that NetworkManager lacks options we never set.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from vnetc.compiler.ir import Device, DeviceRef, Host, Site
from vnetc.compiler.schema import KINDS, Route
from vnetc.compiler.values import format_duration

from . import Artifact, Gap, Rendering, Target, nobody_can

INSTALL_DIR = "etc/netplan"
FILE_NAME = "90-vnetc.yaml"
NETPLAN_VERSION = "0.106"
RENDERERS = ("networkd", "NetworkManager")

#: vnetc kind -> netplan device type (the section of `network:` it goes to)
SECTIONS = {"interface": "ethernets", "failover": "ethernets", "bond": "bonds", "bridge": "bridges",
            "vlan": "vlans", "vxlan": "tunnels"}
SECTION_ORDER = ("ethernets", "bonds", "bridges", "vlans", "tunnels")

_APPLY = "vnetc apply creates it"

#: kind -> why netplan 0.106 cannot create it (the executor does)
RESIDUAL_KINDS = {
    "veth": f"netplan has virtual-ethernets only since 0.107; {_APPLY}",
    "dummy": f"netplan has dummy-devices only since 0.107; {_APPLY}",
    **{kind: f"netplan has no {kind} devices; {_APPLY}" for kind in (
        "macvlan", "macvtap", "ipvlan", "ipvtap", "macsec", "team", "vcan", "vxcan", "nlmon", "ifb",
        "netdevsim", "tap", "tun", "ipoib")},
}


def _bond_ms(us: int) -> Any:
    """netplan reads a bare bond interval as milliseconds; anything else goes to networkd as written."""
    return us // 1000 if us % 1000 == 0 else format_duration(us)


def _bridge_s(us: int) -> Any:
    """netplan passes a bridge time to networkd as written; a bare number is seconds."""
    return us // 1_000_000 if us % 1_000_000 == 0 else format_duration(us)


def _same(value: Any) -> Any:
    return value


def _text(value: Any) -> str:
    return str(value)


def _names(values: tuple) -> list[str]:
    return [str(v) for v in values]


#: kind -> [(property, netplan `parameters` key, format)]
PARAMETERS: dict[str, list[tuple[str, str, Callable[[Any], Any]]]] = {
    "bridge": [("stp", "stp", _same), ("forward-delay", "forward-delay", _bridge_s),
               ("hello-time", "hello-time", _bridge_s), ("max-age", "max-age", _bridge_s),
               ("ageing-time", "ageing-time", _bridge_s), ("priority", "priority", _same)],
    "bond": [("mode", "mode", _text), ("miimon", "mii-monitor-interval", _bond_ms),
             ("updelay", "up-delay", _bond_ms), ("downdelay", "down-delay", _bond_ms),
             ("lacp-rate", "lacp-rate", _text), ("xmit-hash-policy", "transmit-hash-policy", _text),
             ("arp-interval", "arp-interval", _bond_ms), ("arp-ip-target", "arp-ip-targets", _names),
             ("min-links", "min-links", _same)],
}

#: kind -> [(property, key on the device itself, format)]
DEVICE_KEYS: dict[str, list[tuple[str, str, Callable[[Any], Any]]]] = {
    "vlan": [("id", "id", _same)],
    "vxlan": [("vni", "id", _same), ("local", "local", _text), ("remote", "remote", _text),
              ("group", "remote", _text), ("port", "port", _same), ("ttl", "ttl", _same),
              ("learning", "mac-learning", _same)],
}

#: kind -> the property naming the device's lower link (netplan's `link`)

#: (kind, property) netplan 0.106 has no key for -> why (vnetc apply sets it afterwards)
UNSUPPORTED_PROPS = {
    ("bridge", "vlan-filtering"): "netplan 0.106 has no bridge VLAN filtering; vnetc apply sets it",
    ("bridge", "default-pvid"): "netplan 0.106 has no bridge default PVID; vnetc apply sets it",
    ("bridge", "multicast-snooping"): "netplan 0.106 has no multicast snooping setting; vnetc apply sets it",
}

#: port settings netplan 0.106 has (bridge `parameters`: port name -> value)
PORT_KEYS = (("cost", "path-cost"), ("priority", "port-priority"))
PORT_UNSUPPORTED = ("pvid", "vlans", "untagged", "hairpin", "isolated")


class _Host:
    def __init__(self, site: Site, host: Host, renderer: str):
        self.site = site
        self.host = host
        self.renderer = renderer
        self.by_ref = {d.ref: d for d in host.devices}
        self.ports_of: dict[DeviceRef, list[Device]] = {}   # master -> its ports, in dependency order
        for d in host.devices:
            if d.master is not None:
                self.ports_of.setdefault(d.master, []).append(d)
        self.out = Rendering()
        self.native: set[DeviceRef] = set()    # the devices netplan creates or configures

    def _gap(self, device: Device, what: str, reason: str, span_key: str | None = None) -> None:
        span = device.spans.get(span_key) if span_key else device.span
        self.out.residual.append(Gap(device, what, reason, span or device.span))

    def render(self) -> Rendering:
        sections: dict[str, dict[str, Any]] = {}
        for device in self.host.devices:      # dependency order: lower links and masters come first
            if self._native(device):
                self.native.add(device.ref)
        for device in self.host.devices:
            if device.ref in self.native:
                master = self.by_ref.get(device.master) if device.master is not None else None
                sections.setdefault(SECTIONS[device.kind], {})[device.name] = self._entry(device, master)
        network: dict[str, Any] = {"version": 2, "renderer": self.renderer}
        for name in SECTION_ORDER:
            if name in sections:
                network[name] = sections[name]
        header = "Generated by vnetc; do not edit."
        if self.host.name is not None:
            header = f"Generated by vnetc for host {self.host.name}; do not edit."
        text = f"# {header}\n" + dump({"network": network})
        self.out.files.append(Artifact(FILE_NAME, INSTALL_DIR, text, mode=0o600))
        return self.out

    # --- what netplan can have -----------------------------------------------

    def _native(self, device: Device) -> bool:
        """Whether netplan has DEVICE; if not, why (a residual gap, or an error)."""
        if device.netns is not None:
            self._gap(device, "device", f"it lives in namespace '{device.netns}', which netplan does not manage; "
                                        f"{_APPLY}", "netns")
            return False
        if device.kind in RESIDUAL_KINDS:
            error = nobody_can(device, "netplan")
            if error is not None:
                self.out.errors.append(error)
                return False
            reason = RESIDUAL_KINDS[device.kind]
            if device.created_by is not None:
                reason = (f"it is the peer of {self.by_ref[device.created_by].kind} '{device.created_by.name}', "
                          f"which netplan 0.106 cannot create; {_APPLY}")
            self._gap(device, "device", reason)
            return False
        lower = device.lower
        if lower is not None and lower not in self.native:
            self._gap(device, "device", f"its lower link '{lower}' is not netplan's; {_APPLY}",
                      KINDS[device.kind].lower)
            return False
        if device.kind == "vlan" and device.get("protocol") not in (None, "802.1q"):
            self._gap(device, "device", f"netplan 0.106 vlans have no protocol (this one is "
                                        f"{device.get('protocol')}); {_APPLY}", "protocol")
            return False
        master = self.by_ref.get(device.master) if device.master is not None else None
        if master is not None and master.ref not in self.native:
            self._gap(device, "master", f"its master {master.kind} '{master.name}' is not netplan's; "
                                        f"vnetc apply enslaves it", "master")
            return False
        return True

    def _entry(self, device: Device, master: Device | None) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        comment = _comment(device)
        if comment:
            entry["#"] = comment
        if device.kind == "interface" and (device.get("match-mac") or device.get("match-driver")):
            match = {}
            if device.get("match-mac"):
                match["macaddress"] = device.get("match-mac").lower()
            if device.get("match-driver"):
                match["driver"] = device.get("match-driver")
            entry["match"] = match
            entry["set-name"] = device.name
        if device.kind == "vxlan":
            entry["mode"] = "vxlan"
        for prop, key, fmt in DEVICE_KEYS.get(device.kind, ()):
            if device.get(prop) is not None:
                entry[key] = fmt(device.get(prop))
        if device.lower is not None:
            entry["link"] = device.lower.name
        if device.kind in ("bridge", "bond"):
            ports = [d for d in self.ports_of.get(device.ref, ()) if d.ref in self.native]
            entry["interfaces"] = [d.name for d in ports]
            parameters = {key: fmt(device.get(prop)) for prop, key, fmt in PARAMETERS[device.kind]
                          if device.get(prop) not in (None, ())}
            if device.kind == "bond" and device.get("primary") is not None:
                parameters["primary"] = device.get("primary").name
            if device.kind == "bridge":
                parameters.update(self._port_parameters(device, ports))
            if parameters:
                entry["parameters"] = parameters
        for (kind, prop), reason in UNSUPPORTED_PROPS.items():
            if kind == device.kind and device.get(prop) is not None:
                self._gap(device, prop, reason, prop)
        if device.mac is not None:
            entry["macaddress"] = device.mac.lower()
        if device.mtu is not None:
            entry["mtu"] = device.mtu
        if device.state == "down":
            if self.renderer == "networkd":
                entry["activation-mode"] = "off"
            else:  # netplan 0.106: "NetworkManager definitions do not support activation-mode off"
                self._gap(device, "state", "netplan 0.106 cannot keep a NetworkManager device down; "
                                           "vnetc apply sets it down", "state")
        if device.dhcp in ("v4", "both"):
            entry["dhcp4"] = True
        if device.dhcp in ("v6", "both"):
            entry["dhcp6"] = True
        if master is None and not device.address and device.dhcp == "off" and not device.gateway:
            entry["link-local"] = []
        if device.address:
            entry["addresses"] = [str(a) for a in device.address]
        if device.dns:
            entry["nameservers"] = {"addresses": [str(d) for d in device.dns]}
        routes = [{"to": "default", "via": str(g)} for g in device.gateway]
        for route in device.route:
            routes.extend(_routes(route))
        if routes:
            entry["routes"] = routes
        return entry

    def _port_parameters(self, bridge: Device, ports: list[Device]) -> dict[str, Any]:
        names = {d.ref for d in ports}
        out: dict[str, dict[str, Any]] = {}
        for settings in bridge.get("port") or ():
            if settings.name not in names:
                continue   # the port's own gap hands it (with its settings) to vnetc apply
            for prop, key in PORT_KEYS:
                if settings.get(prop) is not None:
                    out.setdefault(key, {})[settings.name.name] = settings.get(prop)
            missing = [p for p in PORT_UNSUPPORTED if settings.get(p) not in (None, ())]
            if missing:
                self._gap(bridge, "port", f"netplan 0.106 has no per-port {', '.join(missing)} (port "
                                          f"'{settings.name.name}'); vnetc apply sets them", "port")
        return out


def _routes(route: Route) -> list[dict[str, Any]]:
    if route.prefix == "default":
        if route.via is not None:
            prefixes = ["default"]
        else:
            # netplan 0.106 aborts on `to: default` without `via` (an assertion in get_global_network)
            prefixes = ["0.0.0.0/0", "::/0"]
    else:
        prefixes = [str(route.prefix)]
    out = []
    for prefix in prefixes:
        entry: dict[str, Any] = {"to": prefix}
        if route.via is not None:
            entry["via"] = str(route.via)
        if route.metric is not None:
            entry["metric"] = route.metric
        if route.table is not None:
            entry["table"] = route.table
        out.append(entry)
    return out


def _comment(device: Device) -> str:
    where = f"{os.path.basename(device.span.source.path)}:{device.span.line}" if device.span else ""
    description = " ".join(device.description.split()) if device.description else ""
    return ": ".join(p for p in (where, description) if p)


# --- YAML ----------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as YAML")


def _flow(value: Any) -> str | None:
    """The one-line form of VALUE, if it has one (scalars, empty collections, lists of scalars)."""
    if isinstance(value, dict):
        return "{}" if not value else None
    if isinstance(value, list):
        if any(isinstance(v, (dict, list)) for v in value):
            return None
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return _scalar(value)


def dump(data: dict[str, Any], indent: int = 0) -> str:
    """DATA as block YAML. A mapping's "#" entry is a comment line before its key (newlines collapsed)."""
    pad = "  " * indent
    lines = []
    for key, value in data.items():
        if key == "#":
            continue
        if isinstance(value, dict) and "#" in value:
            lines.append(f"{pad}# {' '.join(str(value['#']).split())}\n")
            value = {k: v for k, v in value.items() if k != "#"}
        name = key if key in _PLAIN_KEYS else _scalar(str(key))
        flow = _flow(value)
        if flow is not None:
            lines.append(f"{pad}{name}: {flow}\n")
        elif isinstance(value, dict):
            lines.append(f"{pad}{name}:\n" + dump(value, indent + 1))
        else:
            lines.append(f"{pad}{name}:\n" + "".join(_list_item(v, indent + 1) for v in value))
    return "".join(lines)


def _list_item(value: Any, indent: int) -> str:
    pad = "  " * indent
    flow = _flow(value)
    if flow is not None:
        return f"{pad}- {flow}\n"
    body = dump(value, indent + 1)
    return f"{pad}- {body[len(pad) + 2:]}"


#: netplan's own keys: written bare (device names and other data are always quoted)
_PLAIN_KEYS = frozenset({
    "network", "version", "renderer", *SECTION_ORDER, "match", "macaddress", "driver", "set-name", "mode",
    "id", "link", "local", "remote", "port", "ttl", "mac-learning", "interfaces", "parameters", "mtu",
    "activation-mode", "dhcp4", "dhcp6", "link-local", "addresses", "nameservers", "routes", "to", "via",
    "metric", "table", "primary", "path-cost", "port-priority",
    *(key for table in PARAMETERS.values() for _, key, _ in table),
})


def render(site: Site, host: Host, renderer: str = "networkd") -> Rendering:
    if renderer not in RENDERERS:
        raise ValueError(f"netplan renderer {renderer!r}: one of {', '.join(RENDERERS)}")
    rendering = _Host(site, host, renderer).render()
    if renderer == "NetworkManager":
        rendering.service = "NetworkManager.service"
    return rendering


TARGET = Target("netplan", f"netplan YAML (netplan {NETPLAN_VERSION}, renderer networkd)", render,
                "systemd-networkd.service")
