"""`check`: how long `vnetc check FILE` takes on large sites.

Target (issue): parsing and checking a site of 4,000 devices, written flat and
with `for`, takes at most 0.5 s of wall time, start-up included.

1. wall time of the whole process `vnetc check FILE` (start-up included), for
   trunk sites written flat and with `for` (bench/sites.py) at each size, and
   the floors `python -c pass` and `vnetc --version`; median of alternating runs;
   peak RSS of the child (os.wait4);
2. the phases, timed inside a fresh process (bench/_phases.py): import, lark
   parser construction (and whether lark's cache hit), parse, expand, check, IR;
3. other shapes (veth, mixed) at the target size (full mode).

Every generated site is first checked: `vnetc check` exits 0 and prints
nothing, the flat and the loop site compile to the same IR, and the device
count is the one asked for.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import sites
from .harness import (BenchError, Options, Report, Run, Table, alternate, count, expect_ok, log, median,
                      mib, ms, run_timed, secs)

PHASES = Path(__file__).with_name("_phases.py")

NAME = "check"
DESCRIPTION = "wall time, phases and peak RSS of `vnetc check` on 100/1k/4k/16k-device sites (target: ≤ 0.5 s at 4k)"

TARGET_SECONDS = 0.5
TARGET_DEVICES = 4000
FORMS = ("trunk-flat", "trunk-loop")
OTHER_SHAPES = ("veth", "mixed")
FULL_SIZES = (100, 1000, 4000, 16000)
QUICK_SIZES = (1000,)
FULL_REPS = 5
QUICK_REPS = 1
QUICK_OTHER_SIZE = 200      # --quick: veth/mixed only validated and timed once, small


@dataclass(frozen=True)
class Case:
    site: sites.Site
    path: Path

    @property
    def key(self) -> str:
        return f"{self.site.label}@{self.site.devices}"


def run(opts: Options) -> Report:
    sizes = tuple(sorted(opts.sizes or (QUICK_SIZES if opts.quick else FULL_SIZES)))
    reps = opts.reps or (QUICK_REPS if opts.quick else FULL_REPS)
    other_size = QUICK_OTHER_SIZE if opts.quick else (TARGET_DEVICES if TARGET_DEVICES in sizes else max(sizes))
    workdir = Path(tempfile.mkdtemp(prefix="check-", dir=opts.workdir))
    try:
        return _run(opts, sizes, reps, other_size, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(opts: Options, sizes: tuple[int, ...], reps: int, other_size: int, workdir: Path) -> Report:
    vnetc = opts.vnetc

    # --- the sites, and that they are what they claim --------------------------------
    cases = [_write(sites.generate(form, n), workdir) for n in sizes for form in FORMS]
    others = [_write(sites.generate(shape, other_size), workdir) for shape in OTHER_SHAPES]
    log(f"check: {len(cases) + len(others)} sites in {workdir}; validating")
    for case in cases + others:
        expect_ok(run_timed([vnetc, "check", str(case.path)], env=opts.env), f"site {case.key} does not compile")
    _same_ir(opts, workdir)

    # --- 1. wall time, alternating ---------------------------------------------------------
    floors = [("`python -c pass`", [opts.python, "-c", "pass"]), ("`vnetc --version`", [vnetc, "--version"])]
    timed: list[object] = [*cases, *others, *floors]

    def measure(item: object) -> Run:
        if isinstance(item, Case):
            return expect_ok(run_timed([vnetc, "check", str(item.path)], env=opts.env), f"vnetc check {item.key}")
        return expect_ok(run_timed(item[1], env=opts.env), item[0], quiet=False)  # type: ignore[index]

    log(f"check: wall time, {reps} alternating rounds of {len(timed)} runs")
    walls = alternate(timed, reps, measure, lambda m: log(f"check: wall {m}"))

    # --- 2. phases in a fresh process, alternating -------------------------------------
    phase_cases = cases + others

    def phases(case: Case) -> tuple[dict, Run]:
        r = expect_ok(run_timed([opts.python, str(PHASES), str(case.path)], env=opts.env), f"phases of {case.key}")
        data = json.loads(r.stdout)
        if data["devices"] != case.site.devices:
            raise BenchError(f"site {case.key} compiles to {data['devices']} devices, not {case.site.devices}")
        return data, r

    log(f"check: phases, {reps} alternating rounds of {len(phase_cases)} runs")
    split = alternate(phase_cases, reps, phases, lambda m: log(f"check: phases {m}"))

    # --- the report ---------------------------------------------------------------------
    report = Report(NAME, "check: `vnetc check FILE` on large sites")
    report.text(f"Median of {reps} alternating run{'s' if reps != 1 else ''} per row"
                f"{' (--quick: indicative only)' if opts.quick else ''}. "
                f"Wall time of the whole process, start-up included (fork to reap); "
                f"CPU = user + sys of the process (well below the wall time: the machine was busy "
                f"with other work); peak RSS is the child's `ru_maxrss` (os.wait4). Sites: bench/sites.py "
                f"(trunk: groups of 2 NICs, an 802.3ad bond, a bridge and 996 VLANs with one address each; "
                f"flat = every statement written out, loop = the same site with `for` and `${{…}}` arithmetic; "
                f"both compile to the same IR). Environment: {opts.env_note}.")

    wall_table = Table(["site", "devices", "lines", "KiB", "median s", "min s", "max s", "CPU s",
                        "peak RSS MiB", f"≤ {TARGET_SECONDS} s"])
    for i, item in enumerate(timed):
        runs: list[Run] = walls[i]
        med = median(r.wall for r in runs)
        if isinstance(item, Case):
            s = item.site
            label, devices, lines, kib = _pretty(s.label), count(s.devices), count(s.lines), f"{len(s.text) / 1024:.0f}"
            ok = "yes" if med <= TARGET_SECONDS else "**no**"
        else:
            label, devices, lines, kib, ok = item[0], "–", "–", "–", ""  # type: ignore[index]
        wall_table.add(label, devices, lines, kib, secs(med), secs(min(r.wall for r in runs)),
                       secs(max(r.wall for r in runs)), secs(median(r.user + r.sys for r in runs), 2),
                       mib(median(r.maxrss_kib for r in runs)), ok)
    report.table("Wall time of `vnetc check FILE`", wall_table)

    phase_table = Table(["site", "devices", "start-up¹", "import", "lark²", "parse", "expand", "check", "IR",
                         "in-process", "wall"])
    caches: set[str] = set()
    for i, case in enumerate(phase_cases):
        data = [d for d, _ in split[i]]
        caches.update(d["lark_cache"] for d in data)

        def m(key: str) -> float | None:
            values = [d[key] for d in data if d.get(key) is not None]
            return median(values) if values else None

        wall = median(r.wall for _, r in split[i])
        inproc = m("since_main")
        phase_table.add(_pretty(case.site.label), count(case.site.devices),
                        ms(wall - inproc if inproc is not None else None),
                        ms(m("import")), ms(m("lark")), ms(m("parse")), ms(m("expand")), ms(m("check")),
                        ms(m("ir")), ms(inproc), ms(wall))
    report.table("Phases (ms, median), each in a fresh `python bench/_phases.py FILE` process, which calls "
                 "the phases one by one (with the garbage collector off, as compile_file does)", phase_table)
    report.text("¹ interpreter start-up (with site and .pth files): the process's wall time less the time "
                "measured inside it, from the first line of bench/_phases.py.  \n"
                f"² `parser._lark()`, building the lark parser; lark's grammar cache: "
                f"{' / '.join(sorted(caches))} in these runs (`hit`: loaded from "
                f"$TMPDIR/.lark_cache_*; `miss`: built and saved; `off`: cache=False; `unused`: "
                f"vnetc did not import lark).")

    # --- the target ------------------------------------------------------------------------
    at_target = [(c, median(r.wall for r in walls[i])) for i, c in enumerate(timed)
                 if isinstance(c, Case) and c.site.devices == TARGET_DEVICES and c.site.shape == "trunk"]
    if at_target:
        met = all(w <= TARGET_SECONDS for _, w in at_target)
        report.target_met = met
        figures = ", ".join(f"{_pretty(c.site.label)} {w:.3f} s" for c, w in at_target)
        report.text(f"**Target: ≤ {TARGET_SECONDS} s wall at {TARGET_DEVICES:,} devices, flat and loop — "
                    f"{'met' if met else 'NOT met'}** ({figures}).")
    else:
        report.text(f"Target (≤ {TARGET_SECONDS} s wall at {TARGET_DEVICES:,} devices): not measured at these sizes "
                    f"(run without --quick, or with --sizes {TARGET_DEVICES}).")
    return report


def _write(site: sites.Site, workdir: Path) -> Case:
    path = workdir / f"{site.label}-{site.devices}.vnet"
    path.write_text(site.text, encoding="utf-8")
    return Case(site, path)


def _pretty(label: str) -> str:
    return {"trunk-flat": "trunk, flat", "trunk-loop": "trunk, for"}.get(label, label)


def _same_ir(opts: Options, workdir: Path, n: int = 1003) -> None:
    """The flat and the loop form of the trunk site are one site (compiled by opts.python).

    1,003 devices: one full group, a last full group shortened to leave room, and a
    group of one VLAN, which the loop form writes outside its loop."""
    flat, loop = _write(sites.trunk_flat(n), workdir), _write(sites.trunk_loop(n), workdir)
    r = run_timed([opts.python, str(PHASES), "--same-ir", str(flat.path), str(loop.path)],
                  env=opts.env)
    if r.returncode != 0 or r.stdout.strip() != str(n):
        raise BenchError(f"the flat and the loop trunk sites of {n} devices do not compile to one IR "
                         f"of {n} devices (exit {r.returncode}):\n{(r.stderr or r.stdout).strip()[-2000:]}")
