"""Expansion: `include`, `let`, `for` and `${…}` interpolation (language.md §1–2).

The result is a tree of :class:`Stmt` whose words are final text, each with the
span of the source word it came from (and, inside loops, the loop variables in
force). Expansion knows no kinds or properties; that is the checker's work.

Limits (stated in docs/language.md): 1,000,000 loop iterations in all, 200,000
statements after expansion, include chains 32 deep, words 4,096 characters after
interpolation, 256 tokens in one ${…}, 4 MiB of input (all files together).
"""

from __future__ import annotations

import operator
import os
import re
import stat
from typing import Any, Callable, NamedTuple

from .diagnostics import Collector, CompileError, Source, Span, did_you_mean
from .parser import RawBlock, RawFile, RawStatement, Tok, parse, span_of
from .values import MAX_DIGITS, BadValue, parse_int

MAX_ITERATIONS = 1_000_000
MAX_INCLUDE_DEPTH = 32
MAX_WORD = 4096
MAX_FILE_BYTES = 4 * 1024 * 1024    # all files of one compile together
MAX_STATEMENTS = 200_000            # after expansion: what check, the IR and the targets work through
MAX_EXPRESSION_TOKENS = 256         # in one ${…}: its compiled tree (and evaluation) recurses
MAX_MAGNITUDE = 2**63
MAX_EXPRESSION_DEPTH = 64
MAX_BLOCK_DEPTH = 64  # across included files too (parser.MAX_DEPTH counts within one file)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_NAME = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_DIRECTIVES = frozenset({"include", "let", "for"})


class Word(NamedTuple):
    text: str
    span: Span
    quoted: bool = False
    exact: bool = True   # the text is the source text character for character (no ${…}, no escapes)


class Stmt(NamedTuple):
    words: tuple[Word, ...]
    block: tuple[Stmt, ...] | None
    open_span: Span | None = None  # the block's '{'

    @property
    def head(self) -> Word:
        return self.words[0]

    @property
    def span(self) -> Span:
        return self.words[0].span


class _Binding:
    __slots__ = ("value", "span", "loop", "number")

    def __init__(self, value: str | None, span: Span, loop: bool, number: int | None = None):
        self.value = value
        self.span = span
        self.loop = loop
        self.number = number    # the value as a number, once arithmetic has needed it

    def as_number(self, name: str, at: int) -> int:
        """The value in arithmetic (`at`: where the name stands in the ${…})."""
        if self.number is None:
            value = self.value
            if value is None:
                raise _Reported()   # its definition failed and was reported
            try:
                self.number = parse_int(value.strip()) if not value.startswith("-") else -parse_int(value[1:])
            except BadValue:
                raise BadValue(f"'{name}' is '{value}', not a number, so it cannot be used in arithmetic",
                               offset=at, length=len(name)) from None
        return self.number


class _Scope:
    __slots__ = ("names", "parent", "bindings")

    def __init__(self, parent: _Scope | None = None, bindings: tuple[tuple[str, str], ...] = ()):
        self.names: dict[str, _Binding] = {}
        self.parent = parent
        self.bindings = bindings

    def get(self, name: str) -> _Binding | None:
        scope: _Scope | None = self
        while scope is not None:
            found = scope.names.get(name)
            if found is not None:
                return found
            scope = scope.parent
        return None

    def visible(self) -> set[str]:
        names: set[str] = set()
        scope: _Scope | None = self
        while scope is not None:
            names.update(scope.names)
            scope = scope.parent
        return names


class NotUTF8(CompileError):
    """A file that is not UTF-8: the diagnostic points at the first bad byte."""


def read_source(path: str, included_from: Span | None = None, limit: int = MAX_FILE_BYTES) -> Source:
    """Read a file as UTF-8; OSError becomes BadValue, bad bytes NotUTF8 (a positioned error).
    At most `limit` bytes are read (what is left of MAX_FILE_BYTES, for an included file)."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise BadValue(f"'{path}' is a directory, not a .vnet file")
        if not stat.S_ISREG(info.st_mode):
            raise BadValue(f"'{path}' is not a regular file", "vnetc reads .vnet files, not devices or pipes")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)  # never more, whatever stat said
        if len(data) > limit:
            raise BadValue(f"'{path}' is too large: vnetc reads at most {MAX_FILE_BYTES // 2**20} MiB, "
                           f"all included files together")
    except OSError as exc:
        raise BadValue(f"cannot read '{path}': {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
        shown = Source(path, data.decode("utf-8", "replace"), included_from)
        out = Collector()
        out.error(f"this file is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
                  Span(shown, line, col, col + 1), hint="vnet files are UTF-8")
        raise NotUTF8(out.items) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return Source(path, text, included_from)


class Expander:
    def __init__(self) -> None:
        self.out = Collector()
        self.iterations = 0
        self.statements = 0
        self.input_bytes = 0
        self.include_stack: list[str] = []
        self.files: list[Source] = []      # every file read: this one, then each include in order
        self.templates: dict[str, _Template] = {}
        self._defining: dict[int, tuple[RawBlock, bool]] = {}   # id -> (the block, kept alive; _defines)

    # --- entry points -----------------------------------------------------

    def expand_file(self, raw: RawFile) -> tuple[Stmt, ...]:
        self.include_stack.append(os.path.realpath(raw.source.path))
        self.files.append(raw.source)
        self.depth = 0
        self.input_bytes = len(raw.source.text.encode("utf-8"))
        result = self._block(raw.source, raw.statements, _Scope())
        self.include_stack.pop()
        return result

    # --- statements -------------------------------------------------------

    def _block(self, source: Source, statements: tuple[RawStatement, ...], scope: _Scope) -> tuple[Stmt, ...]:
        # The hot loop of expansion (once per statement): tuples are made with tuple.__new__
        # (a NamedTuple's own constructor is a Python function), and a word without '$' or
        # quotes is taken as it is, without a call.
        new = tuple.__new__
        bindings = scope.bindings
        out: list[Stmt] = []
        made = 0    # statements made here (MAX_STATEMENTS); `out` also holds those of loops and includes
        for statement in statements:
            head = statement.words[0]
            if head.type == "WORD" and head.value in _DIRECTIVES:
                if head.value == "include":
                    out.extend(self._include(source, statement, scope))
                elif head.value == "let":
                    self._let(source, statement, scope)
                else:
                    out.extend(self._for(source, statement, scope))
                continue
            words = []
            for token in statement.words:
                raw = token.value
                if token.type == "WORD" and "$" not in raw:
                    column = token.column
                    word = new(Word, (raw, new(Span, (source, token.line, column, column + len(raw), bindings)),
                                      False, True))
                else:
                    word = self._word(source, token, scope)
                    if word is None:
                        break
                words.append(word)
            else:
                words = tuple(words)  # type: ignore[assignment]
            if type(words) is list:  # a word failed (and was reported)
                continue
            block = None
            open_span = None
            if statement.block is not None:
                brace = statement.block.open
                open_span = new(Span, (source, brace.line, brace.column, brace.column + 1, bindings))
                if self.depth >= MAX_BLOCK_DEPTH:
                    self.out.error(f"blocks are nested more than {MAX_BLOCK_DEPTH} deep (counting included files)",
                                   open_span)
                    continue
                self.depth += 1
                inner = _Scope(scope, bindings) if self._defines(statement.block) else scope
                block = self._block(source, statement.block.statements, inner)
                self.depth -= 1
            out.append(new(Stmt, (words, block, open_span)))
            made += 1
        self.statements += made
        if made and self.statements > MAX_STATEMENTS:
            self.out.error(f"the site expands to more than {MAX_STATEMENTS:,} statements here; the limit is "
                           f"{MAX_STATEMENTS:,}", out[-1].words[0].span)
            raise _TooMany()
        return tuple(out)

    def _defines(self, block: RawBlock) -> bool:
        """Whether the block can define names (a `let`, or an `include` whose `let`s are the block's),
        and so needs a scope of its own: most blocks (a device's properties) use their parent's."""
        found = self._defining.get(id(block))
        if found is None:
            found = self._defining[id(block)] = (block, any(
                s.words[0].type == "WORD" and s.words[0].value in ("let", "include") for s in block.statements))
        return found[1]

    def _span(self, source: Source, token: Tok, scope: _Scope) -> Span:
        column = token.column
        return Span(source, token.line, column, column + len(token.value), scope.bindings)

    def _no_block(self, source: Source, statement: RawStatement, scope: _Scope, what: str) -> bool:
        if statement.block is not None:
            self.out.error(f"'{what}' takes no block", self._span(source, statement.block.open, scope))
            return False
        return True

    def _include(self, source: Source, statement: RawStatement, scope: _Scope) -> tuple[Stmt, ...]:
        words = statement.words
        at = self._span(source, words[0], scope)
        if len(words) != 2:
            self.out.error("'include' takes one path", at, hint='write include "other.vnet"')
            return ()
        if not self._no_block(source, statement, scope, "include"):
            return ()
        target = self._word(source, words[1], scope)
        if target is None:
            return ()
        if "\0" in target.text or not target.text:
            self.out.error("an include path must be a non-empty file name without NUL", target.span)
            return ()
        path = os.path.normpath(os.path.join(os.path.dirname(source.path), target.text))
        real = os.path.realpath(path)
        if real in self.include_stack:
            chain = " -> ".join(os.path.basename(p) for p in self.include_stack[self.include_stack.index(real):])
            self.out.error(f"include cycle: '{target.text}' is already being read",
                           target.span, notes=[f"the cycle: {chain} -> {os.path.basename(real)}"])
            return ()
        if len(self.include_stack) >= MAX_INCLUDE_DEPTH:
            self.out.error(f"includes are nested more than {MAX_INCLUDE_DEPTH} deep", target.span)
            return ()
        try:
            included = read_source(path, included_from=target.span, limit=MAX_FILE_BYTES - self.input_bytes)
        except BadValue as exc:
            self.out.error(exc.message, target.span, exc.hint)
            return ()
        except NotUTF8 as exc:
            self.out.items.extend(exc.diagnostics)
            return ()
        try:
            raw = parse(included)
        except CompileError as exc:
            self.out.items.extend(exc.diagnostics)
            return ()
        self.input_bytes += len(included.text.encode("utf-8"))
        self.include_stack.append(real)
        self.files.append(included)
        # Textual inclusion: the file's `let`s are visible after the include.
        result = self._block(included, raw.statements, scope)
        self.include_stack.pop()
        return result

    def _let(self, source: Source, statement: RawStatement, scope: _Scope) -> None:
        words = statement.words
        at = self._span(source, words[0], scope)
        if len(words) != 4 or words[2].value != "=":
            self.out.error("'let' is written: let NAME = VALUE", at)
            return
        if not self._no_block(source, statement, scope, "let"):
            return
        name_span = self._span(source, words[1], scope)
        if words[1].type != "WORD" or not _NAME.fullmatch(words[1].value):
            self.out.error(f"'{words[1].value}' is not a valid name for a constant", name_span,
                           hint="names are letters, digits and '_', starting with a letter or '_'")
            return
        if self._redefines(words[1].value, name_span, scope):
            return
        value = self._word(source, words[3], scope)
        # A value that failed is bound all the same (to None), so that its uses stay quiet.
        scope.names[words[1].value] = _Binding(None if value is None else value.text, name_span, loop=False)

    def _redefines(self, name: str, span: Span, scope: _Scope) -> bool:
        earlier = scope.get(name)
        if earlier is None:
            return False
        what = "loop variable" if earlier.loop else "constant"
        self.out.error(f"'{name}' is already defined", span, notes=[f"the {what} '{name}' is defined at {earlier.span}"])
        return True

    def _for(self, source: Source, statement: RawStatement, scope: _Scope) -> tuple[Stmt, ...]:
        words = statement.words
        at = self._span(source, words[0], scope)
        if len(words) != 4 or words[2].value != "in" or statement.block is None:
            self.out.error("'for' is written: for VAR in A..B { ... }", at)
            return ()
        var_span = self._span(source, words[1], scope)
        if not _NAME.fullmatch(words[1].value):
            self.out.error(f"'{words[1].value}' is not a valid loop variable name", var_span)
            return ()
        if self._redefines(words[1].value, var_span, scope):
            return ()
        bounds = self._word(source, words[3], scope)
        if bounds is None:
            return ()
        low_text, sep, high_text = bounds.text.partition("..")
        try:
            if not sep:
                raise BadValue(f"'{bounds.text}' is not a range", "write A..B, e.g. 1..10")
            low, high = parse_int(low_text), parse_int(high_text)
        except BadValue as exc:
            self.out.error(exc.message, bounds.span, exc.hint or "write A..B, e.g. 1..10")
            return ()
        if low > high:
            self.out.error(f"the range {low}..{high} is reversed", bounds.span,
                           hint=f"a range runs upwards: write {high}..{low}")
            return ()
        count = high - low + 1
        if self.iterations + count > MAX_ITERATIONS:
            self.out.error(f"this loop would bring the iterations of all loops to "
                           f"{self.iterations + count:,}; the limit is {MAX_ITERATIONS:,}", bounds.span)
            return ()
        made = count * sum(1 for st in statement.block.statements if st.words[0].value not in _DIRECTIVES)
        if self.statements + made > MAX_STATEMENTS:   # known now: refuse before expanding any of it
            self.out.error(f"this loop would bring the statements of the site to {self.statements + made:,} "
                           f"or more; the limit is {MAX_STATEMENTS:,}", bounds.span)
            raise _TooMany()
        self.iterations += count
        out: list[Stmt] = []
        name = words[1].value
        for value in range(low, high + 1):
            inner = _Scope(scope, scope.bindings + ((name, str(value)),))
            inner.names[name] = _Binding(str(value), var_span, loop=True, number=value)
            if self.depth >= MAX_BLOCK_DEPTH:
                self.out.error(f"blocks are nested more than {MAX_BLOCK_DEPTH} deep (counting included files)",
                               span_of(source, statement.block.open).with_bindings(scope.bindings))
                break
            self.depth += 1
            out.extend(self._block(source, statement.block.statements, inner))
            self.depth -= 1
            if self.out.errors and len(self.out.errors) > 200:
                break  # the same mistake in every iteration: enough is known
        return tuple(out)

    # --- words and interpolation -------------------------------------------

    def _word(self, source: Source, token: Tok, scope: _Scope) -> Word | None:
        raw = token.value
        column = token.column
        span = Span(source, token.line, column, column + len(raw), scope.bindings)
        quoted = token.type == "STRING"
        if not quoted and "$" not in raw:
            return Word(raw, span)   # (_block takes such words itself; _include, _let, _for come here)
        template = self.templates.get(raw)
        if template is None:
            template = self.templates[raw] = _template(raw, quoted)
        if template.errors:
            for message, offset, length, hint in template.errors:
                self.out.error(message, span.at(offset, length), hint)
            return None
        pieces: list[str] = []
        for part in template.parts:
            if part.__class__ is str:
                pieces.append(part)
                continue
            value = self._fill(part, span, scope)
            if value is None:
                return None
            pieces.append(value)
        text = "".join(pieces)
        if len(text) > MAX_WORD:
            self.out.error(f"this word grows to {len(text):,} characters by interpolation; "
                           f"the limit is {MAX_WORD:,}", span)
            return None
        return Word(text, span, quoted, template.exact)

    def _fill(self, hole: _Hole, span: Span, scope: _Scope) -> str | None:
        """The text of one ${…} (or $NAME) in a word."""
        if hole.name is not None:
            binding = scope.get(hole.name)
            if binding is not None:
                return binding.value
            return self._lookup(hole.name, span.at(hole.name_offset, len(hole.name)), scope)
        try:
            return str(hole.expr(scope, hole, span, self))
        except _Reported:
            return None
        except BadValue as exc:
            where = span.at(hole.offset + 2 + exc.offset, exc.length) if exc.length else \
                span.at(hole.offset, hole.length)
            self.out.error(exc.message, where, exc.hint)
            return None

    def _lookup(self, name: str, span: Span, scope: _Scope) -> str | None:
        binding = scope.get(name)
        if binding is None:
            self.out.error(f"unknown name '{name}' in interpolation", span,
                           did_you_mean(name, scope.visible()) or "define it with 'let NAME = VALUE' or a 'for' loop")
            return None
        return binding.value  # None: its definition failed and was reported


# --- words as templates: parsed once, filled in each time (a loop body is read once) ------

class _Hole(NamedTuple):
    offset: int             # of '${' (or '$') in the token's text
    length: int             # of the whole '${…}'
    name: str | None        # a plain name: its text is substituted as it is
    name_offset: int
    expr: Any               # else the compiled arithmetic: expr(scope, hole, span, expander) -> int


class _Template(NamedTuple):
    parts: tuple            # str and _Hole, in order
    errors: tuple           # (message, offset, length, hint): the word is wrong whatever the values
    exact: bool             # the word's text is the source text (no interpolation, no escapes)


def _template(raw: str, quoted: bool) -> _Template:
    if not quoted and raw.startswith("$") and _DOLLAR_NAME.fullmatch(raw):
        return _Template((_Hole(0, len(raw), raw[1:], 1, None),), (), False)
    body, base = (raw[1:-1], 1) if quoted else (raw, 0)
    parts: list = []
    errors: list = []
    literal: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "$" and body.startswith("${", i):
            end = body.find("}", i)
            if end < 0:
                errors.append(("unterminated interpolation: '${' has no closing '}'", base + i, 2, None))
                break
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_hole(body[i + 2:end], base + i, end - i + 1, errors))
            i = end + 1
        elif ch == "\\" and quoted:
            esc = body[i + 1:i + 2]
            if esc not in _ESCAPES:
                errors.append((f"unknown escape '\\{esc}' in a string", base + i, 2,
                               'strings know \\" \\\\ \\n and \\t'))
            else:
                literal.append(_ESCAPES[esc])
            i += 2
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    exact = not quoted and all(p.__class__ is str for p in parts)
    return _Template(tuple(parts), tuple(errors), exact)


def _hole(expr: str, offset: int, length: int, errors: list) -> _Hole:
    stripped = expr.strip()
    if _NAME.fullmatch(stripped):
        return _Hole(offset, length, stripped, offset + 2 + expr.index(stripped), None)
    try:
        compiled = _compile(_ExpressionParser(expr).parse())
    except BadValue as exc:
        at, size = (offset + 2 + exc.offset, exc.length) if exc.length else (offset, length)
        errors.append((exc.message, at, size, exc.hint))
        compiled = None
    return _Hole(offset, length, None, 0, compiled)


_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|[0-9]+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


class _ExpressionParser:
    """Integer arithmetic inside ${…}: + - * / % and parentheses, by recursive descent,
    compiled to a tree of tuples: ("num", n) | ("name", name, at) | ("neg", x) |
    (op, left, right, at). Names are looked up when the tree is evaluated."""

    def __init__(self, text: str):
        self.tokens: list[tuple[str, str, int]] = []
        for match in _TOKEN.finditer(text):
            number, name, op = match.groups()
            start = match.start(match.lastindex or 0)
            if number:
                self.tokens.append(("num", number, start))
            elif name:
                self.tokens.append(("name", name, start))
            elif op and not op.isspace():
                if op not in "+-*/%()":
                    raise BadValue(f"unexpected '{op}' in ${{…}}", "only + - * / % and parentheses are allowed",
                                   offset=start, length=1)
                self.tokens.append(("op", op, start))
        if len(self.tokens) > MAX_EXPRESSION_TOKENS:
            at = self.tokens[MAX_EXPRESSION_TOKENS][2]
            raise BadValue(f"the expression has {len(self.tokens):,} numbers, names and operators; at most "
                           f"{MAX_EXPRESSION_TOKENS} are accepted", offset=at, length=len(text) - at)
        self.pos = 0
        self.depth = 0
        self.text = text

    def parse(self) -> tuple:
        if not self.tokens:
            raise BadValue("empty interpolation '${}'")
        tree = self._sum()
        if self.pos < len(self.tokens):
            _, tok, at = self.tokens[self.pos]
            raise BadValue(f"unexpected '{tok}' in ${{…}}", offset=at, length=len(tok))
        return tree

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _sum(self) -> tuple:
        tree = self._product()
        while self._peek() in ("+", "-"):
            _, op, at = self.tokens[self.pos]
            self.pos += 1
            tree = (op, tree, self._product(), at)
        return tree

    def _product(self) -> tuple:
        tree = self._unary()
        while self._peek() in ("*", "/", "%"):
            _, op, at = self.tokens[self.pos]
            self.pos += 1
            tree = (op, tree, self._unary(), at)
        return tree

    def _unary(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_EXPRESSION_DEPTH:
            _, tok, at = self.tokens[min(self.pos, len(self.tokens) - 1)]
            raise BadValue(f"the expression is nested more than {MAX_EXPRESSION_DEPTH} deep", offset=at, length=1)
        try:
            if self._peek() == "-":
                self.pos += 1
                return ("neg", self._unary())
            if self._peek() == "+":
                self.pos += 1
                return self._unary()
            return self._atom()
        finally:
            self.depth -= 1

    def _atom(self) -> tuple:
        if self.pos >= len(self.tokens):
            raise BadValue("incomplete expression in ${…}", offset=len(self.text), length=1)
        kind, tok, at = self.tokens[self.pos]
        self.pos += 1
        if kind == "num":
            if len(tok) > MAX_DIGITS:
                raise BadValue(f"number has {len(tok)} digits; at most {MAX_DIGITS} are accepted",
                               offset=at, length=len(tok))
            return ("num", int(tok, 0) if tok[:2] in ("0x", "0X") else int(tok))
        if kind == "name":
            return ("name", tok, at)
        if tok == "(":
            tree = self._sum()
            if self._peek() != ")":
                raise BadValue("missing ')' in ${…}", offset=len(self.text), length=1)
            self.pos += 1
            return tree
        raise BadValue(f"unexpected '{tok}' in ${{…}}", offset=at, length=1)


def _compile(tree: tuple) -> Callable[[_Scope, _Hole, Span, Expander], int]:
    """The tree of _ExpressionParser as nested closures, called with (scope, hole, span,
    expander) for each value of the loop variables: a few times faster than walking the
    tree each time. Every operation but negation checks the magnitude of its result."""
    kind = tree[0]
    if kind == "num":
        number = tree[1]
        return lambda scope, hole, span, expander: number
    if kind == "name":
        name, name_at = tree[1], tree[2]

        def lookup(scope: _Scope, hole: _Hole, span: Span, expander: Expander) -> int:
            binding = scope.get(name)
            if binding is None:
                expander._lookup(name, span.at(hole.offset + 2 + name_at, len(name)), scope)  # reports it
                raise _Reported()
            return binding.as_number(name, name_at)
        return lookup
    if kind == "neg":
        operand = _compile(tree[1])
        return lambda scope, hole, span, expander: -operand(scope, hole, span, expander)
    left, right, at = _compile(tree[1]), _compile(tree[2]), tree[3]
    operation = _OPERATIONS[kind]
    divides = kind in ("/", "%")

    def apply(scope: _Scope, hole: _Hole, span: Span, expander: Expander) -> int:
        a = left(scope, hole, span, expander)
        b = right(scope, hole, span, expander)
        if divides and b == 0:
            raise BadValue("division by zero in ${…}", offset=at, length=1)
        value = operation(a, b)
        if abs(value) >= MAX_MAGNITUDE:
            raise BadValue("arithmetic result is out of range (beyond ±2^63)", offset=at, length=1)
        return value
    return apply


_OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv, "%": operator.mod}


class _Reported(BadValue):
    """An error already reported (unknown name); the caller only stops."""

    def __init__(self) -> None:
        super().__init__("")


def expand(raw: RawFile) -> tuple[tuple[Stmt, ...], list[Source], Collector]:
    """Expand one parsed file; returns the statements, the files read (the file, then each
    include in order) and the diagnostics."""
    expander = Expander()
    try:
        statements = expander.expand_file(raw)
    except _TooMany:        # reported; nothing after it is worth expanding
        statements = ()
    return statements, expander.files, expander.out


class _TooMany(Exception):
    """The expansion went beyond MAX_STATEMENTS (reported where it did)."""
