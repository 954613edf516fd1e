"""`build`: `vnetc build -t networkd` against `netplan generate` on the same VLAN site.

Target (networkd issue): on a site of 4,000 VLANs with one address each, vnetc
is no slower than netplan's C generator (ratio ≤ 1.0); report how the ratio
grows at 1,000 / 4,000 / 16,000.

The site: per 4,000 VLANs two NICs and an 802.3ad bond, VLANs 1..4000 on the
bond, one /24 address each. vnetc reads it as .vnet, netplan as the equivalent
netplan YAML (ethernets, bonds, vlans). Both are whole processes writing their
files to the same temporary directory tree (tmpfs or disk, whatever $TMPDIR
is); the output directory is emptied before every run. Before timing, both
outputs are checked to describe the same devices (one .netdev per bond and
VLAN, one .network per device).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .harness import (BenchError, Options, Report, Table, alternate, count, expect_ok, log, median, mib,
                      run_timed, secs)

NAME = "build"
DESCRIPTION = "vnetc build -t networkd vs netplan generate on 1k/4k/16k VLANs (target: ratio ≤ 1.0 at 4k)"

TARGET_RATIO = 1.0
TARGET_VLANS = 4000
PER_BOND = 4000
FULL_SIZES = (1000, 4000, 16000)
QUICK_SIZES = (1000,)
NETPLAN = "/usr/sbin/netplan"


def _groups(n: int) -> list[int]:
    full, rest = divmod(n, PER_BOND)
    return [PER_BOND] * full + ([rest] if rest else [])


def _address(g: int, vid: int) -> str:
    k = g * PER_BOND + vid
    return f"10.{k // 256}.{k % 256}.1/24"


def vnet_site(n: int) -> str:
    lines = []
    for g, vlans in enumerate(_groups(n)):
        lines += [f"interface eth{2 * g}", f"interface eth{2 * g + 1}",
                  f"bond bond{g} {{", "    mode 802.3ad", f"    ports eth{2 * g} eth{2 * g + 1}", "}"]
        for vid in range(1, vlans + 1):
            lines += [f"vlan bond{g}.{vid} {{", f"    link bond{g}", f"    id {vid}",
                      f"    address {_address(g, vid)}", "}"]
    return "\n".join(lines) + "\n"


def netplan_site(n: int) -> str:
    eth, bonds, vlans = [], [], []
    for g, count_ in enumerate(_groups(n)):
        eth += [f"    eth{2 * g}: {{}}", f"    eth{2 * g + 1}: {{}}"]
        bonds += [f"    bond{g}:", f"      interfaces: [eth{2 * g}, eth{2 * g + 1}]",
                  "      parameters: {mode: 802.3ad}"]
        for vid in range(1, count_ + 1):
            vlans += [f"    bond{g}.{vid}:", f"      id: {vid}", f"      link: bond{g}",
                      f"      addresses: [{_address(g, vid)}]"]
    return "\n".join(["network:", "  version: 2", "  renderer: networkd", "  ethernets:", *eth,
                      "  bonds:", *bonds, "  vlans:", *vlans]) + "\n"


@dataclass
class Case:
    tool: str       # vnetc | netplan
    n: int
    argv: list[str]
    out: Path       # emptied before each run


def run(opts: Options) -> Report:
    if not Path(NETPLAN).exists():
        raise BenchError(f"{NETPLAN} is missing: apt-get install netplan.io")
    sizes = tuple(sorted(opts.sizes or (QUICK_SIZES if opts.quick else FULL_SIZES)))
    reps = opts.reps or (1 if opts.quick else 5)
    cases: list[Case] = []
    for n in sizes:
        work = opts.workdir / f"build-{n}"
        work.mkdir(parents=True, exist_ok=True)
        source = work / "site.vnet"
        source.write_text(vnet_site(n), encoding="utf-8")
        root = work / "netplan-root"
        (root / "etc/netplan").mkdir(parents=True, exist_ok=True)
        yaml = root / "etc/netplan/90-bench.yaml"
        yaml.write_text(netplan_site(n), encoding="utf-8")
        yaml.chmod(0o600)
        cases.append(Case("vnetc", n, [opts.vnetc, "build", str(source), "-t", "networkd", "-o", str(work / "out")],
                          work / "out"))
        cases.append(Case("netplan", n, [NETPLAN, "generate", "--root-dir", str(root)], root / "run"))
    for case in cases:   # untimed: fills caches, and checks that both do their job
        _measure(case, opts)
        _validate(case)
    log(f"{NAME}: {len(cases)} cases, {reps} rounds")
    results = alternate(cases, reps, lambda c: _measure(c, opts), progress=lambda m: log(f"{NAME}: {m}"))

    report = Report(NAME, "build: `vnetc build -t networkd` vs `netplan generate`")
    report.text(f"Median of {reps} alternating run{'s' if reps > 1 else ''} per row"
                f"{' (--quick: indicative only)' if opts.quick else ''}. Whole processes, start-up included, "
                f"writing into {opts.workdir} (emptied before every run). Site: per {PER_BOND:,} VLANs two "
                f"NICs and an 802.3ad bond; every VLAN has one address.")
    table = Table(["VLANs", "files written", "vnetc s", "netplan s", "ratio vnetc ÷ netplan",
                   "vnetc peak RSS MiB", "netplan peak RSS MiB"])
    met = None
    for n in sizes:
        v = next(i for i, c in enumerate(cases) if c.tool == "vnetc" and c.n == n)
        p = next(i for i, c in enumerate(cases) if c.tool == "netplan" and c.n == n)
        tv, tp = median(r.wall for r in results[v]), median(r.wall for r in results[p])
        ratio = tv / tp
        files = sum(1 for f in cases[v].out.rglob("*") if f.is_file())
        table.add(count(n), count(files), secs(tv), secs(tp), f"**{ratio:.2f}**",
                  mib(median(r.maxrss_kib for r in results[v])), mib(median(r.maxrss_kib for r in results[p])))
        if n == TARGET_VLANS:
            met = ratio <= TARGET_RATIO
    report.table("Wall time", table)
    report.text(f"Target (ratio ≤ {TARGET_RATIO} at {TARGET_VLANS:,} VLANs): "
                + ("not measured at these sizes" if met is None else ("met" if met else "**missed**")) + ".")
    report.target_met = met
    return report


def _measure(case: Case, opts: Options):
    if case.out.exists():
        shutil.rmtree(case.out)
    return expect_ok(run_timed(case.argv, env=opts.env), f"{case.tool} at {case.n}", quiet=False)


def _validate(case: Case) -> None:
    """Both tools must have written one .netdev per bond and VLAN and a .network per device."""
    netdevs = [f for f in case.out.rglob("*.netdev")]
    networks = [f for f in case.out.rglob("*.network")]
    groups = len(_groups(case.n))
    want_netdevs, want_networks = case.n + groups, case.n + 3 * groups
    if len(netdevs) != want_netdevs or len(networks) != want_networks:
        raise BenchError(f"{case.tool} at {case.n} VLANs wrote {len(netdevs)} .netdev and {len(networks)} "
                         f".network files; expected {want_netdevs} and {want_networks}")
