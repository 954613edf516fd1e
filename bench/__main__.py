"""Benchmarks of vnetc: ``python -m bench [NAMES…] [--quick] [--sizes N,…] [--reps N]``.

Run from the repository root with the venv's interpreter::

    .venv/bin/python -m bench                 # every benchmark, full (minutes)
    .venv/bin/python -m bench check --quick   # one benchmark, a few seconds (CI)
    .venv/bin/python -m bench --list

Each benchmark prints its markdown tables on stdout. A full run (without
--quick) also writes them to the results folder (bench/results/, or --results
DIR): NAME.md per benchmark, NAME-COMMAND.png plots of time against size
(matplotlib: `pip install -e '.[bench]'`; without it, no plots) and README.md,
which names the machine and links them all. --quick writes nothing unless
given --results. Progress goes to stderr.

Exit status: 0 measured; 1 a benchmark failed (a generated input does not
compile, a tool failed: the figures would be void); 2 usage; 3 with --enforce,
a benchmark's target was missed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from . import sites
from .harness import (RESULTS, BenchError, Options, Report, child_env, default_python, default_vnetc, log, machine,
                      verdict_of, write_result)
from .plot import plot

#: name -> module (bench/NAME.py); the order in which `python -m bench` runs them.
#: A benchmark is a module with NAME, DESCRIPTION and run(opts) -> harness.Report (see bench/harness.py).
BENCHMARKS = {
    "check": "bench.check",
    "build": "bench.build",
    "apply": "bench.apply",
}


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v.replace("_", "")) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of device counts: {text!r}") from None
    if not values or any(v < 5 for v in values):
        raise argparse.ArgumentTypeError("sizes are device counts of at least 5")
    return values


def _shapes(text: str) -> tuple[str, ...]:
    values = tuple(v for v in text.replace(",", " ").split())
    unknown = [v for v in values if v not in sites.GENERATORS]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"site shapes are some of: {', '.join(sites.GENERATORS)}")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks of vnetc.")
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all: {', '.join(BENCHMARKS)})")
    ap.add_argument("--quick", action="store_true", help="small sizes, one round: seconds, for CI (figures indicative only)")
    ap.add_argument("--sizes", type=_sizes, help="device counts, e.g. 1000,4000,16000 (default: per benchmark and mode)")
    ap.add_argument("--reps", type=_positive, help="alternating rounds per case (default: 5, or 1 with --quick)")
    ap.add_argument("--vnetc", help="the vnetc executable (default: the one next to this python)")
    ap.add_argument("--python", help="the interpreter that imports that vnetc, for in-process phases "
                                     "(default: the python next to --vnetc, else this one)")
    ap.add_argument("--shapes", type=_shapes, help=f"site shapes for build, of: {', '.join(sites.GENERATORS)} "
                                                   "(default: all, or vlan,mixed with --quick)")
    ap.add_argument("--workdir", type=Path, help="where generated inputs and the bytecode cache go "
                                                   "(default: $TMPDIR); removed afterwards")
    ap.add_argument("--outputs", type=Path, help="the file system the timed builds write to (default: tmpfs, "
                                                 "/dev/shm); each run writes into a new directory under it")
    ap.add_argument("--results", type=Path, help="the results folder (default: bench/results/ for a full run; "
                                                 "none with --quick)")
    ap.add_argument("--env-as-is", action="store_true",
                    help="run the timed commands in this environment as it is (default: bytecode caching on, "
                         "in a private PYTHONPYCACHEPREFIX, even if PYTHONDONTWRITEBYTECODE is set)")
    ap.add_argument("--no-write", action="store_true", help="write no results folder, not even for a full run")
    ap.add_argument("--enforce", action="store_true", help="exit 3 if a benchmark's target is missed")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)

    if args.list:
        for name, module in BENCHMARKS.items():
            print(f"{name:10} {importlib.import_module(module).DESCRIPTION}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)

    try:
        vnetc = args.vnetc or default_vnetc()
        opts = Options(quick=args.quick, sizes=args.sizes, reps=args.reps, vnetc=vnetc,
                       python=args.python or default_python(vnetc), enforce=args.enforce, shapes=args.shapes,
                       outputs=args.outputs)
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            opts.workdir = args.workdir
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="vnetc-bench-", dir=opts.workdir) as session:
        if args.env_as_is:
            opts.env_note = "environment as is" + (" (PYTHONDONTWRITEBYTECODE is set: vnetc's modules are "
                                                   "compiled from source in every run)"
                                                   if os.environ.get("PYTHONDONTWRITEBYTECODE") else "")
        else:
            opts.env, opts.env_note = child_env(Path(session) / "pycache")
        opts.workdir = Path(session)
        return _run(args, names, opts)


def _run(args: argparse.Namespace, names: list[str], opts: Options) -> int:
    header = f"{machine(opts.python)}; {opts.env_note}"
    results = None if args.no_write or (opts.quick and args.results is None) else (args.results or RESULTS)
    print(f"<!-- {header} -->\n")
    missed, done = [], []
    for name in names:
        start = time.perf_counter()
        try:
            report = importlib.import_module(BENCHMARKS[name]).run(opts)
        except BenchError as exc:
            print(f"bench {name}: FAILED: {exc}", file=sys.stderr)
            return 1
        print(report.markdown(), flush=True)
        if results is not None:
            pictures = plot(report, results)
            done.append((report, write_result(report, header, results), pictures))
            log(f"{name}: written to {done[-1][1]}" + (f" and {len(pictures)} plots" if pictures else ""))
        log(f"{name}: {time.perf_counter() - start:.1f} s")
        if report.target_met is False:
            missed.append(name)
    if results is not None and done:
        log(f"index: {_index(results, header, done)}")
    if missed and args.enforce:
        print(f"bench: target missed: {', '.join(missed)}", file=sys.stderr)
        return 3
    return 0


def _index(results: Path, header: str, done: list[tuple[Report, Path, list[Path]]]) -> Path:
    """results/README.md: every benchmark in the folder (this run's and earlier ones'), each with the
    machine and date it was measured on (its first line), its verdict (its second line), and the plots."""
    lines = ["# vnetc benchmarks: the latest results\n",
             f"Last run: `python -m bench {' '.join(sys.argv[1:])}`, {header}.\n"]
    for path in sorted(results.glob("*.md")):
        if path.name == "README.md":
            continue
        text = path.read_text(encoding="utf-8")
        title = next((line[3:] for line in text.splitlines() if line.startswith("## ")), path.stem)
        measured = text.splitlines()[0].removeprefix("<!-- ").removesuffix(" -->") if text else "?"
        verdict = {True: "; targets met", False: "; **a target missed**", None: ""}[verdict_of(text)]
        lines.append(f"- [{title}]({path.name}){verdict}  \n  measured: {measured}")
    pictures = sorted(results.glob("*.png"))
    if pictures:
        lines.append("\n## Time against size\n")
        lines += [f"![{p.stem}]({p.name})" for p in pictures]
    index = results / "README.md"
    index.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index


if __name__ == "__main__":
    sys.exit(main())
