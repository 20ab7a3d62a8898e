"""Documents built from folders of Markdown/text: one per section of every file, cited by file and heading."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from mdslab.llm.corpus import Kind, SourceDocument

TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
# A handbook page is kilobytes; a multi-megabyte "text" file is a log or a data dump that would crowd
# the index (and take minutes to embed): skipped, and said so.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
log = logging.getLogger(__name__)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def docs_scope(root: Path) -> str:
    return f"docs:{root.resolve()}"


def _sections(text: str) -> Iterator[tuple[str | None, str]]:
    """(heading path, body) per Markdown section; text before the first heading has no heading."""
    trail: list[str] = []
    body: list[str] = []
    heading: str | None = None
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else HEADING.match(line)
        if match:
            if "".join(body).strip():
                yield heading, "\n".join(body).strip()
            level = len(match.group(1))
            trail = [*trail[: level - 1], match.group(2).strip()]
            heading, body = " > ".join(trail), []
        else:
            body.append(line)
    if "".join(body).strip():
        yield heading, "\n".join(body).strip()


def unwrap(text: str) -> str:
    """Join hard-wrapped lines of a paragraph or list item, so chunks and quoted sentences are whole;
    headings, list items, tables and code blocks keep their own lines."""
    out: list[str] = []
    in_code = False
    for raw in text.splitlines():
        line = raw.rstrip()
        fence = line.lstrip().startswith("```")
        in_code = in_code != fence
        stripped = line.lstrip()
        starts_block = (
            in_code
            or fence
            or not stripped
            or stripped[:1] in "#|>"
            or stripped[:2] in ("- ", "* ", "+ ")
            or bool(re.match(r"\d+[.)] ", stripped))
        )
        previous = out[-1].lstrip() if out else ""
        joinable = previous and not previous.startswith(("#", "|", "```")) and not in_code
        if out and joinable and not starts_block:
            out[-1] = f"{out[-1]} {stripped}"
        else:
            out.append(line)
    return "\n".join(out)


def file_documents(root: Path) -> list[SourceDocument]:
    """One document per section of every Markdown/text file under ``root`` (recursively).

    ``file`` is the path relative to ``root``'s parent (``docs/design-notes.md``), so a citation
    names a file a person can open from where they indexed it.
    """
    root = root.resolve()
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder to index")
    paths = _text_files(root)
    base = root.parent
    scope = docs_scope(root)
    documents = []
    for path in paths:
        relative = path.relative_to(base).as_posix()
        text = unwrap(path.read_text(encoding="utf-8", errors="replace"))
        sections = _sections(text) if path.suffix.lower() in (".md", ".markdown") else iter([(None, text.strip())])
        for ordinal, (heading, body) in enumerate(sections):
            documents.append(
                SourceDocument(
                    doc_id=f"file:{path}#{ordinal}",  # absolute: two folders may hold the same relative path
                    scope=scope,
                    kind=Kind.DOCUMENT,
                    text=f"{heading}\n{body}" if heading else body,
                    file=relative,
                    heading=heading,
                )
            )
    return documents


def _text_files(root: Path) -> list[Path]:
    """The text files to index under ``root``, staying inside it: a link to a folder is not entered and a
    linked file whose target lies outside ``root`` is not read (was: both followed, anywhere on the
    machine); files over MAX_DOCUMENT_BYTES are left out. Each skip is logged with its reason."""
    if root.is_file():
        candidates = [root]
    else:
        candidates = []
        for folder, folders, files in os.walk(root):  # followlinks=False
            for name in sorted(folders):
                if (Path(folder) / name).is_symlink():
                    log.warning("skipped %s: a link to a folder (not followed)", Path(folder) / name)
            folders.sort()
            candidates += [Path(folder) / name for name in sorted(files) if Path(name).suffix.lower() in TEXT_SUFFIXES]
    kept = []
    for path in candidates:
        target = path.resolve()
        if path.is_symlink() and not target.is_relative_to(root if root.is_dir() else root.parent):
            log.warning("skipped %s: a link to %s, outside the folder being indexed", path, target)
        elif not target.is_file():
            log.warning("skipped %s: not a regular file", path)
        elif (size := target.stat().st_size) > MAX_DOCUMENT_BYTES:
            log.warning("skipped %s: %s bytes, over the %s-byte limit for one document", path, f"{size:,}",
                        f"{MAX_DOCUMENT_BYTES:,}")  # fmt: skip
        else:
            kept.append(path)
    return kept
