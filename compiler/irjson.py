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


# --- reading it back (the residual file holds a host as JSON; `vnetc apply --residual` reads it) ----

class BadJSON(ValueError):
    """The JSON does not describe a site (a message naming where)."""


def site_from_json(data: dict[str, Any]) -> Site:
    """The inverse of site_to_json (with secrets shown): the IR again, without source spans."""
    from .ir import Namespace
    from .values import BadValue

    try:
        hosts = []
        for h in data["hosts"]:
            devices = tuple(_device_from(d) for d in h["devices"])
            declared = list(h.get("namespaces", []))
            namespaces = tuple(Namespace(ns, tuple(d for d in devices if d.netns == ns)) for ns in [None, *declared])
            hosts.append(Host(h.get("name"), namespaces, devices))
        return Site(tuple(hosts))
    except BadValue as exc:
        raise BadJSON(exc.message) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadJSON(f"not a vnetc site: {type(exc).__name__}: {exc}") from None


def _device_from(d: dict[str, Any]) -> Device:
    from .ir import DEVICE_CLASSES
    from .schema import python_name

    kind = d["kind"]
    if kind not in KINDS:
        raise BadJSON(f"unknown kind {kind!r}")
    fields: dict[str, Any] = {"name": d["name"], "netns": d.get("netns")}
    if d.get("created-by") is not None:
        fields["created_by"] = _ref(d["created-by"])
    for name, spec in props_of(KINDS[kind]).items():
        if name == "netns" or name not in d:
            continue
        fields[python_name(name)] = _prop_from(name, spec, d[name])
    return DEVICE_CLASSES[kind](**fields)


def _ref(value: dict[str, Any]) -> DeviceRef:
    return DeviceRef(value["name"], value.get("netns"))


def _prop_from(name: str, spec: Prop | Section, value: Any) -> Any:
    from .ir import RECORD_CLASSES
    from .schema import python_name

    if isinstance(spec, Section):
        if spec.single:                       # a peer: a reference
            return _ref(value)
        records = []
        for item in value:
            fields = {}
            for key, key_type in spec.keys:
                raw = item[key]
                fields[python_name(key)] = _ref(raw) if spec.ref and key == spec.keys[0][0] else \
                    _scalar(key_type, raw)
            for sub_name, sub in spec.props.items():
                if sub_name in item:
                    fields[python_name(sub_name)] = _prop_from(sub_name, sub, item[sub_name])
            records.append(RECORD_CLASSES[spec.name](**fields))
        return tuple(records)
    if value == REDACTED:
        raise BadJSON(f"'{name}' is redacted: the file was written without secrets")
    if spec.ref:
        return tuple(_ref(v) for v in value) if spec.is_list else _ref(value)
    if spec.is_list:
        return tuple(_one(spec, v) for v in value)
    return _one(spec, value)


def _one(spec: Prop, value: Any) -> Any:
    if isinstance(value, dict) and "prefix" in value:
        prefix = value["prefix"]
        return Route("default" if prefix == "default" else ipaddress.ip_network(prefix),
                     ipaddress.ip_address(value["via"]) if "via" in value else None,
                     value.get("metric"), value.get("table"))
    if isinstance(value, dict) and "kind" in value:
        types = QDISCS[value["kind"]]
        params = tuple((k, True if types[k] is None else _scalar(types[k], v))
                       for k, v in value.items() if k != "kind")
        return Qdisc(value["kind"], params)
    return _scalar(spec.type, value)


def _scalar(value_type: Any, value: Any) -> Any:
    if isinstance(value, (bool, int)) or value_type is None:
        return value
    return value_type.parse(str(value))
