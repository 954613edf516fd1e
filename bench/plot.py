"""PNG plots of time against size: one per command of a report that has series.

Needs matplotlib (the `bench` extra: `pip install -e '.[bench]'`); without it
the benchmarks run all the same and say that no plot was drawn.
"""

from __future__ import annotations

from pathlib import Path

from .harness import Report, log

REFERENCE = "netplan generate"


def plot(report: Report, results: Path) -> list[Path]:
    """Draw every command of report.data["series"] (lines: site shapes, log-log); the reference
    command is drawn dashed on every plot. Returns the files written."""
    if not report.data or not report.data.get("series"):
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log(f"{report.name}: matplotlib is not installed (pip install -e '.[bench]'): no plots drawn")
        return []
    series: dict[str, dict[str, list[tuple[int, float]]]] = report.data["series"]
    reference = series.get(REFERENCE, {})
    labels = sorted({label for lines in series.values() for label in lines})
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    written = []
    results.mkdir(parents=True, exist_ok=True)
    for command, lines in series.items():
        if command == REFERENCE:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
        for label, points in sorted(lines.items()):
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, marker="o", color=colours[label], label=f"vnetc {command}: {label}")
            if label in reference:
                rx, ry = zip(*sorted(reference[label]))
                ax.plot(rx, ry, linestyle="--", color=colours[label], alpha=0.6, label=f"{REFERENCE}: {label}")
        if len(xs) > 1:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("devices")
        ax.set_ylabel("wall time, s (median)")
        ax.set_title(f"vnetc {command} (solid) and {REFERENCE} (dashed)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        path = results / f"{report.name}-{command.removeprefix('build ').replace(' ', '-')}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
