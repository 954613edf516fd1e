"""The IR as plain JSON data (`vnetc ir`): for tools, tests and review.

Properties keep their language names (`vlan-filtering`), references become
``{"name", "netns"}``, durations their canonical text (`100ms`), addresses
strings. Secret keys are replaced by "<redacted>" unless asked for.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from .diagnostics import SECRET_PROPERTIES
from .ir import Device, DeviceRef, Host, Record, Site
from .schema import KINDS, QDISCS, Prop, Qdisc, QdiscType, Route, RouteType, Section, props_of, python_name
from .values import CIDR, IP, Duration, Prefix, VlanRange

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
        out["created-by"] = _reference(device.created_by)
    fields = _FIELDS.get((device.kind, show))
    if fields is None:
        fields = _FIELDS[(device.kind, show)] = _fields(props_of(KINDS[device.kind]), show)
    _put(device, fields, out)
    return out


def _put(item: Device | Record, fields: list[_Field], out: dict[str, Any]) -> None:
    """Add the properties of ITEM (a device or a section's record) that are set, each as JSON."""
    for name, attribute, how, convert in fields:
        value = getattr(item, attribute)
        if value is None or value == ():
            continue
        if how is _AS_IS:
            out[name] = value
        elif how is _ONE:
            out[name] = convert(value)
        elif how is _EACH:
            out[name] = list(map(convert, value))
        else:                                   # _HIDDEN
            out[name] = REDACTED


def _records(labels: list[tuple[str, str]], fields: list[_Field]) -> Callable[[tuple[Record, ...]], list]:
    """The converter of a section's records: each its label words, then its properties."""
    def convert(records: tuple[Record, ...]) -> list[dict[str, Any]]:
        out = []
        for record in records:
            item = {label: _label(getattr(record, attribute)) for label, attribute in labels}
            _put(record, fields, item)
            out.append(item)
        return out
    return convert


# How each property is written is decided once per kind from the schema, whose value types say
# what the IR holds: strings, numbers and booleans are JSON already; references, addresses,
# durations, routes, qdiscs and sections' records are converted.
_AS_IS, _ONE, _EACH, _HIDDEN = "as is", "converted", "each converted", "redacted"

#: (property, IR attribute, how, converter of the value (_ONE) or of each of its values (_EACH))
_Field = tuple[str, str, str, Any]
#: (kind, secrets shown) -> the fields of its devices, in the schema's order
_FIELDS: dict[tuple[str, bool], list[_Field]] = {}


def _fields(table: dict[str, Prop | Section], show: bool) -> list[_Field]:
    return [_field(name, spec, show) for name, spec in table.items() if name != "netns"]


def _field(name: str, spec: Prop | Section, show: bool) -> _Field:
    attribute = python_name(name)
    if isinstance(spec, Section):
        if spec.single:                       # a peer: a reference
            return name, attribute, _ONE, _reference
        labels = [(label, python_name(label)) for label, _ in spec.keys]
        return name, attribute, _ONE, _records(labels, _fields(spec.props, show))
    if name in SECRET_PROPS and not show:
        return name, attribute, _HIDDEN, None
    convert = _converter(spec)
    if spec.is_list:
        return (name, attribute, _ONE, list) if convert is None else (name, attribute, _EACH, convert)
    return (name, attribute, _AS_IS, None) if convert is None else (name, attribute, _ONE, convert)


def _converter(spec: Prop) -> Callable[[Any], Any] | None:
    """How one value of SPEC becomes JSON; None: it is JSON already."""
    if spec.ref:
        return _reference
    value_type = spec.type
    if isinstance(value_type, (IP, CIDR, Prefix)):
        return str
    if isinstance(value_type, (Duration, VlanRange)):
        return value_type.render          # "100ms", "20-30"
    if isinstance(value_type, RouteType):
        return _route
    if isinstance(value_type, QdiscType):
        return _qdisc
    return None


def _reference(ref: DeviceRef) -> dict[str, Any]:
    return {"name": ref.name, "netns": ref.netns}


def _route(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"prefix": str(route.prefix)}
    if route.via is not None:
        out["via"] = str(route.via)
    if route.metric is not None:
        out["metric"] = route.metric
    if route.table is not None:
        out["table"] = route.table
    return out


def _qdisc(qdisc: Qdisc) -> dict[str, Any]:
    types = QDISCS[qdisc.kind]
    return {"kind": qdisc.kind, **{k: types[k].render(v) if isinstance(types[k], Duration) else v
                                   for k, v in qdisc.params}}


def _label(value: Any) -> Any:
    """A section's label word (a reference, an address or a plain value) as JSON."""
    if isinstance(value, DeviceRef):
        return _reference(value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
                          ipaddress.IPv6Interface, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
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
