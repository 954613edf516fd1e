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
from bench import sites  # noqa: E402
from bench.build import fs_type  # noqa: E402


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
