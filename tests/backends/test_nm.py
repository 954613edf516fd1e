"""The NetworkManager target, proven by libnm (NetworkManager 1.42's own keyfile reader).

1. Rendering rules (fast, no libnm): one 0600 keyfile per device where
   NetworkManager reads them, UUIDs, determinism, IP methods, the residual,
   --strict, --nm-version, MACsec MKA and its secret, the teamd JSON, VLAN lists.
2. libnm: every keyfile of every example, golden case and INLINE site (the
   networkd tests' cases too) is read by libnm (tests/harness/libnm.py; one
   libnm process for the session, all these files in one batch): no warning
   from the keyfile handler, no section or key libnm does not know, verify()
   passes, normalizing changes nothing; and per host the connections form a
   graph (every port's controller and every parent is one of them). Bond
   options libnm would refuse go to the residual instead.
3. Meaning: what libnm read from INLINE["nm-keys"] is what the site says; and
   NetworkManager's own writer (`nmcli --offline connection modify`, which reads
   a keyfile and writes it back) keeps every value we write, in our order.
4. The verifier can fail: an unknown key or section, a bad VLAN id, a missing
   parent, IP settings on a port, a bond option libnm drops, a controller that
   does not exist, ... are each reported.
5. Random valid sites (tests/strategies.py): rendering never raises, and libnm
   accepts every keyfile.

Under CI=true nothing here is skipped for want of libnm: that fails the test.
"""

from __future__ import annotations

import functools
import json
import shutil
import stat
import subprocess
import uuid

import pytest
from hypothesis import given

import test_networkd_real as real
from conftest import run_vnetc
from harness.cases import all_cases, host_named, host_params
from harness.libnm import Read, graph_problems, read_keyfiles, require_libnm
from harness.netns import skip_or_fail
from strategies import sites
from vnetc.backends import TARGETS
from vnetc.backends.nm import (INSTALL_DIR, UUID_NAMESPACE, connection_uuid, parse_version, render, teamd_config,
                               vlan_list)
from vnetc.compiler import CompileError, compile_file, compile_source
from vnetc.compiler.ir import Host, Site

TARGET = TARGETS["nm"]
CAK = "00112233445566778899aabbccddeeff"

# Sites for keys and rules the examples and golden cases do not reach.
INLINE = {
    "nm-keys": r"""
interface eth0 {
    mac 52:54:00:00:00:01
    mtu 9000
    address 10.0.0.2/24
    address fd00::2/64
    gateway 10.0.0.1
    gateway fd00::1
    dns 10.0.0.53 fd00::53
    route 10.9.0.0/16
    route default table 200
    route 10.10.0.0/16 via 10.0.0.254 metric 20 table 100
    route 10.11.0.0/16 metric 30
    description "uplink: \"main\" # not a comment"
}
interface eth1 {
    dhcp v4
}
interface eth2 {
    dhcp both
    gateway 10.2.0.1
    state down
}
interface eth3 {
    match-mac 52:54:00:00:00:03
}
interface eth4 {
    match-driver virtio_net
}
interface eth5
interface eth6
bond bond0 {
    mode active-backup
    miimon 100
    updelay 200
    downdelay 300
    primary eth3
    ports eth3 eth4
}
bond bond1 {
    mode 802.3ad
    lacp-rate fast
    xmit-hash-policy layer3+4
    min-links 1
    ports eth5
    address 10.1.0.1/24
}
bridge br0 {
    stp on
    forward-delay 4s
    hello-time 3
    max-age 12s
    ageing-time 30
    priority 4096
    vlan-filtering on
    default-pvid 1
    multicast-snooping off
    port bond0 {
        pvid 1
        vlans 1 10-20 30
        untagged 1
        cost 100
        priority 7
        hairpin on
    }
    mac 52:54:00:00:00:02
    address 192.168.0.1/24
}
vlan br0.10 {
    link br0
    id 10
    mtu 1400
    address 10.10.10.1/24
}
vlan br0.30 {
    link br0
    id 30
    protocol 802.1ad
    state down
}
vxlan vx0 {
    vni 7
    group 239.0.0.7
    dev eth0
    learning on
    ttl 5
}
vxlan vx1 {
    vni 8
    remote 10.0.0.9
    local 10.0.0.2
    port 8472
}
macvlan mv0 {
    link eth0
    mode private
}
macvtap mvt0 {
    link eth0
    mode vepa
}
vlan mv0.3 {
    link mv0
    id 3
}
veth ve0 {
    address 10.5.0.1/30
    peer ve0-p {
        address 10.5.0.2/30
        mtu 1400
    }
}
dummy d0 {
    address 2001:db8::1/128
    route 2001:db8:1::/48
}
tun tun0 {
    owner 1000
    group 1001
    multi-queue on
    vnet-hdr on
    packet-info on
}
tap tap0 {
    master br0
}
team team0 {
    runner lacp
    link-watch ethtool
    config "{\"runner\": {\"active\": true, \"fast_rate\": true}, \"notify_peers\": {\"count\": 2}}"
    ports eth6
}
interface ib0
ipoib ib0.8001 {
    link ib0
    pkey 0x8001
    mode connected
    mtu 2044
}
interface eth7
macsec ms0 {
    link eth7
    mka-cak 00112233445566778899aabbccddeeff
    mka-ckn 0011
    encrypt off
    port 2
    send-sci on
}
""",
    # Everything NetworkManager 1.42 cannot do that the examples do not show, with a device
    # NetworkManager still configures next to each.
    "nm-residual": """
interface eth0
interface eth1
interface ib0
ipvlan ipvl0 {
    link eth0
    mode l2
}
vlan ipvl0.5 {
    link ipvl0
    id 5
}
bridge br0 {
    forward-delay 2500ms
    ports eth1 tap0
    port eth1 {
        isolated on
    }
}
bond bond0 {
    miimon 1500us
}
tap tap0 {
    owner qemu
    group 1000
}
ipoib ib0.8002 {
    link ib0
    pkey 0x8002
    umcast on
    mac 52:54:00:00:00:09
}
ipoib ipoib1 {
    link ib0
    pkey 0x8003
}
ipoib ib0.ffff {
    link ib0
}
macvlan mv0 {
    link eth0
    mode source
    source-macs 52:54:00:aa:00:01
}
dummy d0 {
    route 10.9.0.0/16
    gateway 10.0.0.1
    address fd00::1/64
}
""",
}


@functools.lru_cache(maxsize=None)
def _cases() -> tuple:
    return tuple(all_cases({**real.INLINE, **INLINE}))


def _compile_case(case) -> Site:
    return (compile_source(case.text, f"{case.id}.vnet") if case.text is not None
            else compile_file(str(case.path))).site


@functools.lru_cache(maxsize=None)
def _site(case) -> Site | None:
    """The site of a case that compiles and builds for nm, else None."""
    try:
        site = _compile_case(case)
    except CompileError:
        if case.text is not None:
            raise
        return None
    if any(TARGET.render(site, host).errors for host in site.hosts):
        return None   # e.g. MKA with a CAK file: `vnetc build` exits 3 (test_mka_*)
    return site


PARAMS = host_params(_cases(), _site)


def _host(case, host_name) -> tuple[Site, Host]:
    site = _site(case)
    return site, host_named(site, host_name)


def _inline(name: str) -> tuple[Site, Host]:
    case = next(c for c in _cases() if c.id == f"inline-{name}")
    return _host(case, None)


def _keyfiles(site: Site, host: Host, version: tuple[int, int] = (1, 42)) -> dict[str, str]:
    return {a.name: a.content for a in render(site, host, version).files}


def _compile(text: str) -> Site:
    return compile_source(text.lstrip(), "t.vnet").site


def _sections(text: str) -> list[tuple[str, str, str]]:
    """A keyfile as (section, key, value) in file order (comments and blank lines left out)."""
    out, section = [], None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def _value(text: str, section: str, key: str) -> str | None:
    return next((v for s, k, v in _sections(text) if s == section and k == key), None)


# --------------------------------------------------------------------------
# the rules


def test_one_keyfile_per_device_of_the_hosts_own_namespace_mode_0600():
    site = compile_file(str(real.EXAMPLES / "site.vnet")).site
    rendering = render(site, site.hosts[0])
    files = {a.name: a for a in rendering.files}
    residual = {g.device.ref for g in rendering.residual if g.what == "device"}
    expected = {f"vnetc-{d.name}.nmconnection" for d in site.hosts[0].devices
                if d.netns is None and d.ref not in residual}
    assert set(files) == expected
    assert all(a.mode == 0o600 and a.install_dir == INSTALL_DIR for a in files.values())
    for name, artifact in files.items():
        assert _value(artifact.content, "connection", "id") == name[len("vnetc-"):-len(".nmconnection")]


def test_root_build_installs_keyfiles_0600_and_the_residual(tmp_path):
    run = run_vnetc("build", str(real.EXAMPLES / "site.vnet"), "-t", "nm", "--root", str(tmp_path))
    assert run.exit_code == 0, run.stderr
    keyfiles = sorted((tmp_path / INSTALL_DIR).glob("*.nmconnection"))
    assert len(keyfiles) == 17
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keyfiles)
    unit = (tmp_path / "etc/systemd/system/vnetc-residual-nm.service").read_text()
    assert "After=NetworkManager.service\n" in unit and "Wants=NetworkManager.service\n" in unit
    items = json.loads((tmp_path / "etc/vnetc/residual/nm.json").read_text())["items"]
    assert ("ifb", "ifb0", "device") in {(i["kind"], i["name"], i["what"]) for i in items}


def test_multi_host_root_build_has_a_directory_per_host(tmp_path):
    run = run_vnetc("build", str(real.GOLDEN / "valid-multi-host" / "input.vnet"), "-t", "nm", "--root", str(tmp_path))
    assert run.exit_code == 0, run.stderr
    hv01 = {p.name for p in (tmp_path / "hv01" / INSTALL_DIR).iterdir()}
    hv02 = {p.name for p in (tmp_path / "hv02" / INSTALL_DIR).iterdir()}
    assert "vnetc-eth0.nmconnection" in hv01 & hv02


def test_uuids_are_uuid5_of_site_file_host_and_device():
    site = compile_file(str(real.GOLDEN / "valid-multi-host" / "input.vnet")).site
    hv01, hv02 = site.hosts
    one = _value(_keyfiles(site, hv01)["vnetc-eth0.nmconnection"], "connection", "uuid")
    two = _value(_keyfiles(site, hv02)["vnetc-eth0.nmconnection"], "connection", "uuid")
    assert one == str(uuid.uuid5(UUID_NAMESPACE, "input/hv01/eth0")) == connection_uuid(site, hv01, "eth0")
    assert one != two and uuid.UUID(one).version == 5
    # the same file elsewhere, under the same name: the same UUIDs; another name: others
    text = (real.GOLDEN / "valid-multi-host" / "input.vnet").read_text()
    assert connection_uuid(compile_source(text, "/elsewhere/input.vnet").site, hv01, "eth0") == one
    assert connection_uuid(compile_source(text, "other.vnet").site, hv01, "eth0") != one


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_output_is_deterministic(case, host_name):
    site, host = _host(case, host_name)
    again = _compile_case(case)
    assert _keyfiles(site, host) == _keyfiles(again, next(h for h in again.hosts if h.name == host_name))


@pytest.mark.parametrize("text,ipv4,ipv6", [
    ("dummy d", "disabled", "disabled"),
    ("dummy d { address 10.0.0.1/24 }", "manual", "link-local"),
    ("dummy d { address fd00::1/64 }", "disabled", "manual"),
    ("dummy d { dhcp v4 }", "auto", "link-local"),
    ("dummy d { dhcp v6 }", "disabled", "auto"),
    ("dummy d { dhcp both; address 10.0.0.1/24 }", "auto", "auto"),
    ("dummy d { route fd00:1::/64 }", "disabled", "link-local"),
    ("dummy d { address 10.0.0.1/24; gateway fd00::1 }", "manual", "link-local"),
])
def test_ip_method_per_version(text, ipv4, ipv6):
    site = _compile(text.replace("{ ", "{\n").replace("; ", "\n").replace(" }", "\n}"))
    rendering = render(site, site.hosts[0])
    assert rendering.residual == [] and rendering.errors == []
    keyfile = rendering.files[0].content
    assert (_value(keyfile, "ipv4", "method"), _value(keyfile, "ipv6", "method")) == (ipv4, ipv6)


def test_gateway_without_an_address_of_its_version_is_a_default_route():
    site = _compile("dummy d {\n address 10.0.0.1/24\n gateway fd00::1\n}\ndummy e {\n dhcp v4\n gateway 10.0.0.1\n}")
    files = _keyfiles(site, site.hosts[0])
    assert _value(files["vnetc-d.nmconnection"], "ipv6", "route1") == "::/0,fd00::1"
    assert _value(files["vnetc-e.nmconnection"], "ipv4", "route1") == "0.0.0.0/0,10.0.0.1"


def test_ports_have_no_ip_settings_and_name_their_controller_by_uuid():
    site, host = _inline("nm-keys")
    files = _keyfiles(site, host)
    for device in host.devices:
        name = f"vnetc-{device.name}.nmconnection"
        if device.master is None or name not in files:
            continue
        entries = _sections(files[name])
        assert not {s for s, _, _ in entries} & {"ipv4", "ipv6"}, name
        assert _value(files[name], "connection", "master") == connection_uuid(site, host, device.master.name)


def test_interface_matched_by_mac_or_driver_has_no_interface_name():
    site, host = _inline("nm-keys")
    files = _keyfiles(site, host)
    assert _value(files["vnetc-eth3.nmconnection"], "connection", "interface-name") is None
    assert _value(files["vnetc-eth3.nmconnection"], "ethernet", "mac-address") == "52:54:00:00:00:03".upper()
    assert _value(files["vnetc-eth4.nmconnection"], "connection", "interface-name") is None
    assert _value(files["vnetc-eth4.nmconnection"], "match", "driver") == "virtio_net;"


def test_the_link_of_an_ipoib_device_is_an_infiniband_nic():
    site, host = _inline("nm-keys")
    files = _keyfiles(site, host)
    assert _value(files["vnetc-ib0.nmconnection"], "connection", "type") == "infiniband"
    assert _value(files["vnetc-ib0.8001.nmconnection"], "infiniband", "parent") == "ib0"   # a name, not a UUID


def test_residual_is_what_networkmanager_1_42_cannot_do():
    site, host = _inline("nm-residual")
    rendering = render(site, host)
    assert rendering.errors == []
    assert {(g.device.name, g.what) for g in rendering.residual} == {
        ("ipvl0", "device"),         # ipvlan only since 1.52
        ("ipvl0.5", "device"),       # stacked on it
        ("br0", "forward-delay"),    # whole seconds
        ("br0", "port"),             # isolated
        ("bond0", "miimon"),         # whole milliseconds
        ("tap0", "owner"),           # a user name, not a UID
        ("ib0.8002", "umcast"),
        ("ib0.8002", "mac"),
        ("ipoib1", "device"),        # NetworkManager names it ib0.8003
        ("ib0.ffff", "device"),      # no P_Key
        ("mv0", "source-macs"),
        ("d0", "route"),             # IPv4 routes need an IPv4 address or DHCP
    }
    assert all(g.span is not None for g in rendering.residual)
    files = _keyfiles(site, host)
    assert "vnetc-ipvl0.nmconnection" not in files and "vnetc-ipoib1.nmconnection" not in files
    assert _value(files["vnetc-tap0.nmconnection"], "tun", "group") == "1000"
    assert _value(files["vnetc-d0.nmconnection"], "ipv4", "method") == "disabled"
    assert _value(files["vnetc-d0.nmconnection"], "ipv4", "route1") is None


@pytest.mark.parametrize("options,refused", [
    ("mode 802.3ad; primary eth0", {"primary"}),
    ("mode balance-rr; lacp-rate fast", {"lacp-rate"}),
    ("mode balance-tlb; arp-interval 100; arp-ip-target 10.0.0.1", {"arp-interval", "arp-ip-target"}),
    ("mode active-backup; arp-interval 100; arp-ip-target fd00::1", {"arp-interval", "arp-ip-target"}),
    ("mode active-backup; arp-interval 100", {"arp-interval"}),
    ("mode active-backup; arp-interval 0.5; arp-ip-target 10.0.0.1", {"arp-interval", "arp-ip-target"}),
    ("mode active-backup; miimon 100; arp-interval 100; arp-ip-target 10.0.0.1", {"arp-interval", "arp-ip-target"}),
    ("mode active-backup; arp-interval 100; arp-ip-target 10.0.0.1; updelay 200", {"updelay"}),
    ("mode active-backup; miimon 0; downdelay 100", {"downdelay"}),
    ("mode active-backup; miimon 100; updelay 200; primary eth0", set()),
])
def test_bond_options_networkmanager_refuses_go_to_the_residual(options, refused):
    """libnm-core's bond rules: what it would refuse (verify) or drop (normalizing) is left out, and what is
    written passes libnm."""
    site = _compile("interface eth0\nbond b {\n" + options.replace("; ", "\n") + "\n ports eth0\n}")
    rendering = render(site, site.hosts[0])
    assert {g.what for g in rendering.residual} == refused
    require_libnm()
    reads = read_keyfiles({a.name: a.content for a in rendering.files})
    assert {name: read.problems for name, read in reads.items() if read.problems} == {}


def test_strict_refuses_the_residual(tmp_path):
    source = tmp_path / "t.vnet"
    source.write_text(INLINE["nm-residual"].lstrip())
    run = run_vnetc("build", str(source), "-t", "nm", "--strict", "-o", str(tmp_path / "o"))
    assert run.exit_code == 3, run.stderr
    assert "nm cannot express ipvlan 'ipvl0'" in run.stderr
    assert not (tmp_path / "o").exists()


def test_a_dns_server_of_an_unconfigured_ip_version_is_an_error():
    site = _compile("dummy d {\n address 10.0.0.1/24\n dns fd00::53\n}")
    errors = render(site, site.hosts[0]).errors
    assert [(g.device.name, g.what) for g in errors] == [("d", "dns")]
    assert errors[0].span is not None and "IPv6" in errors[0].reason


def test_mka_with_a_cak_is_networkmanagers_and_a_cak_file_an_error(tmp_path):
    site, host = _inline("nm-keys")
    keyfile = _keyfiles(site, host)["vnetc-ms0.nmconnection"]
    assert (_value(keyfile, "macsec", "mode"), _value(keyfile, "macsec", "mka-cak")) == ("0", CAK)
    # the other targets still refuse MKA
    assert [g.what for g in TARGETS["networkd"].render(site, host).errors] == ["mka-cak"]
    run = run_vnetc("build", str(real.GOLDEN / "valid-macsec-mka" / "input.vnet"), "-t", "nm", "-o", str(tmp_path))
    assert run.exit_code == 3
    assert "nm: macsec 'macsec1' mka-cak-file: NetworkManager runs MKA only with mka-cak and mka-ckn" in run.stderr
    assert not tmp_path.joinpath("nm").exists()


def test_the_cak_is_never_printed(tmp_path):
    source = tmp_path / "t.vnet"
    source.write_text(INLINE["nm-keys"].lstrip())
    out = tmp_path / "out"
    run = run_vnetc("build", str(source), "-t", "nm", "-o", str(out))
    assert run.exit_code == 0 and CAK not in run.stderr + run.stdout
    assert stat.S_IMODE((out / "nm" / "vnetc-ms0.nmconnection").stat().st_mode) == 0o600
    source.write_text(INLINE["nm-keys"].lstrip().replace("encrypt off", "encrypt on"))
    check = run_vnetc("build", str(source), "-t", "nm", "-o", str(out), "--check")
    assert check.exit_code == 1 and "+encrypt=true" in check.stdout
    assert CAK not in check.stdout + check.stderr and "mka-cak=<redacted>" in check.stdout


def test_nm_version_1_52_creates_ipvlan():
    site, host = _inline("nm-residual")
    assert "vnetc-ipvl0.nmconnection" not in _keyfiles(site, host)
    keyfile = _keyfiles(site, host, parse_version("1.52"))["vnetc-ipvl0.nmconnection"]
    # NetworkManager 1.52's [ipvlan]: parent, mode (1 l2, 2 l3, 3 l3s), private, vepa
    assert [(s, k, v) for s, k, v in _sections(keyfile) if s == "ipvlan"] == [
        ("ipvlan", "mode", "1"), ("ipvlan", "parent", connection_uuid(site, host, "eth0")),
        ("ipvlan", "private", "false"), ("ipvlan", "vepa", "false")]
    assert "ipvl0" not in {g.device.name for g in render(site, host, (1, 52)).residual}
    assert "ipvl0.5" not in {g.device.name for g in render(site, host, (1, 52)).residual}


@pytest.mark.parametrize("version", ["1.4", "1.41", "2", "x.y", "1.42.1"])
def test_nm_version_must_be_a_release_from_1_42(version, tmp_path):
    run = run_vnetc("build", str(real.EXAMPLES / "seed" / "vlan.vnet"), "-t", "nm", "--nm-version", version,
                    "-o", str(tmp_path))
    assert run.exit_code == 2
    assert "Invalid value for '--nm-version'" in run.stderr and "Traceback" not in run.stderr


def test_teamd_config_merges_the_raw_json_over_the_generated_one():
    site = _compile('team t {\n runner lacp\n config "{\\"runner\\": {\\"active\\": true}, \\"link_watch\\": '
                    '{\\"name\\": \\"arp_ping\\", \\"interval\\": 100}}"\n}')
    assert json.loads(teamd_config(site.hosts[0].devices[0])) == {
        "runner": {"name": "lacp", "active": True}, "link_watch": {"name": "arp_ping", "interval": 100}}


def test_a_nul_in_the_teamd_json_is_an_error():
    site = _compile('team t {\n config "{\\"runner\\": {\\"name\\": \\"a\\\\u0000b\\"}}"\n}')
    assert [(g.device.name, g.what) for g in render(site, site.hosts[0]).errors] == [("t", "config")]


def test_vlan_lists_are_runs_with_flags():
    assert vlan_list({1, 10, 11, 12, 30}, pvid=1, untagged={1}) == "1 pvid untagged,10-12,30"
    assert vlan_list({5, 6, 7, 8}, pvid=6, untagged={5, 6, 7}) == "5 untagged,6 pvid untagged,7 untagged,8"
    assert vlan_list({100, 101, 102, 104}) == "100-102,104"


# --------------------------------------------------------------------------
# libnm


@functools.lru_cache(maxsize=1)
def _all_reads() -> dict[str, dict[str, Read]]:
    """Every case's keyfiles, read by libnm in one process: case id -> file name -> Read."""
    files = {}
    for param in PARAMS:
        case, host_name = param.values
        site, host = _host(case, host_name)
        for name, text in _keyfiles(site, host).items():
            files[f"{param.id}/{name}"] = text
    reads: dict[str, dict[str, Read]] = {}
    for key, read in read_keyfiles(files).items():
        case_id, name = key.rsplit("/", 1)
        reads.setdefault(case_id, {})[name] = read
    return reads


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_libnm_reads_every_keyfile_without_a_problem(case, host_name, request):
    require_libnm()
    site, host = _host(case, host_name)
    case_id = request.node.callspec.id
    reads = _all_reads().get(case_id, {})
    assert set(reads) == set(_keyfiles(site, host))
    assert {name: read.problems for name, read in reads.items() if read.problems} == {}
    assert graph_problems(reads) == []


def _mac(text: str) -> list[int]:
    """A MAC as libnm's D-Bus form holds it (bytes)."""
    return [int(octet, 16) for octet in text.split(":")]


def _nm_keys_reads() -> dict[str, Read]:
    require_libnm()
    return {name[len("vnetc-"):-len(".nmconnection")]: read for name, read in _all_reads()["inline-nm-keys"].items()}


def test_libnm_reads_the_addresses_routes_and_dns_the_site_gives():
    eth0 = _nm_keys_reads()["eth0"]
    assert eth0.get("ipv4", "method") == "manual"
    assert eth0.get("ipv4", "address-data") == [{"address": "10.0.0.2", "prefix": 24}]
    assert eth0.get("ipv4", "gateway") == "10.0.0.1" and eth0.get("ipv6", "gateway") == "fd00::1"
    assert eth0.get("ipv4", "dns-data") == ["10.0.0.53"] and eth0.get("ipv6", "dns-data") == ["fd00::53"]
    assert eth0.get("ipv4", "route-data") == [
        {"dest": "10.9.0.0", "prefix": 16},
        {"dest": "0.0.0.0", "prefix": 0, "table": 200},
        {"dest": "10.10.0.0", "prefix": 16, "next-hop": "10.0.0.254", "metric": 20, "table": 100},
        {"dest": "10.11.0.0", "prefix": 16, "metric": 30}]
    assert eth0.get("ipv6", "route-data") == [{"dest": "::", "prefix": 0, "table": 200}]
    assert eth0.get("802-3-ethernet", "mtu") == 9000
    assert eth0.get("802-3-ethernet", "cloned-mac-address") == _mac("52:54:00:00:00:01")
    eth2 = _nm_keys_reads()["eth2"]
    assert eth2.get("connection", "autoconnect") is False
    assert (eth2.get("ipv4", "method"), eth2.get("ipv6", "method")) == ("auto", "auto")
    assert eth2.get("ipv4", "route-data") == [{"dest": "0.0.0.0", "prefix": 0, "next-hop": "10.2.0.1"}]


def test_libnm_reads_the_kind_settings_the_site_gives():
    reads = _nm_keys_reads()
    assert reads["bond0"].get("bond", "options") == {"mode": "active-backup", "miimon": "100", "updelay": "200",
                                                     "downdelay": "300", "primary": "eth3"}
    assert reads["bond1"].get("bond", "options") == {"mode": "802.3ad", "lacp_rate": "fast",
                                                     "xmit_hash_policy": "layer3+4", "min_links": "1"}
    bridge = reads["br0"].settings["bridge"]
    assert {k: bridge[k] for k in ("stp", "forward-delay", "hello-time", "max-age", "ageing-time", "priority",
                                   "vlan-filtering", "vlan-default-pvid", "multicast-snooping")} == {
        "stp": True, "forward-delay": 4, "hello-time": 3, "max-age": 12, "ageing-time": 30, "priority": 4096,
        "vlan-filtering": True, "vlan-default-pvid": 1, "multicast-snooping": False}
    assert bridge["vlans"] == [{"vid-start": vid, "vid-end": vid, "pvid": False, "untagged": False}   # its VLANs
                               for vid in (10, 30)]
    assert reads["br0"].get("802-3-ethernet", "cloned-mac-address") == _mac("52:54:00:00:00:02")
    port = reads["bond0"].settings["bridge-port"]
    assert port == {"path-cost": 100, "priority": 7, "hairpin-mode": True, "vlans": [
        {"vid-start": 1, "vid-end": 1, "pvid": True, "untagged": True},
        {"vid-start": 10, "vid-end": 20, "pvid": False, "untagged": False},
        {"vid-start": 30, "vid-end": 30, "pvid": False, "untagged": False}]}
    assert reads["tap0"].get("connection", "slave-type") == "bridge" and "bridge-port" in reads["tap0"].settings
    assert json.loads(reads["team0"].get("team", "config")) == {
        "runner": {"name": "lacp", "active": True, "fast_rate": True}, "link_watch": {"name": "ethtool"},
        "notify_peers": {"count": 2}}
    assert reads["eth6"].get("connection", "slave-type") == "team"
    assert (reads["br0.30"].get("vlan", "id"), reads["br0.30"].get("vlan", "protocol")) == (30, "802.1ad")
    assert reads["br0.30"].get("connection", "autoconnect") is False
    vx0 = reads["vx0"].settings["vxlan"]
    assert (vx0["id"], vx0["remote"], vx0["ttl"], vx0["learning"], vx0["destination-port"]) == (
        7, "239.0.0.7", 5, True, 4789)
    assert vx0["parent"] == reads["eth0"].get("connection", "uuid")
    assert reads["vx1"].get("vxlan", "local") == "10.0.0.2" and reads["vx1"].get("vxlan", "destination-port") == 8472
    assert (reads["mv0"].get("macvlan", "mode"), reads["mv0"].get("macvlan", "tap")) == (3, False)
    assert (reads["mvt0"].get("macvlan", "mode"), reads["mvt0"].get("macvlan", "tap")) == (1, True)
    assert reads["mv0.3"].get("vlan", "parent") == reads["mv0"].get("connection", "uuid")
    assert (reads["ve0"].get("veth", "peer"), reads["ve0-p"].get("veth", "peer")) == ("ve0-p", "ve0")
    assert reads["ve0-p"].get("802-3-ethernet", "mtu") == 1400
    assert (reads["d0"].get("ipv4", "method"), reads["d0"].get("ipv6", "method")) == ("disabled", "manual")
    assert {k: v for k, v in reads["tun0"].settings["tun"].items()} == {
        "mode": 1, "owner": "1000", "group": "1001", "multi-queue": True, "vnet-hdr": True, "pi": True}
    ib = reads["ib0.8001"].settings["infiniband"]
    assert (ib["p-key"], ib["parent"], ib["transport-mode"], ib["mtu"]) == (0x8001, "ib0", "connected", 2044)
    macsec = reads["ms0"].settings["macsec"]
    assert (macsec["mode"], macsec["mka-ckn"], macsec["encrypt"], macsec["port"], macsec["send-sci"]) == (
        0, "0011", False, 2, True)


def _nmcli_rewrite(text: str) -> str:
    """The keyfile as NetworkManager's own writer writes it back (`nmcli --offline connection modify`)."""
    nmcli = shutil.which("nmcli")
    if nmcli is None:
        skip_or_fail("no nmcli (Debian package network-manager)")
    same_id = _value(text, "connection", "id")
    run = subprocess.run([nmcli, "--offline", "connection", "modify", "connection.id", same_id], input=text,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_networkmanagers_own_writer_keeps_every_value_in_our_order():
    """Our spelling of each value is NetworkManager's (MACs, VLAN lists, lists with ';', address1 with
    the gateway, route options), and our key order is its order. It drops only what equals its default."""
    site, host = _inline("nm-keys")
    dropped = set()
    for name, text in _keyfiles(site, host).items():
        ours = _sections(text)
        theirs = _sections(_nmcli_rewrite(text))
        shared = [entry for entry in ours if entry in theirs]
        assert [e for e in theirs if e in shared] == shared, name
        for section, key, value in ours:
            if (section, key, value) not in theirs:
                assert not [v for s, k, v in theirs if (s, k) == (section, key)], f"{name}: [{section}] {key}"
                dropped.add((section, key, value))
    # what NetworkManager leaves out as its default value (each checked by name)
    assert dropped == {("bridge", "vlan-default-pvid", "1"), ("bridge", "stp", "true"),
                       ("bridge-port", "path-cost", "100"), ("macvlan", "tap", "false"),
                       ("vxlan", "learning", "true"), ("vxlan", "destination-port", "8472"), ("tun", "mode", "1"),
                       ("macsec", "mode", "0"), ("macsec", "send-sci", "true")}


# --------------------------------------------------------------------------
# the verifier can fail

_BASE = "[connection]\nid={id}\nuuid={uuid}\ntype={type}\ninterface-name={id}\n{extra}\n"
_UUIDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"vnetc-test-{i}")) for i in range(9)]


def _file(i: int, conn_type: str, body: str, extra: str = "", name: str | None = None) -> str:
    return _BASE.format(id=name or f"x{i}", uuid=_UUIDS[i], type=conn_type, extra=extra) + body


NO_IP = "[ipv4]\nmethod=disabled\n\n[ipv6]\nmethod=disabled\n"


def test_the_verifier_reports_each_kind_of_problem():
    require_libnm()
    reads = read_keyfiles({
        "unknown-key": _file(0, "dummy", "[dummy]\nbogus=1\n\n" + NO_IP),
        "unknown-section": _file(1, "dummy", "[dummy]\n\n[bogus]\nx=1\n\n" + NO_IP),
        "bad-vlan-id": _file(2, "vlan", f"[vlan]\nid=5000\nparent={_UUIDS[0]}\n\n" + NO_IP),
        "missing-parent": _file(3, "vlan", "[vlan]\nid=5\n\n" + NO_IP),
        "port-with-ip": _file(4, "ethernet", "[ethernet]\n\n[bridge-port]\n\n" + NO_IP,
                              extra=f"master={_UUIDS[5]}\nslave-type=bridge\n"),
        "bad-bond-option": _file(6, "bond", "[bond]\nmode=802.3ad\nmiimonx=100\n\n" + NO_IP),
        "dropped-bond-option": _file(8, "bond", "[bond]\nmode=802.3ad\narp_interval=100\narp_ip_target=10.0.0.1\n\n"
                                     + NO_IP),
        "fine": _file(7, "dummy", "[dummy]\n\n" + NO_IP),
    })
    assert reads["unknown-key"].problems == ["unknown: [dummy] bogus: no such property"]
    assert reads["unknown-section"].unknown == ["[bogus]: no such setting"]
    assert reads["bad-vlan-id"].warnings and "[vlan] id" in reads["bad-vlan-id"].warnings[0]
    assert reads["missing-parent"].errors and "vlan.parent" in reads["missing-parent"].errors[0]
    assert reads["port-with-ip"].errors and "not allowed in slave connection" in reads["port-with-ip"].errors[0]
    assert reads["bad-bond-option"].warnings and "miimonx" in reads["bad-bond-option"].warnings[0]
    assert reads["dropped-bond-option"].problems == [   # verify() passes it; NetworkManager drops the options
        "normalized: [bond] options: {'arp_interval': '100', 'arp_ip_target': '10.0.0.1', 'mode': '802.3ad'} -> "
        "{'mode': '802.3ad'}"]
    assert reads["fine"].problems == []
    assert graph_problems(reads) == [f"port-with-ip: its controller {_UUIDS[5]} is no connection"]
    bad = read_keyfiles({
        "a": _file(0, "ethernet", "[ethernet]\n\n[bond-port]\n", extra=f"master={_UUIDS[1]}\nslave-type=bond\n"),
        "b": _file(1, "bridge", "[bridge]\n\n" + NO_IP),
        "c": _file(2, "vlan", "[vlan]\nid=5\nparent=nothing\n\n" + NO_IP),
        "d": _file(3, "veth", "[veth]\npeer=x4\n\n" + NO_IP),
        "e": _file(4, "veth", "[veth]\npeer=x9\n\n" + NO_IP),
        "f": _file(1, "dummy", "[dummy]\n\n" + NO_IP, name="x6"),
    })
    assert graph_problems(bad) == [
        f"f: {_UUIDS[1]} is also b's",
        "a: its controller b is a bridge, not a bond",
        "c: its parent nothing is no connection",
        "d: its peer x4 names x9 as its own peer"]


# --------------------------------------------------------------------------
# random sites


@pytest.fixture
def _no_assertion_pass_hook(monkeypatch):
    """As in tests/compiler/test_properties.py: pytest's assertion pass hook (pyproject.toml, for
    pytest-golden) makes hypothesis's own asserts, and so generating sites, ~40x slower."""
    from _pytest.assertion import util
    monkeypatch.setattr(util, "_assertion_pass", None)


@pytest.fixture
def _libnm():
    require_libnm()


@pytest.mark.usefixtures("_libnm", "_no_assertion_pass_hook")
@given(sites(max_devices=6))
def test_random_sites_render_and_libnm_reads_every_keyfile(generated):
    site = compile_source(generated.text, "site.vnet").site
    for host in site.hosts:
        rendering = render(site, host)
        for error in rendering.errors:   # what nobody can do is refused by name and position (exit 3)
            assert error.span is not None and error.reason
        if rendering.errors:
            continue
        files = {a.name: a.content for a in rendering.files if a.name.endswith(".nmconnection")}
        reads = read_keyfiles(files)
        problems = {name: read.problems for name, read in reads.items() if read.problems}
        assert problems == {}, "\n\n".join(f"{n}: {p}\n{files[n]}" for n, p in problems.items())
        assert graph_problems(reads) == []
