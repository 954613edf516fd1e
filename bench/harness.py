"""What every benchmark shares: timed child processes, alternating repetitions,
medians, markdown tables and the report file.

A benchmark module (bench/check.py, …) defines::

    NAME = "check"
    DESCRIPTION = "one line for --list"
    def run(opts: Options) -> Report

and is listed in bench/__main__.py. It raises :class:`BenchError` when what it
measures is wrong (a generated site does not compile, a tool exits non-zero):
a benchmark of a broken run is no figure at all.
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


class BenchError(Exception):
    """The thing measured did not do its job; the run is void."""


@dataclass
class Options:
    quick: bool = False
    sizes: tuple[int, ...] | None = None    # None: the benchmark's default for the mode
    reps: int | None = None                 # None: the benchmark's default for the mode
    vnetc: str = ""                         # the vnetc executable
    python: str = sys.executable            # the interpreter vnetc runs on (for the in-process phases)
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    enforce: bool = False                   # a missed target is an error (exit 3)
    shapes: tuple[str, ...] | None = None   # site shapes (bench/sites.py labels); None: the benchmark's default
    outputs: Path | None = None             # where timed commands write their output; None: tmpfs if there is one
    env: dict[str, str] | None = None       # the environment of the timed commands (None: this one's)
    env_note: str = ""                      # what was done to it, for the report


def child_env(pycache: Path) -> tuple[dict[str, str], str]:
    """The environment for the timed commands: this one, but with bytecode caching on.

    With PYTHONDONTWRITEBYTECODE set (as in some sandboxes and CI images), an
    editable install recompiles every vnetc module from source in every run
    (~0.1 s), which an installed vnetc never does. The cache goes to a prefix
    directory (PYTHONPYCACHEPREFIX) under the work directory, so nothing is
    written into the source tree; the first (untimed) run of each case fills it.
    """
    env = dict(os.environ)
    note = f"bytecode cached in {pycache} (PYTHONPYCACHEPREFIX)"
    if env.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        note += "; PYTHONDONTWRITEBYTECODE unset for the timed commands"
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env, note


def default_python(vnetc: str) -> str:
    """The interpreter of that vnetc's venv (its bin/python), else this one."""
    here = Path(vnetc).parent / "python"
    return str(here) if here.exists() else sys.executable


def default_vnetc() -> str:
    """The vnetc next to this interpreter (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / "vnetc"
    if here.exists():
        return str(here)
    found = shutil.which("vnetc")
    if not found:
        raise BenchError("no vnetc executable: run ./dev setup, or pass --vnetc PATH")
    return found


# --- timed processes -------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    wall: float          # seconds, fork to reap
    user: float          # CPU seconds of the child
    sys: float
    maxrss_kib: int      # peak resident set of the child (ru_maxrss, KiB on Linux)
    returncode: int
    stdout: str
    stderr: str


class _Spawner:
    """bench/_spawner.py, started once: it forks the timed commands (see its docstring)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_spawner.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        atexit.register(self.close)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError("the benchmark's spawner process died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


_spawner: _Spawner | None = None


def run_timed(argv: Sequence[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run argv to completion; wall time, CPU time and peak RSS of that child alone.

    The child is forked by bench/_spawner.py, not by this process, so that its
    ru_maxrss is its own. Output goes to temporary files, read afterwards.
    """
    global _spawner
    if _spawner is None:
        _spawner = _Spawner()
    with tempfile.TemporaryDirectory(prefix="vnetc-bench-run-") as tmp:
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        got = _spawner.run({"argv": list(argv), "cwd": str(cwd) if cwd else None, "env": env,
                            "out": out, "err": err})
        with open(out, encoding="utf-8", errors="replace") as f:
            stdout = f.read()
        with open(err, encoding="utf-8", errors="replace") as f:
            stderr = f.read()
    return Run(tuple(argv), got["wall"], got["user"], got["sys"], got["maxrss_kib"], got["rc"], stdout, stderr)


def expect_ok(run: Run, what: str, *, quiet: bool = True) -> Run:
    """Fail the benchmark unless the run exited 0 (and, with quiet, printed nothing on stderr)."""
    if run.returncode != 0 or (quiet and run.stderr.strip()):
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-15:])   # a traceback ends with its cause
        raise BenchError(f"{what}: `{' '.join(run.argv)}` exited {run.returncode}"
                         f"{' with output on stderr' if run.returncode == 0 else ''}:\n{tail}")
    return run


def alternate(cases: Sequence[Any], reps: int, measure: Callable[[Any], Any],
              progress: Callable[[str], None] | None = None) -> dict[int, list[Any]]:
    """Measure every case `reps` times, interleaved (round r runs all cases, starting
    at case r mod len), so that drift in the machine's load hits all cases alike.
    Returns {index of the case: [results in round order]}."""
    results: dict[int, list[Any]] = {i: [] for i in range(len(cases))}
    n = len(cases)
    for r in range(reps):
        for k in range(n):
            i = (r + k) % n
            results[i].append(measure(cases[i]))
        if progress:
            progress(f"round {r + 1}/{reps} done")
    return results


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# --- formatting --------------------------------------------------------------------

def secs(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def mib(kib: float | None) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f}"


def count(value: int) -> str:
    return f"{value:,}"


@dataclass
class Table:
    headers: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    align: str = ""   # one letter per column, l or r; default: first column l, the rest r

    def add(self, *row: Any) -> None:
        self.rows.append(row)

    def markdown(self) -> str:
        align = self.align or "l" + "r" * (len(self.headers) - 1)
        cells = [[str(c) for c in self.headers]] + [[str(c) for c in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.headers))]

        def line(row: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w)
                                     for c, w, a in zip(row, widths, align)) + " |"

        rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1))
                              for w, a in zip(widths, align)) + "|"
        return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


@dataclass
class Report:
    name: str
    title: str
    parts: list[str] = field(default_factory=list)
    target_met: bool | None = None      # None: the benchmark has no target, or did not measure it
    #: what bench/plot.py draws: {"series": {command: {site label: [(devices, seconds), …]}}}
    data: dict[str, Any] | None = None

    def text(self, value: str) -> None:
        self.parts.append(value.strip("\n"))

    def table(self, caption: str, table: Table) -> None:
        self.parts.append(f"**{caption}**\n\n{table.markdown()}")

    def markdown(self) -> str:
        return f"## {self.title}\n\n" + "\n\n".join(self.parts) + "\n"


def machine(python: str = sys.executable) -> str:
    """One line on what ran the benchmark and on the vnetc measured (that python's)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = ""
    where = _run([python, "-c", "import os, vnetc.compiler as c; print(os.path.dirname(os.path.dirname(c.__file__)))"])
    commit = _run(["git", "-C", where, "rev-parse", "--short", "HEAD"]) if where else ""
    dirty = _run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"]) if commit else ""
    state = f"{commit}{' + uncommitted changes' if dirty else ''}" if commit else "?"
    return (f"{datetime.date.today().isoformat()}; {cpu}, {os.cpu_count()} CPUs, {load}; "
            f"Python {platform.python_version()}; vnetc at {where or '?'} ({state})")


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


#: The verdict line of a result file (its second line), read back by the index of a later run.
VERDICT_LINE = {True: "<!-- targets: met -->", False: "<!-- targets: missed -->", None: "<!-- targets: none -->"}


def write_result(report: Report, header: str, results: Path = RESULTS) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{report.name}.md"
    path.write_text(f"<!-- {header} -->\n{VERDICT_LINE[report.target_met]}\n\n{report.markdown()}", encoding="utf-8")
    return path


def verdict_of(text: str) -> bool | None:
    """The verdict a result file records (None: no target, or a file from before verdicts were kept)."""
    lines = text.splitlines()
    second = lines[1] if len(lines) > 1 else ""
    return next((met for met, line in VERDICT_LINE.items() if line == second), None)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
