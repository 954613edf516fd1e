"""The IR as plain JSON data (`vnetc ir`): for tools, tests and review.

Properties keep their language names (`vlan-filtering`), references become
``{"name", "netns"}``, durations their canonical text (`100ms`), addresses
strings. Secret keys are replaced by "<redacted>" unless asked for.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from .diagnostics import SECRET_PROPERTIES
from .ir import Device, DeviceRef, Host, Record, Site
from .schema import KINDS, QDISCS, Prop, Qdisc, Route, Section, props_of
from .values import Duration, VlanRange

SECRET_PROPS = SECRET_PROPERTIES
REDACTED = "<redacted>"


def site_to_json(site: Site, show_secrets: bool = False) -> dict[str, Any]:
    return {"hosts": [_host(h, show_secrets) for h in site.hosts]}


def _host(host: Host, show: bool) -> dict[str, Any]:
    return {
        "name": host.name,
        "namespaces": [ns.name for ns in host.namespaces if ns.name is not None],
        "devices": [_device(d, show) for d in host.devices],
    }


def _device(device: Device, show: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": device.kind, "name": device.name, "netns": device.netns}
    if device.created_by is not None:
        out["created-by"] = _value(device.created_by, None, show)
    table = props_of(KINDS[device.kind])
    for name, spec in table.items():
        if name in ("netns",):
            continue
        value = device.get(name)
        if name == "peer" and value is not None:
            out[name] = _value(value, None, show)
            continue
        if value is None or value == ():
            continue
        out[name] = _prop_value(name, spec, value, show)
    return out


def _prop_value(name: str, spec: Prop | Section, value: Any, show: bool) -> Any:
    if isinstance(spec, Section):
        return [_record(r, spec, show) for r in value]
    if name in SECRET_PROPS and not show:
        return REDACTED
    if isinstance(value, tuple) and not isinstance(value, DeviceRef):
        return [_value(v, spec, show) for v in value]
    return _value(value, spec, show)


def _record(record: Record, spec: Section, show: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, _ in spec.keys:
        out[key] = _value(record.get(key), None, show)
    for name, sub in spec.props.items():
        value = record.get(name)
        if value is None or value == ():
            continue
        out[name] = _prop_value(name, sub, value, show)
    return out


def _value(value: Any, spec: Prop | None, show: bool) -> Any:
    if isinstance(value, DeviceRef):
        return {"name": value.name, "netns": value.netns}
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
                          ipaddress.IPv6Interface, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    if isinstance(value, Route):
        return {k: _value(v, None, show) for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, Qdisc):
        types = QDISCS[value.kind]
        return {"kind": value.kind, **{k: types[k].render(v) if isinstance(types[k], Duration) else v
                                       for k, v in value.params}}
    if spec is not None and isinstance(spec.type, (Duration, VlanRange)):
        return spec.type.render(value)   # "100ms", "20-30"
    if isinstance(value, tuple):
        return [_value(v, spec, show) for v in value]
    return value
