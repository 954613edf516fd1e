"""The cases every real-consumer and rendering test runs on: every example, every golden
case with an input (an example's golden case is the example itself: it runs once, under
the example's id), and the test module's own inline sites.

    CASES = all_cases(INLINE)        # [Case("example-seed-bridge", path), …, Case("inline-x", text=…)]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "golden"


@dataclass(frozen=True)
class Case:
    id: str
    path: Path | None = None     # the .vnet file, or
    text: str | None = None      # the source of an inline case


def golden_input(case: Path) -> Path:
    """The input of golden case directory CASE: golden.yml's `input`, else input.vnet."""
    meta = case / "golden.yml"
    named = (YAML(typ="safe").load(meta.read_text("utf-8")) or {}).get("input") if meta.exists() else None
    return (case / (named or "input.vnet")).resolve()


def all_cases(inline: dict[str, str] | None = None) -> list[Case]:
    cases, seen = [], set()
    for path in sorted(EXAMPLES.rglob("*.vnet")):
        cases.append(Case("example-" + "-".join(path.relative_to(EXAMPLES).with_suffix("").parts), path.resolve()))
        seen.add(path.resolve())
    for yml in sorted(GOLDEN.glob("*/golden.yml")):
        path = golden_input(yml.parent)
        if path not in seen and path.is_file():
            cases.append(Case(f"golden-{yml.parent.name}", path))
            seen.add(path)
    return cases + [Case(f"inline-{name}", text=text.lstrip()) for name, text in (inline or {}).items()]


def host_params(cases: list[Case], site_of: Callable[[Case], Any]) -> list:
    """One pytest param (case, host name) per host of each case whose `site_of(case)` is not None
    (None: the case does not compile or build for the module's target), id CASE[-HOST]."""
    import pytest

    params = []
    for case in cases:
        site = site_of(case)
        for host in site.hosts if site is not None else ():
            params.append(pytest.param(case, host.name, id=case.id + (f"-{host.name}" if host.name else "")))
    return params


def host_named(site: Any, name: str | None) -> Any:
    """The host of `site` called `name` (None: the implicit host of a file without host blocks)."""
    return next(h for h in site.hosts if h.name == name)
