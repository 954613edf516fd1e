"""nixos: the direct path (_Units) writes what the general one (parse_ini -> unit_attrs -> unit_nix)
writes, on every unit of random valid sites and of networkd files with characters inserted that
parse_ini reads its own way (line breaks, spaces, comments, repeated keys and sections, rejected
keys and values). Seeded: the same examples every run."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, seed, settings

from strategies import sites
from vnetc.backends import TARGETS, nixos
from vnetc.compiler import compile_source

NETWORKD = TARGETS["networkd"]


@pytest.fixture(autouse=True)
def _no_assertion_pass_hook(monkeypatch):
    """As in tests/compiler/test_properties.py: pytest's assertion pass hook (pyproject.toml) would
    make every passing assert of these hundreds of examples slow."""
    from _pytest.assertion import util
    monkeypatch.setattr(util, "_assertion_pass", None)

INSERTS = ["\r", "\x0b", "\x1c", "\x85", "\u2028", " ", "\t", "\xa0", "#", ";", "[", "]", "=", "\n", "\n\n",
           "\n#c\n", "\nName=again", "\nAddress=10.9.9.9/8", "\nBogus=1", "\nId=x", "\nId=007", '"', "\\", "${x}",
           "\n\n[Bridge]\nSTP=no", "\n\n[Route]\nMetric=x", "\n\n[Network]\nDHCP=yes", "\n\n[Unknown]\nA=b",
           "\n\n[Match]", "yes", "0", "é", " \n"]


def general(kind: str, stem: str, text: str) -> str | None:
    try:
        attrs = nixos.unit_nix(nixos.unit_attrs(kind, nixos.parse_ini(text)))
    except ValueError:
        return None
    first = text.partition("\n")[0]
    first = first.splitlines()[0] if first else ""
    comment = f"      # {first[2:]}\n" if first.startswith("# ") else ""
    return f"{comment}      {nixos.nix_name(stem)} = {attrs};"


def units_of(site) -> list[tuple[str, str, str]]:
    out = []
    for host in site.hosts:
        for artifact in NETWORKD.render(site, host).files:
            stem, _, kind = artifact.name.rpartition(".")
            if kind in ("netdev", "network"):
                out.append((kind, stem, artifact.content))
    return out


def check(writer, kind: str, stem: str, text: str) -> None:
    want = general(kind, stem, text)
    if want is None:    # parse_ini refuses the text: so must the direct way, by taking the general one
        head, *sections = text.rstrip("\n").split("\n\n[")
        assert not (head[:1] == "#" and head.isprintable() and writer._plain(kind, sections) is not None)
    else:
        assert writer.unit(kind, stem, text) == want, text


@seed(20261129)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sites())
def test_direct_path_writes_what_the_general_one_does(generated):
    site = compile_source(generated.text, "site.vnet").site
    writer = nixos._Units()
    for kind, stem, text in units_of(site):
        check(writer, kind, stem, text)


@seed(20261129)
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sites())
def test_direct_path_on_mutated_files(generated):
    site = compile_source(generated.text, "site.vnet").site
    rng = random.Random(generated.text)
    writer = nixos._Units()
    for kind, stem, text in units_of(site) * 20:
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(INSERTS) + text[at:]
        check(writer, kind, stem, text)
