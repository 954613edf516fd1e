"""The benchmarks' own pieces (bench/): the generated sites are what they claim to be.

The benchmarks themselves run in CI's quick mode (`python -m bench --quick`);
speed is never asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vnetc.compiler import compile_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # bench/ is not installed: the repository's
from bench import _networkd, apply, sites  # noqa: E402
from bench.build import fs_type  # noqa: E402
from harness import networkd as nd  # noqa: E402
from harness.netns import fresh_netns, ip, netns  # noqa: E402,F401  (netns: the fixture)


def _devices(text: str) -> int:
    return sum(len(h.devices) for h in compile_source(text, "site.vnet").site.hosts)


@pytest.mark.parametrize("label", sorted(sites.GENERATORS))
@pytest.mark.parametrize("n", [13, 100, 1003])
def test_every_site_compiles_to_the_devices_it_claims(label, n):
    site = sites.generate(label, n)
    result = compile_source(site.text, "site.vnet")
    assert not result.warnings, [w.render() for w in result.warnings]
    assert _devices(site.text) == site.devices
    if label != "vlan":
        assert site.devices == n
    else:  # n counts VLANs; two NICs and a bond per 4,000 of them
        assert site.devices == n + 3


def test_the_vlan_site_has_a_bond_per_4000_vlans():
    site = sites.vlan(4001)
    assert site.devices == 4001 + 6
    assert site.text.count("\nbond ") == 2


def test_trunk_flat_and_loop_are_one_site():
    for n in (13, 1003):
        flat = compile_source(sites.trunk_flat(n).text, "a.vnet").site
        loop = compile_source(sites.trunk_loop(n).text, "a.vnet").site
        assert flat == loop


def test_unknown_site_shape_is_refused():
    with pytest.raises(ValueError, match="unknown site"):
        sites.generate("nope", 10)


def test_file_system_type_of_a_mount():
    assert fs_type("/proc/self") == "proc"


def test_apply_site_and_its_expected_links_agree():
    site = compile_source(apply.vnet_site(3), "site.vnet").site
    devices = {d.name: d for h in site.hosts for d in h.devices}
    assert apply.expected_links(3) == {name: d.master.name if d.master else None for name, d in devices.items()}
    assert {d.state for d in devices.values()} == {"up"}


def test_link_watch_follows_the_kernel(netns):
    """The networkd column's clock: done exactly when every link is up with its master. (The
    kernel queues a change's notification before it answers the request: read() sees it.)"""
    expected = {"br0": None, "ve0": "br0", "vp0": None}
    ip(netns, "link", "add", "br0", "type", "bridge")
    ip(netns, "link", "add", "ve0", "type", "veth", "peer", "name", "vp0")
    watch = _networkd.Links(netns, expected)
    try:
        watch.read()
        assert not watch.done and watch.good == set()       # all down, no master
        ip(netns, "link", "set", "ve0", "master", "br0")
        for name in expected:
            ip(netns, "link", "set", name, "up")
            watch.read()
            assert watch.done == (name == "vp0")
        ip(netns, "link", "set", "ve0", "nomaster")
        watch.read()
        assert not watch.done and watch.good == {"br0", "vp0"}
        ip(netns, "link", "set", "ve0", "master", "br0")
        watch.read()
        assert watch.done
        ip(netns, "link", "del", "br0")
        watch.read()
        assert watch.good == {"vp0"}
    finally:
        watch.close()


def test_networkd_column_times_a_small_site(tmp_path, vnetc):
    """The networkd rows of `python -m bench apply`, on a site of three bridges: real networkd,
    both moments taken, the restart finds the links in place; a link networkd never makes is an
    error, not a figure."""
    nd.require_networkd()
    site = tmp_path / "site.vnet"
    site.write_text(apply.vnet_site(3))
    assert vnetc("build", str(site), "-t", "networkd", "-o", str(tmp_path / "out")).exit_code == 0
    files = tmp_path / "out" / "networkd"
    expected = apply.expected_links(3)
    with fresh_netns() as ns:
        first = _networkd.run(ns, files, expected, timeout=60)
        assert 0 < first.links <= first.configured and first.undone == [] and first.warnings == []
        assert _networkd.check_links(ns, expected) == []
        again = _networkd.run(ns, files, expected, timeout=60, present=True)
        assert again.links == 0.0 and again.configured > 0 and again.undone == [] and again.warnings == []
        never = _networkd.run(ns, files, {**expected, "nope": None}, timeout=2)
        assert never.links is None and never.configured is None
        assert never.undone == ["nope: no state in networkd", "nope: missing"]
        ip(ns, "link", "set", "ve1", "nomaster")
        assert _networkd.check_links(ns, expected) == ["ve1: not enslaved to its master"]
        ip(ns, "link", "set", "br2", "down")
        ip(ns, "link", "del", "vp3")
        again = _networkd.run(ns, files, expected, timeout=60, linger=0.5)    # puts back ve1, vp3 and br2
        assert again.links > 0 and again.undone == [] and again.warnings == []


@pytest.mark.parametrize("met", [True, False, None])
def test_a_result_file_keeps_its_verdict_for_the_index_of_later_runs(tmp_path, met):
    from bench.harness import Report, verdict_of, write_result

    path = write_result(Report("x", "x", ["text"], target_met=met), "header", tmp_path)
    assert verdict_of(path.read_text(encoding="utf-8")) is met
    assert verdict_of("<!-- header -->\n\n## an older file, without a verdict line\n") is None
