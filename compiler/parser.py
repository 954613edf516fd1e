"""Text to raw statements, and syntax errors in vnetc's words.

The grammar is grammar/vnet.lark (LALR): a statement is words and strings and
an optional block. Nothing is interpolated or interpreted here.

Two readers of that one grammar, cross-checked by tests/compiler/test_parser.py
on every example, golden case and fuzzed input:

- :func:`_scan` — one regular expression over the text and a loop with a
  stack for the blocks. It reads a valid file in a fraction of the time lark's
  pure-Python LALR parser takes (the 4,000-device site of bench/ parses ten
  times faster), and it does not import lark at all.
- lark, built from vnet.lark, runs only when the scanner finds a syntax
  error: its exception (UnexpectedCharacters / UnexpectedToken / UnexpectedEOF)
  is what :func:`_translate` turns into the diagnostic, so the grammar file
  stays the authority on what is valid and on where an error is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .diagnostics import Collector, CompileError, Source, Span

if TYPE_CHECKING:  # lark is imported only to explain a syntax error
    from lark import Lark
    from lark.exceptions import UnexpectedInput

#: Blocks nested deeper than this are refused (the later phases recurse).
MAX_DEPTH = 64
#: Lines and ';' in one file (each ends at most one statement, and one more may end at a '}'):
#: a bound on the statements read before any of them is, so on the parser's time and memory.
MAX_LINES = 200_000


class Tok(NamedTuple):
    """A token: its terminal (WORD, STRING, LBRACE, RBRACE, COMMENT), text and 1-based position."""

    type: str
    value: str
    line: int
    column: int

    @property
    def end_column(self) -> int:
        return self.column + len(self.value)


class RawBlock(NamedTuple):
    open: Tok
    statements: tuple[RawStatement, ...]
    close: Tok
    depth: int


class RawStatement(NamedTuple):
    words: tuple[Tok, ...]  # WORD and STRING tokens, in order
    block: RawBlock | None


@dataclass(frozen=True, slots=True)
class RawFile:
    source: Source
    statements: tuple[RawStatement, ...]
    comments: tuple[Tok, ...]


#: The terminals of grammar/vnet.lark as one regular expression; each match takes
#: the blanks before its token along (EOF: trailing blanks at the end of the text).
#: The separator _SEP is split into NEWLINE and SEMICOLON (a newline also counts lines);
#: the alternatives exclude each other, so they are ordered by how often they occur.
#: WORD takes runs of plain characters at once (`[…]+`, not a turn of the outer loop per character).
#: INVALID: a character no terminal can start with (a syntax error).
_TOKENS = re.compile(r"""[ \t\r\f\v]*(?:
    (?P<WORD>(?:[^\s{};#"$]+|\$\{[^}\n]*\}|\$(?!\{))+)
  | (?P<NEWLINE>\n)
  | (?P<SEMICOLON>;)
  | (?P<LBRACE>\{)
  | (?P<RBRACE>\})
  | (?P<STRING>"(?:[^"\\\n]|\\.)*")
  | (?P<COMMENT>\#[^\n]*)
  | (?P<EOF>\Z)
  | (?P<INVALID>[\s\S])
)""", re.VERBOSE)


class _SyntaxError(Exception):
    """The scanner found the text invalid; lark says exactly why."""


def span_of(source: Source, token: Tok) -> Span:
    return Span(source, token.line, token.column, token.column + len(token.value))


def parse(source: Source) -> RawFile:
    """Parse one file; raise CompileError (with one positioned diagnostic) on bad syntax."""
    if source.text.count("\n") + source.text.count(";") > MAX_LINES:
        _too_long(source)
    try:
        statements, comments, deepest = _scan(source.text)
    except _SyntaxError:
        raise CompileError(_explain(source).items) from None
    if deepest is not None:
        out = Collector()
        out.error(f"blocks are nested more than {MAX_DEPTH} deep", span_of(source, deepest),
                  hint="flatten the file; deep nesting is never needed to describe devices")
        raise CompileError(out.items)
    return RawFile(source, statements, comments)


def _too_long(source: Source) -> None:
    """Refuse a file of more than MAX_LINES lines and ';', at the one beyond the limit."""
    separators = re.finditer(r"[;\n]", source.text)
    for _ in range(MAX_LINES):
        next(separators)
    at = next(separators).end()
    line = source.text.count("\n", 0, at) + 1
    column = at - source.text.rfind("\n", 0, at)
    out = Collector()
    out.error(f"this file has more than {MAX_LINES:,} lines and ';' together, the most vnetc reads",
              Span(source, line, column, column + 1), hint="a site this large is better written with 'for' loops")
    raise CompileError(out.items)


def _scan(text: str) -> tuple[tuple[RawStatement, ...], tuple[Tok, ...], Tok | None]:
    """The grammar's three rules with a stack: start/block hold statements separated by
    newlines or ';', a statement is a WORD, then WORDs and STRINGs, then maybe a block.

    The hot loop of every compile (one turn per token): tuples are made with
    tuple.__new__ (a NamedTuple's own constructor is a Python function), and the
    branches are ordered by how often they are taken."""
    new = tuple.__new__
    statements: list[RawStatement] = []
    words: list[Tok] = []
    stack: list[tuple[Tok, list[RawStatement], list[Tok], int]] = []
    comments: list[Tok] = []
    depths: list[int] = [0]      # the deepest block inside the block being read
    need_end = False             # right after a block's '}': only a separator or '}' may follow
    deepest: Tok | None = None
    line, line_start = 1, 0
    for m in _TOKENS.finditer(text):
        kind = m.lastgroup
        if kind == "WORD":
            if need_end:
                raise _SyntaxError
            words.append(new(Tok, (kind, m.group(kind), line, m.start(kind) - line_start + 1)))
            continue
        if kind == "NEWLINE" or kind == "SEMICOLON":
            if words:
                statements.append(new(RawStatement, (tuple(words), None)))
                words = []
            need_end = False
            if kind == "NEWLINE":
                line += 1
                line_start = m.end()
            continue
        if kind == "EOF":
            break
        if kind == "INVALID":
            raise _SyntaxError
        token = new(Tok, (kind, m.group(kind), line, m.start(kind) - line_start + 1))
        if kind == "COMMENT":
            comments.append(token)
        elif need_end and kind != "RBRACE":
            raise _SyntaxError
        elif kind == "STRING":
            if not words:
                raise _SyntaxError
            words.append(token)
        elif kind == "LBRACE":
            if not words:
                raise _SyntaxError
            stack.append((token, statements, words, len(depths)))
            if len(stack) > MAX_DEPTH and deepest is None:
                deepest = token
            depths.append(0)
            statements, words = [], []
        else:  # RBRACE
            if not stack:
                raise _SyntaxError
            if words:
                statements.append(new(RawStatement, (tuple(words), None)))
            open_token, outer, head, _ = stack.pop()
            depth = depths.pop() + 1
            if depth > depths[-1]:
                depths[-1] = depth
            outer.append(new(RawStatement, (tuple(head), new(RawBlock, (open_token, tuple(statements), token, depth)))))
            statements, words = outer, []
            need_end = True
    if stack:
        raise _SyntaxError
    if words:
        statements.append(new(RawStatement, (tuple(words), None)))
    return tuple(statements), tuple(comments), deepest


# --- lark: the authority on errors ------------------------------------------------------

_lark_parser: Lark | None = None


def _lark() -> Lark:
    global _lark_parser
    if _lark_parser is None:
        from importlib import resources   # (imports tempfile, shutil, random: not at every start-up)

        from lark import Lark

        grammar = resources.files("vnetc.grammar").joinpath("vnet.lark").read_text("utf-8")
        _lark_parser = Lark(grammar, parser="lalr", lexer="basic")
    return _lark_parser


def lark_accepts(text: str) -> bool:
    """Whether lark's parser of grammar/vnet.lark accepts the text (for the cross-check tests)."""
    from lark.exceptions import UnexpectedInput

    try:
        _lark().parse(text)
    except UnexpectedInput:
        return False
    return True


def _explain(source: Source) -> Collector:
    from lark.exceptions import UnexpectedInput

    try:
        _lark().parse(source.text)
    except UnexpectedInput as exc:
        return _translate(source, exc)
    raise AssertionError("the scanner refused a text that grammar/vnet.lark accepts")  # a vnetc bug


def _translate(source: Source, exc: UnexpectedInput) -> Collector:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    out = Collector()
    line, col = exc.line, exc.column
    text = source.line(line) if line and line > 0 else ""

    def at(length: int = 1, *, l: int = line, c: int = col) -> Span:
        return Span(source, l, c, c + max(length, 1))

    if isinstance(exc, UnexpectedCharacters):
        rest = text[col - 1:]
        if rest.startswith('"'):
            out.error("unterminated string", at(len(rest.rstrip())),
                      hint='a string ends with " on the same line')
        elif rest.startswith("${"):
            out.error("unterminated interpolation: '${' has no closing '}' on this line",
                      at(2))
        else:
            ch = rest[:1]
            out.error(f"unexpected character {ch!r} (U+{ord(ch):04X})" if ch else "unexpected end of line",
                      at())
        return out

    if isinstance(exc, UnexpectedToken):
        token = exc.token
        kind = token.type
        if kind == "$END":
            _unclosed(source, out)
            return out
        length = len(token) if token else 1
        where = at(length, l=token.line, c=token.column)
        if kind == "RBRACE":
            out.error("unexpected '}': no block is open here", where)
        elif kind == "LBRACE":
            out.error("a block must follow the words of a statement", where,
                      hint="write 'KIND NAME {' with the brace on the same line as the name")
        elif kind == "STRING" and "WORD" not in exc.expected:
            out.error("expected a newline or ';' after '}'", where)
        elif kind == "STRING":
            out.error("a statement must start with a word, not a string", where)
        elif kind == "WORD":
            out.error(f"expected a newline or ';' before '{token}'", where,
                      hint="a statement ends at a newline or ';'; nothing may follow a block's '}' on its line")
        else:  # pragma: no cover - the grammar has no other terminals
            out.error(f"unexpected {token!r}", where)
        return out

    if isinstance(exc, UnexpectedEOF):
        _unclosed(source, out)
        return out
    out.error("syntax error", at())  # pragma: no cover
    return out


def _unclosed(source: Source, out: Collector) -> None:
    """Name the innermost '{' that is never closed."""
    stack: list[Tok] = []
    line, line_start = 1, 0
    for m in _TOKENS.finditer(source.text):
        kind = m.lastgroup
        if kind == "NEWLINE":
            line += 1
            line_start = m.end()
        elif kind == "LBRACE":
            stack.append(Tok("LBRACE", "{", line, m.start(kind) - line_start + 1))
        elif kind == "RBRACE" and stack:
            stack.pop()
    if stack:
        out.error("unterminated block: this '{' is never closed", span_of(source, stack[-1]),
                  hint="add the missing '}'")
    else:  # pragma: no cover - $END is only unexpected inside a block
        out.error("unexpected end of file", Span(source, 1, 1, 2))
