"""`python -m annotebook demo [DIR]`: the quickstart flow, headless, on a fresh embedded store.

It loads the bundled "shapes" dataset, draws it, fixes its planted mistakes with ordinary pandas, pushes exactly
those edits, reloads to check them, and writes its pictures (PNG) and a text report into DIR. Run again into the
same DIR it starts from the sample as shipped (`annotebook.samples.reset`), so every run writes the same rows.
``before.png`` and ``after.png`` show an asset before and after a fix that changes its picture.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def demo(out: Path, log: list[str]) -> None:
    """Run the quickstart flow; every line of the report goes into ``log``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from annotebook.samples import find_planted, planted_mistakes, reset

    def say(line: str) -> None:
        log.append(line)
        print(line)

    conn = reset()  # the sample as shipped: a second run into the same folder repeats the first exactly
    say(f"store: {conn}\n{conn.datasets().to_string(index=False)}")
    assets = conn.assets("shapes")
    anns = assets.annot.load()
    say(f"\nloaded {len(anns)} annotations of {anns.asset.nunique()} assets")
    say("\n" + anns.annot.summary().to_string(index=False))

    mistakes = find_planted(anns, planted_mistakes())
    # before / after show a fix that changes the picture: a box drawn where one was missing (else a noise box gone)
    visible = mistakes[mistakes.kind_of_mistake.isin(["missing_box", "noise_box"])].sort_values("kind_of_mistake")
    first = str(visible.asset.iloc[0])
    what = ", ".join(k.replace("_", " ") for k in visible[visible.asset == first].kind_of_mistake.unique())
    say(f"\nbefore.png / after.png: {first} ({what})")
    _save(plt, anns.annot.show(first).figure, out / "before.png")
    _save(plt, anns.annot.gallery(n=12), out / "gallery.png")
    _save(plt, anns.annot.plot_labels().figure, out / "labels.png")

    anns.loc[anns.label == "sqare", "label"] = "square"
    anns.annot.delete(anns.label == "noise")
    dups = mistakes[(mistakes.kind_of_mistake == "duplicate") & mistakes.id.notna()]
    extra = dups.sort_values("id", key=lambda s: s.astype(int)).drop_duplicates(["asset", "label", "x0"], keep="last")
    anns.annot.delete(anns.id.isin(extra.id))
    for m in mistakes[mistakes.kind_of_mistake == "missing_box"].itertuples():
        anns.annot.add_box(m.asset, m.label, (m.x0, m.y0, m.x1, m.y1), author="demo")
    changes = anns.annot.diff()
    say(f"\n{changes!r}")
    report = anns.annot.push()
    say(f"\n{report.summary()}")

    again = conn.assets("shapes").annot.load()
    assert not (again.label == "sqare").any() and not (again.label == "noise").any(), "edits did not land"
    assert len(again) == len(anns) - int(anns.deleted.sum()), "a fresh load disagrees with the pushed frame"
    assert len(anns.annot.diff()) == 0
    say(f"fresh load: {len(again)} annotations; no 'sqare', no 'noise'; the pushed frame diffs empty")
    _save(plt, again.annot.show(first).figure, out / "after.png")
    say(f"rows of shapes now: {len(again)}")
    say(f"\npictures: {', '.join(sorted(p.name for p in out.glob('*.png')))} in {out}")
    _ = pd  # pandas is the table of every line above


def _save(plt: object, fig: object, path: Path) -> None:
    fig.savefig(path, dpi=80, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]


def version() -> str:
    """``annotebook X (Python, pandas, numpy versions)``: what ``--version`` prints, read without importing them."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from . import __version__

    def of(name: str) -> str:
        try:
            return installed(name)
        except PackageNotFoundError:
            return "missing"

    py = ".".join(map(str, sys.version_info[:3]))
    return f"annotebook {__version__} (Python {py}, pandas {of('pandas')}, numpy {of('numpy')}; MIT License)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m annotebook``."""
    parser = argparse.ArgumentParser(prog="annotebook", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="run the quickstart flow on a fresh store and write pictures + report")
    run.add_argument("dir", nargs="?", default="annotebook-demo", help="where pictures and report go")
    args = parser.parse_args(argv)
    out = Path(args.dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["ANNOTEBOOK_HOME"] = str(out / "home")  # a fresh store and registry, beside the pictures
    log: list[str] = []
    try:
        demo(out, log)
    finally:
        (out / "report.txt").write_text("\n".join(log) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
