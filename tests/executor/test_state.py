"""The observed state, read the fast way, equals the state read the plain way (fresh namespaces):
the routes a kernel sends for filtered dumps equal those sorted out of full dumps, and the link
attributes a Picker finds by known layouts equal a walk of every attribute."""

from __future__ import annotations

import pytest

from executor_helpers import namespace
from harness import kernel
from harness.netns import add_veth, ip
from vnetc.backends.executor import netlink as nl
from vnetc.backends.executor import state


def _routes(ns: str, tables: frozenset[int], filtered: bool, monkeypatch) -> list:
    if not filtered:
        monkeypatch.setattr(nl.Socket, "filter_dumps", lambda self: False)     # as on Linux < 4.20
    with nl.Socket(ns) as sock:
        routes = state.read(sock, ns, route_tables=tables).routes
    monkeypatch.undo()
    return sorted(routes, key=repr)


def test_filtered_route_dumps_read_what_full_dumps_read(monkeypatch):
    kernel.require_kind("veth")
    with namespace() as ns:
        add_veth(ns, "v0")
        ip(ns, "addr", "add", "10.0.0.1/24", "dev", "v0")
        ip(ns, "-6", "addr", "add", "fd00::1/64", "dev", "v0", "nodad")
        for command in (["route", "add", "10.1.0.0/16", "via", "10.0.0.9"],                        # main, boot
                        ["route", "add", "10.2.0.0/16", "via", "10.0.0.9", "table", "100", "proto", "static"],
                        ["route", "add", "10.3.0.0/16", "via", "10.0.0.9", "table", "300", "proto", "118"],
                        ["route", "add", "10.4.0.0/16", "via", "10.0.0.9", "table", "300", "proto", "static"],
                        ["route", "add", "10.5.0.0/16", "via", "10.0.0.9", "table", "70000", "proto", "118"],
                        ["-6", "route", "add", "fd01::/64", "via", "fd00::9", "proto", "118"],
                        ["-6", "route", "add", "fd02::/64", "via", "fd00::9", "table", "100"]):
            ip(ns, *command)
        for tables in (frozenset(), frozenset({nl.RT_TABLE_MAIN}), frozenset({nl.RT_TABLE_MAIN, 100, 200})):
            fast = _routes(ns, tables, True, monkeypatch)
            assert fast == _routes(ns, tables, False, monkeypatch)
            got = {(str(r.dst), r.table, r.proto) for r in fast}
            vnetcs = {("10.3.0.0/16", 300, 118), ("10.5.0.0/16", 70000, 118), ("fd01::/64", 254, 118)}
            others = {("10.1.0.0/16", 254, 3), ("10.2.0.0/16", 100, 4), ("fd02::/64", 100, 3)}
            assert got == vnetcs | {o for o in others if o[1] in tables}, tables


@pytest.mark.parametrize("names", [["va", "vbb", "vccc"], [f"veth{i}" for i in range(40)]])
def test_the_picker_finds_what_a_walk_finds(names):
    kernel.require_kind("veth")
    kernel.require_kind("bridge")
    with namespace() as ns:
        ip(ns, "link", "add", "br0", "type", "bridge")
        for i, name in enumerate(names):
            add_veth(ns, name, f"p{i}", up=i % 2 == 0)
            if i % 3 == 0:
                ip(ns, "link", "set", name, "master", "br0", "alias", "x" * i)
        with nl.Socket(ns) as sock:
            bodies = [body for _, body in sock.dump_all(
                nl.RTM_GETLINK, nl.ifinfo() + nl.u32(nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_SKIP_STATS))]
        pick = nl.Picker(nl.IFINFO_SIZE, state._LINK_ATTRS)
        for body in bodies:
            walked = {kind: bytes(view) for kind, view in nl.pick(body, nl.IFINFO_SIZE, state._LINK_ATTRS).items()}
            assert {kind: bytes(body[begin:end]) for kind, (begin, end) in pick(body).items()} == walked
        assert sum(len(layouts) for layouts in pick.layouts.values()) < len(bodies)     # some were known
