"""A re-apply reads the kernel every time: whatever changed out of band since the last apply —
an alias, MTU, MAC, master, up/down state, link group, kind attribute, bridge port setting,
address or route, a deleted device — is in the next plan, and applying it puts it right.

Each case applies the site into a fresh namespace, changes one thing with `ip` behind vnetc's
back, and checks the plan names it (and only that device), that `apply` repairs it, and that
the plan after that is empty. A change vnetc must leave alone (a route someone else added, the
same as one the site wants) must leave the plan empty.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from executor_helpers import fake_interfaces, namespace, problems, vnetc, write_site
from harness import kernel
from harness.netns import ip
from vnetc.backends.executor import owner

SITE = """
interface eth0
bridge br0 {
    ports eth0
    port ve0 { cost 7 }
    address 10.0.0.2/24
    address fd00::2/64
    gateway 10.0.0.1
    route 10.9.0.0/16 via 10.0.0.254 metric 50
    route 10.8.0.0/16 via 10.0.0.253 table 100
    route fd09::/64 via fd00::1 table 100
    mtu 1400
    mac 52:54:00:aa:bb:01
    stp on
    description "the LAN bridge"
}
veth ve0 { master br0; peer vp0 { address 192.168.5.1/24; mtu 1400 } }
vxlan vx1 { vni 42; dev br0; remote 10.0.0.77; learning off }
bridge br1 { state down }
"""

NO_CHANGE = "No changes: the kernel matches the site.\n"

BR0, BR1, VE0, VP0 = "~ bridge br0: change", "~ bridge br1: change", "~ veth ve0: change", "~ veth vp0: change"

#: name -> (the change, as `ip` arguments, OWNER standing for the site's owner id; the plan's lines
#: for it: the head of each step, exactly, and details or errors it must contain). No lines: the
#: plan must stay empty.
CHANGES: dict[str, tuple[list[list[str]], list[str]]] = {
    "alias": ([["link", "set", "br0", "alias", "vnetc:OWNER someone else"]], [BR0, "description 'the LAN bridge'"]),
    "alias not vnetc's": ([["link", "set", "br1", "alias", "someone else"]],
                          ["error: bridge br1: the name is taken by a device vnetc did not create"]),
    "alias of a peer": ([["link", "set", "vp0", "alias", "someone else"]], [VP0, "description ''"]),
    "mtu": ([["link", "set", "br0", "mtu", "1300"]], [BR0, "mtu 1300 -> 1400"]),
    "mtu of a peer": ([["link", "set", "vp0", "mtu", "1500"]], [VP0, "mtu 1500 -> 1400"]),
    "mac": ([["link", "set", "br0", "address", "52:54:00:aa:bb:99"]],
            [BR0, "mac 52:54:00:aa:bb:99 -> 52:54:00:aa:bb:01"]),
    "master released": ([["link", "set", "ve0", "nomaster"]], [VE0, "master none -> br0"]),
    "master moved": ([["link", "set", "ve0", "master", "br1"]], [VE0, "master br1 -> br0"]),
    "master of an interface": ([["link", "set", "eth0", "nomaster"]],
                               ["~ interface eth0: configure", "master none -> br0"]),
    "state down": ([["link", "set", "vp0", "down"]], [VP0, "state down -> up"]),
    "state up": ([["link", "set", "br1", "up"]], [BR1, "state up -> down"]),
    "group": ([["link", "set", "br1", "group", "5"]], [BR1]),
    "kind attribute": ([["link", "set", "br0", "type", "bridge", "stp_state", "0"]], [BR0, "stp off -> on"]),
    "kind attribute of a vxlan": ([["link", "set", "vx1", "type", "vxlan", "learning"]],
                                  ["~ vxlan vx1: change", "learning on -> off"]),
    "bridge port setting": ([["link", "set", "ve0", "type", "bridge_slave", "cost", "9"]],
                            [VE0, "bridge port cost 9 -> 7"]),
    "address removed": ([["addr", "del", "10.0.0.2/24", "dev", "br0"]], [BR0, "+ address 10.0.0.2/24"]),
    "ipv6 address removed": ([["-6", "addr", "del", "fd00::2/64", "dev", "br0"]], [BR0, "+ address fd00::2/64"]),
    "address added": ([["addr", "add", "10.0.0.99/24", "dev", "br0"]], [BR0, "- address 10.0.0.99/24"]),
    "address of a peer": ([["addr", "flush", "dev", "vp0"]], [VP0, "+ address 192.168.5.1/24"]),
    "gateway removed": ([["route", "del", "default"]], [BR0, "+ route default via 10.0.0.1 (IPv4)"]),
    "route removed": ([["route", "del", "10.9.0.0/16"]], [BR0, "+ route 10.9.0.0/16 via 10.0.0.254 metric 50"]),
    "route of another table removed": ([["route", "del", "10.8.0.0/16", "table", "100"]],
                                       [BR0, "+ route 10.8.0.0/16 via 10.0.0.253 table 100"]),
    "ipv6 route of another table removed": ([["-6", "route", "del", "fd09::/64", "table", "100"]],
                                            [BR0, "+ route fd09::/64 via fd00::1 table 100"]),
    "route's gateway changed": ([["route", "replace", "10.9.0.0/16", "via", "10.0.0.253", "metric", "50", "dev",
                                  "br0", "proto", "118"]],
                                [BR0, "+ route 10.9.0.0/16 via 10.0.0.254 metric 50",
                                 "- route 10.9.0.0/16 via 10.0.0.253 metric 50"]),
    "a vnetc route in a table the site does not use": (
        [["route", "add", "10.52.0.0/16", "via", "10.0.0.9", "dev", "br0", "table", "300", "proto", "118"]],
        [BR0, "- route 10.52.0.0/16 via 10.0.0.9 metric 0 table 300"]),
    "a vnetc IPv6 route the site no longer has": (
        [["-6", "route", "add", "fd52::/64", "via", "fd00::9", "dev", "br0", "proto", "118"]],
        [BR0, "- route fd52::/64 via fd00::9 metric 1024"]),
    "device deleted": ([["link", "del", "br1"]], ["+ bridge br1: create"]),
    "veth pair deleted": ([["link", "del", "ve0"]], ["+ veth ve0: create", "+ veth vp0: create"]),
    # left alone: another's route in a table the site uses, another's route equal to one the site
    # wants, another's address on an interface vnetc configures but does not own
    "someone else's route": ([["route", "add", "10.51.0.0/16", "via", "10.0.0.9", "table", "100"]], []),
    "the same route, someone else's": ([["route", "del", "10.9.0.0/16"],
                                        ["route", "add", "10.9.0.0/16", "via", "10.0.0.254", "metric", "50",
                                         "proto", "static"]], []),
    "someone else's address on an interface": ([["addr", "add", "10.7.0.1/24", "dev", "eth0"]], []),
}
HEADS = (": create", ": change", ": configure", ": delete", ": recreate")


def _is_head(line: str) -> bool:
    return line.split(" ", 1)[0] in ("+", "~", "-", "-/+") and line.endswith(HEADS)


@pytest.fixture(scope="module")
def kinds_needed():
    for kind in ("bridge", "veth", "vxlan"):
        kernel.require_kind(kind)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_an_out_of_band_change_is_in_the_next_plan(name, kinds_needed, tmp_path):
    commands, expected = CHANGES[name]
    site = write_site(tmp_path, SITE)
    mark = owner.owner_id(site, None)
    with namespace() as ns:
        fake_interfaces(ns, site)
        first = vnetc("apply", site, ns)
        assert first.exit_code == 0, first.stdout + first.stderr
        assert vnetc("plan", site, ns).stdout == NO_CHANGE
        for command in commands:
            ip(ns, *[word.replace("OWNER", mark) for word in command])
        plan = vnetc("plan", site, ns)
        lines = [line.strip() for line in plan.stdout.splitlines()]
        if not expected:
            assert (plan.exit_code, plan.stdout) == (0, NO_CHANGE)
            return
        assert [line for line in lines if _is_head(line)] == [line for line in expected if _is_head(line)], plan.stdout
        for line in expected:
            assert any(got.startswith(line) for got in lines), f"{line!r} not in the plan:\n{plan.stdout}"
        if any(line.startswith("error:") for line in expected):
            assert plan.exit_code == 1
            return
        fixed = vnetc("apply", site, ns)
        assert fixed.exit_code == 0, fixed.stdout + fixed.stderr
        assert problems(site, ns) == []
        again = vnetc("plan", site, ns)
        assert again.stdout == NO_CHANGE, again.stdout


def test_a_re_apply_reads_the_compiled_site_back_and_an_edit_is_compiled(kinds_needed, tmp_path):
    """plan/apply keep the compiled site in the run directory (compiler/cache.py): an unchanged
    site is read back, and a site edited since (here: in the file it includes) is compiled again."""
    (tmp_path / "mtu.vnet").write_text("let m = 1400\n", encoding="utf-8")
    site = write_site(tmp_path, 'include "mtu.vnet"\n' + SITE.replace("mtu 1400", "mtu ${m}"))
    with namespace() as ns:
        fake_interfaces(ns, site)
        assert vnetc("apply", site, ns).exit_code == 0
        entries = list((Path(os.environ["VNETC_RUN_DIR"]) / "cache").iterdir())
        assert len(entries) == 1 and entries[0].stat().st_size > 0
        assert vnetc("plan", site, ns).stdout == NO_CHANGE
        (tmp_path / "mtu.vnet").write_text("let m = 1300\n", encoding="utf-8")
        plan = vnetc("plan", site, ns)
        assert "mtu 1400 -> 1300" in plan.stdout, plan.stdout
        assert vnetc("apply", site, ns).exit_code == 0
        assert vnetc("plan", site, ns).stdout == NO_CHANGE
        assert problems(site, ns) == []
