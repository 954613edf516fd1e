"""Properties the kernel does not report (MACsec SAs and MKA, a team's runner and config, netdevsim
VFs and offloads): apply records a digest of each when it makes the device (originals.py,
"unreported"); a later plan recreates the device when the site's differ, and says which.

This kernel builds none of these kinds (macsec, team, netdevsim), so the plans are made against
a kernel state written here: the device as `vnetc apply` leaves it (its owner's alias and link
group), with or without a record. The record op itself runs for real, into a run directory of
the test's own.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from vnetc.backends.executor import make_plan, originals, target
from vnetc.backends.executor import kinds as K
from vnetc.backends.executor import owner as mark
from vnetc.backends.executor.ops import Context
from vnetc.backends.executor.state import Link, State
from vnetc.compiler import compile_source

KEY = "00112233445566778899aabbccddeeff"
KINDS = {
    "macsec": ("interface eth0\nmacsec ms0 {{ link eth0; tx-sa 0 {{ key-id 01; key {key} }} }}\n", "ms0", "tx-sa"),
    "team": ("interface eth0\nteam tm0 {{ ports eth0; runner {runner} }}\n", "tm0", "runner"),
    "netdevsim": ("netdevsim ns0 {{ vfs {vfs} }}\n", "ns0", "vfs"),
}
FIRST = {"key": KEY, "runner": "activebackup", "vfs": 2}
CHANGED = {"key": KEY[::-1], "runner": "loadbalance", "vfs": 4}


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VNETC_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


def _site(kind: str, values: dict):
    text, name, _ = KINDS[kind]
    site = compile_source(text.format(**values), "/srv/site.vnet").site
    return site, next(d for _, d in site.devices() if d.name == name)


def _kernel(t, device, index: int = 40, inode: int = 4242) -> dict:
    """The namespace as apply left it: the site's interface and the device, marked as vnetc's."""
    state = State(None, inode=inode)
    state.add(Link(2, "eth0", None, 0, 1500, "02:00:00:00:00:02", 0, 0, None, None, 0))
    state.add(Link(index, device.name, K.KINDS[device.kind].info_kind, 1, 1500, "02:00:00:00:00:09", 0,
                   2 if device.kind == "macsec" else 0, None, mark.alias(t.options.owner, None),
                   mark.group(t.options.owner)))
    return {None: state}


def _record(t, device, index: int = 40, inode: int = 4242, digests: dict | None = None) -> None:
    originals._write(t.options.originals, {(None, device.name): {
        "identity": (inode, index), originals.UNREPORTED: K.fingerprint(device) if digests is None else digests}})


def _step(plan, name: str):
    return next(s for s in plan.steps if s.subject.endswith(f" {name}"))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_changed_unreported_property_recreates_the_device(kind, run_dir):
    first_site, first = _site(kind, FIRST)
    site, device = _site(kind, CHANGED)
    t = target(site, "/srv/site.vnet")
    _record(t, first)                                      # what the first apply made it with
    plan = make_plan(t, _kernel(t, device))
    step = _step(plan, device.name)
    prop = KINDS[kind][2]
    assert step.action == "recreate", plan.render()
    assert step.reason.startswith(f"{prop} changed since vnetc made it"), step.reason
    assert KEY not in plan.render() and KEY[::-1] not in plan.render()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_same_unreported_properties_change_nothing(kind, run_dir):
    site, device = _site(kind, FIRST)
    t = target(site, "/srv/site.vnet")
    _record(t, device)
    plan = make_plan(t, _kernel(t, device))
    assert all(s.action != "recreate" for s in plan.steps), plan.render()


@pytest.mark.parametrize("case", ["no record", "another device of that name", "a namespace made anew"])
def test_without_a_record_of_this_very_device_nothing_is_recreated(case, run_dir):
    first_site, first = _site("macsec", FIRST)
    site, device = _site("macsec", CHANGED)
    t = target(site, "/srv/site.vnet")
    if case == "another device of that name":
        _record(t, first, index=41)
    elif case == "a namespace made anew":
        _record(t, first, inode=1)
    plan = make_plan(t, _kernel(t, device))
    assert _step(plan, device.name).action != "recreate", plan.render()


def test_apply_records_the_digests_readable_by_root_only(run_dir):
    site, device = _site("macsec", FIRST)
    t = target(site, "/srv/site.vnet")
    op = originals.unreported_op(t.options.originals, (None, "ms0"), K.fingerprint(device))
    op.run(Context({(None, "ms0"): 40}))
    text = t.options.originals.read_text()
    assert stat.S_IMODE(os.stat(t.options.originals).st_mode) == 0o600
    assert KEY not in text
    [entry] = json.loads(text)["devices"]
    assert entry["name"] == "ms0" and entry["identity"][1] == 40
    assert entry[originals.UNREPORTED] == K.fingerprint(device) and set(entry[originals.UNREPORTED]) == {"tx-sa"}
    op.undo.run(Context({}))
    assert not t.options.originals.exists()              # a rolled-back apply takes its record back


def test_a_plan_that_makes_the_device_records_it_and_destroy_forgets_it(run_dir):
    site, device = _site("macsec", FIRST)
    t = target(site, "/srv/site.vnet")
    state = _kernel(t, device)
    del state[None].links["ms0"], state[None].by_index[40]
    made = make_plan(t, state)
    assert "remember what ms0 was made with" in [op.text for op in _step(made, "ms0").ops]
    _record(t, device)
    gone = make_plan(t, _kernel(t, device), destroy=True)
    forget = [op for s in gone.steps for op in s.ops if op.text == "forget ms0's values before vnetc"]
    assert len(forget) == 1 and forget[0].phase == max(op.phase for s in gone.steps for op in s.ops)
