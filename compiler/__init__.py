"""From .vnet text to a checked IR.

    parser.parse   text -> raw statements (lark, LALR)
    expand.expand  include, let, for, ${…}   -> statements of final words
    check.Checker  schema, names, references, checks -> ir.Site

``compile_file`` / ``compile_source`` run the three; each phase reports all
its errors at once as a CompileError.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from .check import Checker
from .diagnostics import CompileError, Diagnostic, Source
from .expand import NotUTF8, expand, read_source
from .ir import Site
from .parser import parse
from .values import BadValue


@dataclass(frozen=True)
class Result:
    site: Site | None          # None when only checking (build_ir=False)
    warnings: tuple[Diagnostic, ...]
    sources: tuple[Source, ...] = ()   # the files read, as read: the file, then each include in order


def compile_source(text: str, path: str = "<input>", build_ir: bool = True) -> Result:
    return _compile(Source(path, text), build_ir)


def compile_file(path: str, build_ir: bool = True) -> Result:
    """Parse, expand and check `path`; build the IR unless only checking (`vnetc check`)."""
    try:
        source = read_source(path)
    except BadValue as exc:
        raise CompileError([Diagnostic("error", exc.message, None, exc.hint)]) from None
    except NotUTF8 as exc:
        raise CompileError(exc.diagnostics) from None
    return _compile(source, build_ir)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a phase that allocates many small objects and frees
    none of them until it ends (compiling, rendering, writing): the collector would only rescan
    them (a quarter of the time of a 4,000-device check). These phases make no reference cycles
    that matter. (The `vnetc` program keeps it off altogether: vnetc.cli.run.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compile(source: Source, build_ir: bool = True) -> Result:
    with collector_paused():
        return _phases(source, build_ir)


def _phases(source: Source, build_ir: bool) -> Result:
    raw = parse(source)
    statements, sources, expansion = expand(raw)
    expansion.raise_if_errors()
    checker = Checker()
    try:
        site = checker.check(statements, [s.path for s in sources], build_ir)
    except CompileError as exc:
        raise CompileError([*expansion.items, *exc.diagnostics]) from None
    return Result(site, tuple(expansion.warnings + checker.out.warnings), tuple(sources))


__all__ = ["collector_paused", "compile_file", "compile_source", "CompileError", "Diagnostic", "Result", "Site"]
