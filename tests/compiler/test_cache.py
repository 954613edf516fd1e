"""The cache of compiled sites (compiler/cache.py) that plan, apply and destroy read."""

from __future__ import annotations

import os
import pickle
import stat

import pytest

from vnetc.compiler import CompileError, cache, compile_file
from vnetc.compiler.diagnostics import render_all

SITE = """\
include "common.vnet"
bridge br0 { ports ve0 }
veth ve0 { peer vp0 }
"""
COMMON = "vlan v10 { link nic0; id 10 }\ninterface nic0\n"


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site.vnet").write_text(SITE)
    (tmp_path / "common.vnet").write_text(COMMON)
    return tmp_path


@pytest.fixture
def compiles(monkeypatch):
    """The number of compiles the cache falls back to."""
    count = [0]
    real = cache._compile

    def counted(source, build_ir=True):
        count[0] += 1
        return real(source, build_ir)

    monkeypatch.setattr(cache, "_compile", counted)
    return count


def _entries(directory) -> list:
    return sorted(p for p in directory.iterdir() if p.name.endswith(cache.SUFFIX))


def test_an_unchanged_site_is_read_back_equal_with_its_warnings(site, compiles):
    store = site / "cache"
    first = cache.compile_file("site.vnet", str(store))
    again = cache.compile_file("site.vnet", str(store))
    assert compiles[0] == 1
    fresh = compile_file("site.vnet")
    assert again.site == first.site == fresh.site
    assert again.site.files == fresh.site.files == ("site.vnet", "common.vnet")
    assert fresh.warnings, "the site is meant to have a warning (a bridge with one port)"
    assert render_all(list(again.warnings)) == render_all(list(fresh.warnings))   # positions and excerpts too
    device = again.site.hosts[0].devices[0]
    assert device.span is not None and device.spans == fresh.site.hosts[0].devices[0].spans


@pytest.mark.parametrize("changed", ["site.vnet", "common.vnet"])
def test_a_changed_file_or_include_is_compiled_again(site, compiles, changed):
    store = str(site / "cache")
    cache.compile_file("site.vnet", store)
    path = site / changed
    path.write_text(path.read_text().replace("v10", "v11").replace("br0", "br1"))
    result = cache.compile_file("site.vnet", store)
    assert compiles[0] == 2
    assert result.site == compile_file("site.vnet").site
    cache.compile_file("site.vnet", store)
    assert compiles[0] == 2                     # the new entry is used


def test_another_compiler_or_working_directory_is_a_miss(site, compiles, monkeypatch):
    store = str(site / "cache")
    cache.compile_file("site.vnet", store)
    real = cache._compiler
    monkeypatch.setattr(cache, "_compiler", lambda: (*real(), "another vnetc"))
    cache.compile_file("site.vnet", store)
    assert compiles[0] == 2
    monkeypatch.setattr(cache, "_compiler", real)
    sub = site / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    cache.compile_file("../site.vnet", store)  # the same file, named otherwise: its messages would differ
    assert compiles[0] == 3


def test_a_damaged_entry_is_compiled_again(site, compiles):
    store = site / "cache"
    expected = cache.compile_file("site.vnet", str(store)).site
    (entry,) = _entries(store)
    data = entry.read_bytes()
    for damaged in (b"", data[: len(data) // 2], b"\x80\x05garbage", pickle.dumps(("not", "a header"))):
        entry.write_bytes(damaged)
        assert cache.compile_file("site.vnet", str(store)).site == expected
    assert compiles[0] == 5


def test_a_site_with_errors_is_never_kept(site, compiles):
    store = site / "cache"
    (site / "site.vnet").write_text("vlan v1 { id 5000 }\n")
    for _ in range(2):
        with pytest.raises(CompileError):
            cache.compile_file("site.vnet", str(store))
    assert compiles[0] == 2 and _entries(store) == []
    with pytest.raises(CompileError):                       # an unreadable file: compile_file's own error
        cache.compile_file("missing.vnet", str(store))


def test_entries_are_private(site):
    (site / "site.vnet").write_text('macsec ms0 { link nic0; tx-sa 0 { pn 1; key-id 01; key "0123456789abcdef0123456789abcdef" } }\n'
                                    "interface nic0\n")
    store = site / "cache"
    cache.compile_file("site.vnet", str(store))
    (entry,) = _entries(store)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert [p.name for p in store.iterdir()] == [entry.name]          # no temporary file left


@pytest.mark.parametrize("how", ["group-writable", "symlink"])
def test_a_directory_others_could_write_is_not_used(site, compiles, how):
    store = site / "cache"
    if how == "group-writable":
        store.mkdir(mode=0o700)
        os.chmod(store, 0o770)
        used = store
    else:
        real = site / "elsewhere"
        real.mkdir(mode=0o700)
        store.symlink_to(real)
        used = real
    for _ in range(2):
        assert cache.compile_file("site.vnet", str(store)).site == compile_file("site.vnet").site
    assert compiles[0] == 2 and _entries(used) == []


def test_the_least_recently_used_entries_beyond_the_limit_are_removed(site, compiles, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    store = site / "cache"
    names = [f"s{i}.vnet" for i in range(5)]
    for i, name in enumerate(names):
        (site / name).write_text(SITE)
        cache.compile_file(name, str(store))
        os.utime(cache.os.path.join(store, cache._entry_name(name)), ns=(i * 10**9, i * 10**9))
        if i == 1:                                  # s0 is used again: s1 becomes the oldest
            cache.compile_file("s0.vnet", str(store))
    assert compiles[0] == 5
    kept = {p.name for p in _entries(store)}
    assert kept == {cache._entry_name(n) for n in ("s0.vnet", "s3.vnet", "s4.vnet")}
