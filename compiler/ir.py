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

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """The common properties (language.md §3 "Common properties")."""

    kind: ClassVar[str] = ""
    name: str
    netns: str | None = None
    state: str = "up"
    mtu: int | None = None
    mac: str | None = None
    address: tuple = ()
    gateway: tuple = ()
    route: tuple = ()
    dns: tuple = ()
    dhcp: str = "off"
    master: DeviceRef | None = None
    description: str | None = None
    #: For a veth/vxcan peer: the device whose creation also creates this one.
    created_by: DeviceRef | None = None
    span: Span | None = field(default=None, compare=False, repr=False)
    #: property name -> span of its (first) value
    spans: Mapping[str, Span] = field(default_factory=lambda: _NO_SPANS, compare=False, repr=False)

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.name, self.netns)

    @property
    def creates(self) -> bool:
        """Whether vnetc (or the target) creates this device itself."""
        return KINDS[self.kind].creates and self.created_by is None

    def get(self, prop: str, default: Any = None) -> Any:
        """A property by its language name (``dev.get("vlan-filtering")``)."""
        return getattr(self, python_name(prop), default)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """Base of the records generated for sections (``port``, ``tx-sa``, …)."""

    section: ClassVar[str] = ""
    span: Span | None = field(default=None, compare=False, repr=False)
    spans: Mapping[str, Span] = field(default_factory=lambda: _NO_SPANS, compare=False, repr=False)

    def get(self, prop: str, default: Any = None) -> Any:
        return getattr(self, python_name(prop), default)


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", " ").replace(".", " ").split())


def _field_for(spec: Prop | Section) -> tuple[str, Any, Any]:
    name = python_name(spec.name)
    if isinstance(spec, Section):
        if spec.single:
            return (name, Any, field(default=None))
        return (name, tuple, field(default=()))
    if spec.is_list:
        return (name, tuple, field(default=()))
    return (name, Any, field(default=spec.default))


RECORD_CLASSES: dict[str, type[Record]] = {}


def _record_class(section: Section) -> type[Record]:
    fields = [(python_name(key), Any, field(default=None)) for key, _ in section.keys]
    for spec in section.props.values():
        if isinstance(spec, Section) and not spec.single:
            _record_class(spec)
        fields.append(_field_for(spec))
    cls = dataclasses.make_dataclass(_class_name(section.name), fields, bases=(Record,), frozen=True,
                                     slots=True, kw_only=True, namespace={"section": section.name})
    cls.__module__ = __name__
    RECORD_CLASSES[section.name] = cls
    return cls


def _device_class(kind: str) -> type[Device]:
    fields = []
    for spec in KINDS[kind].props.values():
        if isinstance(spec, Section) and not spec.single:
            _record_class(spec)
        fields.append(_field_for(spec))
    cls = dataclasses.make_dataclass(_class_name(kind), fields, bases=(Device,), frozen=True, slots=True,
                                     kw_only=True, namespace={"kind": kind})
    cls.__module__ = __name__
    return cls


#: kind name -> its IR class (``DEVICE_CLASSES["vlan"] is Vlan``)
DEVICE_CLASSES: dict[str, type[Device]] = {kind: _device_class(kind) for kind in KINDS}
globals().update({cls.__name__: cls for cls in DEVICE_CLASSES.values()})
globals().update({cls.__name__: cls for cls in RECORD_CLASSES.values()})

assert all(python_name(p) in {f.name for f in dataclasses.fields(Device)} for p in COMMON)


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
