"""The IR as plain JSON data (`vnetc ir`): for tools, tests and review.

Properties keep their language names (`vlan-filtering`), references become
``{"name", "netns"}``, durations their canonical text (`100ms`), addresses
strings. Secret keys are replaced by "<redacted>" unless asked for.

``dumps`` writes JSON text as ``json.dumps(…, indent=2, ensure_ascii=False)``
does, faster; given ``host_for_dumps(host)`` it writes the host's devices
straight from the IR, by the same table (_FIELDS) as site_to_json (the
residual file of a file target holds a whole host).
"""

from __future__ import annotations

import ipaddress
import json
from operator import attrgetter
from typing import Any, Callable, Iterable, Iterator

from .diagnostics import SECRET_PROPERTIES
from .ir import Device, DeviceRef, Host, Record, Site
from .schema import KINDS, QDISCS, Prop, Qdisc, QdiscType, Route, RouteType, Section, props_of, python_name
from .values import CIDR, IP, Duration, Prefix, VlanRange

SECRET_PROPS = SECRET_PROPERTIES
REDACTED = "<redacted>"


def site_to_json(site: Site, show_secrets: bool = False) -> dict[str, Any]:
    return {"hosts": [_host(h, show_secrets) for h in site.hosts]}


def _host(host: Host, show: bool, devices: Any = None) -> dict[str, Any]:
    """The host as JSON data; DEVICES: what stands for the list of its devices (host_for_dumps)."""
    return {
        "name": host.name,
        "namespaces": [ns.name for ns in host.namespaces if ns.name is not None],
        "devices": [_device(d, show) for d in host.devices] if devices is None else devices,
    }


def _device(device: Device, show: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": device.kind, "name": device.name, "netns": device.netns}
    _put(device, _FIELDS.get((device.kind, show)) or _kind_fields(device.kind, show), out)
    return out


def _put(item: Device | Record, fields: list[_Field], out: dict[str, Any]) -> None:
    """Add the properties of ITEM (a device or a section's record) that are set, each as JSON."""
    for name, attribute, how, convert in fields:
        value = getattr(item, attribute)
        if not value and (value is None or value == ()):     # unset
            continue
        if how is _AS_IS:
            out[name] = value
        elif how is _ONE:
            out[name] = convert(value)
        elif how is _EACH:
            out[name] = list(map(convert, value))
        else:                                   # _HIDDEN
            out[name] = REDACTED


class _Records:
    """The converter of a section's records: each its label words, then its properties."""

    def __init__(self, labels: list[tuple[str, str]], fields: list[_Field]) -> None:
        self.labels = labels        # (label, IR attribute)
        self.fields = fields

    def __call__(self, records: tuple[Record, ...]) -> list[dict[str, Any]]:
        out = []
        for record in records:
            item = {label: _label(getattr(record, attribute)) for label, attribute in self.labels}
            _put(record, self.fields, item)
            out.append(item)
        return out


# How each property is written is decided once per kind from the schema, whose value types say
# what the IR holds: strings, numbers and booleans are JSON already; references, addresses,
# durations, routes, qdiscs and sections' records are converted.
_AS_IS, _ONE, _EACH, _HIDDEN = "as is", "converted", "each converted", "redacted"

#: (property, IR attribute, how, converter of the value (_ONE) or of each of its values (_EACH))
_Field = tuple[str, str, str, Any]
#: (kind, secrets shown) -> the fields of its devices after kind, name and netns, in the schema's order
_FIELDS: dict[tuple[str, bool], list[_Field]] = {}


def _kind_fields(kind: str, show: bool) -> list[_Field]:
    """_FIELDS of a kind, made on first use: the device that created it (a veth/vxcan peer's), then
    its properties."""
    fields = _FIELDS[(kind, show)] = [("created-by", "created_by", _ONE, _reference),
                                      *_fields(props_of(KINDS[kind]), show)]
    return fields


def _fields(table: dict[str, Prop | Section], show: bool) -> list[_Field]:
    return [_field(name, spec, show) for name, spec in table.items() if name != "netns"]


def _field(name: str, spec: Prop | Section, show: bool) -> _Field:
    attribute = python_name(name)
    if isinstance(spec, Section):
        if spec.single:                       # a peer: a reference
            return name, attribute, _ONE, _reference
        labels = [(label, python_name(label)) for label, _ in spec.keys]
        return name, attribute, _ONE, _Records(labels, _fields(spec.props, show))
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
        return _address
    if isinstance(value_type, (Duration, VlanRange)):
        return value_type.render          # "100ms", "20-30"
    if isinstance(value_type, RouteType):
        return _route
    if isinstance(value_type, QdiscType):
        return _qdisc
    return None


def _reference(ref: DeviceRef) -> dict[str, Any]:
    return {"name": ref.name, "netns": ref.netns}


def _address(value: Any) -> str:
    """str(value) of an address, an address with a prefix length, a network or "default": the same
    text, made here for IPv4 addresses from the integer ipaddress keeps (as compiler/values.py
    does), for ipaddress formats them in Python, four times slower (a host has thousands)."""
    kind = type(value)
    if kind is ipaddress.IPv4Interface:
        ip = value._ip
        return f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}/{value._prefixlen}"
    if kind is ipaddress.IPv4Address:
        ip = value._ip
        return f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
    return str(value)


def _route(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"prefix": _address(route.prefix)}
    if route.via is not None:
        out["via"] = _address(route.via)
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
        return _address(value)
    return value


# --- the same JSON as text, written straight from the IR ------------------------------------------
# The residual file of a file target holds the whole host (16,000 devices: 6 MB). json.dumps with
# an indent is pure Python and slow, and making the dicts above only to walk them again doubles
# the work: dumps(host_for_dumps(…)) writes the devices' text from the same _FIELDS, converting
# only what _put converts (references, addresses, durations, routes, qdiscs, records), one column
# (a field of all devices of a kind) at a time, then joins each device's row.

def dumps(data: Any, newline: str = "\n") -> str:
    """json.dumps(data, indent=2, ensure_ascii=False), character for character, three times
    faster; NEWLINE ("\\n" and an indent) begins its lines after the first, for a value nested in
    a document. Strings, and anything but dicts, lists, strings, ints, booleans and None, are
    still encoded by json itself."""
    try:
        return _TEXT[type(data)](data, newline)
    except _NotAString:   # a dict key that is not a string
        return json.dumps(data, indent=2, ensure_ascii=False).replace("\n", newline)


def host_for_dumps(host: Host, show_secrets: bool = False) -> dict[str, Any]:
    """site_to_json's host, for dumps (json.dumps cannot write it): dumps writes its devices straight
    from the IR, without making their dicts, in well under half the time."""
    return _host(host, show_secrets, _Written(lambda newline: _devices_text(host.devices, show_secrets, newline)))


class _Written:
    """A value whose text is written by its own function of the newline (devices, into the host)."""

    def __init__(self, write: Callable[[str], str]) -> None:
        self.write = write


def _devices_text(devices: tuple[Device, ...], show: bool, newline: str) -> str:
    if not devices:
        return "[]"
    inner = newline + "  "                    # a device's braces
    properties = inner + "  "                 # its properties
    of_kind: dict[str, list[int]] = {}        # kind -> the indexes of its devices
    for index, device in enumerate(devices):
        of_kind.setdefault(device.kind, []).append(index)
    texts = [""] * len(devices)
    for kind, indexes in of_kind.items():
        members = [devices[index] for index in indexes]
        # what _device writes before the fields: kind, name and netns, even null
        head, netns = "{" + properties + '"kind": ' + _encode_string(kind) + "," + properties + '"name": ', \
            "," + properties + '"netns": '
        first = [[head + _encode_string(d.name) + netns + ("null" if d.netns is None else _encode_string(d.netns))
                  for d in members]]
        fields = _text_fields(_FIELDS.get((kind, show)) or _kind_fields(kind, show), properties)
        for index, text in zip(indexes, _rows(members, first, fields, properties)):
            texts[index] = text
    return "[" + inner + (inner + "}," + inner).join(texts) + inner + "}" + newline + "]"


#: a field as text: (IR attribute, a comma, the newline, its key and ": ", the writer of a value set
#: (None: JSON as it is), whether it holds one value (state, mtu, link, qdisc: the same on many
#: devices, its text is made once) rather than a list (addresses, ports, records))
_TextField = tuple[str, str, Any, bool]


def _text_fields(fields: list[_Field], newline: str) -> list[_TextField]:
    """FIELDS as text on lines beginning NEWLINE, each following another (the name, a label word)."""
    return [(attribute, "," + newline + _encode_string(name) + ": ", _text_writer(how, convert, newline),
             how is not _EACH and convert is not list and type(convert) is not _Records)
            for name, attribute, how, convert in fields]


def _rows(items: list[Any], first: list[Iterable[str]], fields: list[_TextField], newline: str) -> Iterator[str]:
    """_put, as text: for each of ITEMS (of one kind or section), its texts in the FIRST columns,
    then the key and value of each of its FIELDS that is set. Field by field, a column at a time."""
    columns = first
    for attribute, key, write, single in fields:
        values = map(attrgetter(attribute), items)
        if single:                            # each value's text made once
            columns.append(map(_Texts(key, write, newline).__getitem__, values))
        else:
            columns.append(["" if not value and (value is None or value == ()) else key + write(value)
                            for value in values])
    return map("".join, zip(*columns))


class _Texts(dict):
    """A field's value -> its key and text, made on first use. A field's values are all of the
    schema's one type: equal values have the same text (1 and True never meet)."""

    def __init__(self, key: str, write: Callable[[Any], str] | None, newline: str) -> None:
        super().__init__({None: "", (): ""})  # unset: nothing
        self.key, self.write, self.newline = key, write, newline

    def __missing__(self, value: Any) -> str:
        if self.write is not None:
            text = self.write(value)
        else:                                 # as is: mostly a string
            text = _encode_string(value) if type(value) is str else _TEXT[type(value)](value, self.newline)
        self[value] = text = self.key + text
        return text


def _text_writer(how: str, convert: Any, newline: str) -> Callable[[Any], str] | None:
    """How a field's value (converted as _put converts it) is written on a line beginning NEWLINE."""
    if how is _AS_IS:
        return None
    if how is _HIDDEN:
        redacted = _encode_string(REDACTED)
        return lambda value: redacted
    if how is _EACH:
        inner = newline + "  "
        start, comma, end = "[" + inner, "," + inner, newline + "]"
        one = _one_writer(convert, inner)
        return lambda values: start + comma.join(map(one, values)) + end
    return _one_writer(convert, newline)


def _one_writer(convert: Any, newline: str) -> Callable[[Any], str]:
    if convert is _reference:                 # the text of _reference(ref): thousands on a host
        name, netns, end = "{" + newline + '  "name": ', "," + newline + '  "netns": ', newline + "}"
        return lambda ref: (name + _encode_string(ref.name) + netns +
                            ("null" if ref.netns is None else _encode_string(ref.netns)) + end)
    if type(convert) is _Records:
        return _records_writer(convert, newline)

    def write(value: Any) -> str:
        data = convert(value)
        return _encode_string(data) if type(data) is str else _TEXT[type(data)](data, newline)
    return write


def _records_writer(records: _Records, newline: str) -> Callable[[tuple[Record, ...]], str]:
    """A section's records as text: what _Records makes (every section has label words)."""
    inner = newline + "  "                    # a record's braces
    properties = inner + "  "                 # its labels and properties
    comma = "," + properties
    labels = [(_encode_string(label) + ": ", attribute) for label, attribute in records.labels]
    fields = _text_fields(records.fields, properties)
    start, between, end = "[" + inner, inner + "}," + inner, inner + "}" + newline + "]"

    def write(values: tuple[Record, ...]) -> str:
        first = [["{" + properties + comma.join([key + dumps(_label(getattr(record, attribute)), properties)
                                                 for key, attribute in labels]) for record in values]]
        return start + between.join(_rows(values, first, fields, properties)) + end
    return write


_encode_string = json.encoder.encode_basestring   # (ensure_ascii=False)


class _NotAString(Exception):
    """A dict key that is not a string: json.dumps decides what it becomes."""


class _KeyText(dict):
    """dict key -> its JSON and the ": " after it, made on first use (mostly property names)."""

    def __missing__(self, key: Any) -> str:
        if type(key) is not str:
            raise _NotAString
        text = self[key] = _encode_string(key) + ": "
        return text


_KEY_TEXT = _KeyText()


# Each writer gets a value and the newline-and-indent of the line it starts on, and returns its
# JSON; a string (most values) is encoded in line, without a call of its own.

def _dict(value: dict, newline: str) -> str:
    if not value:
        return "{}"
    inner = newline + "  "
    return "{" + inner + ("," + inner).join([
        _KEY_TEXT[key] + (_encode_string(item) if type(item) is str else _TEXT[type(item)](item, inner))
        for key, item in value.items()]) + newline + "}"


def _list(value: list | tuple, newline: str) -> str:
    if not value:
        return "[]"
    inner = newline + "  "
    return "[" + inner + ("," + inner).join([
        _encode_string(item) if type(item) is str else _TEXT[type(item)](item, inner)
        for item in value]) + newline + "]"


def _other(value: Any, newline: str) -> str:
    """A value of another type (a subclass, a float): what json.dumps makes of it."""
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, dict):
        return _dict(value, newline)
    if isinstance(value, (list, tuple)):
        return _list(value, newline)
    return json.dumps(value, ensure_ascii=False)


class _ByType(dict):
    def __missing__(self, kind: type) -> Any:
        return _other


#: type -> its writer (exact types; _other for the rest)
_TEXT = _ByType({
    str: lambda value, newline: _encode_string(value),
    type(None): lambda value, newline: "null",
    bool: lambda value, newline: "true" if value else "false",
    int: lambda value, newline: int.__repr__(value),
    dict: _dict, list: _list, tuple: _list,
    _Written: lambda value, newline: value.write(newline),
})


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
