"""`apply`: `vnetc apply` / re-apply / `destroy` against `ip -batch` and systemd-networkd, in one run.

Targets (issue 7), on N veth pairs each enslaved to its own bridge (N = 1,000):
- apply into a fresh namespace: ≤ 1.0× the wall time of `ip -batch` building the same links;
- a no-change re-apply: ≤ 0.3 s;
- destroy: ≥ 20× faster than `ip -batch` deleting the links one by one. The issue measured its
  reference on 1,000 veth pairs without bridges (17 s one by one), so destroy is also timed on
  that site ("veth pairs alone"); the verdict is taken on the site with bridges.

`ip -batch` is measured twice: "links" creates the links as the issue measured them (down, no
alias); "same state" also brings them up and sets the alias and link group vnetc sets, which
is the state `vnetc apply` leaves. Every command is a whole process (vnetc's start-up and the
compilation of the site included) in a fresh namespace made, untimed, before it; its result is
checked (link count) before it counts. Re-apply and destroy start from `vnetc apply`'s result once
IPv6 duplicate address detection is over.

systemd-networkd (issue 8) creates the same links from the files `vnetc build -t networkd`
writes for the site, run unmodified in the tests' sandbox (bench/_networkd.py). Its rows are
timed from networkd's start, with the sandbox already in place (not a process's life: networkd
does not exit): "links in state" ends when the kernel's link notifications show every link up
and enslaved as the site says, "configured" when networkd's state files say every link is
configured. "restart" is networkd started again on the same files with the links present (as
after `systemctl restart systemd-networkd`), to every link configured. networkd has no destroy:
it never deletes a netdev (not when it stops, not when a .netdev file goes away); that row says
so instead of a number.

The kernel floor of destroy is one `ip link delete group 7`: a single RTM_DELLINK for a link
group that holds exactly the site's links (built by the "same state" batch: vnetc's own group
number is above 2^31, which `ip` does not take), the request `vnetc destroy` sends for its
group. It is also measured on N bridges alone (no ports) and on N veth pairs alone (no bridges),
and the kernel stack of the deleting process is sampled (/proc/PID/stack) during one group
delete of the site.

Every measurement starts in a new namespace; the previous one is emptied first by a single
group delete, untimed (_clear): `ip netns delete` alone leaves its links to a kernel worker that
holds RTNL ~16 ms per bridge, and the next timed command waits for it (creating the site right
after deleting two such namespaces took 18.7 s instead of 1.9 s).

Finding (kernel 6.18.44, HZ=250, PREEMPT_DYNAMIC, TREE_RCU with RCU_LAZY; bench/results/apply.md,
N = 1,000): the destroy target cannot be met by any program on this kernel. `vnetc destroy`
(18.2 s) sends the kernel floor's one request and takes 1.05× its time (17.3 s; the rest is
start-up, compilation and the dump); deleting one by one takes 71.1 s, so the best possible
is 4.1×. The floor is the bridges: 1,000 bridges alone take 16.2 s (16.2 ms each, ~4 jiffies),
1,000 veth pairs alone 0.27 s (down; 0.84 s up, as vnetc leaves them); and 100 % of the kernel
stack samples of the group delete are in rcu_barrier() called from br_multicast_dev_del() ←
br_dev_uninit(), the bridge's ndo_uninit, which unregister_netdevice_many() calls once per
device, under RTNL. So the previous analysis
holds: a group delete batches the rest of the teardown, not this wait. rcu_barrier() waits
until every RCU callback queued on any CPU has run (a grace period, after flushing the lazy
ones), and each bridge's teardown queues new ones, so every bridge waits a full grace period.
Without bridges (the case the issue measured its reference on) the target is met: 1,000 veth
pairs, up, deleted one by one 25.2 s, by `vnetc destroy` 1.21 s: 20.9× (run of baed783).

systemd-networkd (252) at that size: every link up and enslaved after 14.0 s, all configured
after 39.1 s, against 2.8 s for `vnetc apply`; restarted on its links, all configured after
26.8 s (vnetc's no-change re-apply: 0.53 s). It does not stay there: ~135 links a run (~300 in
an earlier full run) fail within the next 30 s, "Failed to sync link information: Connection
timed out" (replies to its own netlink requests that did not come within sd-netlink's 25 s).
In that earlier run a restart reached "all configured" in only 1 of 3 runs, after logging
"netdev could not be created: Connection timed out" for the netdevs that were there already.
Stopping it takes another minute (one RCU grace period per link, closing each link's packet
socket).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import _networkd
from .harness import BenchError, Options, Report, Table, alternate, count, expect_ok, log, median, run_timed, secs

NAME = "apply"
DESCRIPTION = ("vnetc apply/re-apply/destroy vs ip -batch and systemd-networkd on 1k veth pairs + 1k bridges, "
               "with the kernel's floor (targets: ≤1.0×, ≤0.3 s, ≥20×)")
FULL_SIZES = (1000,)
QUICK_SIZES = (100,)
TARGET_CREATE, TARGET_REAPPLY, TARGET_DESTROY = 1.0, 0.3, 20.0
NS = "vnetc-bench-apply"
GROUP = 7                    # the link group of the ip -batch "same state" links and of the floor's setups
SWEEP = 9                    # the link group every link is moved to before a namespace is cleared
NETWORKD_TIMEOUT = 600.0     # seconds networkd may take for the site before the run is void
NETWORKD_LINGER = 30.0       # seconds networkd is watched on after it is done: its request timeout is 25 s
QUICK_SKIPS_NETWORKD = ("not under --quick, which must take seconds: networkd takes seconds per run even at "
                        "N = 100, to configure the links and again to stop (tests/test_bench.py runs this "
                        "column's machinery on a small site instead)")

# The rows of the table, in order, with what each one times.
IP_LINKS, IP_STATE, APPLY = "ip -batch: create (links)", "ip -batch: create (same state)", "vnetc apply"
ND_LINKS, ND_CONFIGURED = "systemd-networkd: create, links in state", "systemd-networkd: create, configured"
REAPPLY, ND_RESTART = "vnetc apply (no change)", "systemd-networkd: restart (no change), configured"
IP_DELETE, DESTROY, ND_DESTROY = "ip -batch: delete one by one", "vnetc destroy", "systemd-networkd: destroy"
# destroy on the case the issue measured its reference on: N veth pairs, no bridges
IP_DELETE_VETHS, DESTROY_VETHS = "veth pairs alone: ip -batch, delete one by one", "veth pairs alone: vnetc destroy"
FLOOR, FLOOR_BRIDGES, FLOOR_VETHS = ("kernel floor: ip link delete group", "kernel floor: bridges alone",
                                     "kernel floor: veth pairs alone")
PROCESS = "process start → exit"
TIMED = {
    IP_LINKS: PROCESS, IP_STATE: PROCESS, APPLY: PROCESS,
    ND_LINKS: "networkd start → every link up, enslaved",
    ND_CONFIGURED: "networkd start → every link configured",
    REAPPLY: PROCESS,
    ND_RESTART: "networkd start → every link configured",
    IP_DELETE: PROCESS, DESTROY: PROCESS, IP_DELETE_VETHS: PROCESS, DESTROY_VETHS: PROCESS,
    FLOOR: PROCESS + " (one request)", FLOOR_BRIDGES: PROCESS + " (one request)",
    FLOOR_VETHS: PROCESS + " (one request)",
    ND_DESTROY: "none: networkd never deletes netdevs",
}


def vnet_site(n: int) -> str:
    return f"for i in 1..{n} {{\n    bridge br${{i}}\n    veth ve${{i}} {{ master br${{i}}; peer vp${{i}} }}\n}}\n"


def vnet_veths(n: int) -> str:
    return f"for i in 1..{n} {{\n    veth ve${{i}} {{ peer vp${{i}} }}\n}}\n"


def expected_links(n: int) -> dict[str, str | None]:
    """The site's links, each up, with its master (None: none)."""
    links: dict[str, str | None] = {}
    for i in range(1, n + 1):
        links.update({f"br{i}": None, f"ve{i}": f"br{i}", f"vp{i}": None})
    return links


def ip_create(n: int, same_state: bool) -> str:
    lines = []
    for i in range(1, n + 1):
        lines += [f"link add br{i} type bridge", f"link add ve{i} master br{i} type veth peer name vp{i}"]
        if same_state:
            lines += [f"link set {name} up group {GROUP} alias vnetc:bench" for name in (f"br{i}", f"ve{i}", f"vp{i}")]
    return "\n".join(lines) + "\n"


def ip_delete(n: int) -> str:
    return "".join(f"link del ve{i}\nlink del br{i}\n" for i in range(1, n + 1))


def ip_delete_veths(n: int) -> str:
    return "".join(f"link del ve{i}\n" for i in range(1, n + 1))


def ip_bridges(n: int) -> str:
    """N bridges, up (as vnetc leaves them: deleting an up link costs more than a down one)."""
    return "".join(f"link add br{i} group {GROUP} up type bridge\n" for i in range(1, n + 1))


def ip_veths(n: int) -> str:
    """N veth pairs, both ends up."""
    return "".join(f"link add ve{i} group {GROUP} up type veth peer name vp{i} group {GROUP}\n"
                   f"link set vp{i} up\n" for i in range(1, n + 1))


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _clear() -> None:
    """Delete NS, its links first, in one request and synchronously. `ip netns delete` alone
    leaves them to a kernel worker that holds RTNL while it frees them (~16 ms per bridge, see
    above): creating 3,000 links right after it was measured at 18.7 s instead of 1.9 s."""
    if NS not in _sh("ip", "netns", "list").stdout.split():
        return
    links = _link_list()
    if links:
        batch = "".join(f"link set dev {link['ifname']} group {SWEEP}\n" for link in links)
        subprocess.run(["ip", "-n", NS, "-batch", "-"], input=batch, capture_output=True, text=True, check=True)
        _sh("ip", "-n", NS, "link", "delete", "group", str(SWEEP))
    _sh("ip", "netns", "delete", NS)


def _fresh() -> None:
    _clear()
    _sh("ip", "netns", "add", NS)


def _settle(timeout: float = 60.0) -> None:
    """Wait until IPv6 duplicate address detection is over (no tentative address): until then
    every address dump is interrupted by changes, which is the kernel settling, not the re-apply."""
    deadline = time.monotonic() + timeout
    while _sh("ip", "-n", NS, "-6", "addr", "show", "tentative").stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.2)


def _link_list() -> list[dict]:
    return [link for link in json.loads(_sh("ip", "-n", NS, "-j", "link", "show").stdout) if link["ifname"] != "lo"]


@dataclass
class Case:
    label: str                        # its row (networkd "create": the first of its two rows)
    n: int
    links_after: int
    argv: list[str] | None = None     # a whole process, timed
    setup: list[str] | None = None    # a process building the starting state (untimed)
    networkd: str | None = None       # "create" | "restart": networkd on the site's files (argv unused)


@dataclass
class Site:
    n: int
    files: str                        # the site's `vnetc build -t networkd` output directory


def run(opts: Options) -> Report:
    if os.geteuid() != 0:
        raise BenchError("the apply benchmark needs root (network namespaces)")
    sizes = tuple(sorted(opts.sizes or (QUICK_SIZES if opts.quick else FULL_SIZES)))
    reps = opts.reps or (1 if opts.quick else 3)
    no_networkd = (QUICK_SKIPS_NETWORKD if opts.quick else None) or _networkd.unavailable()
    cases: list[Case] = []
    sites: dict[int, Site] = {}
    # what networkd did wrong, per N and run ("create", "restart"): {(what, text): times}
    complaints: dict[int, dict[str, Counter[tuple[str, str]]]] = {
        n: {"create": Counter(), "restart": Counter()} for n in sizes}
    for n in sizes:
        work = opts.workdir / f"apply-{n}"
        work.mkdir(parents=True, exist_ok=True)
        site = work / "site.vnet"
        site.write_text(vnet_site(n), encoding="utf-8")
        veth_site = work / "veths.vnet"
        veth_site.write_text(vnet_veths(n), encoding="utf-8")
        files = {name: work / f"{name}.ip" for name in ("links", "state", "delete", "bridges", "veths",
                                                        "delete-veths")}
        for name, text in (("links", ip_create(n, False)), ("state", ip_create(n, True)), ("delete", ip_delete(n)),
                           ("bridges", ip_bridges(n)), ("veths", ip_veths(n)), ("delete-veths", ip_delete_veths(n))):
            files[name].write_text(text)
        apply = [opts.vnetc, "apply", str(site), "--netns", NS, "--yes"]
        built = apply                 # the state every re-apply and destroy starts from
        built_veths = [opts.vnetc, "apply", str(veth_site), "--netns", NS, "--yes"]
        batch = ["ip", "-n", NS, "-batch"]
        floor = ["ip", "-n", NS, "link", "delete", "group", str(GROUP)]
        cases += [
            Case(IP_LINKS, n, 3 * n, [*batch, str(files["links"])]),
            Case(IP_STATE, n, 3 * n, [*batch, str(files["state"])]),
            Case(APPLY, n, 3 * n, apply),
            Case(REAPPLY, n, 3 * n, apply, built),
            Case(IP_DELETE, n, 0, [*batch, str(files["delete"])], built),
            Case(DESTROY, n, 0, [opts.vnetc, "destroy", str(site), "--netns", NS, "--yes"], built),
            # both from the state `vnetc apply` leaves (links up), as the rows of the whole site
            Case(IP_DELETE_VETHS, n, 0, [*batch, str(files["delete-veths"])], built_veths),
            Case(DESTROY_VETHS, n, 0, [opts.vnetc, "destroy", str(veth_site), "--netns", NS, "--yes"], built_veths),
            Case(FLOOR, n, 0, floor, [*batch, str(files["state"])]),
            Case(FLOOR_BRIDGES, n, 0, floor, [*batch, str(files["bridges"])]),
            Case(FLOOR_VETHS, n, 0, floor, [*batch, str(files["veths"])]),
        ]
        if no_networkd is None:
            out = work / "networkd"
            expect_ok(run_timed([opts.vnetc, "build", str(site), "-t", "networkd", "-o", str(out)], env=opts.env),
                      f"vnetc build -t networkd at {n}", quiet=False)
            sites[n] = Site(n, str(out / "networkd"))
            cases += [Case(ND_LINKS, n, 3 * n, networkd="create"), Case(ND_RESTART, n, 3 * n, networkd="restart")]
    log(f"{NAME}: {len(cases)} cases, {reps} rounds")
    try:
        results = alternate(cases, reps, lambda c: _measure(c, opts, sites, complaints),
                            progress=lambda m: log(f"{NAME}: {m}"))
        waits = {n: _where_the_floor_waits(n, opts.workdir / f"apply-{n}" / "bridges.ip") for n in sizes}
    finally:
        _clear()

    report = Report(NAME, "apply: `vnetc apply`/`destroy` vs `ip -batch` and systemd-networkd")
    report.text(f"Median of {reps} alternating run{'s' if reps > 1 else ''} per row"
                f"{' (--quick: indicative only)' if opts.quick else ''}, each in a fresh namespace. Site: N "
                f"bridges, each with one veth port whose peer stays in the namespace (3·N links). \"{PROCESS}\": "
                f"a whole process (vnetc's start-up and compilation included). systemd-networkd runs "
                f"unmodified (not as PID 1) on the files of `vnetc build -t networkd`, in the tests' sandbox, "
                f"which is in place before its clock starts; \"up, enslaved\" is read from the kernel's link "
                f"notifications, \"configured\" from networkd's per-link state files (ADMIN_STATE, what "
                f"networkd-wait-online waits for). Kernel floor: one `ip link delete group G` request "
                f"deleting the same links, the fastest delete the kernel offers.")
    if no_networkd is not None:
        report.text(f"systemd-networkd rows skipped: {no_networkd}.")
    table = Table(["N", "command", "timed", "wall s", "links after"], align="lllrr")
    met: list[bool] = []
    for n in sizes:
        wall: dict[str, float | None] = {}     # None: not reached in any run (networkd gave up)
        after: dict[str, int] = {}
        cell: dict[str, str] = {}
        for i, case in enumerate(cases):
            if case.n == n:
                for label in results[i][0]:
                    reached = [r[label] for r in results[i] if r[label] is not None]
                    wall[label] = median(reached) if reached else None
                    after[label] = case.links_after
                    cell[label] = secs(wall[label]) + ("" if len(reached) == reps else
                                                       f" (reached in {len(reached)} of {reps} runs)")
        for label in TIMED:
            if label in wall:
                table.add(count(n), label, TIMED[label], cell[label], count(after[label]))
            elif label == ND_DESTROY:
                table.add(count(n), label, TIMED[label], "–", "–")
        report.text(_summary(n, wall, waits[n], complaints[n]))
        if n == 1000:
            met += [wall[APPLY] / wall[IP_STATE] <= TARGET_CREATE, wall[REAPPLY] <= TARGET_REAPPLY,
                    wall[IP_DELETE] / wall[DESTROY] >= TARGET_DESTROY]
    report.table("Wall time", table)
    report.text(f"{ND_DESTROY}: networkd has no way to remove what it created: it leaves every netdev in "
                f"place when it stops and when a .netdev file is removed (`networkctl delete` sends one "
                f"RTM_DELLINK per device, as `ip -batch` one by one does).")
    report.target_met = all(met) if met else None
    return report


def _summary(n: int, wall: dict[str, float | None], wait: str, complaints: dict[str, Counter[tuple[str, str]]]
             ) -> str:
    create = wall[APPLY] / wall[IP_STATE]
    lines = [f"N = {n:,}: apply ÷ ip -batch = **{create:.2f}** (same state), {wall[APPLY] / wall[IP_LINKS]:.2f} "
             f"(links only); no-change re-apply **{wall[REAPPLY]:.3f} s**; destroy "
             f"**{wall[IP_DELETE] / wall[DESTROY]:.1f}×** faster than deleting one by one; on veth pairs "
             f"alone (the issue's own reference: no bridges) **{wall[IP_DELETE_VETHS] / wall[DESTROY_VETHS]:.1f}×**."]
    if ND_LINKS in wall:
        def after(label: str) -> str:
            return "never (networkd gave up)" if wall[label] is None else f"after {wall[label]:.2f} s"

        lines.append(f"systemd-networkd: links in state {after(ND_LINKS)}, configured {after(ND_CONFIGURED)}"
                     + (f" (vnetc apply ÷ networkd's links in state = {wall[APPLY] / wall[ND_LINKS]:.2f})"
                        if wall[ND_LINKS] else "")
                     + f"; restarted on the same links, configured {after(ND_RESTART)} (vnetc's no-change "
                     f"re-apply: {wall[REAPPLY]:.2f} s)."
                     + "".join(_complaints(run, found) for run, found in complaints.items()))
    per_bridge, per_pair = wall[FLOOR_BRIDGES] / n, wall[FLOOR_VETHS] / n
    lines.append(f"Kernel floor: {wall[FLOOR]:.2f} s for the site in one request; vnetc destroy ÷ floor = "
                 f"**{wall[DESTROY] / wall[FLOOR]:.2f}**; the best any destroy can do against deleting one by "
                 f"one is {wall[IP_DELETE] / wall[FLOOR]:.1f}×. Alone, a bridge costs {per_bridge * 1000:.1f} ms "
                 f"and a veth pair {per_pair * 1000:.2f} ms (sum × N = {(per_bridge + per_pair) * n:.2f} s). "
                 f"{wait}")
    return "  \n".join(lines)


def _complaints(run: str, found: Counter[tuple[str, str]]) -> str:
    """What went wrong in networkd's runs of one kind, in a sentence (or nothing)."""
    logged = [f'{k:,}× "LINK: {text}"' for (what, text), k in found.most_common() if what == "logged"]
    ended = [f"{k:,} {text}" for (what, text), k in found.most_common() if what == "ended"]
    skipped = found[("skipped", "")]
    parts = ([f"networkd logged {'; '.join(logged)}"] if logged else []) + (
        [f"links ended so (in networkd {NETWORKD_LINGER:.0f} s after both moments, or in the kernel once it had "
         f"stopped): {'; '.join(ended)}"] if ended else []) + (
        [f"{skipped} not measured: the create before it had left links undone"] if skipped else [])
    return f" In the {run} runs, " + "; ".join(parts) + "." if parts else ""


def _measure(case: Case, opts: Options, sites: dict[int, Site],
             complaints: dict[int, dict[str, Counter[tuple[str, str]]]]) -> dict[str, float | None]:
    """{row: seconds (None: not reached)} of one run of the case."""
    _fresh()
    if case.networkd is not None:
        return _measure_networkd(case, sites[case.n], complaints[case.n][case.networkd])
    if case.setup is not None:
        expect_ok(run_timed(case.setup, env=opts.env), f"setup of {case.label}", quiet=False)
        _settle()
    result = expect_ok(run_timed(case.argv, env=opts.env), f"{case.label} at {case.n}", quiet=False)
    found = len(_link_list())
    if found != case.links_after:
        raise BenchError(f"{case.label} at {case.n} left {found} links; expected {case.links_after}")
    return {case.label: result.wall}


def _measure_networkd(case: Case, site: Site, complaints: Counter[tuple[str, str]]) -> dict[str, float | None]:
    """networkd "create" on an empty namespace; "restart": again on what it made (untimed)."""
    expected = expected_links(case.n)
    timing = _networkd.run(NS, site.files, expected, NETWORKD_TIMEOUT, linger=NETWORKD_LINGER)
    if case.networkd == "restart":
        if _networkd.check_links(NS, expected):
            complaints["skipped", ""] += 1
            return {ND_RESTART: None}
        _settle()
        timing = _networkd.run(NS, site.files, expected, NETWORKD_TIMEOUT, present=True, linger=NETWORKD_LINGER)
    complaints.update(("logged", w.split(": ", 1)[-1]) for w in timing.warnings)
    complaints.update(("ended", w.split(": ", 1)[-1]) for w in timing.undone)
    if case.networkd == "create":
        return {ND_LINKS: timing.links, ND_CONFIGURED: timing.configured}
    return {ND_RESTART: timing.configured}


def _where_the_floor_waits(n: int, create: Path) -> str:
    """Where the kernel spends a group delete of N bridges: the kernel stack of `ip link delete
    group` (/proc/PID/stack) sampled every millisecond while it deletes them (untimed)."""
    _fresh()
    _sh("ip", "-n", NS, "-batch", str(create))
    proc = subprocess.Popen(["ip", "-n", NS, "link", "delete", "group", str(GROUP)])
    samples: list[list[str]] = []
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/stack", encoding="utf-8") as f:
                frames = [line.split()[-1].split("+")[0] for line in f]
        except OSError:
            frames = []
        if "rtnl_dellink" in frames or "rtnl_group_dellink" in frames:
            samples.append(frames)
        time.sleep(0.001)
    if proc.returncode != 0 or _link_list():
        raise BenchError(f"the sampled group delete at {n} failed ({proc.returncode})")
    if not samples:
        return "(No kernel stack of the deleting process could be read: /proc/PID/stack needs root and " \
               "CONFIG_STACKTRACE.)"
    barrier = [s for s in samples if "rcu_barrier" in s]
    chain = [s for s in barrier if "br_multicast_dev_del" in s and "br_dev_uninit" in s]
    return (f"Of {len(samples)} samples of the kernel stack of `ip link delete group` deleting {n:,} bridges "
            f"alone, {len(barrier) / len(samples):.0%} were in rcu_barrier(), {len(chain) / len(samples):.0%} "
            f"called from br_multicast_dev_del() ← br_dev_uninit().")
