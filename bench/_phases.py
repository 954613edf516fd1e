"""The phases of `vnetc check FILE`, timed inside one fresh process.

Run by bench/check.py as ``PYTHON bench/_phases.py FILE`` (by path, so that the
vnetc imported is the one installed for PYTHON, not the repository's directory),
in a fresh process each time, so that every figure is a cold-process one, as in
the real command. Prints one JSON object (seconds):

    import    import vnetc.cli (what the `vnetc` script imports: click, lark, the compiler)
    lark      building the lark parser (parser._lark(): loads from lark's cache when it hits)
    read      reading the file
    parse     lexing + LALR parsing into raw statements
    expand    include / let / for / ${…}
    check     structure, properties, values, references, checks (Checker up to the IR)
    ir        building the IR (Checker._host_ir)
    lark_cache  "hit" | "miss" | "off" (no cache read or written), from lark's own debug log;
                "unused" (and lark null) if vnetc did not import lark at start-up

The split of Checker.check into check / ir uses its private steps; if they
change, the whole of Checker.check is reported as "check" and "ir" is null;
likewise "lark" is null if the parser module has no ``_lark()``.
Only "import", "lark", "parse", "expand", "check" and "ir" are what `vnetc check` does;
nothing else is timed. As compile_file does, the phases run with the cyclic garbage
collector off.

``PYTHON bench/_phases.py --same-ir A B`` instead compiles two files and exits 1
unless they give the same IR (spans aside), printing the device count.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import time

T0 = time.perf_counter()


def _build_lark(parser_mod) -> tuple[float | None, str]:
    """Time parser._lark() and see whether lark's grammar cache hit, if vnetc uses lark at all
    (imports it at start-up and has a _lark()); else (None, "unused")."""
    build = getattr(parser_mod, "_lark", None)
    if "lark" not in sys.modules or build is None:
        return None, "unused"
    from lark import logger as lark_logger

    messages: list[str] = []

    class _Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    saved = lark_logger.handlers[:], lark_logger.level, lark_logger.propagate
    lark_logger.handlers[:] = [_Catch(logging.DEBUG)]   # lark's own handler would print to stderr
    lark_logger.propagate = False
    lark_logger.setLevel(logging.DEBUG)
    try:
        t = time.perf_counter()
        build()
        elapsed = time.perf_counter() - t
    finally:
        lark_logger.handlers[:], level, lark_logger.propagate = saved
        lark_logger.setLevel(level)
    if any(m.startswith("Saving grammar to cache") for m in messages):
        return elapsed, "miss"
    if any(m.startswith("Loading grammar from cache") for m in messages):
        return elapsed, "hit"
    return elapsed, "off"


def main(path: str) -> None:
    clock = time.perf_counter
    out: dict[str, object] = {}

    t = clock()
    import vnetc.cli  # noqa: F401  (what the console script imports)
    from vnetc.compiler.check import Checker
    from vnetc.compiler.expand import expand, read_source
    from vnetc.compiler import parser as parser_mod
    from vnetc.compiler.ir import Site
    out["import"] = clock() - t

    out["lark"], out["lark_cache"] = _build_lark(parser_mod)

    gc.disable()   # as compile_file (vnetc.compiler._compile) does for the phases
    t = clock()
    source = read_source(path)
    out["read"] = clock() - t

    t = clock()
    raw = parser_mod.parse(source)
    out["parse"] = clock() - t

    t = clock()
    statements, sources, expansion = expand(raw)
    files = [s.path for s in sources]
    expansion.raise_if_errors()
    out["expand"] = clock() - t

    checker = Checker()
    steps = ("_structure", "_resolve", "_host_ir")
    if all(hasattr(checker, s) for s in steps) and hasattr(checker.out, "raise_if_errors"):
        t = clock()
        hosts = checker._structure(statements)
        for host in hosts:
            checker._resolve(host)
        checker.out.raise_if_errors()
        out["check"] = clock() - t
        t = clock()
        site = Site(tuple(checker._host_ir(h) for h in hosts), tuple(files))
        out["ir"] = clock() - t
    else:  # pragma: no cover - the checker's steps were renamed
        t = clock()
        site = checker.check(statements, files)
        out["check"] = clock() - t
        out["ir"] = None
    out["devices"] = sum(len(h.devices) for h in site.hosts)
    out["since_main"] = clock() - T0
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


def same_ir(a: str, b: str) -> int:
    from vnetc.compiler import compile_file

    one, two = compile_file(a).site, compile_file(b).site
    print(sum(len(h.devices) for h in one.hosts))
    return 0 if one == two else 1


if __name__ == "__main__":
    if sys.argv[1] == "--same-ir":
        sys.exit(same_ir(sys.argv[2], sys.argv[3]))
    main(sys.argv[1])
