"""Generated blocks of the docs: every number a doc quotes from a run is written between

    <!-- generated:NAME -->
    ...
    <!-- /generated -->

by the script or command that made it (``fill``), and a test regenerates the block from the
committed run files and compares (``block`` reads one back)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["BEGIN", "END", "fill", "fill_file", "block", "names", "write_or_check", "publish"]

BEGIN = "<!-- generated:{} -->"
END = "<!-- /generated -->"


def names(doc: str) -> set[str]:
    """The generated blocks a doc marks."""
    return set(re.findall(r"<!-- generated:([\w-]+) -->", doc))


def _pattern(name: str) -> re.Pattern:
    return re.compile(re.escape(BEGIN.format(name)) + r".*?" + re.escape(END), re.S)


def fill(doc: str, blocks: dict[str, str], *, every: bool = True) -> str:
    """The doc with each marked block replaced by its generated text. With ``every`` (one
    generator owns the whole doc) a marker without a block is an error; a block whose
    marker is absent is skipped."""
    found = names(doc)
    missing = sorted(found - set(blocks))
    if every and missing:
        raise ValueError(f"the doc marks blocks that the run does not generate: {missing}")
    for name, text in blocks.items():
        if name in found:
            doc = _pattern(name).sub(lambda m: f"{BEGIN.format(name)}\n{text}\n{END}", doc)
    return doc


def fill_file(path: Path, blocks: dict[str, str], *, every: bool = True) -> None:
    path = Path(path)
    path.write_text(fill(path.read_text(), blocks, every=every))


def block(doc: str, name: str) -> str:
    """The text of one generated block (without its markers)."""
    m = _pattern(name).search(doc)
    if m is None:
        raise KeyError(f"no generated block {name!r} in the doc")
    return m.group(0)[len(BEGIN.format(name)) + 1 : -len(END) - 1]


def write_or_check(files: dict[Path, str], *, check: bool) -> int:
    """Write each file's new text, or with ``check`` only say which are out of date; the
    exit status of a generator's ``--check`` (1 when any is stale)."""
    if check:
        stale = [p.name for p, text in files.items() if Path(p).read_text() != text]
        print("out of date: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for p, text in files.items():
        Path(p).write_text(text)
    return 0


def publish(
    data: dict,
    rendered: str,
    *,
    json_path: Path,
    doc_path: Path,
    block: str,
    check: bool,
    every: bool = True,
) -> int:
    """A generator's whole output: ``data`` as JSON at ``json_path`` and ``rendered`` as the
    generated block ``block`` of ``doc_path`` (written, or with ``check`` compared), then the
    rendered block printed after a write. Returns the generator's exit status."""
    import json

    doc = fill(Path(doc_path).read_text(), {block: rendered}, every=every)
    status = write_or_check(
        {json_path: json.dumps(data, indent=2) + "\n", doc_path: doc}, check=check
    )
    if not check:
        print(rendered)
    return status
