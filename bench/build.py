"""`build`: `vnetc check` and `vnetc build -t TARGET` for every target, against `netplan generate`.

Targets: networkd issue: on 4,000 VLANs with one address each (the ``vlan``
site), `vnetc build -t networkd` is no slower than `netplan generate` on the
equivalent YAML (ratio ≤ 1.0). Benchmark issue: build time grows at most
linearly in the number of devices (growth exponent ≤ 1 between the two largest
sizes); 16,000 devices build in under 2 s with under 300 MiB peak RSS.

Every site of bench/sites.py (trunk flat and with `for`, veth, mixed, vlan) at
every size; commands: `vnetc check`, `vnetc build -t T` for every T in
vnetc.backends.TARGET_MODULES (a target that lands there is measured without a
change here), and the reference `netplan generate --root-dir` on the YAML that
`vnetc build -t netplan` writes for the same site (netplan-valid by the netplan
target's tests). The YAML is the equivalent of the site where netplan 0.106 can
express every device (trunk, vlan: "full" coverage); where it cannot (veth,
mixed: veth, tap, macvlan… go to vnetc's residual) netplan does less work, and
no ratio is given.

Fairness: every timed run, of either tool, writes into a new, empty directory
that nothing else uses. By default these live on tmpfs (/dev/shm), so what is
measured is the tools' own work (CPU and file system calls), not the disk: on
this machine's ext4 (mounted with `discard`) creating files right after deleting
many is several times slower, and that would depend on what ran before.
`--outputs DIR` puts them on DIR's file system instead; then nothing is deleted
until the benchmark ends (the discard storm hits nothing timed).

Before timing, every command runs once (untimed; with --quick, the one timed
round is also the check): it must exit 0, `check` must print nothing, every
build must write files, and netplan must write one `.network` per device it
covers (which tells how much of the site netplan expresses).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import sites
from .harness import (BenchError, Options, Report, Run, Table, alternate, count, expect_ok, log, median, mib,
                      run_timed, secs)

NAME = "build"
DESCRIPTION = ("vnetc check and build -t T (every target) vs netplan generate, every site shape, "
               "100/1k/4k/16k devices (targets: ratio ≤ 1.0 at 4k VLANs; linear; 16k < 2 s, < 300 MiB)")

NETPLAN = "/usr/sbin/netplan"
SHAPES = ("trunk-flat", "trunk-loop", "veth", "mixed", "vlan")
FULL_SIZES = (100, 1000, 4000, 16000)
QUICK_SIZES = (100,)
QUICK_SHAPES = ("vlan", "mixed")
FULL_REPS = 5

RATIO_TARGET = 1.0          # networkd issue: build -t networkd ÷ netplan generate on the vlan site at 4,000
RATIO_SHAPE, RATIO_SIZE = "vlan", 4000
LARGE = 16000               # benchmark issue: builds at this size
LARGE_SECONDS = 2.0
LARGE_MIB = 300
GROWTH_LIMIT = 1.0          # exponent of time in devices between the two largest sizes (1: linear)
GROWTH_SLACK = 0.1          # noise allowance on a loaded machine before "worse than linear" is reported


@dataclass
class Case:
    """One command on one site."""

    site: sites.Site
    command: str                # "check", "build networkd", …, "netplan generate"
    argv: list[str]             # with {out} for the fresh output directory
    netplan_yaml: Path | None = None   # netplan: copied into each fresh root
    runs: list[Run] = field(default_factory=list)

    @property
    def vnetc(self) -> bool:
        return self.command != "netplan generate"


@dataclass
class SiteInfo:
    site: sites.Site
    path: Path
    covered: int = 0            # devices netplan configures (a .network each), from the untimed run

    @property
    def full(self) -> bool:
        return self.covered == self.site.devices


class Outputs:
    """Fresh output directories for timed runs (see the module docstring)."""

    def __init__(self, root: Path, tmpfs: bool):
        self.root, self.tmpfs, self.n = root, tmpfs, 0
        root.mkdir(parents=True, exist_ok=True)

    def fresh(self) -> Path:
        self.n += 1
        return self.root / f"run-{self.n}"

    def done(self, path: Path) -> None:
        if self.tmpfs:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def default_outputs(opts: Options) -> tuple[Path, bool]:
    """tmpfs when the machine has /dev/shm, else the work directory."""
    if opts.outputs is not None:
        return opts.outputs / f"vnetc-bench-out-{os.getpid()}", _is_tmpfs(opts.outputs)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and _is_tmpfs(shm):
        return shm / f"vnetc-bench-out-{os.getpid()}", True
    return opts.workdir / "outputs", _is_tmpfs(opts.workdir)


def _is_tmpfs(path: Path) -> bool:
    return fs_type(path) == "tmpfs"


def fs_type(path: Path) -> str:
    """The file system type of the mount holding `path` (from /proc/self/mounts), or "?"."""
    best, kind = "", "?"
    try:
        real = os.path.realpath(path)
        with open("/proc/self/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")) \
                        and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def targets() -> list[str]:
    from vnetc.backends import TARGET_MODULES

    return sorted(TARGET_MODULES)


def run(opts: Options) -> Report:
    if not Path(NETPLAN).exists():
        raise BenchError(f"{NETPLAN} is missing: apt-get install netplan.io")
    sizes = tuple(sorted(opts.sizes or (QUICK_SIZES if opts.quick else FULL_SIZES)))
    shapes = opts.shapes or (QUICK_SHAPES if opts.quick else SHAPES)
    reps = opts.reps or (1 if opts.quick else FULL_REPS)
    names = targets()
    root, tmpfs = default_outputs(opts)
    outputs = Outputs(root, tmpfs)
    try:
        infos, cases = _prepare(opts, shapes, sizes, names)
        if not opts.quick:          # untimed: fills caches (--quick: the one timed round does it)
            for case in cases:
                _, out = _measure(case, opts, outputs)
                _validate(case, out, infos)
                outputs.done(out)
        log(f"{NAME}: {len(cases)} commands on {len(infos)} sites, {reps} alternating rounds "
            f"(outputs on {fs_type(root)}: {root})")

        def measure(case: Case) -> None:
            r, out = _measure(case, opts, outputs)
            if opts.quick and not case.runs:
                _validate(case, out, infos)
            outputs.done(out)
            case.runs.append(r)

        alternate(cases, reps, measure, progress=lambda m: log(f"{NAME}: {m}"))
    finally:
        outputs.close()
    return _report(opts, infos, cases, names, sizes, reps, root)


def _prepare(opts: Options, shapes: tuple[str, ...], sizes: tuple[int, ...],
             names: list[str]) -> tuple[list[SiteInfo], list[Case]]:
    work = opts.workdir / NAME
    work.mkdir(parents=True, exist_ok=True)
    infos, cases = [], []
    for n in sizes:
        for shape in shapes:
            site = sites.generate(shape, n)
            path = work / f"{site.label}-{n}.vnet"
            path.write_text(site.text, encoding="utf-8")
            infos.append(SiteInfo(site, path))
            cases.append(Case(site, "check", [opts.vnetc, "check", str(path)]))
            cases += [Case(site, f"build {t}", [opts.vnetc, "build", str(path), "-t", t, "-o", "{out}"])
                      for t in names]
            cases.append(Case(site, "netplan generate", [NETPLAN, "generate", "--root-dir", "{out}"],
                              _netplan_yaml(opts, site, path, work)))
    return infos, cases


def _netplan_yaml(opts: Options, site: sites.Site, path: Path, work: Path) -> Path:
    """The YAML vnetc's netplan target writes for the site (netplan's input)."""
    out = work / f"{site.label}-{site.devices}.netplan"
    expect_ok(run_timed([opts.vnetc, "build", str(path), "-t", "netplan", "-o", str(out)], env=opts.env),
              f"vnetc build -t netplan of {site.label} at {site.devices}", quiet=False)
    yaml = out / "netplan" / "90-vnetc.yaml"
    if not yaml.is_file():
        raise BenchError(f"vnetc build -t netplan wrote no {yaml}")
    return yaml


def _measure(case: Case, opts: Options, outputs: Outputs) -> tuple[Run, Path]:
    """One timed run into a fresh directory (returned: the caller looks at it or drops it)."""
    out = outputs.fresh()
    if case.netplan_yaml is not None:
        (out / "etc/netplan").mkdir(parents=True)
        target = out / "etc/netplan" / case.netplan_yaml.name
        shutil.copyfile(case.netplan_yaml, target)
        target.chmod(0o600)
    argv = [a.replace("{out}", str(out)) for a in case.argv]
    r = expect_ok(run_timed(argv, env=opts.env if case.vnetc else None),
                  f"{case.command} on {case.site.label} at {case.site.devices}", quiet=case.command == "check")
    return r, out


def _validate(case: Case, out: Path, infos: list[SiteInfo]) -> None:
    what = f"{case.command} on {case.site.label} at {case.site.devices}"
    if case.command.startswith("build"):
        if not any(f.is_file() for f in out.rglob("*") if not f.name.startswith(".vnetc-")):
            raise BenchError(f"{what} wrote no files")
    elif case.command == "netplan generate":
        covered = sum(1 for _ in (out / "run/systemd/network").glob("*.network"))
        if not covered:
            raise BenchError(f"{what} wrote no .network file")
        next(i for i in infos if i.site is case.site).covered = covered


# --- the report -----------------------------------------------------------------------------

def _report(opts: Options, infos: list[SiteInfo], cases: list[Case], names: list[str], sizes: tuple[int, ...],
            reps: int, root: Path) -> Report:
    commands = ["check", *(f"build {t}" for t in names)]
    by = {(c.site.label, c.site.devices, c.command): c for c in cases}
    report = Report(NAME, "build: `vnetc check` and `vnetc build -t TARGET` vs `netplan generate`")
    report.text(
        f"Median of {reps} alternating run{'s' if reps != 1 else ''} per cell"
        f"{' (--quick: indicative only)' if opts.quick else ''}; whole processes, start-up included; "
        f"ratio = vnetc ÷ `netplan generate` on the YAML `vnetc build -t netplan` writes for the same site "
        f"(given only where that YAML covers every device). Every run writes into a new empty directory on "
        f"{fs_type(root)} ({root.parent}). Peak RSS: the child's `ru_maxrss`. Sites: bench/sites.py "
        f"(vlan: N counts VLANs).")
    report.data = {"commands": [*commands, "netplan generate"], "series": {}}

    table = Table(["site", "devices", "netplan s", *(f"{c} s (ratio)" for c in commands)])
    cpu = Table(["site", "devices", "netplan s", *(f"{c} s (ratio)" for c in commands)])
    rss = Table(["site", "devices", *commands, "netplan generate"])
    for info in infos:
        s = info.site
        for out, measure in ((table, lambda r: r.wall), (cpu, lambda r: r.user + r.sys)):
            tref = median(measure(r) for r in by[(s.label, s.devices, "netplan generate")].runs)
            cells = []
            for command in commands:
                t = median(measure(r) for r in by[(s.label, s.devices, command)].runs)
                cells.append(f"{secs(t)} ({t / tref:.2f})" if info.full else f"{secs(t)} (–)")
            out.add(s.pretty, count(s.devices), secs(tref) + ("" if info.full else "†"), *cells)
        rss.add(s.pretty, count(s.devices),
                *(mib(median(r.maxrss_kib for r in by[(s.label, s.devices, c)].runs)) for c in [*commands,
                                                                                          "netplan generate"]))
        for command in [*commands, "netplan generate"]:
            case = by[(s.label, s.devices, command)]
            report.data["series"].setdefault(command, {}).setdefault(s.pretty, []).append(
                (s.devices, median(r.wall for r in case.runs)))
    report.table("Wall time, median s (ratio vnetc ÷ netplan)", table)
    partial = [i for i in infos if not i.full]
    if partial:
        report.text("† netplan 0.106 cannot express every device of this site, so it does less work than vnetc "
                    "and no ratio is given (devices netplan configures: " +
                    "; ".join(f"{i.site.pretty} {i.covered:,} of {i.site.devices:,}" for i in partial) + ").")
    report.table("CPU time (user + sys of the process and what it waited for), median s (ratio): less "
                 "moved than wall time by the machine's other work", cpu)
    report.table("Peak RSS, MiB", rss)

    growth = _growth(report, infos, by, [*commands, "netplan generate"], sizes)
    report.text(_targets(report, infos, by, names, sizes, growth))
    return report


def _growth(report: Report, infos: list[SiteInfo], by: dict, commands: list[str],
            sizes: tuple[int, ...]) -> dict[tuple[str, str], float]:
    """Exponent k of CPU time ∝ devices^k between consecutive sizes, per site shape and command
    (CPU time, user + sys, of the process: the machine's other work moves it less than wall time)."""
    found: dict[tuple[str, str], float] = {}
    if len(sizes) < 2:
        return found
    steps = list(zip(sizes, sizes[1:]))
    table = Table(["site", "command", *(f"{a:,} → {b:,}" for a, b in steps)])
    labels = list(dict.fromkeys(i.site.label for i in infos))
    for label in labels:
        of = {i.site.devices: i.site for i in infos if i.site.label == label}
        ordered = sorted(of)
        for command in commands:
            cells = []
            for a, b in zip(ordered, ordered[1:]):
                ta = median(r.user + r.sys for r in by[(label, a, command)].runs)
                tb = median(r.user + r.sys for r in by[(label, b, command)].runs)
                k = math.log(tb / ta) / math.log(b / a)
                found[(label, command)] = k      # the last step: between the two largest sizes
                cells.append(f"{k:.2f}" if k <= GROWTH_LIMIT + GROWTH_SLACK else f"**{k:.2f}**")
            table.add(of[ordered[0]].pretty, command, *cells)
    report.table("Growth: exponent k in CPU time ∝ devices^k between sizes (1 = linear; the start-up makes "
                 "it smaller at small sizes; **bold**: worse than linear)", table)
    return found


def _targets(report: Report, infos: list[SiteInfo], by: dict, names: list[str], sizes: tuple[int, ...],
             growth: dict[tuple[str, str], float]) -> str:
    lines, verdicts = [], []
    if RATIO_SIZE in sizes and any(i.site.label == RATIO_SHAPE for i in infos):
        site = next(i.site for i in infos if i.site.label == RATIO_SHAPE and i.site.devices - 3 == RATIO_SIZE)
        t = median(r.wall for r in by[(site.label, site.devices, "build networkd")].runs)
        ref = median(r.wall for r in by[(site.label, site.devices, "netplan generate")].runs)
        ok = t / ref <= RATIO_TARGET
        verdicts.append(ok)
        lines.append(f"- networkd issue: `build -t networkd` on {RATIO_SIZE:,} VLANs ÷ `netplan generate` = "
                     f"{t / ref:.2f} ({t:.3f} s ÷ {ref:.3f} s), target ≤ {RATIO_TARGET}: "
                     f"{'met' if ok else '**missed**'}")
    if len(sizes) >= 2:
        worse = sorted(f"{label} {command} ({k:.2f})" for (label, command), k in growth.items()
                       if command.startswith("build") and k > GROWTH_LIMIT + GROWTH_SLACK)
        verdicts.append(not worse)
        lines.append(f"- builds grow at most linearly between {sizes[-2]:,} and {sizes[-1]:,} devices "
                     f"(k ≤ {GROWTH_LIMIT} + {GROWTH_SLACK} noise): "
                     + ("met" if not worse else "**missed**: " + ", ".join(worse)))
    if LARGE in sizes:
        slow = []
        for info in infos:
            if info.site.devices < LARGE:
                continue
            for t in names:
                case = by[(info.site.label, info.site.devices, f"build {t}")]
                wall = median(r.wall for r in case.runs)
                peak = median(r.maxrss_kib for r in case.runs) / 1024
                if wall >= LARGE_SECONDS or peak >= LARGE_MIB:
                    slow.append(f"{info.site.pretty} -t {t} ({wall:.2f} s, {peak:.0f} MiB)")
        verdicts.append(not slow)
        lines.append(f"- every build of {LARGE:,} devices under {LARGE_SECONDS} s and {LARGE_MIB} MiB: "
                     + ("met" if not slow else f"**missed** by {len(slow)}: " + "; ".join(slow)))
    report.target_met = all(verdicts) if verdicts else None
    return "**Targets**\n\n" + ("\n".join(lines) if lines else "none measured at these sizes")
