"""The IR classes generated from the schema (compiler/ir.py): their cached code and construction."""

from __future__ import annotations

import sys

import pytest

from vnetc.compiler import ir


def _run(code) -> dict:
    namespace: dict = {}
    exec(code, namespace)
    return namespace


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return tmp_path


def test_generated_code_is_cached_and_a_changed_source_is_compiled_again(cache_dir):
    assert _run(ir._compiled("X = 1"))["X"] == 1
    cached = list(cache_dir.rglob("*.generated.bin"))
    assert len(cached) == 1
    assert _run(ir._compiled("X = 1"))["X"] == 1          # read from the cache
    assert _run(ir._compiled("X = 2"))["X"] == 2          # never the stale code of another source
    assert _run(ir._compiled("X = 1"))["X"] == 1


def test_a_damaged_cache_is_compiled_again(cache_dir):
    ir._compiled("X = 1")
    (cached,) = cache_dir.rglob("*.generated.bin")
    cached.write_bytes(b"\x00garbage")
    assert _run(ir._compiled("X = 1"))["X"] == 1
    cached.write_bytes(b"")
    assert _run(ir._compiled("X = 1"))["X"] == 1


def test_nothing_is_written_when_bytecode_is_not(cache_dir, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert _run(ir._compiled("X = 3"))["X"] == 3
    assert not list(cache_dir.rglob("*"))


def test_construction_fills_every_slot_and_stays_frozen():
    vlan = ir.DEVICE_CLASSES["vlan"](name="v10", link=ir.DeviceRef("eth0"), id=10)
    assert (vlan.name, vlan.link, vlan.id, vlan.mtu, vlan.state, vlan.address) == \
        ("v10", ir.DeviceRef("eth0"), 10, None, "up", ())
    assert vlan == ir.DEVICE_CLASSES["vlan"](name="v10", link=ir.DeviceRef("eth0"), id=10)
    with pytest.raises(AttributeError):
        vlan.id = 11  # type: ignore[misc]
