"""One list of report sections, rendered as Markdown (plots as PNG files beside it) and as one
self-contained HTML page (plots embedded as base64 PNG; no external file, no script).

A :class:`Section` holds blocks: :class:`Text` (``**bold**`` allowed), :class:`Bullets` (a bullet may be
a ``(key, value)`` pair, the key in bold), :class:`Table`, :class:`MarkdownTable` (a table already in
Markdown, as :func:`tune.evaluate.markdown_table` writes it) and :class:`Image` (a plot by name).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

from .plots import PLOTS


@dataclass(frozen=True)
class Text:
    """A paragraph; ``only`` renders it in one format (``"md"`` or ``"html"``)."""

    text: str
    only: str | None = None


@dataclass(frozen=True)
class Bullets:
    """A bullet list; an item is a string or a ``(key, value)`` pair shown as "**key**: value"."""

    items: list[str | tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """A table of text cells."""

    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class MarkdownTable:
    """A table written in Markdown (with footnote lines after it, which HTML shows as paragraphs)."""

    markdown: str


@dataclass(frozen=True)
class Image:
    """A plot by its name in :data:`tune.reporting.plots.PLOTS` (``learning_curves``, ...)."""

    name: str


Block = Text | Bullets | Table | MarkdownTable | Image


@dataclass(frozen=True)
class Section:
    """A titled part of the report."""

    title: str
    blocks: list[Block] = field(default_factory=list)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _md_to_html_table(md: str) -> str:
    """A Markdown table (as :func:`tune.evaluate.markdown_table` writes it) as HTML; the lines after the
    table (its footnote) become paragraphs."""
    lines = [ln.strip() for ln in md.strip().splitlines()]
    n = next((i for i, ln in enumerate(lines) if not ln.startswith("|")), len(lines))

    def plain(text: str) -> str:
        return text.replace("**", "").replace("\\*", "*")

    def cells(line: str) -> list[str]:
        return [plain(c.strip()) for c in line.strip("|").split("|")]

    notes = "".join(f"<p>{html.escape(plain(ln))}</p>" for ln in lines[n:] if ln)
    return _html_table(cells(lines[0]), [cells(ln) for ln in lines[2:n]]) + notes


def _md_block(block: Block) -> str | None:
    if isinstance(block, Text):
        return None if block.only == "html" else block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- **{b[0]}**: {b[1]}" if isinstance(b, tuple) else f"- {b}" for b in block.items)
    if isinstance(block, Table):
        return _md_table(block.header, block.rows)
    if isinstance(block, MarkdownTable):
        return block.markdown
    return f"![{PLOTS[block.name]}]({block.name}.png)"


def _html_text(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _html_block(block: Block, pngs: dict[str, bytes]) -> str | None:
    if isinstance(block, Text):
        return None if block.only == "md" else f"<p>{_html_text(block.text)}</p>"
    if isinstance(block, Bullets):
        items = "".join(f"<li><b>{html.escape(b[0])}</b>: {html.escape(b[1])}</li>" if isinstance(b, tuple)
                        else f"<li>{html.escape(b)}</li>" for b in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        return _html_table(block.header, block.rows)
    if isinstance(block, MarkdownTable):
        return _md_to_html_table(block.markdown)
    data = base64.b64encode(pngs[block.name]).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(PLOTS[block.name])}">'


def render_markdown(title: str, generated: str, lead: list[Block], sections: list[Section]) -> str:
    """The report as Markdown: ``# title``, the generation time, the ``lead`` blocks, then each section
    under ``## title``; a blank line after every block; images as ``<name>.png`` beside the file."""
    lines = [f"# {title}", "", f"Generated {generated}.", ""]
    for heading, blocks in [(None, lead), *((s.title, s.blocks) for s in sections)]:
        if heading is not None:
            lines += [f"## {heading}", ""]
        for block in blocks:
            text = _md_block(block)
            if text is not None:
                lines += [text, ""]
    return "\n".join(lines)


_STYLE = ("<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
          "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
          "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f0f0f0}"
          "img{max-width:100%;display:block;margin:1em 0}code{background:#f4f4f4;padding:1px 4px}</style>")


def render_html(title: str, generated: str, lead: list[Block], sections: list[Section],
                pngs: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page: the same blocks as :func:`render_markdown`, the
    plots (``pngs``: PNG bytes by name) embedded as base64."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>", _STYLE,
           "</head><body>", f"<h1>{e(title)}</h1>", f"<p>Generated {e(generated)}.</p>"]
    for heading, blocks in [(None, lead), *((s.title, s.blocks) for s in sections)]:
        if heading is not None:
            out.append(f"<h2>{e(heading)}</h2>")
        out += [h for h in (_html_block(b, pngs) for b in blocks) if h is not None]
    out += ["</body></html>", ""]
    return "\n".join(out)
