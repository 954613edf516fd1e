"""systemd's INI-style unit files: sections in order, keys in order, repeatable sections."""

from __future__ import annotations

from typing import Any, Iterable

Section = tuple[str, list[tuple[str, str]]]


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def section(name: str, pairs: Iterable[tuple[str, Any]]) -> Section:
    """A section of the pairs whose value is not None (so optional keys just vanish)."""
    return name, [(key, str(value)) for key, value in pairs if value is not None]


def render(sections: Iterable[Section], header: str | None = None) -> str:
    """The file text; empty sections are dropped, one blank line between sections."""
    parts = []
    if header:
        parts.append("".join(f"# {line}\n" if line else "#\n" for line in header.split("\n")))
    for name, pairs in sections:
        if not pairs:
            continue
        for key, value in pairs:
            if "\n" in value:
                raise ValueError(f"{name}.{key}: a value cannot span lines")  # the checker forbids it
        parts.append(f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in pairs))
    return "\n".join(parts)
