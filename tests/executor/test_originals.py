"""`destroy` puts back what `apply` changed on devices vnetc does not own: an interface's MTU, MAC
and up/down state are what they were before the first apply (backends/executor/originals.py),
unless someone changed them since; a rolled-back apply leaves no record. Fresh namespaces; the
records go to a run directory of the test's own (VNETC_RUN_DIR).
"""

from __future__ import annotations

import json
import os

import pytest

from executor_helpers import fake_interfaces, full_snapshot, namespace, vnetc, write_site
from harness import kernel
from harness.netns import ifindexes, ip, links
from vnetc.backends.executor import netlink as nl
from vnetc.backends.executor.command import UI, Request, main
from vnetc.compiler import compile_file

SITE = """
interface eth0 { mtu 1400; mac 52:54:00:aa:bb:01; address 10.0.0.2/24 }
interface eth1 { state up }
bridge br0 { ports eth1; address 10.1.0.1/24 }
"""


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    kernel.require_kind("bridge")
    kernel.require_kind("veth")
    where = tmp_path / "run"
    monkeypatch.setenv("VNETC_RUN_DIR", str(where))
    return where


def _records(run_dir) -> dict:
    files = list((run_dir / "originals").glob("*.json")) if (run_dir / "originals").exists() else []
    return {(d["netns"], d["name"]): {k: v for k, v in d.items() if k not in ("netns", "name")}
            for f in files for d in json.loads(f.read_text())["devices"]}


def test_destroy_puts_back_what_apply_changed_on_interfaces(run_dir, tmp_path):
    site = write_site(tmp_path, SITE)
    with namespace() as ns:
        fake_interfaces(ns, site)                       # down, MTU 1500, a random MAC
        before = full_snapshot(ns)
        mac = links(ns)["eth0"]["address"]
        assert vnetc("apply", site, ns).exit_code == 0
        eth0 = links(ns)["eth0"]
        assert (eth0["mtu"], eth0["address"], eth0["up"]) == (1400, "52:54:00:aa:bb:01", True)
        indexes = {name: index for name, index in ifindexes(ns).items()}
        inode = os.stat(f"/run/netns/{ns}").st_ino
        assert _records(run_dir) == {
            (ns, "eth0"): {"identity": [inode, indexes["eth0"]], "mtu": {"before": 1500, "set": 1400},
                           "mac": {"before": mac, "set": "52:54:00:aa:bb:01"}, "up": {"before": False, "set": True}},
            (ns, "eth1"): {"identity": [inode, indexes["eth1"]], "up": {"before": False, "set": True}}}
        assert vnetc("plan", site, ns).stdout.startswith("No changes")

        gone = vnetc("destroy", site, ns)
        assert gone.exit_code == 0, gone.stdout + gone.stderr
        assert "    mtu 1400 -> 1500 (as before vnetc)\n" in gone.stdout
        assert f"    mac 52:54:00:aa:bb:01 -> {mac} (as before vnetc)\n" in gone.stdout
        assert "    state up -> down (as before vnetc)\n" in gone.stdout
        assert full_snapshot(ns) == before
        assert _records(run_dir) == {}
        assert vnetc("destroy", site, ns).stdout.startswith("No changes")


def test_a_value_changed_since_is_left_and_the_first_before_is_kept(run_dir, tmp_path):
    site = tmp_path / "site.vnet"
    site.write_text(SITE)
    with namespace() as ns:
        fake_interfaces(ns, str(site))
        assert vnetc("apply", str(site), ns).exit_code == 0
        site.write_text(SITE.replace("mtu 1400", "mtu 1300"))       # a second apply sets another MTU
        assert vnetc("apply", str(site), ns).exit_code == 0
        assert _records(run_dir)[(ns, "eth0")]["mtu"] == {"before": 1500, "set": 1300}
        ip(ns, "link", "set", "eth1", "down", "mtu", "1450")          # someone else's change
        gone = vnetc("destroy", str(site), ns)
        assert gone.exit_code == 0, gone.stdout + gone.stderr
        assert "    state down was changed since vnetc set up: left as it is\n" in gone.stdout
        assert "    mtu 1300 -> 1500 (as before vnetc)\n" in gone.stdout
        now = links(ns)
        assert (now["eth0"]["mtu"], now["eth0"]["up"]) == (1500, False)
        assert (now["eth1"]["mtu"], now["eth1"]["up"]) == (1450, False)
        assert _records(run_dir) == {}


def test_a_rolled_back_apply_leaves_no_record(run_dir, tmp_path):
    site = write_site(tmp_path, SITE)

    def fail_late(n: int, op) -> None:                 # the first address: after every link change
        if op.text.startswith("add address"):
            raise nl.KernelError(5, "injected")

    with namespace() as ns:
        fake_interfaces(ns, site)
        before = full_snapshot(ns)
        out, err = [], []
        status = main(Request("apply", site, netns=ns, yes=True), UI(out.append, err.append, None),
                      lambda path: compile_file(path).site, fail_late)
        assert status == 4, err
        assert full_snapshot(ns) == before
        assert _records(run_dir) == {}


def test_a_device_made_anew_under_its_name_is_not_the_one_vnetc_changed(run_dir, tmp_path):
    site = write_site(tmp_path, SITE)
    with namespace() as ns:
        fake_interfaces(ns, site)
        assert vnetc("apply", site, ns).exit_code == 0          # eth0's MTU was 1500
        ip(ns, "link", "del", "eth0")                         # someone replaces eth0: another ifindex
        ip(ns, "link", "add", "eth0", "mtu", "1280", "type", "veth", "peer", "name", "p-eth0")
        assert vnetc("apply", site, ns).exit_code == 0
        assert _records(run_dir)[(ns, "eth0")]["mtu"] == {"before": 1280, "set": 1400}    # not 1500

        ip(ns, "link", "del", "eth0")                         # and again, this time as vnetc had set it
        ip(ns, "link", "add", "eth0", "mtu", "1400", "type", "veth", "peer", "name", "p-eth0")
        ip(ns, "link", "set", "eth0", "address", "52:54:00:aa:bb:01", "up")
        gone = vnetc("destroy", site, ns)
        assert gone.exit_code == 0, gone.stdout + gone.stderr
        assert "    eth0 is not the device vnetc changed: vnetc forgets what it had before\n" in gone.stdout
        eth0 = links(ns)["eth0"]
        assert (eth0["mtu"], eth0["address"], eth0["up"]) == (1400, "52:54:00:aa:bb:01", True)
        assert _records(run_dir) == {}
