"""apply -> the kernel equals the IR -> apply again changes nothing -> destroy leaves only what was
there before, for every kind this kernel can build (probed: a kind it lacks is skipped, saying so).

Each site runs in a fresh namespace NS (declared namespaces become NS-NAME). Before vnetc runs,
the test fakes the site's `interface`s as veth pairs and creates bystanders of its own (a bridge,
and a veth pair one end of which is named like nothing in the site): they must survive every
step byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from executor_helpers import fake_interfaces, full_snapshot, namespace, problems, vnetc, write_site
from harness import kernel
from harness.netns import ip, links
from vnetc.compiler import compile_source

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed"

#: name -> (site text, kinds it needs, qdiscs it needs)
SITES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "bridge": ((SEED / "bridge.vnet").read_text(), ("bridge", "tap", "veth"), ()),
    "veth": ((SEED / "veth.vnet").read_text(), ("veth",), ()),
    "vxlan": ((SEED / "vxlan.vnet").read_text(), ("vxlan",), ()),
    "macvlan": ((SEED / "macvlan.vnet").read_text(), ("macvlan",), ()),
    "macvtap": ((SEED / "macvtap.vnet").read_text(), ("macvtap",), ()),
    "ifb": ("""
interface eth0
interface eth1
ifb ifb0 {
    qdisc tbf rate 1mbit burst 32kbit latency 400ms
    redirect-ingress eth0 eth1
}
ifb ifb1 { qdisc pfifo limit 100; state down }
""", ("ifb",), ("tbf", "ingress", "pfifo")),
    "tap-tun": ("""
tap tap0 { multi-queue on; vnet-hdr on; mtu 9000 }
tun tun0 { packet-info on; state down }
""", ("tap", "tun"), ()),
    "common-properties": ("""
interface eth0
bridge br0 {
    ports eth0
    port ve0 { cost 7; priority 9; hairpin on; isolated on }
    address 10.0.0.2/24
    address fd00::2/64
    gateway 10.0.0.1
    route 10.9.0.0/16 via 10.0.0.254 metric 50
    route 10.8.0.0/16 via 10.0.0.253 table 100
    mtu 1400
    mac 52:54:00:aa:bb:01
    description "the LAN bridge"
    stp on
    forward-delay 4s
    priority 4096
}
veth ve0 { master br0; peer vp0 { address 192.168.5.1/24; mtu 1400 } }
vxlan vx1 { vni 42; remote 10.0.0.77; local 10.0.0.2; dev br0; learning off; ttl 8; mtu 1350 }
macvlan mv0 { link br0; mode private; state down; mac 52:54:00:aa:bb:02 }
""", ("bridge", "veth", "vxlan", "macvlan"), ()),
    "namespaces": ("""
netns blue
netns red
interface eth0
veth ve-blue { address 10.1.0.1/30; peer ve-blue-in { netns blue; address 10.1.0.2/30; gateway 10.1.0.1 } }
veth vr0 { netns red; peer vr1 { netns blue } }
macvlan mv-red { link eth0; netns red; address 10.2.0.1/24 }
bridge br-blue { netns blue; ports vr1 }
""", ("veth", "macvlan", "bridge"), ()),
}


def _bystanders(ns: str) -> None:
    ip(ns, "link", "add", "keepbr", "type", "bridge")
    ip(ns, "link", "add", "keep0", "type", "veth", "peer", "name", "keep1")
    ip(ns, "addr", "add", "10.77.0.1/24", "dev", "keep0")
    ip(ns, "link", "set", "keep0", "master", "keepbr")


def _require(kinds, qdiscs) -> None:
    for kind in kinds:
        kernel.require_kind(kind)
    for qdisc in qdiscs:
        kernel.require_qdisc(qdisc)


@pytest.mark.parametrize("name", sorted(SITES))
def test_apply_reapply_destroy(name, tmp_path):
    text, kinds, qdiscs = SITES[name]
    _require(kinds, qdiscs)
    site = write_site(tmp_path, text)
    declared = compile_source(text, site).site.hosts[0].declared_netns
    with namespace() as ns:
        fake_interfaces(ns, site)
        _bystanders(ns)
        before = full_snapshot(ns, declared)
        keep = {n: v for n, v in links(ns).items() if n.startswith("keep")}

        first = vnetc("apply", site, ns)
        assert first.exit_code == 0, first.stdout + first.stderr
        assert problems(site, ns) == []
        applied = full_snapshot(ns, declared)

        again = vnetc("plan", site, ns)
        assert (again.exit_code, again.stdout) == (0, "No changes: the kernel matches the site.\n"), again.stdout
        second = vnetc("apply", site, ns)
        assert second.exit_code == 0 and "No changes" in second.stdout, second.stdout + second.stderr
        assert full_snapshot(ns, declared) == applied

        gone = vnetc("destroy", site, ns)
        assert gone.exit_code == 0, gone.stdout + gone.stderr
        after = full_snapshot(ns, declared)
        assert set(after) == set(before)       # the namespaces vnetc created are gone again
        assert after[None]["links"] == before[None]["links"]       # interfaces as they were, too
        assert after[None]["addresses"] == before[None]["addresses"]
        assert after[None]["routes"] == before[None]["routes"]
        assert after[None]["qdiscs"] == before[None]["qdiscs"]
        assert {n: v for n, v in links(ns).items() if n.startswith("keep")} == keep
        again = vnetc("destroy", site, ns)
        assert again.exit_code == 0 and "No changes" in again.stdout
