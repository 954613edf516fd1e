"""All or nothing: whatever fails during an apply, the namespaces end as they started.

Fault injection: the executor calls a hook before each kernel operation; here it makes the n-th
one fail (several n), or removes a device vnetc has just made. Also: the kernel refusing a kind,
another apply holding the lock, SIGTERM in the middle of a large apply, a missing tool, and a
netdevsim sysfs that never produces the device (VNETC_SYSFS_ROOT pointed at a fake tree).
"""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor_helpers import fake_interfaces, full_snapshot, namespace, problems, vnetc, write_site
from harness import kernel
from harness.netns import ip, links
from vnetc.backends.executor import apply as apply_module
from vnetc.backends.executor import netlink as nl
from vnetc.backends.executor import ops
from vnetc.backends.executor import sysfs
from vnetc.backends.executor.command import UI, Request, main
from vnetc.compiler import compile_file

ROOT = Path(__file__).resolve().parents[2]

SITE = """
netns blue
interface eth0
interface eth1
bridge br0 { ports eth0; address 10.0.0.2/24; gateway 10.0.0.1; mtu 1400 }
veth ve0 { master br0; peer vp0 { netns blue; address 10.0.0.9/24 } }
macvlan mv0 { link eth1; address 10.5.0.1/24; route 10.6.0.0/16 via 10.5.0.254 }
ifb ifb0 { qdisc tbf rate 1mbit burst 32kbit latency 400ms; redirect-ingress eth0 }
tap tap0 { master br0 }
"""


def _in_process(site: str, ns: str, fault=None, action: str = "apply", **extra) -> tuple[int, list[str], list[str]]:
    out, err = [], []

    def compile_site(path: str):
        return compile_file(path).site

    status = main(Request(action, site, netns=ns, yes=True, **extra), UI(out.append, err.append, None),
                  compile_site, fault)
    return status, out, err


def _count_ops(tmp_path) -> int:
    site = write_site(tmp_path, SITE, "count.vnet")
    with namespace() as ns:
        fake_interfaces(ns, site)
        status, _, err = _in_process(site, ns)
        assert status == 0, err
        return int(err[-1].split("(")[1].split()[0])


@pytest.fixture(scope="module")
def kinds_needed():
    for kind in ("bridge", "veth", "macvlan", "ifb", "tap"):
        kernel.require_kind(kind)
    for qdisc in ("tbf", "ingress"):
        kernel.require_qdisc(qdisc)


def test_the_nth_operation_fails(kinds_needed, tmp_path):
    total = _count_ops(tmp_path)
    assert total > 20
    site = write_site(tmp_path, SITE)
    for n in sorted({0, 1, 2, 5, total // 3, total // 2, total - 2, total - 1}):
        with namespace() as ns:
            fake_interfaces(ns, site)
            before = full_snapshot(ns, ("blue",))

            def fail(count, op, n=n):
                if count == n:
                    raise nl.KernelError(errno.EIO, "injected failure")

            status, _, err = _in_process(site, ns, fail)
            assert status == 4, (n, err)
            assert "injected failure" in err[-1] and "rolled back" in err[-1]
            assert full_snapshot(ns, ("blue",)) == before, f"operation {n} of {total}"


def _differences(before: dict, after: dict) -> list:
    """(namespace, part, item, before, after) for every item of two full_snapshots that differs."""
    out = []
    for ns in sorted(set(before) | set(after), key=str):
        for part in sorted(set(before.get(ns, {})) | set(after.get(ns, {}))):
            a, b = before.get(ns, {}).get(part), after.get(ns, {}).get(part)
            if isinstance(a, dict) and isinstance(b, dict):
                out += [(ns, part, k, _changed(a.get(k), b.get(k))) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            elif a != b:
                out.append((ns, part, None, a, b))
    return out


def _changed(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
    return a, b


def test_a_failed_destroy_is_undone(kinds_needed, tmp_path):
    """destroy is all or nothing too. Its deletions of devices and namespaces run last (phase
    "teardown"): the n-th operation failing before them leaves the namespaces exactly as the
    apply left them (exit 4). Once a bulk delete has run, the undo recreates the devices as the
    kernel had them (bridges included, whose vlan_filtering this kernel dumps but refuses to be
    sent); what it cannot restore is listed (exit 5)."""
    site = write_site(tmp_path, SITE)
    phases: list[int] = []
    with namespace() as ns:
        fake_interfaces(ns, site)
        status, _, err = _in_process(site, ns)
        assert status == 0, err
        status, _, err = _in_process(site, ns, lambda count, op: phases.append(op.phase), action="destroy")
        assert status == 0, err
    teardown = ops.phase("teardown")
    first = phases.index(teardown)
    assert first >= 3 and phases[first:] == [teardown] * (len(phases) - first), phases
    for n in sorted({0, 1, first // 2, first - 1, first, len(phases) - 1}):
        with namespace() as ns:
            fake_interfaces(ns, site)
            status, _, err = _in_process(site, ns)
            assert status == 0, err
            applied = full_snapshot(ns, ("blue",))

            def fail(count, op, n=n):
                if count == n:
                    raise nl.KernelError(errno.EIO, "injected failure")

            status, _, err = _in_process(site, ns, fail, action="destroy")
            assert "injected failure" in err[-1], err
            if n <= first:      # nothing irreversible has run
                assert status == 4 and "rolled back" in err[-1], (n, err)
                after = full_snapshot(ns, ("blue",))
                assert after == applied, (f"operation {n} of {len(phases)}", _differences(applied, after))
            else:
                assert status in (4, 5), (n, err)
                assert (full_snapshot(ns, ("blue",)) == applied) == (status == 4), (n, err)


def test_a_device_vanishes_mid_apply(kinds_needed, tmp_path):
    site = write_site(tmp_path, SITE)
    with namespace() as ns:
        fake_interfaces(ns, site)
        before = full_snapshot(ns, ("blue",))

        def vanish(count, op):
            if count == 12:
                ip(ns, "link", "del", "br0")

        status, _, err = _in_process(site, ns, vanish)
        assert status == 4, err
        assert full_snapshot(ns, ("blue",)) == before


def test_the_kernel_refuses_a_kind(tmp_path):
    lacking = [k for k in ("bond", "dummy", "vlan", "nlmon", "vcan") if not kernel.probe(k).ok and kernel.probe(k).kernel_lacks]
    if not lacking:
        pytest.skip("this kernel has every kind this test could use as a refused one")
    kernel.require_kind("bridge")
    kind = lacking[0]
    body = {"vlan": "{ link br0; id 5 }"}.get(kind, "")
    site = write_site(tmp_path, f"bridge br0 {{ address 10.0.0.1/24 }}\n{kind} x0 {body}\n")
    with namespace() as ns:
        before = full_snapshot(ns)
        run = vnetc("apply", site, ns)
        assert run.exit_code == 4, run.stderr
        assert f"create {kind} x0" in run.stderr and "rolled back" in run.stderr
        assert full_snapshot(ns) == before


def test_another_apply_holds_the_lock(tmp_path):
    kernel.require_kind("bridge")
    site = write_site(tmp_path, "bridge br0 { address 10.0.0.1/24 }\n")
    with namespace() as ns:
        before = full_snapshot(ns)
        with apply_module.lock(f"netns-{ns}", 0):
            run = vnetc("apply", site, ns, "--wait", "0.2")
        assert run.exit_code == 4
        assert "holds" in run.stderr and "nothing was changed" in run.stderr
        assert full_snapshot(ns) == before
        assert vnetc("apply", site, ns).exit_code == 0     # and the lock is free again


def test_sigterm_during_apply(tmp_path):
    kernel.require_kind("veth")
    kernel.require_kind("bridge")
    text = "for i in 1..300 {\n bridge b${i} { address 10.${i / 250}.${i % 250}.1/24 }\n" \
           " veth v${i} { master b${i}; peer p${i} }\n}\n"
    site = write_site(tmp_path, text)
    vnetc_bin = str(Path(sys.executable).with_name("vnetc"))
    with namespace() as ns:
        before = full_snapshot(ns)
        proc = subprocess.Popen([vnetc_bin, "apply", site, "--netns", ns, "--yes"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while len(links(ns)) < 30 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:      # it finished before the signal: then it is all there
            assert problems(site, ns) == []
        else:
            assert proc.returncode == 4, err
            assert "interrupted by signal SIGTERM" in err
            assert full_snapshot(ns) == before


def test_a_missing_tool_or_kernel_support_ends_cleanly(tmp_path):
    """A team needs teamd: without it the plan says so and nothing changes; with it, this kernel
    (no team driver) refuses and the apply is rolled back."""
    site = write_site(tmp_path, (ROOT / "examples/seed/team.vnet").read_text())
    with namespace() as ns:
        fake_interfaces(ns, site)
        before = full_snapshot(ns)
        run = vnetc("apply", site, ns)
        if run.exit_code == 1:
            assert "`teamd` is not installed (Debian package libteam-utils)" in run.stdout
        else:
            if kernel.probe("team").ok:
                pytest.skip("this kernel has team: the apply may succeed")
            assert run.exit_code == 4, run.stderr
            assert "teamd" in run.stderr
        assert full_snapshot(ns) == before


def test_netdevsim_through_a_fake_sysfs(tmp_path, monkeypatch):
    """With VNETC_SYSFS_ROOT pointing at a fake tree, vnetc writes the new device there; no port
    ever appears, so it gives up, deletes the device again through sysfs, and rolls back."""
    root = tmp_path / "sys"
    bus = root / "bus" / "netdevsim"
    (bus / "devices" / "netdevsim0").mkdir(parents=True)
    for name in ("new_device", "del_device"):
        (bus / name).write_text("")
    monkeypatch.setenv("VNETC_SYSFS_ROOT", str(root))
    monkeypatch.setattr(sysfs, "WAIT", 0.3)
    site = write_site(tmp_path, "netdevsim sim0 { ports 2; vfs 2 }\n")
    with namespace() as ns:
        before = full_snapshot(ns)
        plan = vnetc("plan", site, ns)
        assert "id 1" in plan.stdout and "ports sim0, sim0p1" in plan.stdout     # netdevsim0 is taken
        status, _, err = _in_process(site, ns)
        assert status == 4, err
        assert "netdevsim1 has 0 of its 2 ports" in err[-1]
        assert (bus / "new_device").read_text() == "1 2"
        assert (bus / "del_device").read_text() == "1"
        assert full_snapshot(ns) == before
    monkeypatch.setenv("VNETC_SYSFS_ROOT", str(tmp_path / "nothing"))
    with namespace() as ns:
        run = vnetc("apply", site, ns)
        assert run.exit_code == 1 and "this kernel has no netdevsim" in run.stdout
