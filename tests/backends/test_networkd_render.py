"""The networkd target's rendering rules, without running networkd (fast).

Every `[Section] Key=` the target writes, for every example and golden case,
must be one systemd-networkd 252 knows: the list is read from the installed
binary at test time (its config parsers' gperf tables hold every `Section.Key`
as a string). The other tests pin the rules networkd itself does not check, or
checks only on a kernel that has the kind: stacking keys, Independent=,
ActivationPolicy=, the carrier and MTU rules, MACsec secrets and keys, the
residual, determinism, file order, and the manifest.
"""

from __future__ import annotations

import functools
import grp
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import run_vnetc
from harness.cases import Case, all_cases
from harness.netns import skip_or_fail
from vnetc.backends import TARGETS
from vnetc.compiler import CompileError, compile_file, compile_source
from vnetc.compiler.ir import Device, Host, Site

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "golden"
NETWORKD = Path("/lib/systemd/systemd-networkd")
TARGET = TARGETS["networkd"]

# What the lower link's .network says to have networkd create a stacked device
# (systemd.network(5), [Network]); written out here, not taken from the backend.
STACKING = {"vlan": "VLAN", "macvlan": "MACVLAN", "macvtap": "MACVTAP", "ipvlan": "IPVLAN",
            "ipvtap": "IPVTAP", "vxlan": "VXLAN", "macsec": "MACsec", "ipoib": "IPoIB"}


# --------------------------------------------------------------------------
# reading the output


@dataclass
class Ini:
    name: str
    sections: list[tuple[str, list[tuple[str, str]]]]

    def values(self, section: str, key: str) -> list[str]:
        return [v for s, pairs in self.sections if s == section for k, v in pairs if k == key]

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        assert len(found) <= 1, f"{self.name}: [{section}] {key}= given {len(found)} times"
        return found[0] if found else None

    def section_names(self) -> list[str]:
        return [s for s, _ in self.sections]


def parse_ini(name: str, text: str) -> Ini:
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if m := re.fullmatch(r"\[([A-Za-z0-9]+)\]", stripped):
            sections.append((m.group(1), []))
            continue
        key, sep, value = stripped.partition("=")
        assert sep and sections, f"{name}:{number}: not a key=value line in a section: {line!r}"
        assert re.fullmatch(r"[A-Za-z0-9]+", key), f"{name}:{number}: bad key {key!r}"
        sections[-1][1].append((key, value))
    return Ini(name, sections)


def files_of(rendering) -> dict[str, Ini]:
    return {a.name: parse_ini(a.name, a.content) for a in rendering.files
            if a.name.endswith((".netdev", ".network"))}


def network_of(files: dict[str, Ini], name: str) -> Ini | None:
    found = [f for n, f in files.items() if n.endswith(f"-vnetc-{name}.network")]
    assert len(found) <= 1, f"several .network files for {name}: {[f.name for f in found]}"
    return found[0] if found else None


def netdev_of(files: dict[str, Ini], name: str) -> Ini | None:
    found = [f for f in files.values() if f.name.endswith(".netdev") and f.value("NetDev", "Name") == name]
    return found[0] if found else None


# --------------------------------------------------------------------------
# the cases: every example and golden case that compiles, and the sites below


EVERY_KIND = """
interface eth0 {
    address 10.0.0.2/24
    gateway 10.0.0.1
    route 10.9.0.0/16 via 10.0.0.254 metric 20 table 100
    route default
}
interface eth1 {
    mtu 9000
    mac 52:54:00:00:01:01
}
interface eth2
interface eth3 {
    match-mac 52:54:00:00:03:03
}
interface eth4 {
    match-driver virtio_net
}
interface ib0
bridge br0 {
    stp on
    forward-delay 4s
    hello-time 2
    max-age 20s
    ageing-time 300
    priority 4096
    multicast-snooping off
    mtu 9000
    address 192.168.10.1/24
    port eth1 {
        cost 10
        priority 32
        hairpin on
        isolated off
    }
    ports tap0
}
bond bond0 {
    mode 802.3ad
    miimon 100
    updelay 200ms
    downdelay 1s
    lacp-rate fast
    xmit-hash-policy layer3+4
    min-links 1
    ports eth2 eth3
}
bond bond1 {
    mode active-backup
    primary eth5
    arp-interval 500
    arp-ip-target 10.0.1.1 10.0.1.2
    ports eth5
}
interface eth5
vlan eth0.10 {
    link eth0
    id 10
    protocol 802.1ad
}
vxlan vx0 {
    vni 42
    group 239.1.1.1
    dev eth0
    ttl 8
    learning off
    port 8472
}
vxlan vx1 {
    vni 43
    local 10.0.0.2
    remote 10.0.0.3
}
macvlan mv0 {
    link eth0
    mode source
    source-macs 52:54:00:aa:00:01 52:54:00:aa:00:02
}
macvtap mvt0 {
    link eth0
    mode vepa
}
ipvlan ipvl0 {
    link eth0
    mode l3s
    flags private
}
ipvtap ipvt0 {
    link eth0
    mode l2
}
macsec ms0 {
    link eth4
    port 2
    encrypt on
    tx-sa 0 {
        key-id 01
        key 000102030405060708090a0b0c0d0e0f
    }
    rx-channel 52:54:00:12:34:57 1 {
        sa 1 {
            key-id 0x0a0b
            key 101112131415161718191a1b1c1d1e1f
            pn 7
        }
    }
}
veth ve0 {
    mtu 1400
    mac 52:54:00:00:00:10
    address 172.16.0.1/30
    peer ve0-p {
        mac 52:54:00:00:00:11
        address 172.16.0.2/30
    }
}
vxcan vxc0 {
    peer vxc0-p
}
ipoib ipoib0 {
    link ib0
    pkey 0x8001
    mode connected
    umcast on
}
tap tap0 {
    owner nobody
    group nogroup
    multi-queue on
    vnet-hdr on
    packet-info off
}
tun tun0 {
    address 10.8.0.1/24
}
dummy dm0 {
    address 10.255.0.1/32
    state down
}
nlmon nlmon0
vcan vcan0
ifb ifb0 {
    qdisc tbf rate 10mbit burst 16k latency 50ms peakrate 12mbit mtu 2000 mpu 64
    redirect-ingress eth0
}
ifb ifb1 {
    qdisc fq_codel limit 1000 flows 1024 target 5ms interval 100ms quantum 1514 noecn
}
ifb ifb2 {
    qdisc codel limit 500 target 5ms interval 100ms ecn
}
ifb ifb3 {
    qdisc fq limit 1000 flow_limit 100 quantum 3028 maxrate 1gbit
}
ifb ifb4 {
    qdisc pfifo limit 100
}
ifb ifb5 {
    qdisc bfifo limit 10k
}
ifb ifb6 {
    qdisc pfifo_fast
}
ifb ifb7 {
    qdisc sfq perturb 10
}
ifb ifb8 {
    qdisc tbf rate 1mbit burst 32k limit 64k
}
interface eth6
bridge br1 {
    vlan-filtering on
    default-pvid 1
    port eth6 {
        pvid 10
        vlans 10-20 30
        untagged 10
    }
}
vlan br1.10 {
    link br1
    id 10
}
"""


@functools.lru_cache(maxsize=None)
def site_of(case: Case) -> Site | None:
    try:
        if case.text is not None:
            return compile_source(case.text, f"{case.id}.vnet").site
        return compile_file(str(case.path)).site
    except CompileError:
        if case.text is not None:
            raise
        return None


CASES = [pytest.param(c, id=c.id) for c in all_cases({"every-kind": EVERY_KIND}) if site_of(c) is not None]


@functools.lru_cache(maxsize=None)
def renderings(case: Case) -> list[tuple[Host, dict[str, Ini], object]]:
    site = site_of(case)
    out = []
    for host in site.hosts:
        rendering = TARGET.render(site, host)
        out.append((host, files_of(rendering), rendering))
    return out


@functools.lru_cache(maxsize=None)
def compile_text(text: str) -> Site:
    return compile_source(text, "t.vnet").site


@functools.lru_cache(maxsize=None)
def render_text(text: str) -> tuple[Host, dict[str, Ini], object]:
    site = compile_text(text)
    (host,) = site.hosts
    rendering = TARGET.render(site, host)
    return host, files_of(rendering), rendering


def own_devices(host: Host) -> list[Device]:
    return [d for d in host.devices if d.netns is None]


# --------------------------------------------------------------------------
# every key is one networkd 252 knows


@functools.lru_cache(maxsize=1)
def networkd_keys() -> frozenset[str]:
    """`strings systemd-networkd | grep -E '^[A-Za-z]+\\.[A-Za-z]+$'`, in Python, plus the
    names the linker folded into the tail of a longer one: "FairQueueing.Parent" is stored
    only as the end of "QuickFairQueueing.Parent" (so every tail that starts a word counts)."""
    if not os.access(NETWORKD, os.R_OK):
        skip_or_fail(f"no {NETWORKD} (Debian package systemd) to read the known keys from")
    data = NETWORKD.read_bytes()
    runs = re.findall(rb"[\x20-\x7e]{4,}", data)
    names = [r.decode() for r in runs if re.fullmatch(rb"[A-Za-z]+\.[A-Za-z]+", r)]
    keys = frozenset(name[i:] for name in names for i in range(name.index(".")) if name[i].isupper())
    # the list is the binary's, not ours: only check that reading it worked
    assert {"NetDev.Name", "Network.Address", "Match.Name"} <= keys and len(keys) > 300, sorted(keys)[:20]
    return keys


@pytest.mark.parametrize("case", CASES)
def test_every_key_is_one_networkd_knows(case):
    known = networkd_keys()
    unknown = []
    for _, files, _ in renderings(case):
        for ini in files.values():
            unknown += [f"{ini.name}: [{s}] {k}=" for s, pairs in ini.sections for k, _ in pairs
                        if f"{s}.{k}" not in known]
    assert unknown == []


def test_the_every_kind_site_renders_every_kind_and_qdisc():
    """The site above is the one that reaches every row of the backend's tables."""
    from vnetc.backends.networkd import NETDEV_SECTIONS, QDISC_SECTIONS
    host, files, rendering = render_text(EVERY_KIND)
    kinds = {d.kind for d in host.devices}
    assert set(NETDEV_SECTIONS) <= kinds
    sections = {s for ini in files.values() for s in ini.section_names()}
    assert {name for name, _ in QDISC_SECTIONS.values()} <= sections
    assert rendering.errors == []


# --------------------------------------------------------------------------
# stacking, Independent=, ActivationPolicy=


@pytest.mark.parametrize("case", CASES)
def test_stacked_devices_are_named_on_their_lower_links_network(case):
    for host, files, _ in renderings(case):
        for device in own_devices(host):
            if device.kind not in STACKING:
                continue
            lower = device.get("dev") if device.kind == "vxlan" else device.get("link")
            if lower is None:
                continue
            ini = network_of(files, lower.name)
            assert ini is not None, f"{lower} has no .network to name {device.name} on"
            assert device.name in ini.values("Network", STACKING[device.kind]), \
                f"{ini.name} does not say {STACKING[device.kind]}={device.name}"


@pytest.mark.parametrize("case", CASES)
def test_devices_in_other_namespaces_are_never_named_on_a_network(case):
    """networkd would create them in its own namespace: vnetc apply does (the residual)."""
    for host, files, _ in renderings(case):
        elsewhere = {d.name for d in host.devices if d.netns is not None}
        for ini in files.values():
            named = {v for key in STACKING.values() for v in ini.values("Network", key)}
            assert not named & elsewhere, ini.name


def test_each_stacking_kind_uses_its_key():
    host, files, _ = render_text(EVERY_KIND)
    eth0 = network_of(files, "eth0")
    assert eth0.values("Network", "VLAN") == ["eth0.10"]
    assert eth0.values("Network", "VXLAN") == ["vx0"]
    assert eth0.values("Network", "MACVLAN") == ["mv0"]
    assert eth0.values("Network", "MACVTAP") == ["mvt0"]
    assert eth0.values("Network", "IPVLAN") == ["ipvl0"]
    assert eth0.values("Network", "IPVTAP") == ["ipvt0"]
    assert network_of(files, "eth4").values("Network", "MACsec") == ["ms0"]
    assert network_of(files, "ib0").values("Network", "IPoIB") == ["ipoib0"]
    assert network_of(files, "br1").values("Network", "VLAN") == ["br1.10"]


@pytest.mark.parametrize("case", CASES)
def test_vxlan_without_dev_is_independent(case):
    for host, files, _ in renderings(case):
        for device in own_devices(host):
            if device.kind != "vxlan":
                continue
            netdev = netdev_of(files, device.name)
            want = None if device.get("dev") is not None else "yes"
            assert netdev.value("VXLAN", "Independent") == want, netdev.name


def test_vxlan_independent_rule_on_both_forms():
    _, files, _ = render_text(EVERY_KIND)
    assert netdev_of(files, "vx1").value("VXLAN", "Independent") == "yes"
    assert netdev_of(files, "vx0").value("VXLAN", "Independent") is None
    assert not any("vx1" in ini.values("Network", "VXLAN") for ini in files.values())


@pytest.mark.parametrize("case", CASES)
def test_state_down_is_activation_policy_down(case):
    for host, files, _ in renderings(case):
        for device in own_devices(host):
            ini = network_of(files, device.name)
            if ini is None:
                continue
            want = "down" if device.state == "down" else None
            assert ini.value("Link", "ActivationPolicy") == want, ini.name


def test_activation_policy_on_a_down_device_and_not_on_an_up_one():
    _, files, _ = render_text(EVERY_KIND)
    assert network_of(files, "dm0").value("Link", "ActivationPolicy") == "down"
    assert network_of(files, "eth0").value("Link", "ActivationPolicy") is None


# --------------------------------------------------------------------------
# rules networkd checks only on a kernel that has the kind, or not at all


def test_bridge_mtu_is_set_on_the_link_not_at_creation():
    """A bridge created with an MTU drops to its smallest port's as ports join; one set
    afterwards ([Link] MTUBytes=) stays. (Proven on the kernel by test_networkd_real.)"""
    _, files, _ = render_text(EVERY_KIND)
    assert netdev_of(files, "br0").value("NetDev", "MTUBytes") is None
    assert network_of(files, "br0").value("Link", "MTUBytes") == "9000"
    # other created kinds keep it in the .netdev
    assert netdev_of(files, "ve0").value("NetDev", "MTUBytes") == "1400"
    assert network_of(files, "ve0").value("Link", "MTUBytes") is None
    # a NIC's is on its .network
    assert network_of(files, "eth1").value("Link", "MTUBytes") == "9000"
    assert network_of(files, "eth1").value("Link", "MACAddress") == "52:54:00:00:01:01"


def test_devices_without_a_carrier_of_their_own_are_configured_without_one():
    _, files, _ = render_text(EVERY_KIND)
    for name in ("br0", "tun0"):          # a bridge, a tun with addresses
        assert network_of(files, name).value("Network", "ConfigureWithoutCarrier") == "yes", name
    for name in ("tap0", "br1"):          # nothing to configure
        assert network_of(files, name).value("Network", "ConfigureWithoutCarrier") is None, name
    for name in ("eth0", "ve0", "dm0"):   # a NIC waits for its cable; veth and dummy have a carrier
        assert network_of(files, name).value("Network", "ConfigureWithoutCarrier") is None, name


def test_link_local_addressing_is_off_on_ports_and_unaddressed_devices():
    _, files, _ = render_text(EVERY_KIND)
    for name in ("eth1", "tap0", "eth2", "eth5", "mv0", "ifb1"):
        assert network_of(files, name).value("Network", "LinkLocalAddressing") == "no", name
    for name in ("eth0", "br0", "ve0", "tun0"):
        assert network_of(files, name).value("Network", "LinkLocalAddressing") is None, name


def test_ports_name_their_master_and_bond_primary():
    _, files, _ = render_text(EVERY_KIND)
    assert network_of(files, "eth1").value("Network", "Bridge") == "br0"
    assert network_of(files, "eth2").value("Network", "Bond") == "bond0"
    eth5 = network_of(files, "eth5")
    assert eth5.value("Network", "Bond") == "bond1" and eth5.value("Network", "PrimarySlave") == "yes"
    port = network_of(files, "eth1")
    assert [port.value("Bridge", k) for k in ("Cost", "Priority", "HairPin", "Isolated")] == ["10", "32", "yes", "no"]


def test_bridge_vlans_of_a_port_and_of_the_bridge_itself():
    """Each port's VLANs on its own .network; the bridge joins the VLANs of the devices
    stacked on it (else br1.10 receives nothing)."""
    _, files, _ = render_text(EVERY_KIND)
    port = network_of(files, "eth6")
    assert port.values("BridgeVLAN", "VLAN") == ["10-20", "30"]
    assert port.values("BridgeVLAN", "EgressUntagged") == ["10"]
    assert port.values("BridgeVLAN", "PVID") == ["10"]
    assert network_of(files, "br1").values("BridgeVLAN", "VLAN") == ["10"]
    assert netdev_of(files, "br1").value("Bridge", "VLANFiltering") == "yes"
    assert netdev_of(files, "br1").value("Bridge", "DefaultPVID") == "1"
    assert network_of(files, "eth1").values("BridgeVLAN", "VLAN") == []


def test_ifb_redirect_puts_the_ingress_qdisc_on_the_source():
    _, files, rendering = render_text(EVERY_KIND)
    eth0 = network_of(files, "eth0")
    assert eth0.value("QDisc", "Parent") == "ingress" and eth0.value("QDisc", "Handle") == "ffff"
    assert network_of(files, "ifb0").value("QDisc", "Parent") is None
    assert [(g.device.name, g.what) for g in rendering.residual if g.what == "redirect-ingress"] == [
        ("ifb0", "redirect-ingress")]


def test_qdisc_values_are_in_networkds_units():
    """Rate=/PeakRate=/MaximumRate= are bits per second (networkd's K/M/G are 1000s), sizes
    bytes, times with a unit; each qdisc is the root one."""
    _, files, _ = render_text(EVERY_KIND)
    tbf = network_of(files, "ifb0")
    assert [tbf.value("TokenBucketFilter", k) for k in
            ("Parent", "Rate", "BurstBytes", "LatencySec", "PeakRate", "MTUBytes", "MPUBytes")] == [
        "root", "10000000", "16384", "50ms", "12000000", "2000", "64"]
    assert network_of(files, "ifb8").value("TokenBucketFilter", "LimitBytes") == "65536"
    codel = network_of(files, "ifb1")
    assert [codel.value("FairQueueingControlledDelay", k) for k in
            ("PacketLimit", "Flows", "TargetSec", "IntervalSec", "QuantumBytes", "ECN")] == [
        "1000", "1024", "5ms", "100ms", "1514", "no"]
    assert network_of(files, "ifb2").value("ControlledDelay", "ECN") == "yes"
    assert network_of(files, "ifb3").value("FairQueueing", "MaximumRate") == "1000000000"
    assert network_of(files, "ifb5").value("BFIFO", "LimitBytes") == "10240"
    assert network_of(files, "ifb7").value("StochasticFairnessQueueing", "PerturbPeriodSec") == "10s"
    for name in ("ifb0", "ifb1", "ifb2", "ifb3", "ifb4", "ifb5", "ifb6", "ifb7"):
        ini = network_of(files, name)
        assert [v for s, pairs in ini.sections for k, v in pairs if k == "Parent"] == ["root"], name


def test_qdisc_parameter_networkd_lacks_goes_to_the_residual():
    host, files, rendering = render_text("ifb ifb0 {\n qdisc sfq divisor 1024\n}\n")
    assert "StochasticFairnessQueueing" not in network_of(files, "ifb0").section_names()
    (gap,) = rendering.residual
    assert (gap.device.name, gap.what) == ("ifb0", "qdisc") and "divisor" in gap.reason


def test_ipoib_and_tap_values():
    _, files, _ = render_text(EVERY_KIND)
    ipoib = netdev_of(files, "ipoib0")
    assert ipoib.value("IPoIB", "PartitionKey") == "0x8001"
    assert ipoib.value("IPoIB", "Mode") == "connected"
    assert ipoib.value("IPoIB", "IgnoreUserspaceMulticastGroups") == "no"   # umcast on
    tap = netdev_of(files, "tap0")
    assert [tap.value("Tap", k) for k in ("User", "Group", "MultiQueue", "VNetHeader", "PacketInfo")] == [
        "nobody", "nogroup", "yes", "yes", "no"]
    ipvl = netdev_of(files, "ipvl0")
    assert (ipvl.value("IPVLAN", "Mode"), ipvl.value("IPVLAN", "Flags")) == ("L3S", "private")


def test_veth_and_vxcan_peers():
    _, files, _ = render_text(EVERY_KIND)
    veth = netdev_of(files, "ve0")
    assert (veth.value("Peer", "Name"), veth.value("Peer", "MACAddress")) == ("ve0-p", "52:54:00:00:00:11")
    assert veth.value("NetDev", "MACAddress") == "52:54:00:00:00:10"
    assert netdev_of(files, "ve0-p") is None          # one .netdev makes the pair
    assert network_of(files, "ve0-p").values("Network", "Address") == ["172.16.0.2/30"]
    assert netdev_of(files, "vxc0").value("VXCAN", "Peer") == "vxc0-p"


def test_routes_and_default_route_without_gateway():
    _, files, _ = render_text(EVERY_KIND)
    eth0 = network_of(files, "eth0")
    routes = [dict(pairs) for s, pairs in eth0.sections if s == "Route"]
    assert routes == [{"Destination": "10.9.0.0/16", "Gateway": "10.0.0.254", "Metric": "20", "Table": "100"},
                      {"Destination": "0.0.0.0/0"}, {"Destination": "::/0"}]
    assert eth0.values("Network", "Gateway") == ["10.0.0.1"]


# --------------------------------------------------------------------------
# MACsec: keys, key files, MKA


def test_macsec_key_ids_are_hex_networkd_reads():
    """networkd 252 reads KeyId= as hex bytes (at most 16), an even number of digits."""
    _, files, _ = render_text(EVERY_KIND)
    ms = netdev_of(files, "ms0")
    ids = ms.values("MACsecTransmitAssociation", "KeyId") + ms.values("MACsecReceiveAssociation", "KeyId")
    assert ids == ["01", "0a0b"]
    assert all(re.fullmatch(r"(?:[0-9a-f]{2}){1,16}", i) for i in ids)


def test_macsec_transmit_sa_always_has_a_packet_number():
    """networkd 252 ignores a [MACsecTransmitAssociation] without PacketNumber=."""
    _, files, _ = render_text(EVERY_KIND)
    ms = netdev_of(files, "ms0")
    assert ms.values("MACsecTransmitAssociation", "PacketNumber") == ["1"]
    assert ms.values("MACsecReceiveAssociation", "PacketNumber") == ["7"]
    assert ms.value("MACsecReceiveChannel", "MACAddress") == "52:54:00:12:34:57"
    assert ms.value("MACsec", "Port") == "2" and ms.value("MACsec", "Encrypt") == "yes"


MACSEC_INLINE = """interface eth1
macsec macsec0 {
    link eth1
    tx-sa 0 {
        key-id 01
        key 000102030405060708090a0b0c0d0e0f
        pn 1
    }
}
"""


def test_inline_macsec_key_is_a_secret_file():
    site = compile_text(MACSEC_INLINE)
    rendering = TARGET.render(site, site.hosts[0])
    (netdev,) = [a for a in rendering.files if a.name.endswith("macsec0.netdev")]
    assert (netdev.mode, netdev.group) == (0o640, "systemd-network")
    assert "Key=000102030405060708090a0b0c0d0e0f" in netdev.content
    others = [a for a in rendering.files if a is not netdev]
    assert all((a.mode, a.group) == (0o644, None) for a in others), others


def test_root_install_writes_the_secret_for_networkd_only(tmp_path):
    source = tmp_path / "ms.vnet"
    source.write_text(MACSEC_INLINE)
    root = tmp_path / "root"
    run = run_vnetc("build", str(source), "-t", "networkd", "--root", str(root))
    assert run.exit_code == 0, run.stderr
    path = root / "etc/systemd/network/10-vnetc-macsec0.netdev"
    assert path.is_file(), sorted(str(p) for p in root.rglob("*"))
    assert path.stat().st_mode & 0o7777 == 0o640
    assert (root / "etc/systemd/network/10-vnetc-eth1.network").stat().st_mode & 0o7777 == 0o644
    try:
        gid = grp.getgrnam("systemd-network").gr_gid
    except KeyError:
        assert "group 'systemd-network' does not exist" in run.stderr
        return
    if os.geteuid() == 0:
        assert path.stat().st_gid == gid
    else:
        assert "cannot give it to group 'systemd-network'" in run.stderr


def test_macsec_key_file_is_keyfile_and_not_secret():
    text = MACSEC_INLINE.replace("key 000102030405060708090a0b0c0d0e0f", 'key-file "/etc/vnetc/keys/tx0.key"')
    site = compile_text(text)
    rendering = TARGET.render(site, site.hosts[0])
    files = files_of(rendering)
    ms = netdev_of(files, "macsec0")
    assert ms.values("MACsecTransmitAssociation", "KeyFile") == ["/etc/vnetc/keys/tx0.key"]
    assert ms.values("MACsecTransmitAssociation", "Key") == []
    (netdev,) = [a for a in rendering.files if a.name.endswith("macsec0.netdev")]
    assert (netdev.mode, netdev.group) == (0o644, None)


def test_macsec_mka_is_a_positioned_error_and_writes_nothing(tmp_path):
    source = tmp_path / "mka.vnet"
    source.write_text('interface eth2\nmacsec macsec1 {\n    link eth2\n'
                      '    mka-cak-file "/etc/vnetc/keys/macsec1.cak"\n'
                      '    mka-ckn 00112233445566778899AABBCCDDEEFF\n}\n')
    out = tmp_path / "out"
    run = run_vnetc("build", str(source), "-t", "networkd", "-o", str(out))
    assert run.exit_code == 3, run.stderr
    assert re.search(rf"^{re.escape(str(source))}:4:18: error: networkd: macsec 'macsec1' mka-cak-file: "
                     r".*wpa_supplicant", run.stderr, re.MULTILINE), run.stderr
    assert not out.exists() or not any(out.rglob("*"))


# --------------------------------------------------------------------------
# the residual, --strict


RESIDUAL_SITE = """netns ns1
interface eth0
interface eth1
interface eth2
team team0 {
    ports eth0
}
netdevsim sim0
macvlan mv1 {
    link eth1
    netns ns1
}
veth ve0 {
    peer ve0-in {
        netns ns1
    }
}
ifb ifb0 {
    redirect-ingress eth1
}
macsec ms0 {
    link eth2
    send-sci on
    tx-sa 0 {
        key-id 01
        key-file "/etc/vnetc/keys/ms0.key"
    }
}
"""


def test_residual_lists_what_networkd_cannot_do(tmp_path):
    source = tmp_path / "r.vnet"
    source.write_text(RESIDUAL_SITE)
    out = tmp_path / "out"
    run = run_vnetc("build", str(source), "-t", "networkd", "-o", str(out))
    assert run.exit_code == 0, run.stderr
    data = json.loads((out / "networkd" / "networkd.json").read_text())
    items = {(i["kind"], i["name"], i["netns"], i["what"]) for i in data["items"]}
    assert items == {
        ("team", "team0", None, "device"),
        ("interface", "eth0", None, "master"),          # teamd's port: no .network fights it
        ("netdevsim", "sim0", None, "device"),
        ("macvlan", "mv1", "ns1", "device"),
        ("veth", "ve0-in", "ns1", "device"),
        ("ifb", "ifb0", None, "redirect-ingress"),
        ("macsec", "ms0", None, "send-sci"),
    }
    assert all(i["reason"] for i in data["items"])
    written = {p.name for p in (out / "networkd").iterdir()}
    assert "vnetc-residual-networkd.service" in written
    # what the residual makes, networkd does not
    assert not {"10-vnetc-team0.netdev", "10-vnetc-sim0.netdev", "10-vnetc-ve0.netdev",
                "10-vnetc-eth0.network", "10-vnetc-mv1.network"} & written
    assert "MACVLAN=" not in (out / "networkd" / "10-vnetc-eth1.network").read_text()
    # the redirect's source still gets the ingress qdisc from networkd
    assert "[QDisc]\nParent=ingress\nHandle=ffff\n" in (out / "networkd" / "10-vnetc-eth1.network").read_text()


def test_strict_with_a_residual_exits_3_and_writes_nothing(tmp_path):
    source = tmp_path / "r.vnet"
    source.write_text(RESIDUAL_SITE)
    out = tmp_path / "out"
    run = run_vnetc("build", str(source), "-t", "networkd", "-o", str(out), "--strict")
    assert run.exit_code == 3, run.stderr
    assert "networkd cannot express team 'team0'" in run.stderr
    assert re.search(rf"^{re.escape(str(source))}:\d+:\d+: error: ", run.stderr, re.MULTILINE)
    assert not out.exists()
    # an existing output stays as it was
    assert run_vnetc("build", str(source), "-t", "networkd", "-o", str(out)).exit_code == 0
    before = snapshot(out)
    source.write_text(RESIDUAL_SITE + "bridge br9\n")
    assert run_vnetc("build", str(source), "-t", "networkd", "-o", str(out), "--strict").exit_code == 3
    assert snapshot(out) == before


# --------------------------------------------------------------------------
# determinism, file order, the manifest


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mode & 0o7777)
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("source", [EXAMPLES / "site.vnet", GOLDEN / "valid-multi-host" / "input.vnet",
                                    "every-kind"], ids=["site", "multi-host", "every-kind"])
def test_two_builds_are_byte_identical(source, tmp_path):
    """One build in this process, one in another Python with another hash seed, from
    another working directory: the same bytes and modes."""
    if source == "every-kind":
        source = tmp_path / "every.vnet"
        source.write_text(EVERY_KIND)
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    first = run_vnetc("build", str(source), "-t", "networkd", "-o", str(tmp_path / "out1"), cwd=tmp_path / "a")
    assert first.exit_code == 0, first.stderr
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    second = subprocess.run([sys.executable, "-m", "vnetc", "build", os.path.relpath(source, tmp_path / "b" / "deeper"),
                             "-t", "networkd", "-o", "../out2"], cwd=tmp_path / "b" / "deeper", env=env,
                            capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    one, two = snapshot(tmp_path / "out1"), snapshot(tmp_path / "b" / "out2")
    assert list(one) == list(two)
    assert one == two


def _match_rank(ini: Ini) -> int:
    match = dict(next(pairs for s, pairs in ini.sections if s == "Match"))
    if "Name" in match:
        return 0
    return 1 if "MACAddress" in match else 2


@pytest.mark.parametrize("case", CASES)
def test_network_files_sort_in_first_match_order(case):
    """networkd configures a device with the first .network (by file name) that matches:
    exact names before MACs before drivers (a driver matches every NIC of it)."""
    for _, files, _ in renderings(case):
        networks = [files[n] for n in sorted(files) if n.endswith(".network")]
        ranks = [_match_rank(ini) for ini in networks]
        assert ranks == sorted(ranks), [n.name for n in networks]


def test_a_mac_matched_nic_sorts_after_every_name_whatever_the_names():
    host, files, _ = render_text("""interface a0 {
    match-mac 52:54:00:00:00:01
}
interface a1 {
    match-driver virtio_net
}
interface a2 {
    match-mac 52:54:00:00:00:02
    match-driver virtio_net
}
bridge zz-br {
    mac 52:54:00:00:00:01
    ports a0
}
vlan zz-br.5 {
    link zz-br
    id 5
}
""")
    order = [n for n in sorted(files) if n.endswith(".network")]
    assert order == ["10-vnetc-zz-br.5.network", "10-vnetc-zz-br.network",
                     "20-vnetc-a0.network", "20-vnetc-a2.network", "30-vnetc-a1.network"]
    assert dict(files["20-vnetc-a2.network"].sections[0][1]) == {"MACAddress": "52:54:00:00:00:02",
                                                                 "Driver": "virtio_net"}


SMALL = """interface eth0 {
    match-mac 52:54:00:00:00:01
}
bridge br0 {
    ports eth0
}
tap tap1
"""


def test_rebuild_removes_what_vnetc_wrote_and_nothing_else(tmp_path):
    source = tmp_path / "s.vnet"
    source.write_text(SMALL + "tap tap2\n")
    out = tmp_path / "out"
    assert run_vnetc("build", str(source), "-t", "networkd", "-o", str(out)).exit_code == 0
    directory = out / "networkd"
    assert {"10-vnetc-tap2.netdev", "10-vnetc-tap2.network", "20-vnetc-eth0.network"} <= set(os.listdir(directory))
    # files vnetc did not write, one with a name like its own
    foreign = {"50-mine.network": "[Match]\nName=x\n", "10-vnetc-handmade.network": "[Match]\nName=y\n",
               "notes.txt": "hello\n"}
    for name, text in foreign.items():
        (directory / name).write_text(text)
    manifest = (directory / ".vnetc-networkd.manifest").read_text().split()
    assert "10-vnetc-tap2.netdev" in manifest and "50-mine.network" not in manifest

    # tap2 deleted from the input; eth0 now matched by name
    source.write_text(SMALL.replace("    match-mac 52:54:00:00:00:01\n", ""))
    run = run_vnetc("build", str(source), "-t", "networkd", "-o", str(out))
    assert run.exit_code == 0, run.stderr
    names = set(os.listdir(directory))
    assert not {"10-vnetc-tap2.netdev", "10-vnetc-tap2.network", "20-vnetc-eth0.network"} & names
    assert {"10-vnetc-tap1.netdev", "10-vnetc-eth0.network", "10-vnetc-br0.network"} <= names
    for name, text in foreign.items():
        assert (directory / name).read_text() == text, name
    assert "3 removed" in run.stderr
    manifest = (directory / ".vnetc-networkd.manifest").read_text().split()
    assert manifest == sorted(n for n in names if not n.startswith(".") and n not in foreign)
