"""From expanded statements to the checked IR (language.md §2–4).

1. structure: hosts, namespaces, device statements;
2. properties: every statement of a device block against its kind's schema
   (schema.py), values typed by values.py;
3. per host: names, namespaces, references, masters, cycles, then the checks of
   each kind (KIND_CHECKS) and the warnings;
4. the IR (ir.py), devices in dependency order.

All errors of the phase are collected before CompileError is raised.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable

from .diagnostics import Collector, Span, did_you_mean
from .expand import Stmt, Word
from .ir import DEVICE_CLASSES, RECORD_CLASSES, Device, DeviceRef, Host, Namespace, Site
from .schema import KEYWORDS, KINDS, MASTER_KINDS, PEER, Kind, Prop, Section, props_of, python_name
from .values import BadValue, Name, Text

_INTERFACE_NAME = Name()

_NETNS_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


@dataclass(slots=True)
class Val:
    """A checked value and the span of the word it came from."""

    value: Any
    span: Span


@dataclass(slots=True)
class Block:
    """A parsed section (``port eth0 { … }``) or device body: its labels and properties."""

    spec: Section | None
    keys: tuple[Val, ...]
    props: dict[str, Any]          # name -> Val | list[Val] | list[Block] | Block
    span: Span
    given: set[str] = field(default_factory=set)   # named in the block, valid or not

    def val(self, name: str) -> Val | None:
        found = self.props.get(name)
        return found if isinstance(found, Val) else None

    def value(self, name: str, default: Any = None) -> Any:
        found = self.props.get(name)
        return found.value if isinstance(found, Val) else default

    def vals(self, name: str) -> list:
        found = self.props.get(name)
        return found if isinstance(found, list) else []


@dataclass(slots=True, eq=False)
class Draft:
    """A device while it is being checked."""

    kind: Kind
    name: str
    name_span: Span
    body: Block
    index: int
    netns: str | None = None
    created_by: Draft | None = None
    master: Draft | None = None
    master_span: Span | None = None
    ports: list[Draft] = field(default_factory=list)
    refs: dict[str, Any] = field(default_factory=dict)  # prop -> DeviceRef / tuple of DeviceRef
    ref: DeviceRef = None  # type: ignore[assignment]  # set once the namespace is known

    def label(self) -> str:
        return f"{self.kind.name} '{self.name}'"


@dataclass(slots=True)
class _HostDraft:
    name: str | None
    span: Span | None
    netns: dict[str, Span] = field(default_factory=dict)
    devices: list[Draft] = field(default_factory=list)
    #: device -> the devices that must exist before it (_dependencies), once references are resolved
    dependencies: dict[Draft, list[tuple[Draft, Span]]] | None = None


# --- 1. structure -------------------------------------------------------------------

class Checker:
    def __init__(self) -> None:
        self.out = Collector()
        self.index = 0
        self.passthru: dict[tuple[str, int], Draft] = {}  # (kind, lower link) -> its passthru device

    def check(self, statements: tuple[Stmt, ...], files: Iterable[str] = (), build_ir: bool = True) -> Site | None:
        """Check everything; then (unless only checking) build the IR."""
        hosts = self._structure(statements)
        for host in hosts:
            self._resolve(host)
        self.out.raise_if_errors()
        if not build_ir:
            return None
        return Site(tuple(self._host_ir(h) for h in hosts), tuple(files))

    def _structure(self, statements: tuple[Stmt, ...]) -> list[_HostDraft]:
        implicit = _HostDraft(None, None)
        hosts: list[_HostDraft] = []
        host_names: dict[str, Span] = {}
        site_netns: dict[str, Span] = {}
        first_host: Span | None = None
        loose: list[Stmt] = []
        for stmt in statements:
            head = stmt.head.text
            if head == "host" and not stmt.head.quoted:
                first_host = first_host or stmt.span
                host = self._host(stmt, host_names)
                if host is not None:
                    hosts.append(host)
            elif head == "netns" and not stmt.head.quoted:
                self._netns(stmt, site_netns)
            else:
                loose.append(stmt)
        if hosts:
            for stmt in loose:
                if stmt.head.text in KINDS:
                    self.out.error(f"{stmt.head.text} '{_name_text(stmt)}' is outside every host block",
                                   stmt.span, hint="this file has host blocks, so every device must be inside one",
                                   notes=[f"the first host block is at {first_host}"])
                else:
                    self._device(stmt, implicit)
            for host in hosts:
                for name, span in site_netns.items():
                    if name in host.netns:
                        self.out.error(f"namespace '{name}' is already declared for every host",
                                       host.netns[name], notes=[f"declared at {span}"])
                host.netns = {**site_netns, **host.netns}
            return hosts
        implicit.netns = site_netns
        for stmt in loose:
            self._device(stmt, implicit)
        return [implicit]

    def _host(self, stmt: Stmt, names: dict[str, Span]) -> _HostDraft | None:
        if len(stmt.words) != 2 or stmt.block is None:
            self.out.error("'host' is written: host NAME { devices… }", stmt.span)
            return None
        word = stmt.words[1]
        if not _HOST_NAME.fullmatch(word.text):
            self.out.error(f"'{word.text}' is not a valid host name", word.span,
                           hint="letters, digits, '-' and '.', starting with a letter or digit")
            return None
        if word.text in names:
            self.out.error(f"host '{word.text}' is declared twice", word.span,
                           notes=[f"first declared at {names[word.text]}"])
            return None
        names[word.text] = word.span
        host = _HostDraft(word.text, word.span)
        for inner in stmt.block:
            if inner.head.text == "host" and not inner.head.quoted:
                self.out.error("host blocks cannot be nested", inner.span)
            elif inner.head.text == "netns" and not inner.head.quoted:
                self._netns(inner, host.netns)
            else:
                self._device(inner, host)
        return host

    def _netns(self, stmt: Stmt, declared: dict[str, Span]) -> None:
        if len(stmt.words) != 2:
            self.out.error("'netns' is written: netns NAME", stmt.span)
            return
        if stmt.block is not None:
            self.out.error("'netns' takes no block", stmt.open_span,
                           hint="put the devices in the namespace with a 'netns NAME' property")
            return
        word = stmt.words[1]
        if not _NETNS_NAME.fullmatch(word.text) or word.text in (".", ".."):
            self.out.error(f"'{word.text}' is not a valid namespace name", word.span,
                           hint="letters, digits and . _ + -, at most 64 characters")
            return
        if word.text in declared:
            self.out.error(f"namespace '{word.text}' is declared twice", word.span,
                           notes=[f"first declared at {declared[word.text]}"])
            return
        declared[word.text] = word.span

    # --- 2. devices and their properties ------------------------------------------

    def _device(self, stmt: Stmt, host: _HostDraft) -> None:
        head = stmt.head
        kind = KINDS.get(head.text)
        if kind is None or head.quoted:
            self.out.error(f"unknown statement '{head.text}'", head.span,
                           did_you_mean(head.text, [*KINDS, *KEYWORDS]) or
                           "a statement is a device kind (bridge, vlan, …) or include, let, for, netns, host")
            return
        if len(stmt.words) < 2:
            self.out.error(f"{kind.name} needs a name", head.span, hint=f"write {kind.name} NAME {{ … }}")
            return
        if len(stmt.words) > 2:
            extra = stmt.words[2]
            self.out.error(f"unexpected '{extra.text}' after the device name", extra.span,
                           hint="properties go in a block: KIND NAME { property value }")
            return
        name = self._name(stmt.words[1])
        if name is None:
            return
        body = self._block(stmt.block or (), props_of(kind), None, (), stmt.span, kind.name)
        draft = Draft(kind, name, stmt.words[1].span, body, self._next())
        netns = body.val("netns")
        draft.netns = netns.value if netns else None
        draft.ref = DeviceRef(name, draft.netns)
        self._required(draft.body, kind.props, draft.label(), draft.name_span)
        host.devices.append(draft)
        peer = body.props.get("peer")
        if isinstance(peer, Block):
            self._peer(draft, peer, host)

    def _peer(self, owner: Draft, block: Block, host: _HostDraft) -> None:
        name_val = block.keys[0]
        draft = Draft(owner.kind, name_val.value, name_val.span, block, self._next(), created_by=owner)
        netns = block.val("netns")
        draft.netns = netns.value if netns else None
        draft.ref = DeviceRef(draft.name, draft.netns)
        host.devices.append(draft)

    def _next(self) -> int:
        self.index += 1
        return self.index

    def _name(self, word: Word) -> str | None:
        try:
            return _INTERFACE_NAME.parse(word.text)
        except BadValue as exc:
            self._bad(exc, word)
            return None

    def _block(self, statements: Iterable[Stmt], table: dict[str, Prop | Section], spec: Section | None,
               keys: tuple[Val, ...], span: Span, owner: str) -> Block:
        block = Block(spec, keys, {}, span)
        first: dict[str, Span] = {}
        for stmt in statements:
            head = stmt.head
            prop = table.get(head.text)
            if prop is not None and not head.quoted:
                block.given.add(prop.name)
            if prop is None or head.quoted:
                hint = did_you_mean(head.text, table)
                if hint:
                    block.given.add(hint.split("'")[1])  # the error names it; "needs 'vni'" would repeat it
                if head.text in KINDS or head.text in KEYWORDS:
                    hint = hint or f"a {head.text} statement cannot stand inside a block"
                self.out.error(f"unknown property '{head.text}' for {owner}", head.span, hint)
                continue
            if isinstance(prop, Section):
                self._section(stmt, prop, block, first, owner)
            else:
                self._prop(stmt, prop, block, first, owner)
        return block

    def _prop(self, stmt: Stmt, prop: Prop, block: Block, first: dict[str, Span], owner: str) -> None:
        words = stmt.words
        head = words[0]
        if stmt.block is not None:
            self.out.error(f"'{prop.name}' takes no block", stmt.open_span)
            return
        if len(words) == 1:
            self.out.error(f"'{prop.name}' needs a value", head.span,
                           hint=f"expected {prop.type.describe}")
            return
        name = prop.name
        if name in first:
            if not prop.repeat:
                self.out.error(f"'{name}' is given twice", head.span, notes=[f"first given at {first[name]}"])
                return
        else:
            first[name] = head.span
        if len(words) == 2 and not prop.multiword:   # one value: most properties (the hot path of checking)
            word = words[1]
            try:
                val = Val(prop.type.parse(word.text), word.span)
            except BadValue as exc:
                self._bad(exc, word)
                if prop.is_list:
                    block.props.setdefault(name, [])
                return
            if prop.is_list:
                block.props.setdefault(name, []).append(val)
            else:
                block.props[name] = val
            return
        values = words[1:]
        if prop.multiword:
            try:
                value = prop.type.parse_words([w.text for w in values])  # type: ignore[attr-defined]
            except BadValue as exc:
                self._bad(exc, values[min(exc.word, len(values) - 1)])
                return
            self._store(block, prop, [Val(value, values[0].span)])
            return
        if len(values) > 1 and not prop.many:
            self.out.error(f"'{prop.name}' takes one value", values[1].span,
                           hint='quote text with spaces: "…"' if isinstance(prop.type, Text) else None)
            return
        parsed = []
        for word in values:
            try:
                parsed.append(Val(prop.type.parse(word.text), word.span))
            except BadValue as exc:
                self._bad(exc, word)
        self._store(block, prop, parsed)

    def _store(self, block: Block, prop: Prop, parsed: list[Val]) -> None:
        if prop.is_list:
            block.props.setdefault(prop.name, []).extend(parsed)
        elif parsed:
            block.props[prop.name] = parsed[0]

    def _bad(self, exc: BadValue, word: Word) -> None:
        span = word.span
        if exc.length and word.exact:
            span = span.at(exc.offset, exc.length)
        self.out.error(exc.message, span, exc.hint)

    def _section(self, stmt: Stmt, spec: Section, block: Block, first: dict[str, Span], owner: str) -> None:
        head = stmt.head
        labels = stmt.words[1:]
        form = " ".join([spec.name, *(k.upper() for k, _ in spec.keys)])
        if len(labels) != len(spec.keys):
            at = labels[len(spec.keys)].span if len(labels) > len(spec.keys) else head.span
            self.out.error(f"'{spec.name}' is written: {form}{' { … }' if spec.block_required else ' [{ … }]'}", at)
            return
        keys = []
        for word, (_, kind_of_key) in zip(labels, spec.keys):
            try:
                keys.append(Val(kind_of_key.parse(word.text), word.span))
            except BadValue as exc:
                self._bad(exc, word)
        if len(keys) != len(labels):
            return
        if stmt.block is None and spec.block_required:
            self.out.error(f"'{spec.name}' needs a block", labels[-1].span if labels else head.span,
                           hint=f"write {form} {{ … }}")
            return
        label = " ".join([spec.name, *(_label_text(k) for k in keys)])
        child = self._block(stmt.block or (), spec.props, spec, tuple(keys), head.span, label)
        if spec is not PEER:
            self._required(child, spec.props, f"'{label}'", head.span)
        if spec.single:
            if spec.name in first:
                self.out.error(f"'{spec.name}' is given twice", head.span,
                               notes=[f"first given at {first[spec.name]}"])
                return
            first[spec.name] = head.span
            block.props[spec.name] = child
            return
        existing = block.props.setdefault(spec.name, [])
        for other in existing:
            if [k.value for k in other.keys] == [k.value for k in keys]:
                self.out.error(f"{label} is given twice", head.span, notes=[f"first given at {other.span}"])
                return
        existing.append(child)

    def _required(self, block: Block, table: dict[str, Prop | Section], owner: str, span: Span) -> None:
        found = _REQUIRED.get(id(table))
        if found is None:
            found = _REQUIRED[id(table)] = (table, tuple(name for name, spec in table.items() if spec.required))
        for name in found[1]:
            if name not in block.given:
                self.out.error(f"{owner} needs '{name}'", span, hint=f"add '{name} …' to its block")

    # --- 3. per host: names, references, masters, cycles ----------------------------------

    def _resolve(self, host: _HostDraft) -> None:
        index: dict[DeviceRef, Draft] = {}
        by_name: dict[str, list[Draft]] = {}
        for draft in host.devices:
            if draft.netns is not None and draft.netns not in host.netns:
                span = draft.body.val("netns").span  # type: ignore[union-attr]
                self.out.error(f"namespace '{draft.netns}' is not declared", span,
                               did_you_mean(draft.netns, host.netns) or f"declare it with 'netns {draft.netns}'")
            if draft.ref in index:
                other = index[draft.ref]
                where = "" if draft.netns is None else f" in namespace '{draft.netns}'"
                self.out.error(f"device '{draft.name}' is declared twice{where}", draft.name_span,
                               notes=[f"{other.label()} is declared at {other.name_span}"])
                continue
            index[draft.ref] = draft
            by_name.setdefault(draft.name, []).append(draft)

        self._index = index
        self._by_name = by_name
        for draft in host.devices:
            if index.get(draft.ref) is not draft:
                continue
            self._references(draft)
        self._masters(host)
        self._cycles(host)
        for draft in host.devices:
            if index.get(draft.ref) is draft:
                check = KIND_CHECKS.get(draft.kind.name)
                if check:
                    check(self, draft)
                self._common_checks(draft)
        self._host_checks(host)

    def _find(self, name: str, span: Span, draft: Draft, *, lower: bool = False) -> Draft | None:
        """Resolve a reference from `draft`: its own namespace, or for a lower link the host's own."""
        found = self._index.get(DeviceRef(name, draft.netns))
        if found is not None:
            return found
        candidates = self._by_name.get(name, [])
        if lower and draft.netns is not None:
            root = self._index.get(DeviceRef(name, None))
            if root is not None:
                return root
        if candidates:
            other = candidates[0]
            here = _ns_text(draft.netns)
            there = _ns_text(other.netns)
            if lower:
                where = "the host's own namespace too" if draft.netns is None else \
                    f"{here} or in the host's own namespace"
                self.out.error(f"{draft.label()} is in {here} but its lower link '{name}' is in {there}", span,
                               hint=f"vnetc creates a {draft.kind.name} next to its lower link and then moves it, "
                                    f"so the link must be in {where}")
            else:
                self.out.error(f"'{name}' is in {there} but {draft.label()} is in {here}", span,
                               hint="both must be in one namespace")
            return None
        names = [d.name for d in self._index.values()]
        self.out.error(f"unknown device '{name}'", span,
                       did_you_mean(name, names) or f"declare an existing NIC with 'interface {name}'")
        return None

    def _references(self, draft: Draft) -> None:
        lower = draft.kind.lower
        for prop_name in _reference_props(draft.kind):
            found = draft.body.props.get(prop_name)
            if found is None:
                continue
            vals = found if isinstance(found, list) else [found]
            refs = []
            seen: dict[str, Span] = {}
            for val in vals:
                if val.value in seen:
                    self.out.error(f"'{val.value}' is listed twice in '{prop_name}'", val.span,
                                   notes=[f"first listed at {seen[val.value]}"])
                    continue
                seen[val.value] = val.span
                target = self._find(val.value, val.span, draft, lower=prop_name == lower)
                if target is not None:
                    if target is draft and prop_name != lower:
                        self.out.error(f"{draft.label()} cannot name itself in '{prop_name}'", val.span)
                        continue
                    refs.append((target, val.span))
            draft.refs[prop_name] = refs if isinstance(found, list) else (refs[0] if refs else None)
        for port in draft.body.vals("port"):
            key = port.keys[0]
            target = self._find(key.value, key.span, draft)
            draft.refs.setdefault("port", []).append((target, key.span) if target else None)

    def _masters(self, host: _HostDraft) -> None:
        claims: list[tuple[Draft, Draft, Span]] = []   # (port, master, span of the claim)
        for draft in host.devices:
            if self._index.get(draft.ref) is not draft:
                continue
            master = draft.body.val("master")
            if master is not None:
                target = self._find(master.value, master.span, draft)
                if target is not None:
                    claims.append((draft, target, master.span))
            for port, span in draft.refs.get("ports", []):
                claims.append((port, draft, span))
            for item in draft.refs.get("port", []):
                if item is not None:
                    claims.append((item[0], draft, item[1]))
        for port, master, span in claims:
            if master.kind.name not in MASTER_KINDS:
                self.out.error(f"'{master.name}' is a {master.kind.name}; only a bridge, bond or team can be a master",
                               span)
                continue
            if port is master:
                self.out.error(f"{master.label()} cannot be its own port", span)
                continue
            if port.master is None:
                port.master, port.master_span = master, span
                master.ports.append(port)
            elif port.master is not master:
                self.out.error(f"'{port.name}' is enslaved to both '{port.master.name}' and '{master.name}'", span,
                               hint="a device can have only one master",
                               notes=[f"enslaved to '{port.master.name}' at {port.master_span}"])
        for draft in host.devices:
            if draft.ports:
                declared = {id(p): i for i, (p, _) in enumerate(draft.refs.get("ports", []))}
                last = len(declared)
                draft.ports.sort(key=lambda p: declared.get(id(p), last))

    def _cycles(self, host: _HostDraft) -> None:
        """Two graphs must be acyclic: what is stacked on what (the kernel refuses a device
        above itself: upper -> lower link, master -> port) and what must exist first (the
        creation order: device -> lower link, port -> master, peer -> its creator, IFB ->
        the devices it takes ingress from, failover -> its slaves)."""
        stacking: dict[Draft, list[tuple[Draft, Span]]] = {}
        for draft in host.devices:
            lower = draft.kind.lower
            if lower and draft.refs.get(lower):
                stacking.setdefault(draft, []).append(draft.refs[lower])
            if draft.master is not None:
                stacking.setdefault(draft.master, []).append((draft, draft.master_span))
        reported: set[Draft] = set()
        self._report_cycles(host.devices, stacking, reported, "devices stacked in a cycle",
                            "a device cannot be below itself (through link, dev, master or ports)")
        host.dependencies = _dependencies(host.devices)
        self._report_cycles(host.devices, host.dependencies, reported,
                            "devices that each need the other to exist first",
                            "redirect-ingress, primary and standby must not lead back to the device")

    def _report_cycles(self, drafts: list[Draft], edges: dict[Draft, list[tuple[Draft, Span]]],
                       reported: set[Draft], message: str, hint: str) -> None:
        GREY, BLACK = 1, 2   # (unvisited: not in colour)
        colour: dict[Draft, int] = {}
        for start in drafts:
            if start in colour:
                continue
            if not edges.get(start):    # most devices: nothing below, or nothing that must exist first
                colour[start] = BLACK
                continue
            stack: list[tuple[Draft, int]] = [(start, 0)]
            path: list[Draft] = [start]
            colour[start] = GREY
            while stack:
                node, i = stack[-1]
                out = edges.get(node, ())
                if i < len(out):
                    stack[-1] = (node, i + 1)
                    nxt, span = out[i]
                    state = colour.get(nxt)
                    if state is None:
                        colour[nxt] = GREY
                        stack.append((nxt, 0))
                        path.append(nxt)
                    elif state == GREY and not reported.intersection(path[path.index(nxt):]):
                        loop = path[path.index(nxt):] + [nxt]
                        reported.update(loop)
                        self.out.error(f"{message}: {' → '.join(d.name for d in loop)}", span, hint=hint)
                else:
                    colour[node] = BLACK
                    stack.pop()
                    path.pop()

    # --- checks shared by all kinds ----------------------------------------------------

    def _common_checks(self, draft: Draft) -> None:
        families: dict[int, Val] = {}
        for val in draft.body.vals("gateway"):
            if val.value.version in families:
                self.out.error(f"a second IPv{val.value.version} gateway", val.span,
                               hint="give at most one IPv4 and one IPv6 gateway; use 'route' for more",
                               notes=[f"the first is at {families[val.value.version].span}"])
            else:
                families[val.value.version] = val
        self._route_conflicts(draft)
        if draft.master is not None:
            for prop in ("address", "gateway", "route", "dns"):
                vals = draft.body.vals(prop)
                if vals:
                    self.out.warning(f"'{draft.name}' is a port of {draft.master.label()}; its {prop} is not used",
                                     vals[0].span, hint=f"give the {prop} to '{draft.master.name}' instead")
                    break
            dhcp = draft.body.val("dhcp")
            if dhcp and dhcp.value != "off":
                self.out.warning(f"'{draft.name}' is a port of {draft.master.label()}; dhcp on it is not used",
                                 dhcp.span)
            mtu, master_mtu = draft.body.val("mtu"), draft.master.body.val("mtu")
            if mtu and master_mtu and mtu.value > master_mtu.value:
                self.out.warning(f"MTU {mtu.value} of port '{draft.name}' is larger than MTU {master_mtu.value} "
                                 f"of its master '{draft.master.name}'", mtu.span)
            elif mtu and master_mtu and mtu.value < master_mtu.value:
                self.out.warning(f"MTU {mtu.value} of port '{draft.name}' is smaller than MTU {master_mtu.value} "
                                 f"of its master '{draft.master.name}'; larger frames are dropped", mtu.span)

    def _route_conflicts(self, draft: Draft) -> None:
        """Warn about two routes to one destination in one table with one metric: the kernel keeps
        only the first (a `gateway` is a default route of its IP version, in the main table, metric 0)."""
        seen: dict[tuple, Span] = {}
        entries: list[tuple[tuple, Span, str]] = []
        families: set[int] = set()
        for val in draft.body.vals("gateway"):
            if val.value.version not in families:  # a second one of a family is already an error
                families.add(val.value.version)
                entries.append(((val.value.version, "default", "main", 0), val.span,
                                f"IPv{val.value.version} default"))
        for val in draft.body.vals("route"):
            route = val.value
            families = (4, 6) if route.prefix == "default" and route.via is None else \
                ((route.via.version,) if route.prefix == "default" else (route.prefix.version,))
            for family in families:
                prefix = "default" if route.prefix == "default" or route.prefix.prefixlen == 0 else str(route.prefix)
                what = f"IPv{family} default" if prefix == "default" else prefix
                entries.append(((family, prefix, route.table or "main", route.metric or 0), val.span, what))
        for key, span, what in entries:
            if key in seen:
                table = "" if key[2] == "main" else f" in table {key[2]}"
                self.out.warning(f"a second {what} route{table} with metric {key[3]} on '{draft.name}'", span,
                                 hint="the kernel keeps one route per destination, table and metric (and netplan "
                                      "refuses the file); give this one another metric or table",
                                 notes=[f"the first is at {seen[key]}"])
            else:
                seen[key] = span

    def _host_checks(self, host: _HostDraft) -> None:
        redirected: dict[int, Draft] = {}
        sim_ids: dict[int, Draft] = {}
        for draft in host.devices:
            for source, span in draft.refs.get("redirect-ingress", []):
                if id(source) in redirected and redirected[id(source)] is not draft:
                    other = redirected[id(source)]
                    self.out.error(f"the ingress of '{source.name}' is already redirected into '{other.name}'", span,
                                   hint="a device's ingress can be redirected into one IFB only")
                redirected[id(source)] = draft
            sim_id = draft.body.val("id") if draft.kind.name == "netdevsim" else None
            if sim_id is not None:
                if sim_id.value in sim_ids:
                    self.out.error(f"netdevsim id {sim_id.value} is already used by '{sim_ids[sim_id.value].name}'",
                                   sim_id.span)
                sim_ids[sim_id.value] = draft

    # --- 4. the IR ------------------------------------------------------------------

    def _host_ir(self, host: _HostDraft) -> Host:
        order = _dependency_order(host.devices, host.dependencies or _dependencies(host.devices))
        devices = tuple(self._device_ir(d) for d in order)
        by_netns: dict[str | None, list[Device]] = {None: [], **{name: [] for name in host.netns}}
        for device in devices:
            by_netns[device.netns].append(device)
        namespaces = [Namespace(name, tuple(members)) for name, members in by_netns.items()]
        return Host(host.name, tuple(namespaces), devices, host.span)

    def _device_ir(self, draft: Draft) -> Device:
        table = props_of(draft.kind) if draft.created_by is None else PEER.props
        values, spans = _values(draft.body, table, draft)
        values["name"] = draft.name
        values["netns"] = draft.netns
        values["master"] = draft.master.ref if draft.master else None
        if draft.kind.master:
            values["ports"] = tuple(p.ref for p in draft.ports)
        if draft.created_by is not None:
            values["created_by"] = draft.created_by.ref
            values["peer"] = draft.created_by.ref
        elif "peer" in draft.body.props:
            peer = draft.body.props["peer"]
            values["peer"] = DeviceRef(peer.keys[0].value, peer.value("netns"))
        return DEVICE_CLASSES[draft.kind.name](span=draft.name_span, spans=MappingProxyType(spans), **values)


def _values(block: Block, table: dict[str, Prop | Section], draft: Draft) -> tuple[dict, dict]:
    """The IR values of the properties the block gives (the IR classes hold the defaults)."""
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    refs = draft.refs
    for name, found in block.props.items():
        spec = table[name]
        key = python_name(name)
        if isinstance(spec, Section):
            if not spec.single:
                values[key] = tuple(_record(b, spec, draft) for b in found)
            continue
        if name == "master":
            continue  # resolved by _masters (draft.master)
        if spec.ref and name in refs:
            resolved = refs[name]
            if isinstance(resolved, list):
                values[key] = tuple(d.ref for d, _ in resolved)
            elif resolved is not None:
                values[key] = resolved[0].ref
        elif isinstance(found, list):
            values[key] = tuple(v.value for v in found)
        else:
            values[key] = found.value
        first = found[0] if isinstance(found, list) and found else found
        if isinstance(first, Val):
            spans[name] = first.span
    return values, spans


def _record(block: Block, spec: Section, draft: Draft) -> Any:
    values, spans = _values(block, spec.props, draft)
    for (key, _), val in zip(spec.keys, block.keys):
        values[python_name(key)] = DeviceRef(val.value, draft.netns) if spec.ref and key == spec.keys[0][0] \
            else val.value
        spans[key] = val.span
    return RECORD_CLASSES[spec.name](span=block.span, spans=MappingProxyType(spans), **values)


def _dependencies(drafts: list[Draft]) -> dict[Draft, list[tuple[Draft, Span]]]:
    """device -> the devices that must exist before it, with the span that says so."""
    edges: dict[Draft, list[tuple[Draft, Span]]] = {}
    for d in drafts:
        deps: list[tuple[Draft, Span]] = []
        lower = d.kind.lower
        if lower and d.refs.get(lower):
            deps.append(d.refs[lower])
        if d.master is not None:
            deps.append((d.master, d.master_span))  # type: ignore[arg-type]
        if d.created_by is not None:
            deps.append((d.created_by, d.name_span))
        deps.extend(d.refs.get("redirect-ingress", []))
        if d.kind.name == "failover":
            deps.extend(d.refs[key] for key in ("primary", "standby") if d.refs.get(key))
        edges[d] = [(dep, span) for dep, span in deps if dep is not d]
    return edges


def _dependency_order(drafts: list[Draft], edges: dict[Draft, list[tuple[Draft, Span]]]) -> list[Draft]:
    """Kahn's algorithm on _dependencies, ties broken by declaration order (the checker
    has refused every cycle before this runs)."""
    by_index = {d.index: d for d in drafts}
    waiting: dict[int, int] = {}
    users: dict[int, list[int]] = {}
    for d in drafts:
        deps = {dep.index for dep, _ in edges[d]}
        waiting[d.index] = len(deps)
        for dep in deps:
            users.setdefault(dep, []).append(d.index)
    ready = [i for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(by_index[i])
        for user in users.get(i, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(order) != len(drafts):  # pragma: no cover - a checker bug, not a user error
        raise AssertionError("dependency cycle survived the cycle check")
    return order


#: id of a property table -> (the table, kept so that its id stays its own; its required properties)
_REQUIRED: dict[int, tuple[dict, tuple[str, ...]]] = {}
_REFERENCE_PROPS: dict[str, tuple[str, ...]] = {}


def _reference_props(kind: Kind) -> tuple[str, ...]:
    """The properties of a kind that name devices (but `master`, resolved by _masters), in schema order."""
    found = _REFERENCE_PROPS.get(kind.name)
    if found is None:
        found = _REFERENCE_PROPS[kind.name] = tuple(
            name for name, spec in props_of(kind).items()
            if not isinstance(spec, Section) and spec.ref and name != "master")
    return found


def _ns_text(netns: str | None) -> str:
    return "the host's own namespace" if netns is None else f"namespace '{netns}'"


def _name_text(stmt: Stmt) -> str:
    return stmt.words[1].text if len(stmt.words) > 1 else ""


def _label_text(val: Val) -> str:
    return str(val.value)


# --- the checks of each kind (language.md §4) ---------------------------------------------

def _check_vxlan(c: Checker, d: Draft) -> None:
    remote, group, local = d.body.val("remote"), d.body.val("group"), d.body.val("local")
    if remote and group:
        c.out.error("'remote' and 'group' cannot both be given", group.span,
                    hint="a VXLAN sends either to one remote (unicast) or to a multicast group")
    far = remote or group
    if far and local and far.value.version != local.value.version:
        c.out.error(f"'local' {local.value} and '{'remote' if remote else 'group'}' {far.value} "
                    f"are of different IP versions", local.span)


def _check_macvlan(c: Checker, d: Draft) -> None:
    macs = d.body.vals("source-macs")
    if macs and d.body.value("mode", "bridge") != "source":
        c.out.error("'source-macs' needs 'mode source'", macs[0].span,
                    hint="source MACs filter traffic only in source mode")
    if d.body.value("mode") == "passthru":
        link = d.refs.get("link")
        if link:
            taken = c.passthru.setdefault((d.kind.name, id(link[0])), d)
            if taken is not d:
                c.out.error(f"'{link[0].name}' already has a passthru {d.kind.name} ('{taken.name}')",
                            d.body.val("mode").span, hint="passthru takes over the whole lower device")  # type: ignore[union-attr]


def _check_bridge(c: Checker, d: Draft) -> None:
    filtering = d.body.value("vlan-filtering", False)
    ports = d.body.vals("port")
    for port in ports:
        ranges = port.vals("vlans")
        members = [v.value for v in ranges]
        pvid = port.val("pvid")
        if pvid and members and not any(lo <= pvid.value <= hi for lo, hi in members):
            c.out.error(f"PVID {pvid.value} is outside the port's vlans", pvid.span,
                        hint=f"add {pvid.value} to 'vlans' or change the PVID")
        for item in port.vals("untagged"):
            lo, hi = item.value
            if members and not all(any(a <= v <= b for a, b in members) for v in (lo, hi)):
                c.out.error(f"untagged VLAN {lo if lo == hi else f'{lo}-{hi}'} is outside the port's vlans",
                            item.span, hint="untagged VLANs must also be listed in 'vlans'")
        if not filtering and (ranges or pvid or port.vals("untagged")):
            c.out.warning(f"port VLAN settings of '{port.keys[0].value}' have no effect: "
                          f"bridge '{d.name}' has no 'vlan-filtering on'", (pvid or (ranges or port.vals("untagged"))[0]).span)
    has_ip = d.body.vals("address") or d.body.value("dhcp", "off") != "off"
    if len(d.ports) == 1 and not has_ip and d.master is None:
        c.out.warning(f"bridge '{d.name}' has one port and no address", d.name_span,
                      hint="a bridge with one port forwards nothing; add ports or an address")


def _check_bond(c: Checker, d: Draft) -> None:
    primary = d.refs.get("primary")
    if primary and primary[0] not in d.ports:
        c.out.error(f"primary '{primary[0].name}' is not a port of bond '{d.name}'", primary[1],
                    hint=f"add it to 'ports' or set 'master {d.name}' on it")
    mode = d.body.value("mode", "balance-rr")
    lacp = d.body.val("lacp-rate")
    if lacp and mode != "802.3ad":
        c.out.warning(f"'lacp-rate' has no effect in mode {mode}", lacp.span, hint="it applies to mode 802.3ad")
    if primary and mode not in ("active-backup", "balance-tlb", "balance-alb"):
        c.out.warning(f"'primary' has no effect in mode {mode}", primary[1],
                      hint="it applies to active-backup, balance-tlb and balance-alb")


def _check_macsec(c: Checker, d: Draft) -> None:
    body = d.body
    sas = [(sa, "tx-sa") for sa in body.vals("tx-sa")]
    for channel in body.vals("rx-channel"):
        sas.extend((sa, "sa") for sa in channel.vals("sa"))
    for sa, what in sas:
        key, key_file = sa.val("key"), sa.val("key-file")
        label = f"{what} {sa.keys[0].value}"
        if key and key_file:
            c.out.error(f"{label} has both 'key' and 'key-file'", key_file.span, hint="give one of them")
        elif "key" not in sa.given and "key-file" not in sa.given:
            c.out.error(f"{label} needs 'key' or 'key-file'", sa.span)
        if key:
            c.out.warning(f"{label} holds its key inline", key.span,
                          hint="keep keys out of configuration: use key-file \"/etc/…\" readable only by root")
        if "key-id" not in sa.given:
            c.out.error(f"{label} needs 'key-id'", sa.span)
    cak, cak_file, ckn = body.val("mka-cak"), body.val("mka-cak-file"), body.val("mka-ckn")
    if cak and cak_file:
        c.out.error("'mka-cak' and 'mka-cak-file' cannot both be given", cak_file.span)
    if (cak or cak_file) and not ckn:
        c.out.error("MKA needs 'mka-ckn' with the CAK", (cak or cak_file).span)  # type: ignore[union-attr]
    if ckn and not (cak or cak_file):
        c.out.error("'mka-ckn' needs 'mka-cak' or 'mka-cak-file'", ckn.span)
    if cak:
        c.out.warning("the MKA CAK is inline", cak.span, hint="use mka-cak-file \"/etc/…\" readable only by root")
    if (cak or cak_file or ckn) and sas:
        c.out.error("static keys (tx-sa, rx-channel) and MKA cannot be combined", (cak or cak_file or ckn).span,  # type: ignore[union-attr]
                    hint="MKA negotiates the SAs itself")


def _check_netdevsim(c: Checker, d: Draft) -> None:
    vfs = d.body.val("vfs")
    count = vfs.value if vfs else 0
    for vf in d.body.vals("vf"):
        index = vf.keys[0]
        if index.value >= count:
            c.out.error(f"vf {index.value} does not exist: netdevsim '{d.name}' has {count} VFs", index.span,
                        hint=f"set 'vfs {index.value + 1}' or more")


def _check_failover(c: Checker, d: Draft) -> None:
    primary, standby = d.refs.get("primary"), d.refs.get("standby")
    if primary and standby and primary[0] is standby[0]:
        c.out.error("'primary' and 'standby' must be different devices", standby[1])


def _check_ipoib(c: Checker, d: Draft) -> None:
    pkey = d.body.val("pkey")
    if pkey and pkey.value & 0x7FFF == 0:
        c.out.error(f"P_Key 0x{pkey.value:04x} is not a usable partition key", pkey.span,
                    hint="the kernel refuses 0x0000 and 0x8000 (the default partition is 0x7fff/0xffff)")


KIND_CHECKS: dict[str, Callable[[Checker, Draft], None]] = {
    "ipoib": _check_ipoib,
    "vxlan": _check_vxlan,
    "macvlan": _check_macvlan,
    "macvtap": _check_macvlan,
    "bridge": _check_bridge,
    "bond": _check_bond,
    "macsec": _check_macsec,
    "netdevsim": _check_netdevsim,
    "failover": _check_failover,
}
