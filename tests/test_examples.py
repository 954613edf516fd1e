"""examples/: every file compiles cleanly and is in canonical layout, and each seed
example says what the seed document's commands do (examples/seed/<kind>.vnet,
from /work/shared/seed: "Linux 虚拟网络接口", one section per kind).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLES, run_vnetc
from vnetc.compiler import compile_file
from vnetc.compiler.ir import Device, DeviceRef
from vnetc.compiler.irjson import site_to_json

ALL_EXAMPLES = sorted(EXAMPLES.rglob("*.vnet"))
SEED = EXAMPLES / "seed"
SEED_NAMES = ("bridge", "bond", "team", "failover", "vlan", "vxlan", "macvlan", "ipvlan", "macvtap", "ipvtap",
              "macsec", "veth", "vcan", "vxcan", "ipoib", "nlmon", "dummy", "ifb", "netdevsim")


def rel(path: Path) -> str:
    return str(path.relative_to(EXAMPLES))


def ref(name: str, netns: str | None = None) -> DeviceRef:
    return DeviceRef(name, netns)


def seed(name: str) -> dict[str, Device]:
    """The devices of examples/seed/NAME.vnet by name (one implicit host, no name used twice)."""
    result = compile_file(str(SEED / f"{name}.vnet"))
    assert result.warnings == ()
    assert len(result.site.hosts) == 1
    host = result.site.hosts[0]
    assert host.name is None
    devices = {d.name: d for d in host.devices}
    assert len(devices) == len(host.devices)
    return devices


def kinds(devices: dict[str, Device]) -> dict[str, str]:
    return {name: d.kind for name, d in devices.items()}


def namespaces(name: str) -> tuple[str, ...]:
    return compile_file(str(SEED / f"{name}.vnet")).site.hosts[0].declared_netns


# --- every example -------------------------------------------------------------------------


def test_the_seed_examples_exist():
    assert sorted(p.stem for p in SEED.glob("*.vnet")) == sorted(SEED_NAMES)
    assert len(SEED_NAMES) == 19


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=rel)
def test_example_compiles_without_errors_or_warnings(path):
    result = compile_file(str(path))
    assert [d.render() for d in result.warnings] == []
    assert any(host.devices for host in result.site.hosts)


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=rel)
def test_example_passes_check_strict(path):
    run = run_vnetc("check", "--strict", str(path))
    assert (run.exit_code, run.stderr) == (0, "")


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=rel)
def test_example_is_in_canonical_layout(path):
    before = path.read_bytes()
    run = run_vnetc("fmt", "--check", str(path))
    assert (run.exit_code, run.stderr) == (0, "")
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_example_is_about_its_kind(name):
    # Each seed example declares at least one device of the kind it is named after.
    assert name in kinds(seed(name)).values()


# --- the seed's commands, fact by fact ---------------------------------------------------


def test_bridge():
    # ip link add br0 type bridge; ip link set eth0|tap1|tap2|veth1 master br0
    d = seed("bridge")
    assert d["br0"].kind == "bridge"
    assert d["br0"].ports == (ref("eth0"), ref("tap1"), ref("tap2"), ref("veth1"))
    assert (d["eth0"].kind, d["tap1"].kind, d["tap2"].kind, d["veth1"].kind) == ("interface", "tap", "tap", "veth")
    for port in ("eth0", "tap1", "tap2", "veth1"):
        assert d[port].master == ref("br0")
    assert d["br0"].stp is False
    assert d["br0"].state == "up"


def test_bond():
    # ip link add bond1 type bond miimon 100 mode active-backup; eth0, eth1 master bond1
    d = seed("bond")
    bond = d["bond1"]
    assert bond.kind == "bond"
    assert bond.mode == "active-backup"
    assert bond.miimon == 100_000            # microseconds: "miimon 100" is 100 ms
    assert bond.ports == (ref("eth0"), ref("eth1"))
    assert d["eth0"].master == d["eth1"].master == ref("bond1")
    ir_json = {x["name"]: x for x in site_to_json(compile_file(str(SEED / "bond.vnet")).site)["hosts"][0]["devices"]}
    assert ir_json["bond1"]["miimon"] == "100ms"


def test_team():
    # teamd -t team0 -c '{"runner": {"name": "activebackup"}, "link_watch": {"name": "ethtool"}}'
    # teamdctl team0 port add eth0; teamdctl team0 port add eth1
    d = seed("team")
    team = d["team0"]
    assert team.kind == "team"
    assert team.runner == "activebackup"
    assert team.get("link-watch") == "ethtool"
    assert team.ports == (ref("eth0"), ref("eth1"))
    assert d["eth0"].master == d["eth1"].master == ref("team0")


def test_failover():
    # net_failover: a primary (passthru/VF) slave and a standby (paravirtual) slave
    d = seed("failover")
    net0 = d["net0"]
    assert net0.kind == "failover"
    assert net0.primary == ref("ens4")
    assert net0.standby == ref("ens3")
    assert (d["ens4"].kind, d["ens3"].kind) == ("interface", "interface")
    assert not net0.creates   # the kernel (virtio_net) creates the failover master


def test_vlan():
    # ip link add link eth0 name eth0.2 type vlan id 2; ... eth0.3 ... id 3
    d = seed("vlan")
    assert kinds(d) == {"eth0": "interface", "eth0.2": "vlan", "eth0.3": "vlan"}
    assert (d["eth0.2"].link, d["eth0.2"].id) == (ref("eth0"), 2)
    assert (d["eth0.3"].link, d["eth0.3"].id) == (ref("eth0"), 3)
    assert d["eth0.2"].protocol == d["eth0.3"].protocol == "802.1q"


def test_vxlan():
    # ip link add vx0 type vxlan id 100 local 1.1.1.1 remote 2.2.2.2 dev eth0 dstport 4789
    d = seed("vxlan")
    vx = d["vx0"]
    assert vx.kind == "vxlan"
    assert vx.vni == 100
    assert str(vx.local) == "1.1.1.1"
    assert str(vx.remote) == "2.2.2.2"
    assert vx.group is None
    assert vx.dev == ref("eth0")
    assert vx.port == 4789


def test_macvlan():
    # ip link add macvlan1|macvlan2 link eth0 type macvlan mode bridge;
    # ip netns add net1, net2; ip link set macvlan1 netns net1; ip link set macvlan2 netns net2
    d = seed("macvlan")
    assert namespaces("macvlan") == ("net1", "net2")
    for name, netns in (("macvlan1", "net1"), ("macvlan2", "net2")):
        assert d[name].kind == "macvlan"
        assert d[name].link == ref("eth0")
        assert d[name].mode == "bridge"
        assert d[name].netns == netns
    assert d["eth0"].netns is None
    # the five modes the seed lists
    macvlans = [x for x in d.values() if x.kind == "macvlan"]
    assert {x.mode for x in macvlans} == {"private", "vepa", "bridge", "passthru", "source"}
    source = next(x for x in macvlans if x.mode == "source")
    assert source.get("source-macs") == ("52:54:00:aa:00:01", "52:54:00:aa:00:02")


def test_ipvlan():
    # ip netns add ns0; ip link add name ipvl0 link eth0 type ipvlan mode l2; ip link set dev ipvl0 netns ns0
    d = seed("ipvlan")
    assert namespaces("ipvlan") == ("ns0",)
    ipvl = d["ipvl0"]
    assert ipvl.kind == "ipvlan"
    assert ipvl.link == ref("eth0")
    assert ipvl.mode == "l2"
    assert ipvl.netns == "ns0"


def test_macvtap():
    # ip link add link eth0 name macvtap0 type macvtap   (the kernel's default mode: vepa)
    d = seed("macvtap")
    tap = d["macvtap0"]
    assert tap.kind == "macvtap"
    assert tap.link == ref("eth0")
    assert tap.mode == "vepa"


def test_ipvtap():
    # the IPVTAP counterpart of the MACVTAP command, in mode l2
    d = seed("ipvtap")
    tap = d["ipvtap0"]
    assert tap.kind == "ipvtap"
    assert tap.link == ref("eth0")
    assert tap.mode == "l2"


def test_macsec():
    # ip link add macsec0 link eth1 type macsec (+ a tx SA and a peer's rx channel)
    d = seed("macsec")
    sec = d["macsec0"]
    assert sec.kind == "macsec"
    assert sec.link == ref("eth1")
    assert sec.encrypt is False           # the bare command: integrity only
    (tx,) = sec.get("tx-sa")
    assert (tx.an, tx.get("key-id"), tx.pn) == (0, "01", 1)
    assert tx.key is None and tx.get("key-file").startswith("/")
    (rx,) = sec.get("rx-channel")
    assert (rx.mac, rx.port) == ("52:54:00:12:34:57", 1)
    (sa,) = rx.sa
    assert (sa.an, sa.get("key-id"), sa.pn) == (0, "02", 1)
    assert sa.key is None and sa.get("key-file").startswith("/")


def test_veth():
    # ip netns add net1; ip netns add net2
    # ip link add veth1 netns net1 type veth peer name veth2 netns net2
    d = seed("veth")
    assert namespaces("veth") == ("net1", "net2")
    assert kinds(d) == {"veth1": "veth", "veth2": "veth"}
    assert d["veth1"].netns == "net1"
    assert d["veth1"].peer == ref("veth2", "net2")
    assert d["veth2"].netns == "net2"
    assert d["veth2"].created_by == ref("veth1", "net1")
    assert d["veth1"].creates and not d["veth2"].creates


def test_vcan():
    # ip link add dev vcan1 type vcan
    assert kinds(seed("vcan")) == {"vcan1": "vcan"}


def test_vxcan():
    # ip netns add net1; ip netns add net2
    # ip link add vxcan1 netns net1 type vxcan peer name vxcan2 netns net2
    d = seed("vxcan")
    assert namespaces("vxcan") == ("net1", "net2")
    assert kinds(d) == {"vxcan1": "vxcan", "vxcan2": "vxcan"}
    assert d["vxcan1"].netns == "net1"
    assert d["vxcan1"].peer == ref("vxcan2", "net2")
    assert d["vxcan2"].netns == "net2"
    assert d["vxcan2"].created_by == ref("vxcan1", "net1")


def test_ipoib():
    # ip link add ib0 name ipoib0 type ipoib pkey IB_PKEY mode connected
    d = seed("ipoib")
    ib = d["ipoib0"]
    assert ib.kind == "ipoib"
    assert ib.link == ref("ib0")
    assert ib.mode == "connected"
    assert ib.pkey == 0x8001
    assert d["ib0"].kind == "interface"


def test_nlmon():
    # ip link add nlmon0 type nlmon; ip link set nlmon0 up
    d = seed("nlmon")
    assert kinds(d) == {"nlmon0": "nlmon"}
    assert d["nlmon0"].state == "up"


def test_dummy():
    # ip link add dummy1 type dummy; ip addr add 1.1.1.1/24 dev dummy1; ip link set dummy1 up
    d = seed("dummy")
    assert kinds(d) == {"dummy1": "dummy"}
    assert [str(a) for a in d["dummy1"].address] == ["1.1.1.1/24"]
    assert d["dummy1"].state == "up"


def test_ifb():
    # ip link add ifb0 type ifb; ip link set ifb0 up; tc qdisc add dev ifb0 root sfq
    # tc qdisc add dev eth0 handle ffff: ingress; tc filter ... mirred egress redirect dev ifb0
    d = seed("ifb")
    ifb = d["ifb0"]
    assert ifb.kind == "ifb"
    assert ifb.state == "up"
    assert ifb.qdisc.kind == "sfq"
    assert ifb.qdisc.params == ()
    assert ifb.get("redirect-ingress") == (ref("eth0"),)
    assert d["eth0"].kind == "interface"


def test_netdevsim():
    # ip link add dev sim0 type netdevsim; ip link set dev sim0 up; ethtool -K sim0 hw-tc-offload on
    # ip link set dev sim0 xdpoffload obj prog.o; echo 3 > .../sriov_numvfs; ip link set sim0 vf 0 mac ...
    d = seed("netdevsim")
    sim = d["sim0"]
    assert sim.kind == "netdevsim"
    assert sim.state == "up"
    assert sim.get("hw-tc-offload") is True
    xdp = sim.get("xdp-offload")
    assert xdp.startswith("/") and xdp.endswith("/prog.o")
    assert sim.vfs == 3
    assert [(vf.index, vf.mac) for vf in sim.vf] == [(0, "52:54:00:00:00:01")]
