"""systemd's INI-style unit files: sections in order, keys in order, repeatable sections.

A file is built as text, a section at a time: :func:`section` turns a section's
pairs into its text, :func:`render` puts a comment and the sections together.
No intermediate lists of pairs: a build renders thousands of files.
"""

from __future__ import annotations

from typing import Any, Iterable


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def section(name: str, pairs: Iterable[tuple[str, Any]]) -> str:
    """The section's text: `[name]` and a `key=value` line for each pair whose value is not None
    (so optional keys just vanish); "" when no pair has a value (an empty section is dropped)."""
    lines = [f"[{name}]\n"]
    for key, value in pairs:
        if value is not None:
            lines.append(f"{key}={value!s}\n")
    if len(lines) == 1:
        return ""
    text = "".join(lines)
    if text.count("\n") != len(lines):   # a value holds a newline (cheaper to see here than value by value)
        key = next(line.partition("=")[0] for line in lines if line.count("\n") > 1)
        raise ValueError(f"{name}.{key}: a value cannot span lines")  # the checker must forbid it
    return text


def comment(text: str) -> str:
    """`text` as comment lines (`# …`; an empty line: `#`)."""
    return "".join(f"# {line}\n" if line else "#\n" for line in text.split("\n"))


def render(head: str, sections: Iterable[str]) -> str:
    """The file text: `head` (comment lines) and the non-empty sections, one blank line between."""
    return "\n".join([head, *filter(None, sections)])
