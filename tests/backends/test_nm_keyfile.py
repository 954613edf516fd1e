"""The NetworkManager target's keyfile writer and connection UUIDs, against their references.

keyfile() fills a layout worked out once per set of keys, and escapes values
only when the text shows that one may need it. Here: its text is the plain
writer's (each section's keys sorted, every value escaped) for random
sections and values; GLib's own key file reader reads every value back as it
was, escapes and all; a name with a backslash (the one escape a valid site can
need) reaches libnm intact. connection_uuids() is Python's uuid.uuid5.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.libnm import SYSTEM_PYTHON, read_keyfiles, require_libnm
from vnetc.backends.nm import UUID_NAMESPACE, _escape, _sort_key, connection_uuids, keyfile, render
from vnetc.compiler import compile_source
from vnetc.compiler.ir import Host, Site


@pytest.mark.parametrize("files,host,site_name", [((), None, ""), (("/srv/sites/lab.vnet",), "hv01", "lab"),
                                                  (("a.b.vnet", "b.vnet"), "", "a.b")])
def test_connection_uuids_are_uuid5_of_site_host_and_name(files, host, site_name):
    of = connection_uuids(Site((), files), Host(host, (), ()))
    for name in ("eth0", "bond0.1001", "a\\b", "é-ü", "x" * 15, "", *(f"v{i}" for i in range(100))):
        assert of(name) == str(uuid.uuid5(UUID_NAMESPACE, f"{site_name}/{host or ''}/{name}")), name


def _plain(sections: dict[str, dict], header: str) -> str:
    """The writer keyfile() must equal: each section's keys in NetworkManager's order, every value escaped."""
    return header + "\n".join(
        f"[{name}]\n" + "".join(f"{key}={_escape(value)}\n"
                                for key, value in sorted(keys.items(), key=lambda item: _sort_key(name, item[0])))
        for name, keys in sections.items())


@pytest.fixture
def _no_assertion_pass_hook(monkeypatch):
    """As in tests/compiler/test_properties.py: pytest's assertion pass hook makes hypothesis ~40x slower."""
    from _pytest.assertion import util
    monkeypatch.setattr(util, "_assertion_pass", None)


_SECTIONS = st.sampled_from(["connection", "vlan", "ipv4", "ipv6", "bridge-port"])
_KEYS = st.sampled_from(["id", "uuid", "type", "interface-name", "method", "address1", "address2", "address10",
                         "address-generation", "route1", "route1_options", "route2", "route10", "dns", "mtu"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8) | st.sampled_from(
    ["a\\b", " x", "x ", "\t", "a\nb", "\r", "= ", "a;b", "\\s"])
_VALUES = _TEXT | st.lists(_TEXT, max_size=3).map(tuple)


@pytest.mark.usefixtures("_no_assertion_pass_hook")
@given(st.lists(st.dictionaries(_SECTIONS, st.dictionaries(_KEYS, _VALUES, max_size=6), min_size=1, max_size=4),
                min_size=1, max_size=4))
def test_keyfile_is_the_plain_writers_text(files):
    for sections in files:   # several files in a row: they share layouts
        assert keyfile(sections, "# h\n") == _plain(sections, "# h\n")


_GLIB_READ = r"""
import json, sys
from gi.repository import GLib
files = json.loads(sys.stdin.read())
out = []
for text, lists in files:
    keyfile = GLib.KeyFile()
    keyfile.load_from_data(text, len(text.encode()), GLib.KeyFileFlags.NONE)
    out.append({group: {key: keyfile.get_string_list(group, key) if key in lists else keyfile.get_string(group, key)
                        for key in keyfile.get_keys(group)[0]} for group in keyfile.get_groups()[0]})
print(json.dumps(out))
"""

#: values with each character GLib escapes, at the places where it matters
TRICKY = ["plain", "back\\slash", "\\", "end\\", "\\s", "tab\there", "cr\rhere", "new\nline", "two\n\nlines",
          " leading blank", "  two leading", " ", "trailing blank ", "= sign", "a=b", "semi;colon", "#hash",
          "[bracket]", "ünïcödé", ""]


def test_glib_reads_every_value_back_as_written():
    require_libnm()   # GLib through python3-gi, as libnm is reached
    files = [{"connection": {"id": "x", "uuid": "u", "type": "dummy"},
              "values": {f"k{i}": value for i, value in enumerate(TRICKY)},
              "lists": {"one": tuple(TRICKY), "empty": (), "blank": ("",)}},
             {"connection": {"id": "a\\b", "uuid": "u", "type": "dummy"}}]
    texts = [keyfile(sections, "# header\n") for sections in files]
    run = subprocess.run([SYSTEM_PYTHON, "-c", _GLIB_READ], capture_output=True, text=True, timeout=60,
                         input=json.dumps([(text, ["one", "empty", "blank"]) for text in texts]))
    assert run.returncode == 0, run.stderr
    read = json.loads(run.stdout)
    assert read == [{name: {key: list(value) if isinstance(value, tuple) else value for key, value in keys.items()}
                     for name, keys in sections.items()} for sections in files]


def test_libnm_reads_a_name_with_a_backslash_as_it_is():
    require_libnm()
    site = compile_source("interface e\\0\nvlan v\\1 {\n link e\\0\n id 1\n address 10.0.0.1/24\n}\n", "s.vnet").site
    files = {a.name: a.content for a in render(site, site.hosts[0]).files}
    assert "id=v\\\\1\n" in files["vnetc-v\\1.nmconnection"]
    reads = read_keyfiles(files)
    assert [r.problems for r in reads.values()] == [[], []]
    assert reads["vnetc-v\\1.nmconnection"].get("connection", "interface-name") == "v\\1"
    assert reads["vnetc-e\\0.nmconnection"].get("connection", "id") == "e\\0"
