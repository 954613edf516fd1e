"""Text to raw statements with lark (LALR), and lark's errors in vnetc's words.

The grammar (grammar/vnet.lark) knows nothing of kinds or properties: a
statement is words, strings and an optional block. The tokens keep their
positions; nothing is interpolated or interpreted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import UnexpectedEOF

from .diagnostics import Collector, CompileError, Source, Span

#: Blocks nested deeper than this are refused (the later phases recurse).
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class RawBlock:
    open: Token
    statements: tuple[RawStatement, ...]
    close: Token
    depth: int


@dataclass(frozen=True, slots=True)
class RawStatement:
    words: tuple[Token, ...]  # WORD and STRING tokens, in order
    block: RawBlock | None

    @property
    def first(self) -> Token:
        return self.words[0]

    @property
    def last_line(self) -> int:
        return self.block.close.line if self.block else self.words[-1].line


@dataclass(frozen=True, slots=True)
class RawFile:
    source: Source
    statements: tuple[RawStatement, ...]
    comments: tuple[Token, ...]


class _ToRaw(Transformer):
    """Runs inside the LALR parser: builds RawStatement/RawBlock directly."""

    def start(self, children):
        return tuple(children)

    def statement(self, children):
        if children and isinstance(children[-1], RawBlock):
            return RawStatement(tuple(children[:-1]), children[-1])
        return RawStatement(tuple(children), None)

    def block(self, children):
        statements = tuple(children[1:-1])
        depth = 1 + max((s.block.depth for s in statements if s.block), default=0)
        return RawBlock(children[0], statements, children[-1], depth)


class _CommentSink:
    def __init__(self) -> None:
        self.comments: list[Token] = []

    def __call__(self, token: Token) -> Token:
        self.comments.append(token)
        return token


_sink = _CommentSink()
_parser: Lark | None = None


def _lark() -> Lark:
    global _parser
    if _parser is None:
        grammar = resources.files("vnetc.grammar").joinpath("vnet.lark").read_text("utf-8")
        _parser = Lark(grammar, parser="lalr", lexer="contextual", transformer=_ToRaw(),
                       lexer_callbacks={"COMMENT": _sink}, cache=True)
    return _parser


def span_of(source: Source, token: Token) -> Span:
    return Span(source, token.line, token.column, token.column + len(token))


def parse(source: Source) -> RawFile:
    """Parse one file; raise CompileError (with one positioned diagnostic) on bad syntax."""
    _sink.comments = []
    try:
        statements = _lark().parse(source.text)
    except UnexpectedInput as exc:
        raise CompileError(_translate(source, exc).items) from None
    comments = tuple(_sink.comments)
    _sink.comments = []
    for statement in statements:
        if statement.block and statement.block.depth > MAX_DEPTH:
            deep = _too_deep(statement.block)
            out = Collector()
            out.error(f"blocks are nested more than {MAX_DEPTH} deep", span_of(source, deep.open),
                      hint="flatten the file; deep nesting is never needed to describe devices")
            raise CompileError(out.items)
    return RawFile(source, statements, comments)


def _too_deep(block: RawBlock) -> RawBlock:
    """The first block that opens at nesting level MAX_DEPTH + 1."""
    level = 1
    while level <= MAX_DEPTH:
        block = next(s.block for s in block.statements if s.block and s.block.depth == block.depth - 1)
        level += 1
    return block


def _translate(source: Source, exc: UnexpectedInput) -> Collector:
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
        if kind == "RBRACE":
            out.error("unexpected '}': no block is open here", at(1, l=token.line, c=token.column))
        elif kind == "LBRACE":
            out.error("a block must follow the words of a statement", at(1, l=token.line, c=token.column),
                      hint="write 'KIND NAME {' with the brace on the same line as the name")
        elif kind == "STRING" and "WORD" not in exc.expected:
            out.error("expected a newline or ';' after '}'", at(length, l=token.line, c=token.column))
        elif kind == "STRING":
            out.error("a statement must start with a word, not a string",
                      at(length, l=token.line, c=token.column))
        elif kind == "WORD":
            out.error(f"expected a newline or ';' before '{token}'", at(length, l=token.line, c=token.column),
                      hint="a statement ends at a newline or ';'; nothing may follow a block's '}' on its line")
        else:  # pragma: no cover - the grammar has no other terminals
            out.error(f"unexpected {token!r}", at(length, l=token.line, c=token.column))
        return out

    if isinstance(exc, UnexpectedEOF):
        _unclosed(source, out)
        return out
    out.error("syntax error", at())  # pragma: no cover
    return out


def _unclosed(source: Source, out: Collector) -> None:
    """Name the innermost '{' that is never closed."""
    stack: list[Token] = []
    for token in _lark().lex(source.text):
        if token.type == "LBRACE":
            stack.append(token)
        elif token.type == "RBRACE" and stack:
            stack.pop()
    if stack:
        brace = stack[-1]
        out.error("unterminated block: this '{' is never closed", span_of(source, brace),
                  hint="add the missing '}'")
    else:  # pragma: no cover - $END is only unexpected inside a block
        out.error("unexpected end of file", Span(source, 1, 1, 2))
