"""The report as one self-contained HTML page: inline CSS, no script, no font, no request.

The page links the mirrored images (their thumbnails where made) by paths
relative to where the page is written, so it works opened from disk and
moved together with the site. Everything that comes from a post or a server
is escaped; a Content-Security-Policy forbids every script and every
resource but those images, so a slip could not load anything either.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from urllib.parse import quote

from mirror.output import files as outfile
from mirror.output.report import (
    check_detail,
    diffs,
    headline,
    host_columns,
    host_rows,
    plan_text,
    size_text,
)
from mirror.output.scan import places
from mirror.stages.report import STATUSES, Report
from mirror.wording import counted

_CSP = "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'"
_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d2329; background: #fff; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border-bottom: 1px solid #dde2e6; padding: .25rem .6rem; text-align: left;
         vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 13px/1.4 ui-monospace, monospace; overflow-wrap: anywhere; }
pre { background: #f5f7f8; padding: .75rem; overflow-x: auto; white-space: pre-wrap; }
dl.summary { display: flex; flex-wrap: wrap; gap: .5rem; }
dl.summary div { border: 1px solid #dde2e6; border-radius: 6px; padding: .4rem .8rem; }
dl.summary dt { font-size: .8rem; color: #5b6670; } dl.summary dd { margin: 0;
       font-size: 1.3rem; font-weight: 600; }
.mirrored, .ok { color: #17803d; } .pending { color: #9a6700; }
.failed, .broken { color: #c0262d; font-weight: 600; }
.add { color: #17803d; } .del { color: #c0262d; } .hunk { color: #6e40c9; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr));
        gap: .75rem; }
.grid figure { margin: 0; } .grid img { width: 100%; height: 8rem; object-fit: cover;
        background: #eef1f3; border-radius: 4px; }
.grid figcaption { font-size: .75rem; color: #5b6670; overflow-wrap: anywhere; }
"""
_SUMMARY_KEYS = (
    "posts", "refs", "urls", "hosts", *STATUSES, "repaired_refs", "unreadable", "rewrite_posts",
    "rewrite_refs",
)  # fmt: skip


def render(report: Report, page: Path) -> str:
    """The page, for writing at ``page`` (the image links are relative to its folder)."""
    counts = report.counts()
    parts = [
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>Image report: {counted(counts['urls'], 'image')} in"
        f" {counted(counts['posts'], 'post')}</title>\n",
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>Image report</h1>\n",
        "".join(f"<p>{escape(line)}</p>\n" for line in headline(report)),
        '<dl class="summary">\n',
        "".join(
            f"<div><dt>{escape(key.replace('_', ' '))}</dt>"
            f'<dd data-count="{key}">{counts[key]}</dd></div>\n'
            for key in _SUMMARY_KEYS
        ),
        "</dl>\n",
        _hosts(report),
        _problems(report),
        _unreadable(report),
        _gallery(report, page),
        _repaired(report),
        _migrate(report),
        "</body>\n</html>\n",
    ]
    return "".join(parts)


def _table(header: list[str], rows: list[str], *, numeric_from: int | None = None) -> str:
    cells = "".join(
        f"<th{' class=n' if numeric_from is not None and i >= numeric_from else ''}>"
        f"{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    return f"<table>\n<thead><tr>{cells}</tr></thead>\n<tbody>\n{''.join(rows)}</tbody>\n</table>\n"


def _hosts(report: Report) -> str:
    rows = [
        f'<tr data-host="{escape(cells[0])}"><td>{escape(cells[0])}</td>'
        + "".join(
            f'<td class="n" data-col="{col}">{cell}</td>'
            for col, cell in zip(host_columns(report)[1:], cells[1:], strict=True)
        )
        + "</tr>\n"
        for cells in host_rows(report)
    ]
    return "<h2>Hosts</h2>\n" + _table(host_columns(report), rows, numeric_from=1)


def _problems(report: Report) -> str:
    if not report.problems:
        return "<h2>Broken images</h2>\n<p>None.</p>\n"
    rows = [
        f'<tr class="problem"><td class="{u.status}">{u.status}</td>'
        f"<td><code>{escape(u.url)}</code></td><td>{escape(u.error or '')}</td>"
        f"<td>{escape(places(u.uses, limit=None))}</td></tr>\n"
        for u in report.problems
    ]
    return f"<h2>Broken images ({len(rows)})</h2>\n" + _table(
        ["status", "URL", "reason", "used by"], rows
    )


def _repaired(report: Report) -> str:
    if not report.repaired:
        return ""
    rows = [
        f"<tr><td>{escape(f'{r.post}:{r.line}')}</td><td><code>{escape(r.raw)}</code></td>"
        f"<td><code>{escape(r.url)}</code></td><td>{escape('; '.join(r.repairs))}</td></tr>\n"
        for r in report.repaired
    ]
    return f"<h2>Repaired URLs ({counted(len(rows), 'reference')})</h2>\n" + _table(
        ["where", "as written", "repaired", "repairs"], rows
    )


def _unreadable(report: Report) -> str:
    posts = report.scan.unreadable
    if not posts:
        return ""
    items = "".join(
        f"<li><code>{escape(p.post)}</code>: {escape('; '.join(p.problems))}</li>\n" for p in posts
    )
    return f"<h2>Posts that could not be read ({len(posts)})</h2>\n<ul>\n{items}</ul>\n"


def _migrate(report: Report) -> str:
    reachable = [u for u in report.urls if u.status == "ok"]
    checked = (
        "<p>Reachable, to fetch: "
        + ", ".join(
            f"<code>{escape(u.url)}</code> ({escape(check_detail(u.probe))})" for u in reachable
        )
        + "</p>\n"
        if reachable
        else ""
    )
    diff = diffs(report)
    lines = "".join(f"{_diff_line(line)}\n" for line in diff.splitlines())
    return (
        "<h2>What migrate would do</h2>\n"
        f"{checked}<pre>{escape(plan_text(report, diff=bool(diff)))}</pre>\n"
        + (f'<pre class="diff">{lines}</pre>\n' if diff else "")
    )


def _diff_line(line: str) -> str:
    kind = (
        "hunk" if line.startswith("@@")
        else "add" if line.startswith("+") and not line.startswith("+++")
        else "del" if line.startswith("-") and not line.startswith("---")
        else ""
    )  # fmt: skip
    return f'<span class="{kind}">{escape(line)}</span>' if kind else escape(line)


def _gallery(report: Report, page: Path) -> str:
    if not report.previews:
        return "<h2>Mirrored images</h2>\n<p>None yet.</p>\n"
    folder = page.resolve().parent
    figures = []
    for url in report.urls:
        shown = report.previews.get(url.url)
        if shown is None or url.record is None or url.record.path is None:
            continue
        thumb = _link(report.mirror_dir / shown, folder)
        original = _link(report.mirror_dir / url.record.path, folder)
        size = f" · {size_text(url.size)}" if url.size is not None else ""
        figures.append(
            f'<figure><a href="{original}"><img src="{thumb}" alt="{escape(url.url)}"></a>'
            f"<figcaption>{escape(url.url)}{size}</figcaption></figure>\n"
        )
    return (
        f'<h2>Mirrored images ({len(figures)})</h2>\n<div class="grid">\n{"".join(figures)}</div>\n'
    )


def _link(target: Path, folder: Path) -> str:
    """``target`` relative to the page's folder, as an escaped URL path."""
    relative = Path(os.path.relpath(target.resolve(), folder)).as_posix()
    return escape(quote(relative), quote=True)


def write_html(report: Report, path: Path) -> None:
    """Write the page to ``path`` (see :mod:`mirror.output.files`)."""
    outfile.write(path, render(report, path).encode("utf-8"))
