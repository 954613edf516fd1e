"""`vnetc fmt`: the canonical layout of a .vnet file.

Works on the raw parse (before expansion), so `include`, `let` and `for` stay
as written. The layout:

- one statement per line (`;` becomes a newline), words separated by one space,
  words and strings kept exactly as written;
- blocks open with ` {` on the statement's line and close with `}` on a line
  of their own; an empty block is `{}`; four spaces of indentation per level;
- comments are kept: a comment on a line of its own stays before the statement
  that follows it, at that statement's indentation; a comment after code stays
  at the end of that line, and trailing comments of consecutive lines are
  aligned one column past the longest code;
- runs of blank lines become one; none after `{`, before `}`, at the start or
  the end of the file; the file ends with one newline.

fmt of fmt is fmt: the layout depends only on the tokens and comments.
"""

from __future__ import annotations

import bisect

from .parser import RawFile, RawStatement, Tok

INDENT = "    "


class _Line:
    __slots__ = ("indent", "code", "comment")

    def __init__(self, indent: int, code: str, comment: str | None = None):
        self.indent = indent
        self.code = code
        self.comment = comment


class _Formatter:
    def __init__(self, raw: RawFile):
        self.lines: list[_Line | None] = []   # None: a blank line
        self.last_line = 0                     # the last source line emitted
        # A comment after a token on the same line trails that token's line;
        # other comments stand alone.
        marks: list[tuple[int, int, int]] = []  # (line, column, id of the token)
        self._collect(raw.statements, marks)
        marks.sort()
        keys = [(line, col) for line, col, _ in marks]
        self.trailing: dict[int, list[Tok]] = {}
        self.standalone: list[Tok] = []
        for comment in sorted(raw.comments, key=lambda t: (t.line, t.column)):
            i = bisect.bisect_left(keys, (comment.line, comment.column)) - 1
            if i >= 0 and marks[i][0] == comment.line:
                self.trailing.setdefault(marks[i][2], []).append(comment)
            else:
                self.standalone.append(comment)
        self.next_standalone = 0

    def _collect(self, statements: tuple[RawStatement, ...], marks: list) -> None:
        for statement in statements:
            last = statement.words[-1]
            marks.append((last.line, last.column, id(last)))
            if statement.block:
                marks.append((statement.block.open.line, statement.block.open.column, id(statement.block.open)))
                marks.append((statement.block.close.line, statement.block.close.column, id(statement.block.close)))
                self._collect(statement.block.statements, marks)

    def _gap(self, line: int) -> None:
        """A blank line if the source had one before `line` (never right after an opening brace)."""
        if self.last_line and line > self.last_line + 1 and self.lines:
            previous = self.lines[-1]
            if previous is not None and not previous.code.endswith("{"):
                self.lines.append(None)

    def _comments_before(self, line: int, depth: int) -> None:
        while self.next_standalone < len(self.standalone) and self.standalone[self.next_standalone].line < line:
            comment = self.standalone[self.next_standalone]
            self._gap(comment.line)
            self.lines.append(_Line(depth, comment.value.rstrip()))
            self.last_line = comment.line
            self.next_standalone += 1

    def _emit(self, depth: int, code: str, token: Tok, line: int) -> None:
        trailing = self.trailing.get(id(token))
        comment = " ".join(c.value.rstrip() for c in trailing) if trailing else None
        self.lines.append(_Line(depth, code, comment))
        self.last_line = line

    def statements(self, statements: tuple[RawStatement, ...], depth: int) -> None:
        for statement in statements:
            first = statement.words[0]
            self._comments_before(first.line, depth)
            self._gap(first.line)
            words = " ".join(w.value for w in statement.words)
            block = statement.block
            if block is None:
                self._emit(depth, words, statement.words[-1], statement.words[-1].line)
                continue
            empty = not block.statements and not self._has_comment_inside(block)
            if empty and id(block.open) not in self.trailing:
                self._emit(depth, words + " {}", block.close, block.close.line)
                continue
            self._emit(depth, words + " {", block.open, block.open.line)
            self.statements(block.statements, depth + 1)
            self._comments_before(block.close.line, depth + 1)
            self._emit(depth, "}", block.close, block.close.line)

    def _has_comment_inside(self, block) -> bool:
        i = self.next_standalone
        return i < len(self.standalone) and self.standalone[i].line < block.close.line

    def render(self) -> str:
        self._comments_before(10**12, 0)
        while self.lines and self.lines[-1] is None:
            self.lines.pop()
        out: list[str] = []
        i = 0
        while i < len(self.lines):
            line = self.lines[i]
            if line is None:
                out.append("")
                i += 1
                continue
            if line.comment is None or not line.code:
                out.append(INDENT * line.indent + line.code)
                i += 1
                continue
            # a run of consecutive code lines with trailing comments: align them
            run = [line]
            j = i + 1
            while j < len(self.lines):
                nxt = self.lines[j]
                if nxt is None or nxt.comment is None or not nxt.code:
                    break
                run.append(nxt)
                j += 1
            width = max(len(INDENT * r.indent + r.code) for r in run)
            for r in run:
                code = INDENT * r.indent + r.code
                out.append(f"{code.ljust(width)}  {r.comment}")
            i = j
        return "\n".join(out) + "\n" if out else ""


def format_raw(raw: RawFile) -> str:
    formatter = _Formatter(raw)
    formatter.statements(raw.statements, 0)
    return formatter.render()
