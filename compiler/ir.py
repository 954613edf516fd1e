"""The IR: the checked site every backend reads.

Frozen, slotted dataclasses; tuples, never lists. Hosts hold namespaces, which
hold devices. Every reference is resolved to a :class:`DeviceRef` (name and
namespace) that names a device of the same host. ``Host.devices`` is in
dependency order: a device comes after its lower link, its master, the device
that creates it (a veth peer after its veth) and the devices whose ingress it
takes (an IFB after its ``redirect-ingress`` sources).

There is one class per kind (``Vlan``, ``Bridge``, …), generated from the
schema so that the two can never disagree: the common properties are fields of
:class:`Device`, each kind adds its own (``Vlan.id``, ``Bridge.vlan_filtering``).
Sections become records (``Port``, ``TxSa``, ``RxChannel``, ``Sa``, ``Vf``).
Source spans are fields excluded from equality and repr.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from dataclasses import dataclass, field
from types import CodeType, MappingProxyType
from typing import Any, ClassVar, Iterator, Mapping, NamedTuple

from .diagnostics import Span
from .schema import COMMON, KINDS, Prop, Section, python_name

_NO_SPANS: Mapping[str, Span] = MappingProxyType({})


class DeviceRef(NamedTuple):
    """A device of the same host: its name and namespace (None: the host's own)."""

    name: str
    netns: str | None = None

    def __str__(self) -> str:
        return self.name if self.netns is None else f"{self.netns}/{self.name}"


class _Frozen:
    """Frozen, slotted records with keyword construction, equality and repr over ``_fields``.

    The device and section classes are generated from the schema below, all in
    one ``exec`` (dataclasses would take a tenth of a second of every start-up
    for the thirty classes). ``span`` and ``spans`` are not fields: they take no
    part in equality or repr.

    The generated ``__init__`` is kept short, because compiling it is paid at every
    start-up: its keyword defaults are set afterwards (``__kwdefaults__``) and one
    loop stores the values in the slots through the slots' own setters (``_setters``:
    a third of the time ``object.__setattr__`` takes, which looks each name up again).
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _init_order: ClassVar[tuple[str, ...]] = ()   # the generated __init__'s arguments: _fields, span, spans
    _setters: ClassVar[tuple[Any, ...]] = ()      # the __set__ of each slot, in _init_order

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _key(self) -> tuple:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self._fields)})"

    def get(self, prop: str, default: Any = None) -> Any:
        """A property by its language name (``dev.get("vlan-filtering")``)."""
        return getattr(self, python_name(prop), default)

    def __reduce__(self) -> tuple:
        """Pickled as its class and slot values (compiler/cache.py keeps compiled sites)."""
        return _rebuild, (type(self), tuple(getattr(self, f) for f in self._fields), self.span, dict(self.spans))


def _rebuild(cls: type[_Frozen], values: tuple, span: Span | None, spans: dict[str, Span]) -> _Frozen:
    obj = cls.__new__(cls)
    for set_slot, value in zip(cls._setters, (*values, span, MappingProxyType(spans) if spans else _NO_SPANS)):
        set_slot(obj, value)
    return obj


class Device(_Frozen):
    """The common properties (language.md §3 "Common properties"); each kind's class adds its own.

    ``created_by``: for a veth/vxcan peer, the device whose creation also creates this one.
    ``span``: the device's name in the source; ``spans``: property name -> span of its (first) value.
    """

    __slots__ = ()
    kind: ClassVar[str] = ""
    name: str
    netns: str | None
    state: str
    mtu: int | None
    mac: str | None
    address: tuple
    gateway: tuple
    route: tuple
    dns: tuple
    dhcp: str
    master: DeviceRef | None
    description: str | None
    created_by: DeviceRef | None
    span: Span | None
    spans: Mapping[str, Span]

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.name, self.netns)

    @property
    def creates(self) -> bool:
        """Whether vnetc (or the target) creates this device itself."""
        return KINDS[self.kind].creates and self.created_by is None

    @property
    def lower(self) -> DeviceRef | None:
        """The lower link a stacked device is created on (a vlan's `link`, a vxlan's `dev`), if any."""
        prop = KINDS[self.kind].lower
        return getattr(self, python_name(prop)) if prop else None


class Record(_Frozen):
    """Base of the records generated for sections (``port``, ``tx-sa``, …)."""

    __slots__ = ()
    section: ClassVar[str] = ""
    span: Span | None
    spans: Mapping[str, Span]


def port_vlans(port: Record) -> dict[int, tuple[str, ...]]:
    """A bridge `port` record's VLANs as the kernel holds them: id -> the flags of ("pvid",
    "untagged") it carries, ids ascending (the checks keep the pvid and untagged ids in `vlans`)."""
    untagged = {vid for low, high in port.untagged for vid in range(low, high + 1)}
    ids = {vid for low, high in port.vlans for vid in range(low, high + 1)}
    if port.pvid is not None:
        ids.add(port.pvid)
    return {vid: tuple(flag for flag, on in (("pvid", vid == port.pvid), ("untagged", vid in untagged)) if on)
            for vid in sorted(ids)}


def vlan_runs(members: Mapping[int, tuple[str, ...]]) -> list[tuple[int, int, tuple[str, ...]]]:
    """Ascending VLAN ids with their flags as runs (low, high, flags) of consecutive ids with the
    same flags; a PVID stands alone."""
    runs: list[tuple[int, int, tuple[str, ...]]] = []
    for vid, flags in members.items():
        if runs and runs[-1][1] == vid - 1 and runs[-1][2] == flags and "pvid" not in flags:
            runs[-1] = (runs[-1][0], vid, flags)
        else:
            runs.append((vid, vid, flags))
    return runs


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", " ").replace(".", " ").split())


#: The common fields, with their defaults (the kind fields follow the schema).
_DEVICE_FIELDS: list[tuple[str, Any]] = [
    ("name", None), ("netns", None), ("state", "up"), ("mtu", None), ("mac", None), ("address", ()),
    ("gateway", ()), ("route", ()), ("dns", ()), ("dhcp", "off"), ("master", None), ("description", None),
    ("created_by", None),
]


def _fields_of(props: dict[str, Prop | Section]) -> list[tuple[str, Any]]:
    out = []
    for spec in props.values():
        if isinstance(spec, Section):
            out.append((python_name(spec.name), None if spec.single else ()))
        elif spec.is_list:
            out.append((python_name(spec.name), ()))
        else:
            out.append((python_name(spec.name), spec.default))
    return out


def _class_source(name: str, base: str, tag: str, tag_value: str, fields: list[tuple[str, Any]],
                  own: list[str], defaults: dict[str, Any]) -> str:
    params = ", ".join([f for f, _ in fields] + ["span", "spans"])
    defaults[name] = {**dict(fields), "span": None, "spans": _NO_SPANS}
    return (f"class {name}({base}):\n"
            f"    __slots__ = {tuple(own)!r}\n"
            f"    {tag} = {tag_value!r}\n"
            f"    _fields = {tuple(f for f, _ in fields)!r}\n"
            f"    _init_order = _fields + ('span', 'spans')\n"
            f"    def __init__(self, *, {params}):\n"
            f"        for set_slot, value in zip(self._setters, ({params},)):\n"
            f"            set_slot(self, value)\n")


def _compiled(source: str) -> CodeType:
    """The generated classes' code, compiled once and kept as Python keeps a module's bytecode:
    next to this module's .pyc (in __pycache__, or under PYTHONPYCACHEPREFIX), never written
    under PYTHONDONTWRITEBYTECODE. The cache holds the source it was compiled from and is used
    only when that equals today's (a changed schema recompiles). Compiling takes 8-12 ms of
    every start-up; reading the cache, well under one."""
    from importlib.util import cache_from_source

    try:
        cache = cache_from_source(__file__).removesuffix(".pyc") + ".generated.bin"
    except (NotImplementedError, ValueError):   # no bytecode cache for this interpreter or path
        cache = None
    if cache is not None:
        try:
            with open(cache, "rb") as handle:
                cached_source, code = marshal.load(handle)
            if cached_source == source:
                return code
        except (OSError, ValueError, EOFError, TypeError):
            pass
    code = compile(source, "<vnetc.compiler.ir: generated from the schema>", "exec")
    if cache is not None and not sys.dont_write_bytecode:
        temporary = f"{cache}.{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            with open(temporary, "wb") as handle:
                marshal.dump((source, code), handle)
            os.replace(temporary, cache)
        except OSError:                          # a read-only installation: compile every time
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return code


def _generate() -> tuple[dict[str, type[Device]], dict[str, type[Record]]]:
    sources: list[str] = []
    defaults: dict[str, dict[str, Any]] = {}
    records: dict[str, str] = {}

    def record(section: Section) -> None:
        fields = [(python_name(key), None) for key, _ in section.keys] + _fields_of(section.props)
        for spec in section.props.values():
            if isinstance(spec, Section) and not spec.single:
                record(spec)
        name = _class_name(section.name)
        records[section.name] = name
        sources.append(_class_source(name, "Record", "section", section.name, fields,
                                     ["span", "spans", *(f for f, _ in fields)], defaults))

    kinds: dict[str, str] = {}
    for kind, spec in KINDS.items():
        for prop in spec.props.values():
            if isinstance(prop, Section) and not prop.single and prop.name not in records:
                record(prop)
        own = _fields_of(spec.props)
        name = _class_name(kind)
        kinds[kind] = name
        sources.append(_class_source(name, "Device", "kind", kind, _DEVICE_FIELDS + own,
                                     ["span", "spans", *(f for f, _ in _DEVICE_FIELDS + own)], defaults))
    namespace: dict[str, Any] = {"Device": Device, "Record": Record, "__name__": __name__}
    exec(_compiled("\n".join(sources)), namespace)
    for name, kwdefaults in defaults.items():
        cls = namespace[name]
        cls.__init__.__kwdefaults__ = kwdefaults
        cls._setters = tuple(cls.__dict__[slot].__set__ for slot in cls._init_order)
    return ({kind: namespace[name] for kind, name in kinds.items()},
            {section: namespace[name] for section, name in records.items()})


#: kind name -> its IR class (``DEVICE_CLASSES["vlan"] is Vlan``); section name -> record class
DEVICE_CLASSES, RECORD_CLASSES = _generate()
globals().update({cls.__name__: cls for cls in DEVICE_CLASSES.values()})
globals().update({cls.__name__: cls for cls in RECORD_CLASSES.values()})

assert {python_name(p) for p in COMMON} <= {f for f, _ in _DEVICE_FIELDS}


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str | None          # None: the host's own namespace
    devices: tuple[Device, ...]


@dataclass(frozen=True, slots=True)
class Host:
    name: str | None          # None: the implicit host of a file without `host` blocks
    namespaces: tuple[Namespace, ...]   # the host's own first, then the declared ones in order
    devices: tuple[Device, ...]         # all devices, in dependency order
    span: Span | None = field(default=None, compare=False, repr=False)

    def device(self, ref: DeviceRef) -> Device:
        return self._index()[ref]

    def _index(self) -> dict[DeviceRef, Device]:
        return {d.ref: d for d in self.devices}

    @property
    def declared_netns(self) -> tuple[str, ...]:
        return tuple(ns.name for ns in self.namespaces if ns.name is not None)


@dataclass(frozen=True, slots=True)
class Site:
    hosts: tuple[Host, ...]
    files: tuple[str, ...] = field(default=(), compare=False)

    def devices(self) -> Iterator[tuple[Host, Device]]:
        for host in self.hosts:
            for device in host.devices:
                yield host, device
