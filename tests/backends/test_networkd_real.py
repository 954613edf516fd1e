"""The networkd target, proven on the real systemd-networkd (252).

For every example and every golden case that compiles and builds, and for each
host of its site: `vnetc build -t networkd` into a temporary directory, then
tests/harness/networkd.py runs the real systemd-networkd on the files in a fresh
network namespace, the site's `interface`s faked as veth pairs. networkd must log
no warning, and the kernel state must be what the IR says for every device this
kernel can build: names, kinds, masters, lower links, ids/VNIs/modes, addresses,
MTU, MAC, up/down.

Left out of a run (their files deleted, no expectation), each for a reason the
test prints:
- devices of a kind this kernel cannot build (probed with harness.kernel), a
  VLAN-filtering bridge when the kernel has no bridge VLAN filtering, and a
  failover master (virtio_net creates it, not rtnetlink);
- everything stacked on or enslaved to those;
- the residual: what `vnetc apply` creates (devices in other namespaces, team,
  netdevsim, a veth/vxcan whose peer lives in a namespace).
A [Network] key naming a left-out stacked device is removed from its lower
link's .network, and a qdisc the kernel lacks from its .network: both are the
kernel's gap, not the output's. A fake NIC is a veth, so a `[Match] Driver=`
becomes `Name=` (the NIC's name) in the copy networkd gets. If nothing is left,
the case is skipped with a reason naming the kinds. Under CI=true, a probe that
fails for any other reason than the kernel lacking the thing fails the test.

A second test runs networkd on the whole, unmodified output of each case (every
kind, the kernel's or not) and requires that no warning names one of our files:
networkd parses every file whatever the kernel has.

What the `sandbox` fixture adds to the harness (patched in for one run): the fake
NICs get the MAC an `interface ... match-mac` names; the container's
/dev/net/tun (mode 0600: networkd, which runs as systemd-network, cannot open
it) is replaced, inside networkd's private mount namespace only, by one with
udev's mode 0666; and the tap/tun owners and groups the site names that this
machine lacks are added to private copies of /etc/passwd and /etc/group (a
hypervisor with libvirt has `libvirt-qemu`; networkd refuses a tap whose owner
does not resolve).

Besides the examples and golden cases, INLINE holds sites for rules they do not
reach (a bridge of unopened taps, a bridge carrying its NIC's MAC, every kind).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import run_vnetc
from harness import compare, kernel
from harness.cases import Case, all_cases, host_named, host_params
from harness import networkd as nd
from harness.netns import add_veth as harness_add_veth
from harness.netns import ip, skip_or_fail
from vnetc.backends import TARGETS
from vnetc.backends.networkd import QDISC_SECTIONS, STACKING_KEYS
from vnetc.compiler import CompileError, compile_file, compile_source
from vnetc.compiler.ir import Device, DeviceRef, Host, Site

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "golden"

# --------------------------------------------------------------------------
# the cases: every example, every golden case (an example's golden case is the
# example itself: it runs once, under the example's id)


# Cases of this file: the rules the examples do not reach.
INLINE = {
    # Taps nothing has opened: no carrier, on them or on their bridge, yet networkd must set the
    # addresses; and the bridge keeps the MTU the IR gives it when 1500-byte ports join.
    "bridge-of-unopened-taps": """
tap vm1
tap vm2 {
    owner vnetc-test-qemu
    group vnetc-test-kvm
    multi-queue on
}
tun tun1 {
    address 10.8.0.1/24
    route 10.9.0.0/16
}
bridge virbr0 {
    mtu 9000
    ports vm1 vm2
    address 192.168.122.1/24
    address fd00:122::1/64
}
""",
    # A bridge with its uplink's MAC (a common setup): networkd must configure it with its own
    # .network, not the NIC's MAC-matched one (which would enslave the bridge to itself).
    "mac-matched-nic-and-bridge-with-its-mac": """
interface eno1 {
    match-mac 52:54:00:00:01:01
}
interface eno2 {
    match-mac 52:54:00:00:01:02
    address 192.0.2.20/24
}
bridge vmbr0 {
    mac 52:54:00:00:01:01
    ports eno1
    address 192.168.50.1/24
}
""",
    # Every kind networkd renders, with most properties (what this kernel lacks is left out
    # of the kernel comparison, but networkd still reads every file).
    "every-kind": """
interface eth0 {
    address 10.0.0.2/24
    gateway 10.0.0.1
    dns 10.0.0.53
    route 10.9.0.0/16 via 10.0.0.254 metric 20
    route 10.10.0.0/16 via 10.0.0.254 table 100
}
interface eth1 {
    mtu 9000
}
interface eth2
interface eth3 {
    match-mac 52:54:00:00:03:03
}
interface eth4 {
    match-driver virtio_net
}
interface ib0

bridge br0 {
    stp on
    forward-delay 4s
    hello-time 2
    max-age 20s
    ageing-time 300
    priority 4096
    multicast-snooping off
    mtu 9000
    address 192.168.10.1/24
    port eth1 {
        cost 10
        priority 32
        hairpin on
        isolated off
    }
    ports tap0
}
bond bond0 {
    mode active-backup
    miimon 100
    updelay 200ms
    downdelay 1s
    primary eth2
    ports eth2 eth3
    min-links 1
}
vlan eth0.10 {
    link eth0
    id 10
    protocol 802.1ad
}
vxlan vx0 {
    vni 42
    group 239.1.1.1
    dev eth0
    ttl 8
    learning off
    port 8472
}
vxlan vx1 {
    vni 43
    local 10.0.0.2
    remote 10.0.0.3
    mtu 1450
}
macvlan mv0 {
    link eth0
    mode private
    mac 52:54:00:00:00:20
}
macvtap mvt0 {
    link eth0
    mode source
    source-macs 52:54:00:aa:00:01
}
ipvlan ipvl0 {
    link eth0
    mode l3s
    flags private
}
ipvtap ipvt0 {
    link eth0
    mode l2
}
macsec ms0 {
    link eth4
    port 2
    encrypt on
    tx-sa 0 {
        key-id 01
        key 000102030405060708090a0b0c0d0e0f
    }
    rx-channel 52:54:00:12:34:57 1 {
        sa 1 {
            key-id 02
            key 101112131415161718191a1b1c1d1e1f
            pn 7
        }
    }
}
veth ve0 {
    mtu 1400
    mac 52:54:00:00:00:10
    address 172.16.0.1/30
    peer ve0-p {
        mac 52:54:00:00:00:11
        mtu 1400
        address 172.16.0.2/30
    }
}
ipoib ipoib0 {
    link ib0
    pkey 0x8001
    mode connected
    umcast off
}
tap tap0 {
    owner nobody
    multi-queue on
    vnet-hdr on
}
tun tun0 {
    packet-info on
    address 10.8.0.1/24
}
dummy dm0 {
    address 10.255.0.1/32
    state down
}
nlmon nlmon0
vcan vcan0
ifb ifb0 {
    qdisc tbf rate 10mbit burst 16k latency 50ms peakrate 12mbit mtu 2000 mpu 64
    redirect-ingress eth0
}
ifb ifb1 {
    qdisc fq_codel limit 1000 flows 1024 target 5ms interval 100ms quantum 1514 noecn
}
ifb ifb2 {
    qdisc codel limit 500 target 5ms interval 100ms ecn
}
ifb ifb3 {
    qdisc fq limit 1000 flow_limit 100 quantum 3028 maxrate 1gbit
}
ifb ifb4 {
    qdisc pfifo limit 100
    state down
}
ifb ifb5 {
    qdisc bfifo limit 10k
}
ifb ifb6 {
    qdisc pfifo_fast
}
ifb ifb7 {
    qdisc sfq perturb 10
}
""",
}


@functools.lru_cache(maxsize=None)
def _site(case: Case) -> Site | None:
    """The site of a case whose input compiles and builds for networkd, else None."""
    try:
        if case.text is not None:
            site = compile_source(case.text, f"{case.id}.vnet").site
        else:
            site = compile_file(str(case.path)).site
    except CompileError:
        if case.text is not None:
            raise
        return None
    target = TARGETS["networkd"]
    if any(target.render(site, host).errors for host in site.hosts):
        return None   # e.g. MACsec MKA: `vnetc build` exits 3
    return site


PARAMS = host_params(all_cases(INLINE), _site)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """built(CASE, HOST): `vnetc build FILE -t networkd -o TMP` once per case (its hosts
    share it); returns the directory of HOST's files (TMP/networkd[/HOST])."""
    cache: dict[str, Path] = {}

    def get(case: Case, host: str | None) -> Path:
        if case.id not in cache:
            out = tmp_path_factory.mktemp("build")
            path = case.path
            if path is None:
                path = out / f"{case.id}.vnet"
                path.write_text(case.text, "utf-8")
            run = run_vnetc("build", str(path), "-t", "networkd", "-o", str(out / "o"), cwd=path.parent)
            assert run.exit_code == 0, run.stderr
            cache[case.id] = out / "o" / "networkd"
        return cache[case.id] / host if host is not None else cache[case.id]

    return get


# --------------------------------------------------------------------------
# what runs: the devices left out, the fake NICs, the files networkd gets

# Kinds no probe can build here for a reason of their own.
NOT_BUILDABLE = {
    "failover": "a failover master is created by virtio_net for a VIRTIO_NET_F_STANDBY NIC, "
                "not by rtnetlink; a namespace has no virtio NIC",
}

_FILE = re.compile(r"^\d+-vnetc-(?P<name>.+)\.(?P<ext>netdev|network)$")


def _kernel_problem(device: Device) -> str | None:
    """Why this kernel cannot build DEVICE (None: it can). Under CI=true an
    inconclusive probe fails the test."""
    probe_kind = "veth" if device.kind == "interface" else device.kind
    result = kernel.probe(probe_kind)
    if not result.ok:
        if not result.kernel_lacks:
            skip_or_fail(f"cannot probe {probe_kind}: {result.reason}")
        return f"{probe_kind} ({result.reason})"
    if device.kind == "bridge" and device.get("vlan-filtering"):
        result = kernel.probe_feature_full("bridge-vlan-filtering")
        if not result.ok:
            if not result.kernel_lacks:
                skip_or_fail(f"cannot probe bridge-vlan-filtering: {result.reason}")
            return f"bridge-vlan-filtering ({result.reason})"
    return None


@dataclass
class Plan:
    host: Host
    run: list[Device] = field(default_factory=list)            # the host's own devices networkd must build
    left_out: dict[str, str] = field(default_factory=dict)     # device name -> why
    lacking: dict[str, str] = field(default_factory=dict)      # kind/feature -> "kernel lacks bond (…)"

    def describe(self) -> str:
        return "; ".join(f"{name}: {why}" for name, why in self.left_out.items())


def _residual_devices(config: Path) -> set[DeviceRef]:
    path = config / "networkd.json"
    if not path.is_file():
        return set()
    data = json.loads(path.read_text("utf-8"))
    return {DeviceRef(i["name"], i["netns"]) for i in data["items"] if i["what"] == "device"}


def _plan(host: Host, config: Path) -> Plan:
    plan = Plan(host)
    residual = _residual_devices(config)
    out: dict[DeviceRef, str] = {}
    for device in host.devices:          # dependency order: a device's lowers come first
        if device.netns is not None or device.ref in residual:
            where = f" in namespace '{device.netns}'" if device.netns else ""
            out[device.ref] = f"residual ({device.kind}{where}: vnetc apply makes it)"
            continue
        if device.kind in NOT_BUILDABLE:
            out[device.ref] = f"cannot be built here: {NOT_BUILDABLE[device.kind]}"
            plan.lacking[device.kind] = f"{device.kind} cannot be built here ({NOT_BUILDABLE[device.kind]})"
            continue
        problem = _kernel_problem(device)
        if problem is not None:
            plan.lacking[problem.partition(" (")[0]] = f"kernel lacks {problem}"
            out[device.ref] = f"kernel lacks {problem}"
            continue
        related = [("stacked on", device.lower), ("enslaved to", device.master),
                   ("created with", device.created_by), ("peer of", device.get("peer"))]
        because = next(((how, ref) for how, ref in related if ref is not None and ref in out), None)
        if because is not None:
            how, ref = because
            out[device.ref] = f"{how} left-out {ref}"
            continue
    # a veth/vxcan whose peer was left out later in the order (peer in a namespace)
    for device in host.devices:
        peer = device.get("peer")
        if device.ref not in out and peer is not None and peer in out:
            out[device.ref] = f"peer of left-out {peer}"
    plan.left_out = {str(ref): why for ref, why in out.items()}
    plan.run = [d for d in host.devices if d.ref not in out]
    return plan


def _section_of(line: str) -> str | None:
    m = re.match(r"^\s*\[(\w+)\]\s*$", line)
    return m.group(1) if m else None


def _prepare(plan: Plan, config: Path, run_dir: Path) -> list[str]:
    """Copy the .netdev/.network files networkd gets into RUN_DIR; returns notes on what changed."""
    notes = []
    keep = {d.name for d in plan.run}
    by_name = {d.name: d for d in plan.host.devices if d.netns is None}
    left_out = set(by_name) - keep
    stacking = set(STACKING_KEYS.values())
    lacking_qdiscs = {section: kind for kind, (section, _) in QDISC_SECTIONS.items()
                      if not kernel.probe_qdisc_full(kind).ok}
    run_dir.mkdir(parents=True)
    for path in sorted(config.iterdir()):
        m = _FILE.match(path.name)
        if m is None:
            continue   # the residual file, its unit, the manifest: not networkd's
        if m.group("name") in left_out:
            continue
        lines, section, dropping = [], None, False
        for line in path.read_text("utf-8").splitlines(keepends=True):
            new_section = _section_of(line)
            if new_section is not None:
                section = new_section
                dropping = section in lacking_qdiscs
                if dropping:
                    result = kernel.probe_qdisc_full(lacking_qdiscs[section])
                    if not result.kernel_lacks:
                        skip_or_fail(f"cannot probe qdisc {lacking_qdiscs[section]}: {result.reason}")
                    notes.append(f"{path.name}: [{section}] dropped (kernel lacks qdisc "
                                 f"{lacking_qdiscs[section]}: {result.reason})")
            if dropping:
                continue
            key, _, value = line.strip().partition("=")
            if section == "Network" and key in stacking and value in left_out:
                notes.append(f"{path.name}: {key}={value} dropped ({value} is left out)")
                continue
            if section == "Match" and key == "Driver":
                device = by_name[m.group("name")]
                notes.append(f"{path.name}: [Match] Driver={value} -> Name={device.name} "
                             f"(the fake NIC is a veth)")
                line = f"Name={device.name}\n"
            lines.append(line)
        _copy(path, run_dir / path.name, "".join(lines))
    return notes


def _copy(source: Path, dest: Path, text: str) -> None:
    """TEXT as DEST with SOURCE's mode; a file others may not read (a MACsec key) goes to
    group systemd-network, as `vnetc build --root` installs it, so that networkd reads it."""
    dest.write_text(text, "utf-8")
    mode = source.stat().st_mode & 0o7777
    dest.chmod(mode)
    if not mode & 0o004:
        shutil.chown(dest, group="systemd-network")


# --------------------------------------------------------------------------
# the sandbox: fake NICs with their MACs, /dev/net/tun, the site's users

_EXEC = "exec env SYSTEMD_LOG_LEVEL="


def _script(users: list[str], groups: list[str]) -> str:
    """The harness's sandbox script with the additions described in the module docs,
    all made inside its private mount namespace (the script refuses to run outside one)."""
    assert _EXEC in nd.SANDBOX_SCRIPT, "the harness's sandbox script changed: update _script"
    extra = [
        "# /dev/net/tun as udev makes it on a real machine (0666), for networkd's tap/tun",
        "if [ -c /dev/net/tun ]; then",
        "    mount -t tmpfs -o mode=0755 tmpfs /dev/net",
        "    mknod -m 0666 /dev/net/tun c 10 200",
        "fi",
    ]
    for table, names, line in (("passwd", users, "{n}:x:{i}:{i}:vnetc test:/nonexistent:/usr/sbin/nologin"),
                               ("group", groups, "{n}:x:{i}:")):
        if not names:
            continue
        copy = f"/run/systemd/vnetc-{table}"
        extra.append(f"cp /etc/{table} {copy}")
        for i, name in enumerate(names):
            extra.append(f"printf '%s\\n' {shlex.quote(line.format(n=name, i=61000 + i))} >> {copy}")
        extra.append(f"chmod 0644 {copy}; mount --bind {copy} /etc/{table}")
    return nd.SANDBOX_SCRIPT.replace(_EXEC, "\n".join(extra) + "\n" + _EXEC, 1)


@pytest.fixture
def sandbox(monkeypatch):
    """sandbox(macs, users, groups): patch the harness for one run_networkd call."""

    def setup(macs: dict[str, str], users: list[str], groups: list[str]) -> None:
        def add_veth(ns: str, name: str, peer: str | None = None, up: bool = True) -> str:
            peer = harness_add_veth(ns, name, peer, up=False)
            if name in macs:
                ip(ns, "link", "set", name, "address", macs[name])
            if up:
                ip(ns, "link", "set", name, "up")
                ip(ns, "link", "set", peer, "up")
            return peer

        monkeypatch.setattr(nd, "add_veth", add_veth)
        monkeypatch.setattr(nd, "SANDBOX_SCRIPT", _script(users, groups))

    return setup


# --------------------------------------------------------------------------
# the comparison


def _qdisc_problems(plan: Plan, run: nd.NetworkdRun) -> list[str]:
    """An IFB's root qdisc (when the kernel has it) and the ingress qdisc on what it takes in."""
    problems = []
    names = {d.name for d in plan.run}
    for device in plan.run:
        qdisc = device.get("qdisc") if device.kind == "ifb" else None
        if qdisc is not None and kernel.probe_qdisc(qdisc.kind)[0]:
            roots = [q for q in run.qdiscs if q["dev"] == device.name and q["parent"] == "root"]
            if [q["kind"] for q in roots] != [qdisc.kind]:
                problems.append(f"{device.name}: root qdiscs {roots}, the IR says {qdisc.kind}")
            elif qdisc.kind == "tbf" and roots[0]["options"].get("rate") != qdisc.get("rate") // 8:
                # tc shows the rate in bytes per second, the IR holds bits per second
                problems.append(f"{device.name}: tbf rate {roots[0]['options'].get('rate')} B/s, "
                                f"the IR says {qdisc.get('rate')} bit/s")
        for source in device.get("redirect-ingress") if device.kind == "ifb" else ():
            if source.name in names and not any(q["dev"] == source.name and q["kind"] == "ingress"
                                                for q in run.qdiscs):
                problems.append(f"{source.name}: no ingress qdisc (its ingress goes to {device.name})")
    return problems


# --------------------------------------------------------------------------


def _users_and_groups(devices: list[Device]) -> tuple[list[str], list[str]]:
    """The tap/tun owners and groups the devices name that this machine lacks."""
    taps = [d for d in devices if d.kind in ("tap", "tun")]
    users = {d.get("owner") for d in taps if d.get("owner") and not compare.exists("passwd", d.get("owner"))}
    groups = {d.get("group") for d in taps if d.get("group") and not compare.exists("group", d.get("group"))}
    return sorted(users), sorted(groups)


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_networkd_builds_what_the_ir_says(case: Case, host_name: str | None, tmp_path, sandbox, built):
    site = _site(case)
    host = host_named(site, host_name)
    config = built(case, host_name)
    plan = _plan(host, config)
    if not plan.run:
        pytest.skip("nothing for networkd to build here: " + "".join(f"{why}; " for why in plan.lacking.values())
                    + f"left out: {plan.describe()}")

    notes = _prepare(plan, config, tmp_path / "network")
    fakes = [d for d in plan.run if d.kind == "interface"]
    sandbox({d.name: d.get("match-mac") for d in fakes if d.get("match-mac")}, *_users_and_groups(plan.run))
    print(f"left out: {plan.describe() or 'nothing'}")
    for note in notes:
        print(f"note: {note}")

    run = nd.run_networkd(tmp_path / "network", fake_nics=[d.name for d in fakes],
                          expect=[d.name for d in plan.run])
    assert run.ready and not run.failed_netdevs, run.describe()
    assert run.warnings == [], run.describe()
    problems = [p for d in plan.run for p in compare.device_problems(d, run) + compare.route_problems(d, run)]
    problems += _qdisc_problems(plan, run)
    assert problems == [], "\n".join(problems) + f"\nlinks: {json.dumps(run.links, indent=1)}\n" + run.describe()


@pytest.mark.parametrize("case,host_name", PARAMS)
def test_networkd_reads_every_file_without_complaint(case: Case, host_name: str | None, tmp_path, sandbox,
                                                      built):
    """networkd reads every file of the output, of every kind, this kernel's or not, and
    says nothing about any of them (an unknown key, a bad value, a section it ignores).
    Only the kernel's failures to create what it lacks are not the files' fault: they
    name no file and are left out here (the test above holds the rest)."""
    site = _site(case)
    host = host_named(site, host_name)
    config = built(case, host_name)
    run_dir = tmp_path / "network"
    run_dir.mkdir()
    for path in sorted(config.iterdir()):
        if _FILE.match(path.name):
            _copy(path, run_dir / path.name, path.read_text("utf-8"))
    if not any(run_dir.iterdir()):
        pytest.skip(f"no .netdev/.network file for host {host_name or '(implicit)'}: all residual")
    sandbox({}, *_users_and_groups(list(host.devices)))
    run = nd.run_networkd(run_dir, fake_nics=[], expect=[])
    about_files = [w for w in run.warnings if nd.CONFIG_MENTION.search(w) or nd.CONFIG_DIAGNOSTIC.search(w)]
    assert about_files == [], run.describe()
