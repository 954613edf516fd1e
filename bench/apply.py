"""`apply`: `vnetc apply` / re-apply / `destroy` against `ip -batch`, side by side in one run.

Targets (issue 7), on N veth pairs each enslaved to its own bridge (N = 1,000):
- apply into a fresh namespace: ≤ 1.0× the wall time of `ip -batch` building the same links;
- a no-change re-apply: ≤ 0.3 s;
- destroy: ≥ 20× faster than `ip -batch` deleting the links one by one.

`ip -batch` is measured twice: "links" creates the links as the issue measured them (down, no
alias); "same state" also brings them up and sets the alias and link group vnetc sets, which
is the state `vnetc apply` leaves. Every command is a whole process (vnetc's start-up and the
compilation of the site included) in a fresh namespace made, untimed, before it; its result is
checked (link count) before it counts. Re-apply and destroy start from `vnetc apply`'s result once
IPv6 duplicate address detection is over.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

from .harness import BenchError, Options, Report, Table, alternate, count, expect_ok, log, median, run_timed, secs

NAME = "apply"
DESCRIPTION = "vnetc apply/re-apply/destroy vs ip -batch on 1k veth pairs + 1k bridges (targets: ≤1.0×, ≤0.3 s, ≥20×)"
FULL_SIZES = (1000,)
QUICK_SIZES = (100,)
TARGET_CREATE, TARGET_REAPPLY, TARGET_DESTROY = 1.0, 0.3, 20.0
NS = "vnetc-bench-apply"


def vnet_site(n: int) -> str:
    return f"for i in 1..{n} {{\n    bridge br${{i}}\n    veth ve${{i}} {{ master br${{i}}; peer vp${{i}} }}\n}}\n"


def ip_create(n: int, same_state: bool) -> str:
    lines = []
    for i in range(1, n + 1):
        lines += [f"link add br{i} type bridge", f"link add ve{i} master br{i} type veth peer name vp{i}"]
        if same_state:
            lines += [f"link set {name} up group 7 alias vnetc:bench" for name in (f"br{i}", f"ve{i}", f"vp{i}")]
    return "\n".join(lines) + "\n"


def ip_delete(n: int) -> str:
    return "".join(f"link del ve{i}\nlink del br{i}\n" for i in range(1, n + 1))


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _fresh(populate: list[str] | None = None) -> None:
    _sh("ip", "netns", "delete", NS, check=False)
    _sh("ip", "netns", "add", NS)
    if populate:
        _sh(*populate)


def _settle(timeout: float = 60.0) -> None:
    """Wait until IPv6 duplicate address detection is over (no tentative address): until then
    every address dump is interrupted by changes, which is the kernel settling, not the re-apply."""
    deadline = time.monotonic() + timeout
    while _sh("ip", "-n", NS, "-6", "addr", "show", "tentative").stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.2)


def _links(ns: str = NS) -> int:
    return len(json.loads(_sh("ip", "-n", ns, "-j", "link", "show").stdout)) - 1   # without lo


@dataclass
class Case:
    label: str
    n: int
    argv: list[str]
    setup: list[str] | None      # a command building the starting state (untimed)
    links_after: int


def run(opts: Options) -> Report:
    if _sh("id", "-u").stdout.strip() != "0":
        raise BenchError("the apply benchmark needs root (network namespaces)")
    sizes = tuple(sorted(opts.sizes or (QUICK_SIZES if opts.quick else FULL_SIZES)))
    reps = opts.reps or (1 if opts.quick else 3)
    cases: list[Case] = []
    for n in sizes:
        work = opts.workdir / f"apply-{n}"
        work.mkdir(parents=True, exist_ok=True)
        site = work / "site.vnet"
        site.write_text(vnet_site(n), encoding="utf-8")
        links_file, state_file, delete_file = work / "links.ip", work / "state.ip", work / "delete.ip"
        links_file.write_text(ip_create(n, False))
        state_file.write_text(ip_create(n, True))
        delete_file.write_text(ip_delete(n))
        apply = [opts.vnetc, "apply", str(site), "--netns", NS, "--yes"]
        built = apply                 # the state every re-apply and destroy starts from
        cases += [
            Case("ip -batch: create (links)", n, ["ip", "-n", NS, "-batch", str(links_file)], None, 3 * n),
            Case("ip -batch: create (same state)", n, ["ip", "-n", NS, "-batch", str(state_file)], None, 3 * n),
            Case("vnetc apply", n, apply, None, 3 * n),
            Case("vnetc apply (no change)", n, apply, built, 3 * n),
            Case("ip -batch: delete one by one", n, ["ip", "-n", NS, "-batch", str(delete_file)], built, 0),
            Case("vnetc destroy", n, [opts.vnetc, "destroy", str(site), "--netns", NS, "--yes"], built, 0),
        ]
    log(f"{NAME}: {len(cases)} cases, {reps} rounds")
    try:
        results = alternate(cases, reps, lambda c: _measure(c, opts), progress=lambda m: log(f"{NAME}: {m}"))
    finally:
        _sh("ip", "netns", "delete", NS, check=False)

    report = Report(NAME, "apply: `vnetc apply`/`destroy` vs `ip -batch`")
    report.text(f"Median of {reps} alternating run{'s' if reps > 1 else ''} per row"
                f"{' (--quick: indicative only)' if opts.quick else ''}. Whole processes (start-up and "
                f"compilation included), each in a fresh namespace. Site: N bridges, each with one veth "
                f"port whose peer stays in the namespace (3·N links).")
    table = Table(["N", "command", "wall s", "links after"])
    met: list[bool] = []
    for n in sizes:
        wall = {c.label: median(r.wall for r in results[i]) for i, c in enumerate(cases) if c.n == n}
        for label, seconds in wall.items():
            table.add(count(n), label, secs(seconds), count(next(c.links_after for c in cases
                                                                 if c.n == n and c.label == label)))
        create = wall["vnetc apply"] / wall["ip -batch: create (same state)"]
        create_links = wall["vnetc apply"] / wall["ip -batch: create (links)"]
        speedup = wall["ip -batch: delete one by one"] / wall["vnetc destroy"]
        report.text(f"N = {n:,}: apply ÷ ip -batch = **{create:.2f}** (same state), {create_links:.2f} (links "
                    f"only); no-change re-apply **{wall['vnetc apply (no change)']:.3f} s**; destroy "
                    f"**{speedup:.1f}×** faster than deleting one by one.")
        if n == 1000:
            met += [create <= TARGET_CREATE, wall["vnetc apply (no change)"] <= TARGET_REAPPLY,
                    speedup >= TARGET_DESTROY]
    report.table("Wall time", table)
    report.target_met = all(met) if met else None
    return report


def _measure(case: Case, opts: Options):
    _fresh()
    if case.setup is not None:
        expect_ok(run_timed(case.setup, env=opts.env), f"setup of {case.label}", quiet=False)
        _settle()
    result = expect_ok(run_timed(case.argv, env=opts.env), f"{case.label} at {case.n}", quiet=False)
    found = _links()
    if found != case.links_after:
        raise BenchError(f"{case.label} at {case.n} left {found} links; expected {case.links_after}")
    return result
