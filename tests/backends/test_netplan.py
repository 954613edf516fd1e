"""The netplan target, proven on the real netplan (0.106, Debian 12's netplan.io).

1. Rendering rules (fast, no netplan): the file, its mode and place, the YAML
   (read back by a real YAML parser), determinism, the residual, --strict.
2. Acceptance: for every example, golden case and INLINE site (the networkd
   tests' cases, plus the sites below), each host's YAML is written under a
   temporary root with mode 0600 and `netplan generate --root-dir ROOT` must
   exit 0 and say nothing on stderr.
3. Equivalence: netplan's own networkd rendering of our YAML
   (ROOT/run/systemd/network) and vnetc's networkd target for the same site are
   each run by the real systemd-networkd in a fresh namespace
   (tests/harness/networkd.py, with the networkd tests' sandbox); the kernel
   state must be the same (names, kinds, masters, lower links, VLAN ids/VNIs,
   addresses, MTU, up/down) for every device both targets express and this
   kernel can build. The rest is left out of both runs, each for a reason the
   test prints (the networkd tests' rules: harness.kernel probes). netplan
   writes its files 0600 root; they are copied readable for networkd (which
   runs as systemd-network). netplan matches a NIC by its *permanent* MAC and
   driver; the fake NICs are veths, which have neither, so the copy networkd
   gets matches by the name netplan's `set-name` gives (noted per run).

Under CI=true nothing here is skipped for want of netplan, root or iproute2:
that fails the test.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

import test_networkd_real as real
from conftest import run_vnetc
from harness.cases import all_cases, host_named, host_params
from harness import networkd as nd
from harness.netns import skip_or_fail
from test_networkd_real import sandbox  # noqa: F401  (a fixture)
from vnetc.backends import TARGETS
from vnetc.backends.netplan import FILE_NAME, INSTALL_DIR, RESIDUAL_KINDS, dump, render
from vnetc.compiler import CompileError, compile_file, compile_source
from vnetc.compiler.ir import Device, Host, Site

NETPLAN = shutil.which("netplan") or "/usr/sbin/netplan"
TARGET = TARGETS["netplan"]

# Sites for keys the examples and golden cases do not reach.
INLINE = {
    "netplan-keys": """
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
    description "uplink: \\"main\\" # not a comment"
}
interface eth1 {
    dhcp v4
}
interface eth2 {
    dhcp v6
    state down
}
interface eth3
interface eth4
bond bond0 {
    mode balance-xor
    arp-interval 1s
    arp-ip-target 10.0.0.1 10.0.0.254
    updelay 1500us
    xmit-hash-policy layer2+3
    ports eth3 eth4
    mtu 1400
}
bridge br0 {
    stp on
    forward-delay 2500ms
    max-age 6s
    ageing-time 0
    ports bond0
    port bond0 {
        cost 100
        priority 7
        hairpin on
    }
    mac 52:54:00:00:00:02
    address 192.168.0.1/24
}
vlan br0.5 {
    link br0
    id 5
    mtu 1300
    state down
}
vxlan vx0 {
    vni 7
    group 239.0.0.7
    dev eth0
    learning on
}
vxlan vx1 {
    vni 8
    remote 10.0.0.9
    dev br0.5
}
macvlan mv0 {
    link eth0
}
vlan mv0.3 {
    link mv0
    id 3
}
interface eth5
team team0 {
    ports eth5
}
""",
    "netplan-bridge-of-veths": """
interface eth0
veth ve0 {
    peer ve0-p
}
bridge br0 {
    ports eth0 ve0
    address 10.1.0.1/24
}
""",
}


@functools.lru_cache(maxsize=None)
def _cases() -> tuple:
    return tuple(all_cases({**real.INLINE, **INLINE}))


@functools.lru_cache(maxsize=None)
def _site(case) -> Site | None:
    """The site of a case that compiles and builds for netplan (and networkd), else None."""
    try:
        site = (compile_source(case.text, f"{case.id}.vnet") if case.text is not None
                else compile_file(str(case.path))).site
    except CompileError:
        if case.text is not None:
            raise
        return None
    for target in (TARGET, TARGETS["networkd"]):
        if any(target.render(site, host).errors for host in site.hosts):
            return None
    return site


PARAMS = host_params(_cases(), _site)


def _host(case, host_name) -> tuple[Site, Host]:
    site = _site(case)
    return site, host_named(site, host_name)


def _yaml_of(site: Site, host: Host) -> str:
    files = [f for f in TARGET.render(site, host).files if f.name == FILE_NAME]
    assert len(files) == 1
    return files[0].content


# --------------------------------------------------------------------------
# the rules


def _compile(text: str) -> Site:
    return compile_source(text.lstrip(), "t.vnet").site


def test_one_yaml_per_host_at_etc_netplan_mode_0600():
    site = _site(next(c for c in _cases() if c.id == "golden-valid-multi-host"))
    for host in site.hosts:
        files = TARGET.render(site, host).files
        assert [(f.name, f.install_dir, f.mode) for f in files] == [("90-vnetc.yaml", "etc/netplan", 0o600)]


def test_root_build_installs_the_yaml_0600(tmp_path):
    source = tmp_path / "t.vnet"
    source.write_text(INLINE["netplan-bridge-of-veths"].lstrip())
    run = run_vnetc("build", str(source), "-t", "netplan", "--root", str(tmp_path / "root"))
    assert run.exit_code == 0, run.stderr
    path = tmp_path / "root" / "etc" / "netplan" / "90-vnetc.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / "root" / "etc" / "vnetc" / "residual" / "netplan.json").is_file()
    unit = (tmp_path / "root" / "etc" / "systemd" / "system" / "vnetc-residual-netplan.service").read_text()
    assert "After=systemd-networkd.service" in unit


def test_yaml_reads_back_as_the_netplan_document():
    site = _compile(INLINE["netplan-keys"])
    text = _yaml_of(site, site.hosts[0])
    doc = YAML(typ="safe").load(text)["network"]
    assert doc["version"] == 2 and doc["renderer"] == "networkd"
    eth0 = doc["ethernets"]["eth0"]
    assert eth0["macaddress"] == "52:54:00:00:00:01" and eth0["mtu"] == 9000
    assert eth0["addresses"] == ["10.0.0.2/24", "fd00::2/64"]
    assert eth0["nameservers"] == {"addresses": ["10.0.0.53", "fd00::53"]}
    assert eth0["routes"] == [
        {"to": "default", "via": "10.0.0.1"}, {"to": "default", "via": "fd00::1"},
        {"to": "10.9.0.0/16"},
        # netplan 0.106 aborts on `to: default` without `via`: both families, spelled out
        {"to": "0.0.0.0/0", "table": 200}, {"to": "::/0", "table": 200},
        {"to": "10.10.0.0/16", "via": "10.0.0.254", "metric": 20, "table": 100}]
    assert doc["ethernets"]["eth1"] == {"dhcp4": True}
    assert doc["ethernets"]["eth2"] == {"activation-mode": "off", "dhcp6": True}
    assert doc["ethernets"]["eth3"] == {}
    assert "eth5" not in text and "team0" not in text
    assert doc["bonds"]["bond0"] == {"interfaces": ["eth3", "eth4"], "mtu": 1400, "parameters": {
        "mode": "balance-xor", "arp-interval": 1000, "arp-ip-targets": ["10.0.0.1", "10.0.0.254"],
        "up-delay": "1500us", "transmit-hash-policy": "layer2+3"}}
    br0 = doc["bridges"]["br0"]
    assert br0["interfaces"] == ["bond0"] and br0["macaddress"] == "52:54:00:00:00:02"
    assert br0["parameters"] == {"stp": True, "forward-delay": "2500ms", "max-age": 6, "ageing-time": 0,
                                 "path-cost": {"bond0": 100}, "port-priority": {"bond0": 7}}
    assert doc["vlans"] == {"br0.5": {"id": 5, "link": "br0", "mtu": 1300, "activation-mode": "off",
                                      "link-local": []}}
    assert doc["tunnels"]["vx0"] == {"mode": "vxlan", "id": 7, "remote": "239.0.0.7", "port": 4789,
                                     "mac-learning": True, "link": "eth0", "link-local": []}
    assert doc["tunnels"]["vx1"]["link"] == "br0.5"
    assert set(doc) == {"version", "renderer", "ethernets", "bonds", "bridges", "vlans", "tunnels"}


def test_residual_is_what_netplan_0_106_cannot_express():
    site = _compile(INLINE["netplan-keys"])
    rendering = TARGET.render(site, site.hosts[0])
    assert sorted((g.device.name, g.what) for g in rendering.residual) == sorted([
        ("eth5", "master"), ("br0", "port"), ("mv0", "device"), ("mv0.3", "device"), ("team0", "device")])
    reasons = {(g.device.name, g.what): g.reason for g in rendering.residual}
    assert "hairpin" in reasons[("br0", "port")]
    assert "lower link 'mv0'" in reasons[("mv0.3", "device")]
    assert rendering.errors == []


@pytest.mark.parametrize("kind", sorted(RESIDUAL_KINDS))
def test_every_kind_netplan_lacks_goes_to_the_residual(kind):
    """Each kind in the every-kind site of the networkd tests, or else in its seed example."""
    site = compile_source(real.INLINE["every-kind"].lstrip(), "every.vnet").site
    if not any(d.kind == kind for d in site.hosts[0].devices):
        site = compile_file(str(real.EXAMPLES / "seed" / f"{kind}.vnet")).site
    host = site.hosts[0]
    assert any(d.kind == kind for d in host.devices)
    rendering = TARGET.render(site, host)
    gaps = rendering.residual + rendering.errors
    assert {d.name for d in host.devices if d.kind == kind} <= {g.device.name for g in gaps if g.what == "device"}
    doc = YAML(typ="safe").load(_yaml_of(site, host))["network"]
    named = {name for section in doc.values() if isinstance(section, dict) for name in section}
    assert not named & {d.name for d in host.devices if d.kind == kind}


def test_devices_in_namespaces_and_802_1ad_vlans_go_to_the_residual():
    site = _compile("""
netns blue
interface eth0
bridge br9 { netns blue }
vlan eth0.7 {
    link eth0
    id 7
    protocol 802.1ad
}
""")
    rendering = TARGET.render(site, site.hosts[0])
    assert {(g.device.name, g.what) for g in rendering.residual} == {("br9", "device"), ("eth0.7", "device")}
    assert "vlans" not in _yaml_of(site, site.hosts[0]) and "br9" not in _yaml_of(site, site.hosts[0])


def test_strict_refuses_the_residual(tmp_path):
    source = tmp_path / "t.vnet"
    source.write_text(INLINE["netplan-bridge-of-veths"].lstrip())
    run = run_vnetc("build", str(source), "-t", "netplan", "--strict", "-o", str(tmp_path / "o"))
    assert run.exit_code == 3, run.stderr
    assert "veth" in run.stderr


def test_mka_is_an_error():
    site = compile_file(str(real.GOLDEN / "valid-macsec-mka" / "input.vnet")).site
    assert any(TARGET.render(site, h).errors for h in site.hosts)


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_output_is_deterministic(case, host_name):
    site, host = _host(case, host_name)
    assert _yaml_of(site, host) == _yaml_of(site, host)
    again = (compile_source(case.text, f"{case.id}.vnet") if case.text is not None
             else compile_file(str(case.path))).site
    assert _yaml_of(again, next(h for h in again.hosts if h.name == host_name)) == _yaml_of(site, host)


def test_dump_quotes_every_string_and_reads_back():
    data = {"network": {"version": 2, "ethernets": {"yes": {"#": "a: b\n# c", "addresses": ["on", "1:2::3/64"]},
                                                     "0x10": {}, "x": {"routes": [{"to": "default"}]}}}}
    text = dump(data)
    assert YAML(typ="safe").load(text) == {"network": {"version": 2, "ethernets": {
        "yes": {"addresses": ["on", "1:2::3/64"]}, "0x10": {}, "x": {"routes": [{"to": "default"}]}}}}
    assert '"yes":' in text and '"0x10": {}' in text and "# a: b # c\n" in text


# --------------------------------------------------------------------------
# the real netplan


def require_netplan() -> None:
    if not os.access(NETPLAN, os.X_OK):
        skip_or_fail("no netplan (Debian package netplan.io)")


def netplan_generate(text: str, root: Path) -> subprocess.CompletedProcess:
    """TEXT as ROOT/etc/netplan/90-vnetc.yaml (mode 0600), then `netplan generate --root-dir ROOT`."""
    directory = root / INSTALL_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    path.write_text(text, "utf-8")
    path.chmod(0o600)
    return subprocess.run([NETPLAN, "generate", "--root-dir", str(root)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_netplan_generate_accepts_the_yaml(case, host_name, tmp_path):
    require_netplan()
    site, host = _host(case, host_name)
    run = netplan_generate(_yaml_of(site, host), tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", run.stderr
    assert run.stdout == ""


#: netplan 0.106 warns on every vxlan tunnel for NetworkManager, whatever its keys (src/nm.c)
NM_VXLAN_WARNING = re.compile(r"^\*\* \(generate:\d+\): WARNING \*\*: [\d:.]+: \S+: checksums/extensions/"
                              r"flow-lable/do-not-fragment are not supported by NetworkManager$")


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_netplan_generate_accepts_the_yaml_for_networkmanager(case, host_name, tmp_path):
    require_netplan()
    site, host = _host(case, host_name)
    text = [f for f in render(site, host, "NetworkManager").files][0].content
    assert 'renderer: "NetworkManager"' in text
    run = netplan_generate(text, tmp_path)
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stderr.splitlines() if line.strip() and not NM_VXLAN_WARNING.match(line)] == []
    if "activation-mode" not in _yaml_of(site, host):
        return
    assert "activation-mode" not in text
    down = {d.name for d in host.devices if d.state == "down"}
    gaps = render(site, host, "NetworkManager").residual
    assert down <= {g.device.name for g in gaps}


def test_netplan_generate_rejects_a_bad_key(tmp_path):
    """The acceptance test above is not vacuous: 0.106 refuses what it does not know."""
    require_netplan()
    run = netplan_generate('network:\n  version: 2\n  vlans:\n    "v":\n      id: 1\n      link: "e"\n'
                           '      protocol: "802.1ad"\n', tmp_path)
    assert run.returncode != 0 and "unknown key 'protocol'" in run.stderr


# --------------------------------------------------------------------------
# the same kernel state


def _netplan_native(site: Site, host: Host) -> set[str]:
    rendering = TARGET.render(site, host)
    out = {g.device.ref for g in rendering.residual + rendering.errors if g.what in ("device", "master")}
    return {d.name for d in host.devices if d.netns is None and d.ref not in out}


_NETPLAN_FILE = re.compile(r"^10-netplan-(?P<name>.+)\.(?P<ext>netdev|network|link)$")
_STACKING = {"VLAN", "VXLAN", "MACVLAN", "MACVTAP", "IPVLAN", "IPVTAP", "MACsec"}


def _prepare_netplan(generated: Path, keep: set[str], run_dir: Path) -> list[str]:
    """netplan's networkd files for the devices in KEEP, readable, matched by name (see module docs)."""
    notes = []
    run_dir.mkdir(parents=True)
    for path in sorted(generated.iterdir()):
        m = _NETPLAN_FILE.match(path.name)
        assert m is not None, f"netplan wrote an unexpected file {path.name}"
        if m.group("ext") == "link":
            notes.append(f"{path.name}: dropped (a .link file is udev's; no udev in the sandbox)")
            continue
        if m.group("name") not in keep:
            continue
        lines, section = [], None
        for line in path.read_text("utf-8").splitlines(keepends=True):
            if (s := real._section_of(line)) is not None:
                section = s
            key, _, value = line.strip().partition("=")
            if section == "Match" and key in ("PermanentMACAddress", "Driver"):
                notes.append(f"{path.name}: [Match] {key}={value} dropped (the fake NIC is a veth; "
                             f"netplan's set-name gives Name=)")
                continue
            if section == "Network" and key in _STACKING and value not in keep:
                notes.append(f"{path.name}: {key}={value} dropped ({value} is left out)")
                continue
            lines.append(line)
        dest = run_dir / path.name
        dest.write_text("".join(lines), "utf-8")
        dest.chmod(0o644)
    return notes


#: what networkd 252 says about netplan 0.106's own rendering that our YAML cannot avoid: netplan writes
#: Scope=link on every route without a gateway (0.106 refuses `scope: global` without `via`), and networkd
#: ignores a scope on an IPv6 route (the route it adds is the same)
NETPLAN_QUIRKS = [re.compile(r"/10-netplan-[^/]+\.network: Scope= is specified for IPv6 route\. It will be ignored\.$")]


def _netplan_quirk(warning: str) -> bool:
    return any(rx.search(warning) for rx in NETPLAN_QUIRKS)


def _state(device: Device, run: nd.NetworkdRun) -> dict:
    link = run.links.get(device.name)
    if link is None:
        return {"exists": False}
    return {"kind": link["kind"], "master": link["master"], "link": link["link"], "data": link["data"],
            "mtu": link["mtu"], "up": link["up"],
            "addresses": sorted(str(ipaddress.ip_interface(a)) for a in run.addresses.get(device.name, ())
                                if " peer " not in a)}


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_netplan_builds_the_same_kernel_state_as_networkd(case, host_name, tmp_path, sandbox):  # noqa: F811
    require_netplan()
    site, host = _host(case, host_name)

    # vnetc's networkd output, and what of it this kernel can build (the networkd tests' plan)
    out = tmp_path / "build"
    source = case.path
    if source is None:
        source = tmp_path / f"{case.id}.vnet"
        source.write_text(case.text, "utf-8")
    built = run_vnetc("build", str(source), "-t", "networkd", "-o", str(out), cwd=source.parent)
    assert built.exit_code == 0, built.stderr
    config = out / "networkd" / host_name if host_name else out / "networkd"
    plan = real._plan(host, config)

    # the devices both express and this kernel can build
    native = _netplan_native(site, host)
    both = [d for d in plan.run if d.name in native]
    dropped: dict[str, str] = {}
    for device in host.devices:   # dependency order: a left-out lower link or master leaves out its uppers
        if device not in both:
            continue
        related = [device.master, device.lower, device.created_by, device.get("peer")]
        if any(r is not None and r.name not in {d.name for d in both} for r in related):
            both.remove(device)
            dropped[device.name] = "stacked on, enslaved to or paired with a left-out device"
    for device in plan.run:
        if device.name not in native:
            dropped[device.name] = "netplan 0.106 does not express it (residual)"
    if not both:
        pytest.skip("no device both targets express and this kernel builds: "
                    + "".join(f"{why}; " for why in plan.lacking.values()) + f"left out: {plan.describe()}")
    keep = {d.name for d in both}
    print(f"compared: {sorted(keep)}")
    print(f"left out: {plan.describe()}; " + "; ".join(f"{n}: {why}" for n, why in dropped.items()))

    fakes = [d for d in both if d.kind == "interface"]
    users, groups = real._users_and_groups(both)
    macs = {d.name: d.get("match-mac") for d in fakes if d.get("match-mac")}

    # networkd's own output, restricted to the same devices
    nd_plan = real.Plan(host, run=both, left_out=plan.left_out, lacking=plan.lacking)
    for note in real._prepare(nd_plan, config, tmp_path / "networkd-run"):
        print(f"networkd note: {note}")
    sandbox(macs, users, groups)
    expected = nd.run_networkd(tmp_path / "networkd-run", fake_nics=[d.name for d in fakes],
                               expect=sorted(keep))
    assert expected.ready and not expected.failed_netdevs, expected.describe()
    assert expected.warnings == [], expected.describe()

    # netplan's rendering of our YAML
    root = tmp_path / "root"
    generate = netplan_generate(_yaml_of(site, host), root)
    assert generate.returncode == 0 and generate.stderr == "", generate.stderr
    for note in _prepare_netplan(root / "run" / "systemd" / "network", keep, tmp_path / "netplan-run"):
        print(f"netplan note: {note}")
    got = nd.run_networkd(tmp_path / "netplan-run", fake_nics=[d.name for d in fakes], expect=sorted(keep))
    assert got.ready and not got.failed_netdevs, got.describe()
    assert [w for w in got.warnings if not _netplan_quirk(w)] == [], got.describe()

    differences = []
    for device in both:
        want, have = _state(device, expected), _state(device, got)
        if want != have:
            differences.append(f"{device.name}: networkd target {json.dumps(want, sort_keys=True)}\n"
                               f"{' ' * len(device.name)}  netplan         {json.dumps(have, sort_keys=True)}")
    assert differences == [], "\n".join(differences) + "\n--- netplan run ---\n" + got.describe()


def test_renderer_is_networkd_or_networkmanager():
    site = _compile(INLINE["netplan-bridge-of-veths"])
    with pytest.raises(ValueError):
        render(site, site.hosts[0], "systemd")


def test_the_command_line_switches_the_renderer_and_the_residual_follows(tmp_path):
    """`--netplan-renderer NetworkManager`: the YAML says so, netplan accepts it, and the
    residual runs after NetworkManager.service instead of systemd-networkd.service."""
    require_netplan()
    (tmp_path / "site.vnet").write_text("interface eth0\nbridge br0 {\n    ports eth0\n    address 10.0.0.1/24\n}\n"
                                        "ifb ifb0 {\n    redirect-ingress eth0\n}\n")
    run = run_vnetc("build", "site.vnet", "-t", "netplan", "--netplan-renderer", "NetworkManager", "-o", "out",
                    cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    text = (tmp_path / "out/netplan/90-vnetc.yaml").read_text()
    assert 'renderer: "NetworkManager"' in text
    unit = (tmp_path / "out/netplan/vnetc-residual-netplan.service").read_text()
    assert "After=NetworkManager.service\n" in unit and "systemd-networkd" not in unit
    generated = netplan_generate(text, tmp_path / "root")
    assert generated.returncode == 0, generated.stderr
    default = run_vnetc("build", "site.vnet", "-t", "netplan", "-o", "out2", cwd=tmp_path)
    assert 'renderer: "networkd"' in (tmp_path / "out2/netplan/90-vnetc.yaml").read_text()
    assert "After=systemd-networkd.service\n" in (tmp_path / "out2/netplan/vnetc-residual-netplan.service").read_text()
    assert default.exit_code == 0
