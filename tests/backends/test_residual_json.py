"""The residual file's JSON is written by compiler/irjson.py itself (json's indented encoder is pure
Python, and a 16,000-device host is 6 MB of it): `dumps` must give exactly the bytes of
json.dumps(value, indent=2, ensure_ascii=False) for any JSON value, and the host written straight
from the IR (host_for_dumps) exactly those of json.dumps of site_to_json's host, for every kind and
property (random valid sites from tests/strategies.py, seeded). Random values are drawn from a
seeded Random (hypothesis' recursive strategies take seconds per hundred values here)."""

from __future__ import annotations

import ipaddress
import json
import random

import pytest
from hypothesis import HealthCheck, given, seed, settings

from strategies import sites
from vnetc.backends import Gap, target
from vnetc.backends.residual import residual_artifacts
from vnetc.compiler import compile_source
from vnetc.compiler.ir import Site
from vnetc.compiler.irjson import _address, dumps, host_for_dumps, site_to_json
from vnetc.compiler.schema import KINDS, props_of

@pytest.fixture(autouse=True)
def _no_assertion_pass_hook(monkeypatch):
    """As in tests/compiler/test_properties.py: pytest's assertion pass hook (pyproject.toml, for
    pytest-golden) makes hypothesis's own asserts, and so generating sites, ~40x slower."""
    from _pytest.assertion import util
    monkeypatch.setattr(util, "_assertion_pass", None)


_TEXT = 'aZ0 -_:/.\\"%\n\t\x00\x1f\x7fé€𝄞\u2028'


def _json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _string(rng: random.Random, length: int = 8) -> str:
    return "".join(rng.choice(_TEXT) for _ in range(rng.randrange(length)))


def _value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-2**70, 2**70)
    if kind == 3:
        return rng.choice([0.0, -0.0, 1.5, 1e300, -2.5e-308, float("inf"), float("-inf"), rng.random()])
    if kind in (4, 5):
        return _string(rng)
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 7:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {_string(rng, 5): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


@pytest.mark.parametrize("seed_", range(20))
def test_dumps_is_json_dumps_with_an_indent(seed_):
    rng = random.Random(seed_)
    for _ in range(200):
        value = _value(rng)
        assert dumps(value) == _json(value), value


def test_keys_that_are_not_strings_are_written_as_json_writes_them():
    value = {1: "a", "b": {2.5: [True, None]}, None: (), False: {}}
    assert dumps(value) == _json(value)
    assert dumps({"x": value}) == _json({"x": value})        # nested: indented as json indents it


def test_addresses_are_written_as_ipaddress_writes_them():
    rng = random.Random(0)
    for _ in range(2000):
        v4, length = rng.choice([0, 2**32 - 1, rng.getrandbits(32)]), rng.randint(0, 32)
        v6 = rng.choice([0, 1, 2**128 - 1, rng.getrandbits(128), rng.getrandbits(16) << 112])
        for value in (ipaddress.IPv4Address(v4), ipaddress.IPv4Interface((v4, length)),
                      ipaddress.IPv4Network((v4, length), strict=False), ipaddress.IPv6Address(v6),
                      ipaddress.IPv6Interface((v6, rng.randint(0, 128))), "default"):
            assert _address(value) == str(value)


def _host_text_is_json_dumps(text: str) -> None:
    """Every host of the site: the text written from the IR is json.dumps of site_to_json's host,
    secrets shown or not, at the top and nested (as in the residual file)."""
    site = compile_source(text, "site.vnet").site
    for host in site.hosts:
        for show in (False, True):
            data = site_to_json(Site((host,)), show_secrets=show)["hosts"][0]
            assert dumps(host_for_dumps(host, show)) == _json(data)
            assert dumps({"site": [host_for_dumps(host, show)]}) == _json({"site": [data]})


@seed(8)
@settings(max_examples=60, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_a_random_host_written_from_the_ir_is_json_dumps_of_site_to_json(generated):
    _host_text_is_json_dumps(generated.text)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_property_of_every_kind_is_written_as_site_to_json_makes_it(kind):
    seen = set()

    @seed(8)
    @settings(max_examples=6, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(sites(focus=kind, full=True, max_devices=3))
    def run(generated):
        _host_text_is_json_dumps(generated.text)
        seen.update(prop for k, prop in generated.used if k == kind)

    run()
    assert set(props_of(KINDS[kind])) - seen == set(), "never written: more examples"


def test_the_residual_file_is_json_dumps_of_what_it_holds():
    """The whole file: the items, then the host (its secrets shown when a MACsec device is an item)."""
    networkd = target("networkd")
    text = ('netns blue\nbridge "br-é" { ports v0; address 10.1.2.3/24; mtu 1500 }\n'
            'veth v0 { peer v1 { netns blue; address 10.1.2.4/24 } }\n'
            'macsec ms0 { link v0; tx-sa 0 { key-id 01; key 00112233445566778899aabbccddeeff } }\n')
    site = compile_source(text, "site.vnet").site
    host = site.hosts[0]
    for macsec in (False, True):
        gaps = [Gap(d, "device" if i % 2 else "what %s \"é\"", f"reason {i} \\ %d\n", None)
                for i, d in enumerate(host.devices) if macsec or d.kind != "macsec"]
        [json_file, _unit] = residual_artifacts(networkd, site, host, gaps)
        expected = {"vnetc-residual": 1, "target": "networkd", "host": None,
                    "items": [{"kind": g.device.kind, "name": g.device.name, "netns": g.device.netns,
                               "what": g.what, "reason": g.reason} for g in gaps],
                    "site": site_to_json(Site((host,)), show_secrets=macsec)["hosts"][0]}
        assert json_file.content == _json(expected) + "\n"
        assert ("00112233445566778899aabbccddeeff" in json_file.content) == macsec
        assert json_file.mode == (0o600 if macsec else 0o644)
