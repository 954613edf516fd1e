"""Tests of the test harness itself (tests/harness/): namespaces, kernel probes,
and the real systemd-networkd run on hand-written .netdev/.network files.

Needs root, iproute2 and systemd (networkd is not running as PID 1's service: the
harness starts its own copy in a throwaway namespace). Without them: skipped
locally, failed under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from harness import kernel
from harness import netns as nsmod
from harness import networkd as nd
from harness.netns import (add_veth, addresses, bridge, filters, fresh_netns, ip, links, list_netns,
                           netns, qdiscs, routes, tc)  # noqa: F401  (netns is a fixture)
from harness.networkd import NetworkdRun, run_networkd


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip())
    return directory


def host_state() -> dict:
    """What the machine itself has, to show a run leaves it untouched (read only)."""
    return {
        "links": sorted(e["ifname"] for e in json.loads(subprocess.run(
            ["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)),
        "etc_network": sorted(os.listdir("/etc/systemd/network")),
        "run_systemd": sorted(os.listdir("/run/systemd")),
        "netif": sorted(os.listdir("/run/systemd/netif")) if os.path.isdir("/run/systemd/netif") else None,
        # what is mounted where the sandbox mounts (other mounts come and go: every
        # `ip netns add` on the machine bind-mounts /run/netns/NAME)
        "mounts": sorted(line.split()[4] + " " + line.split(" - ")[1]
                         for line in Path("/proc/self/mountinfo").read_text().splitlines()
                         if re.match(r"^(/etc/systemd|/run/systemd|/sys$)", line.split()[4])),
    }


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------
# namespaces


def test_fresh_netns_deleted_and_processes_killed_even_on_error():
    nsmod.require_netns()
    seen = {}
    with pytest.raises(RuntimeError, match="midway"):
        with fresh_netns() as ns:
            seen["ns"] = ns
            assert re.fullmatch(rf"vnetc-t-{os.getpid()}-[0-9a-f]{{6}}", ns)
            assert ns in list_netns()
            sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "60"])
            seen["pid"] = sleeper.pid
            raise RuntimeError("the test fails midway")
    assert seen["ns"] not in list_netns()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL


def test_netns_fixture_is_fresh_and_separate(netns):
    assert set(links(netns)) == {"lo"}
    assert links(netns)["lo"]["up"]
    other = []
    with fresh_netns() as second:
        other.append(second)
        assert second != netns
        add_veth(second, "eth0")
        assert "eth0" in links(second) and "eth0" not in links(netns)
    assert other[0] not in list_netns()


def test_readers_normalise_links_addresses_routes(netns):
    for kind in ("veth", "bridge", "vxlan", "macvlan"):
        kernel.require_kind(kind)
    add_veth(netns, "eth0")
    ip(netns, "link", "add", "br0", "type", "bridge", "stp_state", "1")
    ip(netns, "link", "set", "eth0", "master", "br0")
    ip(netns, "link", "set", "br0", "up")
    ip(netns, "addr", "add", "10.0.0.1/24", "dev", "br0")
    ip(netns, "addr", "add", "fd00::1/64", "dev", "br0", "nodad")
    ip(netns, "route", "add", "192.168.5.0/24", "via", "10.0.0.254", "dev", "br0", "metric", "50")
    ip(netns, "route", "add", "default", "via", "10.0.0.254", "dev", "br0")
    ip(netns, "link", "add", "vx0", "type", "vxlan", "id", "42", "local", "10.0.0.1",
       "remote", "10.0.0.2", "dstport", "4789", "dev", "eth0")
    ip(netns, "link", "add", "vx1", "type", "vxlan", "id", "43", "group", "239.1.1.1",
       "dstport", "4789", "dev", "eth0")
    ip(netns, "link", "add", "link", "p-eth0", "name", "mv0", "mtu", "1400", "type", "macvlan", "mode", "private")

    got = links(netns)
    assert got["br0"]["kind"] == "bridge" and got["br0"]["up"]
    assert got["br0"]["data"]["stp_state"] == 1
    assert got["eth0"]["kind"] == "veth" and got["eth0"]["link"] == "p-eth0"
    assert got["eth0"]["master"] == "br0" and got["eth0"]["slave_kind"] == "bridge"
    assert got["vx0"]["data"] == {"id": 42, "local": "10.0.0.1", "remote": "10.0.0.2", "port": 4789,
                                  "dev": "eth0", "ttl": 0, "learning": True}
    assert got["vx1"]["data"]["group"] == "239.1.1.1"
    assert got["mv0"]["kind"] == "macvlan" and got["mv0"]["link"] == "p-eth0"
    assert got["mv0"]["data"] == {"mode": "private"} and got["mv0"]["mtu"] == 1400
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", got["mv0"]["address"])
    assert not got["mv0"]["up"]
    # no timers: two reads of an unchanged setup are equal
    assert links(netns) == got

    assert addresses(netns) == {"br0": ["10.0.0.1/24", "fd00::1/64"]}
    assert "lo" in addresses(netns, loopback=True)
    assert any(a.startswith("fe80:") for a in addresses(netns, link_local=True)["p-eth0"])

    r = routes(netns)
    assert {"family": "inet", "dst": "192.168.5.0/24", "gateway": "10.0.0.254", "dev": "br0",
            "metric": 50, "table": "main", "protocol": "boot", "scope": None, "type": "unicast",
            "prefsrc": None} in r
    assert any(x["dst"] == "0.0.0.0/0" and x["gateway"] == "10.0.0.254" for x in r)
    assert all(x["protocol"] != "kernel" for x in r)
    assert any(x["dst"] == "10.0.0.0/24" for x in routes(netns, kernel=True))


def test_tc_readers(netns):
    kernel.require_qdisc("tbf")
    kernel.require_qdisc("clsact")
    kernel.require_feature("u32-mirred")
    add_veth(netns, "eth0")
    tc(netns, "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "tbf",
       "rate", "1mbit", "burst", "32k", "latency", "50ms")
    tc(netns, "qdisc", "add", "dev", "p-eth0", "clsact")
    tc(netns, "filter", "add", "dev", "p-eth0", "ingress", "protocol", "all", "u32",
       "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "eth0")
    assert qdiscs(netns) == [
        {"dev": "eth0", "kind": "tbf", "handle": "1:", "parent": "root",
         "options": {"rate": 125000, "burst": 32768, "lat": 50000}},
        {"dev": "p-eth0", "kind": "clsact", "handle": "ffff:", "parent": "ffff:fff1", "options": {}},
    ]
    assert any(q["kind"] == "noqueue" for q in qdiscs(netns, defaults=True))
    (f,) = filters(netns, "p-eth0", "ingress")
    assert (f["kind"], f["protocol"], f["handle"]) == ("u32", "all", "800::800")
    (action,) = f["options"]["actions"]
    assert action == {"kind": "mirred", "mirred_action": "redirect", "direction": "egress",
                      "to_dev": "eth0", "control_action": {"type": "stolen"}}
    assert filters(netns, "eth0", "root") == []


def test_bridge_vlans_normalised():
    raw = [{"ifname": "br0", "vlans": [{"vlan": 1, "flags": ["PVID", "Egress Untagged"]}]},
           {"ifname": "eth0", "vlans": [{"vlan": 20, "vlanEnd": 22}, {"vlan": 10, "flags": ["PVID"]}]}]
    assert nsmod.normalise_bridge_vlans(raw) == {
        "br0": [{"vid": 1, "pvid": True, "untagged": True}],
        "eth0": [{"vid": 10, "pvid": True, "untagged": False}, {"vid": 20, "pvid": False, "untagged": False},
                 {"vid": 21, "pvid": False, "untagged": False}, {"vid": 22, "pvid": False, "untagged": False}],
    }


def test_bridge_vlans_real(netns):
    kernel.require_feature("bridge-vlan-filtering")
    add_veth(netns, "eth0")
    ip(netns, "link", "add", "br0", "type", "bridge", "vlan_filtering", "1")
    ip(netns, "link", "set", "eth0", "master", "br0")
    bridge(netns, "vlan", "add", "dev", "eth0", "vid", "10-11")
    vlans = nsmod.bridge_vlans(netns)
    assert {"vid": 11, "pvid": False, "untagged": False} in vlans["eth0"]


# --------------------------------------------------------------------------
# kernel probes

EXPECTED_KIND = {"tun": "tun", "tap": "tun"}  # `ip -d link` calls both "tun"


@pytest.mark.parametrize("kind", kernel.LINK_KINDS)
def test_probe_agrees_with_creation(kind):
    nsmod.require_netns()
    ok, reason = kernel.probe_kind(kind)
    full = kernel.probe(kind)
    assert (full.ok, full.reason) == (ok, reason)
    if not ok and not full.kernel_lacks:
        nsmod.skip_or_fail(f"probe of {kind} failed for another reason: {reason}")
    with fresh_netns() as ns:
        if ok:
            name = kernel.create_link(ns, kind)
            got = links(ns)[name]
            if kind != "netdevsim":
                assert got["kind"] == EXPECTED_KIND.get(kind, kind)
        else:
            with pytest.raises((nsmod.CommandError, kernel._Lacks)) as exc:
                kernel.create_link(ns, kind)
            assert reason in (str(exc.value) if isinstance(exc.value, kernel._Lacks)
                              else exc.value.stderr.strip().replace("\n", " "))
            with pytest.raises(pytest.skip.Exception, match=f"kernel lacks {kind}: "):
                kernel.require_kind(kind)


@pytest.mark.parametrize("kind", kernel.QDISC_KINDS)
def test_qdisc_probe_agrees_with_tc(kind):
    nsmod.require_netns(("ip", "tc"))
    ok, reason = kernel.probe_qdisc(kind)
    with fresh_netns() as ns:
        try:
            kernel._add_qdisc(kind, ns)
        except nsmod.CommandError as exc:
            assert not ok and reason == exc.stderr.strip().replace("\n", " ")
            with pytest.raises(pytest.skip.Exception, match=f"kernel lacks qdisc {kind}: "):
                kernel.require_qdisc(kind)
        else:
            assert ok, reason
            assert kind in {q["kind"] for q in qdiscs(ns)}


def test_kernel_lacking_a_kind_is_a_skip_even_under_ci(monkeypatch):
    nsmod.require_netns()
    lacking = [k for k in kernel.LINK_KINDS if kernel.probe(k).kernel_lacks]
    if not lacking:
        pytest.skip("this kernel builds every kind")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.skip.Exception, match=f"kernel lacks {lacking[0]}"):
        kernel.require_kind(lacking[0])


@pytest.mark.parametrize("ci", [True, False])
@pytest.mark.parametrize("problem", ["not root", "no ip"])
def test_environment_problem_fails_under_ci_and_skips_otherwise(monkeypatch, ci, problem):
    saved = dict(kernel._cache)
    kernel.clear_cache()
    try:
        if ci:
            monkeypatch.setenv("CI", "true")
        else:
            monkeypatch.delenv("CI", raising=False)
        if problem == "not root":
            monkeypatch.setattr(nsmod.os, "geteuid", lambda: 1000)
        else:
            monkeypatch.setattr(nsmod.shutil, "which", lambda tool: None)
        result = kernel.probe("bridge")
        assert not result.ok and not result.kernel_lacks
        expected = pytest.fail.Exception if ci else pytest.skip.Exception
        with pytest.raises(expected, match="cannot probe bridge"):
            kernel.require_kind("bridge")
        with pytest.raises(expected):
            nd.require_networkd()
    finally:
        kernel.clear_cache()
        kernel._cache.update(saved)


def test_probe_agrees_with_networkd(tmp_path):
    """networkd builds a bond exactly when the probe says the kernel can."""
    nd.require_networkd()
    ok, reason = kernel.probe_kind("bond")
    config = write(tmp_path, {"bond0.netdev": """
        [NetDev]
        Name=bond0
        Kind=bond
    """})
    run = run_networkd(config, fake_nics=[], expect=["bond0"])
    if ok:
        assert run.links["bond0"]["kind"] == "bond", run.describe()
        assert run.warnings == [], run.describe()
    else:
        assert "bond0" in run.missing and run.failed_netdevs == ["bond0"], run.describe()
        assert "bond0: netdev could not be created: Operation not supported" in run.warnings


# --------------------------------------------------------------------------
# networkd


BRIDGE_SITE = {
    "10-br0.netdev": """
        [NetDev]
        Name=br0
        Kind=bridge
    """,
    "20-eth0.network": """
        [Match]
        Name=eth0

        [Network]
        Bridge=br0
    """,
    "30-br0.network": """
        [Match]
        Name=br0

        [Network]
        Address=10.0.0.1/24
        Address=fd00:1::1/64

        [Route]
        Destination=192.168.7.0/24
        Gateway=10.0.0.254
    """,
}


@pytest.mark.parametrize("log_level", ["debug", "info"])
def test_bridge_with_enslaved_nic_and_address(tmp_path, log_level):
    nd.require_networkd()
    kernel.require_kind("bridge")
    before = host_state()
    run = run_networkd(write(tmp_path, BRIDGE_SITE), fake_nics=["eth0"], expect=["br0", "eth0"],
                       log_level=log_level)
    assert run.ready and not run.missing, run.describe()
    assert run.links["br0"]["kind"] == "bridge"
    assert run.links["br0"]["up"]
    assert run.links["eth0"]["master"] == "br0"
    assert run.links["p-eth0"]["master"] is None  # the peer stays unmanaged
    assert run.states["eth0"] == "configured" and run.states["p-eth0"] == "unmanaged"
    assert run.addresses == {"br0": ["10.0.0.1/24", "fd00:1::1/64"]}
    assert any(r["dst"] == "192.168.7.0/24" and r["gateway"] == "10.0.0.254"
               and r["protocol"] == "static" for r in run.routes), run.routes
    assert run.warnings == [], run.describe()
    assert run.log_lines and len(run.levels) == len(run.log_lines)
    assert run.ns not in list_netns()
    assert run.elapsed < 5, f"one networkd run took {run.elapsed:.2f}s"
    assert host_state() == before


def test_vxlan_independent(tmp_path):
    nd.require_networkd()
    kernel.require_kind("vxlan")
    config = write(tmp_path, {"vx0.netdev": """
        [NetDev]
        Name=vx0
        Kind=vxlan

        [VXLAN]
        VNI=42
        Local=192.0.2.1
        Remote=192.0.2.2
        DestinationPort=4789
        Independent=yes
    """})
    run = run_networkd(config, fake_nics=[])
    assert run.expect == ["vx0"]
    assert run.ready and run.warnings == [], run.describe()
    vx = run.links["vx0"]
    assert vx["kind"] == "vxlan"
    assert {k: vx["data"][k] for k in ("id", "local", "remote", "port")} == {
        "id": 42, "local": "192.0.2.1", "remote": "192.0.2.2", "port": 4789}
    assert "dev" not in vx["data"]  # independent: no underlying device
    assert run.states["vx0"] == "unmanaged"  # no .network for it


def test_macvlan_named_by_the_lower_nics_network(tmp_path):
    nd.require_networkd()
    kernel.require_kind("macvlan")
    config = write(tmp_path, {
        "mv0.netdev": """
            [NetDev]
            Name=mv0
            Kind=macvlan

            [MACVLAN]
            Mode=bridge
        """,
        "eth0.network": """
            [Match]
            Name=eth0

            [Network]
            MACVLAN=mv0
        """,
        "mv0.network": """
            [Match]
            Name=mv0

            [Network]
            Address=192.0.2.10/24
        """,
    })
    run = run_networkd(config, fake_nics=["eth0"])
    assert run.ready and run.warnings == [], run.describe()
    mv = run.links["mv0"]
    assert (mv["kind"], mv["link"], mv["data"]) == ("macvlan", "eth0", {"mode": "bridge"})
    assert run.addresses["mv0"] == ["192.0.2.10/24"]


def test_macvlan_without_lower_network_is_not_created(tmp_path):
    """networkd's stacking rule: a macvlan nobody's .network names is not created."""
    nd.require_networkd()
    kernel.require_kind("macvlan")
    config = write(tmp_path, {"mv0.netdev": """
        [NetDev]
        Name=mv0
        Kind=macvlan
    """})
    run = run_networkd(config, fake_nics=["eth0"], expect=["eth0"])
    assert "mv0" not in run.links and run.warnings == [], run.describe()


PROBLEMS = {
    "unknown key": ("x.netdev", """
        [NetDev]
        Name=vx0
        Kind=vxlan

        [VXLAN]
        VNI=42
        Independent=yes
        Bogus=1
    """, r"^/etc/systemd/network/x\.netdev:8: Unknown key 'Bogus' in section \[VXLAN\], ignoring\.$"),
    "bad value": ("x.network", """
        [Match]
        Name=eth0

        [Network]
        Address=10.0.0.300/24
    """, r"x\.network:5: Invalid address '10\.0\.0\.300/24'"),
    "missing section": ("x.netdev", """
        Name=br9
        Kind=bridge
    """, r"x\.netdev:1: Assignment outside of section"),
    "unknown section": ("x.network", """
        [Match]
        Name=eth0

        [Bogus]
        Key=1
    """, r"x\.network:4: Unknown section 'Bogus'"),
    "out of range": ("x.netdev", """
        [NetDev]
        Name=vx0
        Kind=vxlan

        [VXLAN]
        VNI=99999999
        Independent=yes
    """, r"vx0: /etc/systemd/network/x\.netdev: VXLAN without valid VNI"),
    "bad boolean": ("x.netdev", """
        [NetDev]
        Name=vx0
        Kind=vxlan

        [VXLAN]
        VNI=42
        Independent=perhaps
    """, r"x\.netdev:7: Failed to parse"),
}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_a_real_problem_is_a_warning(tmp_path, problem):
    nd.require_networkd()
    kernel.require_kind("vxlan")
    kernel.require_kind("bridge")
    name, text, pattern = PROBLEMS[problem]
    run = run_networkd(write(tmp_path, {name: text}), fake_nics=["eth0"], timeout=3)
    assert any(re.search(pattern, w) for w in run.warnings), run.describe()
    assert run.ns not in list_netns()


def test_unreadable_file_is_a_warning(tmp_path):
    """networkd reads its files as systemd-network: a root-only file is not read."""
    nd.require_networkd()
    kernel.require_kind("bridge")
    config = write(tmp_path, {"10-br0.netdev": BRIDGE_SITE["10-br0.netdev"]})
    (config / "10-br0.netdev").chmod(0o600)
    run = run_networkd(config, fake_nics=[], timeout=3)
    assert "br0" in run.missing
    assert run.warnings == [
        "Failed to open configuration file '/etc/systemd/network/10-br0.netdev': Permission denied"
    ], run.describe()


def test_namespace_and_networkd_gone_when_the_test_fails_midway(tmp_path):
    nd.require_networkd()
    kernel.require_kind("bridge")
    seen = {}

    def inspect(ns):
        seen["ns"] = ns
        seen["pids"] = nsmod.netns_pids(ns)
        assert seen["pids"], "networkd runs in the namespace"
        raise AssertionError("the test fails midway")

    with pytest.raises(AssertionError, match="midway"):
        run_networkd(write(tmp_path, BRIDGE_SITE), fake_nics=["eth0"], inspect=inspect)
    assert seen["ns"] not in list_netns()
    assert not any(pid_alive(p) for p in seen["pids"])


def test_inspect_reads_more_state(tmp_path):
    nd.require_networkd()
    kernel.require_kind("bridge")
    run = run_networkd(write(tmp_path, BRIDGE_SITE), fake_nics=["eth0"],
                       inspect=lambda ns: filters(ns, "eth0", "ingress"))
    assert run.extra == []
    assert isinstance(run, NetworkdRun)


# --------------------------------------------------------------------------
# the log filter, line by line

SANDBOX_NOISE = [
    ("warning", 'Directory "/run/systemd/netif" already exists, but is owned by 998:0 (998:998 was requested), refusing.'),
    ("warning", "Could not create runtime directory: File exists"),
    ("debug", "Failed to read $container of PID 1, ignoring: Permission denied"),
    ("debug", "SELinux enabled state cached to: disabled"),
    ("debug", "Found container virtualization docker."),
    ("warning", "Could not set hostname: Failed to call org.freedesktop.hostname1.SetHostname: Connection refused"),
    ("warning", "Failed to connect to system bus: No such file or directory"),
    ("debug", "sd-bus: starting bus bus-api-network by connecting to /run/systemd/no-such-bus..."),
    ("debug", "Could not enumerate wireless LAN phy, ignoring: Operation not supported"),
    ("warning", "lo: Failed to get driver, continuing without: Operation not supported"),
    ("debug", "rtnl: received non-static neighbor, ignoring."),
    ("debug", "br0: rtnl: received neighbor message with invalid family '7', ignoring."),
    ("warning", "Failed to save link data to /run/systemd/netif/links/3: Permission denied"),
    ("warning", "Could not send sd_notify: No such file or directory"),
    ("warning", "Failed to open udev monitor: Permission denied"),
    ("info", "br0: DHCPv6 lease lost"),
    ("info", "eth0: Configuring with /etc/systemd/network/20-eth0.network."),
    ("info", "Enumeration completed"),
    ("debug", "br0: found matching network '/etc/systemd/network/30-br0.network'."),
]

REAL_PROBLEMS = [
    ("warning", "/etc/systemd/network/40-vx.netdev:8: Unknown key 'Bogus' in section [VXLAN], ignoring."),
    ("warning", "/etc/systemd/network/20-eth0.network:5: Invalid address 'notanaddress', ignoring assignment: Invalid argument"),
    ("warning", "NetDev has no Kind= configured in \"/etc/systemd/network/12-nosec.netdev\", ignoring."),
    ("warning", "bond0: netdev could not be created: Operation not supported"),
    ("err", "br0: Could not set bridge vlan: Operation not supported"),
    ("debug", "/etc/systemd/network/x.network:3: Unknown key 'udev' in section [Network], ignoring."),
    ("info", "/etc/systemd/network/x.network.d/10-a.conf:2: Failed to parse MTU, ignoring."),
    (None, "/etc/systemd/network/x.network:1: Assignment outside of section. Ignoring."),
]


@pytest.mark.parametrize("level,line", SANDBOX_NOISE)
def test_sandbox_noise_is_not_a_warning(level, line):
    assert not nd.is_warning(level, line)


@pytest.mark.parametrize("level,line", REAL_PROBLEMS)
def test_real_problem_is_a_warning(level, line):
    assert nd.is_warning(level, line)


def test_every_noise_regex_is_explained_and_used():
    texts = [t for _, t in SANDBOX_NOISE]
    for rx, why in nd.NOISE:
        assert why.strip()
        assert any(rx.search(t) for t in texts), f"no sample line for noise regex {rx.pattern!r}"


def test_noise_never_hides_a_line_about_a_config_file():
    line = "eth0: /etc/systemd/network/20-eth0.network: udev rule ignored, D-Bus (SELinux) refused"
    assert nd.is_noise(line) and nd.is_warning("warning", line)


def test_log_levels_from_console_colours():
    assert nd.parse_log_line("\x1b[0;1;38;5;185mx.netdev:6: Unknown key\x1b[0m\n") == ("warning", "x.netdev:6: Unknown key")
    assert nd.parse_log_line("\x1b[0;1;31mboom\x1b[0m") == ("err", "boom")
    assert nd.parse_log_line("\x1b[0;38;5;245mdebug talk\x1b[0m") == ("debug", "debug talk")
    assert nd.parse_log_line("\x1b[0;1;39mnotice\x1b[0m") == ("notice", "notice")
    assert nd.parse_log_line("plain info\n") == ("info", "plain info")
