"""Source positions and diagnostics.

Every error vnetc reports about its input is a :class:`Diagnostic` rendered the
way editors read them::

    site.vnet:12:9: error: VLAN id 5000 is out of range 1–4094
       12 |     id 5000
          |        ^^^^
          = hint: did you mean 'vni'?

A phase collects all its diagnostics and raises :class:`CompileError` once.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

ERROR = "error"
WARNING = "warning"

#: The most diagnostics printed for one run; the rest are counted.
MAX_SHOWN = 50


class Source:
    """One file's text, and the include statement that brought it in."""

    __slots__ = ("path", "text", "included_from", "_lines")

    def __init__(self, path: str, text: str, included_from: Span | None = None):
        self.path = path
        self.text = text
        self.included_from = included_from
        self._lines: list[str] | None = None

    def line(self, number: int) -> str:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines[number - 1] if 0 < number <= len(self._lines) else ""

    def __repr__(self) -> str:
        return f"Source({self.path!r})"


class Span(NamedTuple):
    """A run of characters on one line: 1-based line, 1-based columns, end exclusive.

    ``bindings`` records the ``for`` variables in force where a statement was
    expanded, so that an error inside a loop can say which iteration it is.
    (A NamedTuple: a site has one span per word, and tuples are cheap.)
    """

    source: Source
    line: int
    col: int
    end_col: int
    bindings: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        return self.source.path

    def at(self, offset: int, length: int) -> Span:
        """The sub-span ``length`` characters long, ``offset`` characters in."""
        col = self.col + offset
        return Span(self.source, self.line, col, col + max(length, 1), self.bindings)

    def with_bindings(self, bindings: tuple[tuple[str, str], ...]) -> Span:
        return Span(self.source, self.line, self.col, self.end_col, bindings)

    def __str__(self) -> str:
        return f"{self.source.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: str
    message: str
    span: Span | None = None
    hint: str | None = None
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        where = f"{self.span}: " if self.span is not None else "vnetc: "
        out = [f"{where}{self.severity}: {self.message}"]
        if self.span is not None:
            out.extend(_excerpt(self.span))
        gutter = " " * 6
        if self.hint:
            out.append(f"{gutter}= hint: {self.hint}")
        for note in self.notes:
            out.append(f"{gutter}= note: {note}")
        if self.span is not None:
            if self.span.bindings:
                values = ", ".join(f"{k} = {v}" for k, v in self.span.bindings)
                out.append(f"{gutter}= note: in the loop iteration where {values}")
            inc = self.span.source.included_from
            while inc is not None:
                out.append(f"{gutter}= note: in a file included from {inc}")
                inc = inc.source.included_from
        return "\n".join(out)


#: Properties whose values are secrets (MACsec keys): never printed, not even in a
#: source excerpt. The IR JSON and the backends use the same set.
SECRET_PROPERTIES = frozenset({"key", "mka-cak"})
_SECRET_VALUE = re.compile(r"(?<![\w-])(" + "|".join(sorted(SECRET_PROPERTIES)) + r")([ \t]+)([^\s;#}]+)")


#: A key may also stand elsewhere (`let k = …`, a string): any run of 32 hex digits or more
#: (a 16-byte key and longer) is masked too.
_LONG_HEX = re.compile(r"(?<![0-9A-Za-z])(?:0[xX])?[0-9a-fA-F]{32,}(?![0-9A-Za-z])")


def mask_secrets(line: str) -> str:
    """The line with every secret value replaced by as many '*' (so carets still line up)."""
    line = _SECRET_VALUE.sub(lambda m: m.group(1) + m.group(2) + "*" * len(m.group(3)), line)
    return _LONG_HEX.sub(lambda m: "*" * len(m.group()), line)


#: The most characters of a source line shown: a longer line is cut around the span ('…').
EXCERPT_WIDTH = 120


def _excerpt(span: Span) -> list[str]:
    text = mask_secrets(span.source.line(span.line).rstrip("\r"))   # masked whole, then cut
    start = span.col - 1
    left, right = 0, len(text)
    if len(text) > EXCERPT_WIDTH:
        left = max(0, min(start - EXCERPT_WIDTH // 4, len(text) - EXCERPT_WIDTH))
        right = left + EXCERPT_WIDTH
    shown = ("…" if left else "") + text[left:right] + ("…" if right < len(text) else "")
    # Keep tabs so that the caret lines up under the word in any editor.
    lead = (" " if left else "") + "".join("\t" if ch == "\t" else " " for ch in text[left:start])
    width = max(1, min(span.end_col - 1, right) - start)
    number = f"{span.line:>5}"
    return [f"{number} | {shown}", f"{' ' * len(number)} | {lead}{'^' * width}"]


class CompileError(Exception):
    """Raised at the end of a phase that found errors; carries all its diagnostics."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        super().__init__("\n".join(d.render() for d in diagnostics[:3]))
        self.diagnostics = tuple(diagnostics)


class Collector:
    """Gathers the diagnostics of one phase."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._seen: set[tuple] = set()

    def error(self, message: str, span: Span | None, hint: str | None = None,
              notes: Iterable[str] = ()) -> None:
        self._add(Diagnostic(ERROR, message, span, hint, tuple(notes)))

    def warning(self, message: str, span: Span | None, hint: str | None = None,
                notes: Iterable[str] = ()) -> None:
        self._add(Diagnostic(WARNING, message, span, hint, tuple(notes)))

    def _add(self, diagnostic: Diagnostic) -> None:
        span = diagnostic.span
        # A loop repeats the same mistake once per iteration: report it once.
        key = (diagnostic.severity, diagnostic.message,
               None if span is None else (span.source.path, span.line, span.col))
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(diagnostic)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.sorted() if d.severity == WARNING]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise CompileError(self.sorted())

    def sorted(self) -> list[Diagnostic]:
        """In reading order: by file, line and column (diagnostics without a place first)."""
        return sorted(self.items, key=lambda d: ("", 0, 0) if d.span is None else
                      (d.span.source.path, d.span.line, d.span.col))


def render_all(diagnostics: Sequence[Diagnostic], limit: int = MAX_SHOWN) -> str:
    shown = [d.render() for d in diagnostics[:limit]]
    rest = len(diagnostics) - limit
    if rest > 0:
        shown.append(f"vnetc: note: {rest} more diagnostics not shown")
    return "\n".join(shown)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    match = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None
