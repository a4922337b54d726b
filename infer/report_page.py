"""The report page: thumbnails (Pillow, once per image) and the HTML, one self-contained file.

Every string that comes from data (names, ranks, paths, errors, run settings) goes through ``html.escape``.
The thumbnails are JPEG data URIs kept once each in a JSON block; a small inline script (allowed by the
page's Content-Security-Policy by its hash, as the only script) puts them into a gallery when it is shown.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import escape
from pathlib import Path

from hier.metrics.bounds import most_surely_short

THUMB_SIDE = 96  # pixels, the longer side
THUMB_QUALITY = 70  # JPEG quality
OPEN_DEPTH_SMALL, SMALL_TREE = 2, 150  # trees of at most SMALL_TREE shown nodes open two levels, others one
MAX_UNREADABLE = 100  # unreadable images listed


@dataclass
class Gallery:
    key: str  # the element id: g-<node index>, g-mistakes, g-above
    title: str
    total: int  # images that belong in it
    items: list[int]  # record indices shown (a sample when total is larger)
    order: str  # how the items are sorted, said under the title


@dataclass
class Page:
    """Everything the page shows (built by ``report.write_report``)."""

    info: object  # report.RunInfo
    taxonomy: object  # hier.taxo.Taxonomy
    records: Sequence  # report.Record
    stats: object  # report.Stats
    galleries: list[Gallery]
    thumbnails: dict[int, tuple[str, int, int] | None]  # record index -> (base64 JPEG, width, height)
    confidence: float
    threshold: float
    entry: dict | None  # the calibration table's entry used (None: uncalibrated)
    data: str  # what the images are
    limits: dict


# ---- thumbnails ---------------------------------------------------------------------------------


def thumbnail(file: Path) -> tuple[str, int, int] | None:
    """(base64 JPEG, width, height) of the image at most THUMB_SIDE a side; None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            if image.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale straight from the DCT
                image.draft("L" if image.mode == "L" else "RGB", (THUMB_SIDE, THUMB_SIDE))
            small = image.convert("L" if image.mode in ("L", "I", "I;16", "1") else "RGB")
        small.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=THUMB_QUALITY)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return base64.b64encode(buffer.getvalue()).decode("ascii"), small.width, small.height


def make_thumbnails(records: Sequence, wanted: Sequence[int], progress=None) -> dict[int, tuple[str, int, int] | None]:
    """Thumbnails of the records ``wanted``, each made once, on a few threads (Pillow decodes without the GIL)."""
    task = progress.add("thumbnails", total=len(wanted)) if progress else None
    out = {}
    files = [records[i].file or Path(records[i].path) for i in wanted]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for i, made in zip(wanted, pool.map(thumbnail, files)):
            out[i] = made
            if progress:
                progress.advance(task, images=1)
    if progress:
        progress.done(task)
    return out


# ---- the page -----------------------------------------------------------------------------------

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#222}
h1{font-size:1.5em;margin-bottom:.3em}h2{font-size:1.2em;border-bottom:1px solid #ddd;margin-top:1.5em}
h3{font-size:1.05em;margin:.2em 0}nav a{margin-right:1em}
dl.head{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em}dt{color:#666}dd{margin:0}
.cols{display:grid;grid-template-columns:minmax(18em,32%) 1fr;gap:1.5em;align-items:start}
#tree{max-height:85vh;overflow:auto;position:sticky;top:0;font-size:13px}
#tree details details,#tree details>div{margin-left:1.1em}#tree summary{cursor:pointer}
.leaf{padding-left:1.1em}.n,.note{color:#666;font-size:12px}.rk{color:#888;font-style:italic}
a.sel{background:#fe8}.gallery{display:none}.gallery.shown{display:block}
figure{display:inline-block;width:104px;margin:3px;vertical-align:top;font-size:11px;text-align:center}
figure img{max-width:96px;max-height:96px;display:block;margin:auto;background:#eee}
figcaption{overflow-wrap:anywhere}.noimg{height:40px;background:#eee;color:#888}
.wrong{color:#b00}.above{color:#a60}.exact,.below{color:#070}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 6px;border:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}td.diag{background:#dfd}
.bar{display:inline-block;height:10px;background:#48c}.scroll{max-height:60vh;overflow:auto}
"""

SCRIPT = """(function () {
  var T = JSON.parse(document.getElementById("thumbs").textContent);
  function fill(g) {
    var imgs = g.querySelectorAll("img[data-t]");
    for (var k = 0; k < imgs.length; k++) {
      if (!imgs[k].getAttribute("src")) imgs[k].src = "data:image/jpeg;base64," + T[+imgs[k].getAttribute("data-t")];
    }
  }
  function show(id, scroll) {
    var g = id ? document.getElementById(id) : null;
    if (!g || !g.classList.contains("gallery")) return false;
    var old = document.querySelectorAll(".gallery.shown, a.sel");
    for (var k = 0; k < old.length; k++) old[k].classList.remove(old[k].tagName === "A" ? "sel" : "shown");
    g.classList.add("shown");
    fill(g);
    var links = document.querySelectorAll('a[href="#' + id + '"]');
    for (var j = 0; j < links.length; j++) {
      links[j].classList.add("sel");
      for (var d = links[j].parentElement; d; d = d.parentElement) if (d.tagName === "DETAILS") d.open = true;
    }
    if (scroll) g.scrollIntoView({block: "nearest"});
    return true;
  }
  window.addEventListener("hashchange", function () { show(location.hash.slice(1), true); });
  if (!show(location.hash.slice(1), false)) {
    var first = document.querySelector(".gallery");
    if (first) show(first.id, false);
  }
})();"""

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       f"script-src 'sha256-{base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()}'")


def render_page(page: Page) -> str:
    thumbs = [i for g in page.galleries for i in g.items if page.thumbnails.get(i)]
    position = {i: k for k, i in enumerate(dict.fromkeys(thumbs))}
    data = json.dumps([page.thumbnails[i][0] for i in position], separators=(",", ":"))
    parts = [(f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
              f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
              f'<meta name="viewport" content="width=device-width">\n'
              f"<title>hier report: {escape(Path(page.info.run).name)}</title><style>{CSS}</style></head><body>\n"),
             header(page), curve_section(page), ranks_section(page),
             '<div class="cols"><section id="tree"><h2>Taxonomy</h2>', tree_section(page),
             '</section><section id="galleries"><h2>Galleries</h2>', galleries_section(page, position),
             "</section></div>\n", classes_section(page), confusion_section(page), unreadable_section(page),
             f'<script type="application/json" id="thumbs">{data}</script>\n<script>{SCRIPT}</script>\n',
             "</body></html>\n"]
    return "".join(parts)


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def header(page: Page) -> str:
    info, counts, stats = page.info, page.stats.counts, page.stats
    if page.entry is not None and page.entry.get("threshold") is not None:
        c = info.calibration
        calibration = (f"yes: confidence {page.confidence:g} &rarr; level {page.entry['level']:g} &rarr; threshold "
                       f"{page.threshold:.3f}, certified on {c.get('n')} images of "
                       f"{escape(str(c.get('split') or '?'))} (risk {c.get('delta')}), temperature "
                       f"{float(c.get('temperature', 1)):.3f}")
    elif page.entry is not None:
        calibration = (f"the run's {info.calibration.get('n')} calibration images cannot certify "
                       f"{page.confidence:g}: threshold = confidence, no promise")
    else:
        calibration = "no: threshold = confidence, no promise (run hier calibrate for one)"
    rows = [("run", escape(info.run)), ("head", escape(info.head)), ("backbone", escape(info.backbone)),
            ("data", escape(page.data or str(info.config.get("dataset") or "?"))),
            ("confidence asked", f"{page.confidence:g} (threshold {page.threshold:.3f})"),
            ("calibrated", calibration),
            ("images", f"{counts['images']}: {counts['answered']} answered, {counts['unreadable']} unreadable")]
    if stats.labelled:
        judged = sum(counts[o] for o in ("exact", "below", "above", "wrong"))
        rows.append(("answers", (f"{percent(judged - counts['wrong'], judged)} correct: {counts['exact']} the "
                                 f"label, {counts['below']} below an inner label, {counts['above']} stopped above "
                                 f"the label, {counts['wrong']} mistakes")))
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    nav = "".join(f'<a href="#{k}">{v}</a>' for k, v in (("curve", "Operating curve"), ("ranks", "Answers per rank"),
                  ("tree", "Taxonomy &amp; galleries"), ("classes", "Per-class recall"), ("confusion", "Confusion")))
    return f'<header><h1>hier report</h1><dl class="head">{items}</dl><nav>{nav}</nav></header>\n'


def curve_points(evaluation: dict | None) -> dict | None:
    """evaluation.json's operating curve when it is present and well formed."""
    curve = (evaluation or {}).get("operating_curve")
    keys = ("correct", "information_recall")
    if not isinstance(curve, dict) or not all(isinstance(curve.get(k), list) and curve[k] for k in keys):
        return None
    size = len(curve["correct"])
    columns = {k: curve.get(k) for k in ("threshold", "correct", "information_recall", "mean_depth")}
    ok = all(isinstance(v, list) and len(v) == size and all(isinstance(x, (int, float)) and math.isfinite(x)
                                                           for x in v) for v in columns.values() if v is not None)
    return columns if ok and len(curve["information_recall"]) == size else None


def chosen_point(curve: dict, page: Page) -> int | None:
    """The curve's point at the page's threshold (the nearest one the curve has)."""
    if not curve.get("threshold"):
        return None
    return min(range(len(curve["threshold"])), key=lambda k: abs(curve["threshold"][k] - page.threshold))


def curve_section(page: Page) -> str:
    evaluation = page.info.evaluation
    curve = curve_points(evaluation)
    if curve is None:
        return ('<section id="curve"><h2>Operating curve</h2><p class="note">No operating curve: the run has no '
                "readable evaluation.json (run hier evaluate RUN DATASET).</p></section>\n")
    point = chosen_point(curve, page)
    w, h, left, bottom, top, right = 520, 320, 50, 40, 12, 16
    low = min(0.9, math.floor(min(curve["correct"]) * 10) / 10, math.floor(page.confidence * 10) / 10 - 0.1)
    sx = lambda x: left + x * (w - left - right)
    sy = lambda y: top + (1 - (y - low) / (1 - low)) * (h - top - bottom)
    grid = "".join(f'<line x1="{sx(t / 10):.1f}" y1="{top}" x2="{sx(t / 10):.1f}" y2="{h - bottom}" stroke="#eee"/>'
                   f'<text x="{sx(t / 10):.1f}" y="{h - bottom + 14}" font-size="10" text-anchor="middle">{t / 10:g}'
                   "</text>" for t in range(0, 11, 2))
    ys = [low + (1 - low) * k / 5 for k in range(6)]
    grid += "".join(f'<line x1="{left}" y1="{sy(y):.1f}" x2="{w - right}" y2="{sy(y):.1f}" stroke="#eee"/>'
                    f'<text x="{left - 4}" y="{sy(y) + 3:.1f}" font-size="10" text-anchor="end">{y:.2f}</text>'
                    for y in ys)
    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(curve["information_recall"], curve["correct"]))
    promise = (f'<line x1="{left}" y1="{sy(page.confidence):.1f}" x2="{w - right}" y2="{sy(page.confidence):.1f}" '
               f'stroke="#a60" stroke-dasharray="4 3"><title>the promise: {page.confidence:g} correct</title></line>'
               if page.entry is not None and page.confidence >= low else "")
    mark, said = "", ""
    if point is not None:
        x, y = curve["information_recall"][point], curve["correct"][point]
        depth = f", mean depth {curve['mean_depth'][point]:.2f}" if curve.get("mean_depth") else ""
        said = (f"At threshold {page.threshold:.3f} (confidence {page.confidence:g}): {percent(y, 1)} correct, "
                f"information recall {x:.3f}{depth}.")
        mark = f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="#c00"><title>{escape(said)}</title></circle>'
    axes = (f'<text x="{(left + w - right) / 2}" y="{h - 6}" font-size="11" text-anchor="middle">information recall'
            f'</text><text x="12" y="{(top + h - bottom) / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {(top + h - bottom) / 2})">fraction correct</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">{grid}{axes}{promise}'
           f'<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{line}"/>{mark}</svg>')
    source = (f"From evaluation.json: {evaluation.get('images', '?')} images of "
              f"{escape(str(evaluation.get('dataset', '?')))} ({escape(str(evaluation.get('split', '?')))}); "
              "each point is one threshold.")
    if isinstance(evaluation.get("reweight"), dict):  # weighed to another class mix (hier evaluate --reweight)
        source += f" Weighed to the class mix {escape(str(evaluation['reweight'].get('mix')))}."
    return f'<section id="curve"><h2>Operating curve</h2>{svg}<p>{said} <span class="note">{source}</span></p></section>\n'


def ranks_section(page: Page) -> str:
    per_rank, total = page.stats.per_rank, max(page.stats.counts["answered"], 1)
    rows = "".join(f'<tr><td class="l">{escape(name)}</td><td>{count}</td><td>{percent(count, total)}</td>'
                   f'<td class="l"><span class="bar" style="width:{200 * count / total:.0f}px"></span></td></tr>'
                   for name, count in per_rank)
    return (f'<section id="ranks"><h2>Answers per rank</h2><table><tr><th class="l">rank</th><th>answers</th>'
            f"<th>share</th><th></th></tr>{rows}</table></section>\n")


def node_line(page: Page, i: int) -> str:
    t, s = page.taxonomy, page.stats
    name = escape(t.names[i])
    link = f'<a href="#g-{i}">{name}</a>' if s.answers[i] else name
    rank = f' <span class="rk">{escape(str(t.ranks[i]))}</span>' if t.ranks[i] else ""
    facts = [f"{s.answers[i]} here, {s.answers_under[i]} at or below"]
    if s.labelled and s.labels_under[i]:
        facts.append(f"recall {percent(s.reached_under[i], s.labels_under[i])} of {s.labels_under[i]}")
    if s.labelled and s.answers[i]:
        facts.append(f"precision {percent(s.correct_at[i], s.answers[i])}")
    return f'{link}{rank} <span class="n">{" · ".join(facts)}</span>'


def tree_section(page: Page) -> str:
    t, s = page.taxonomy, page.stats
    keep = (s.answers_under > 0) | (s.labels_under > 0)
    open_depth = OPEN_DEPTH_SMALL if int(keep.sum()) <= SMALL_TREE else 1

    def node(i: int) -> str:
        kids = sorted((c for c in t.children[i] if keep[c]), key=lambda c: (-s.answers_under[c], -s.labels_under[c], c))
        if not kids:
            return f'<div class="leaf">{node_line(page, i)}</div>'
        opened = " open" if t.depth[i] < open_depth else ""
        return f"<details{opened}><summary>{node_line(page, i)}</summary>{''.join(map(node, kids))}</details>"

    note = ('<p class="note">Only nodes with answers or labels at or below them. Recall: of the images labelled at '
            "or below the node, those answered at or below it; precision: of the answers at the node, those "
            "correct.</p>" if s.labelled else '<p class="note">Only nodes with answers at or below them.</p>')
    return note + node(t.root)


def figure(page: Page, i: int, position: dict[int, int], *, answered: bool) -> str:
    record, t = page.records[i], page.taxonomy
    outcome = page.stats.outcomes[i] or ""
    name = escape(Path(record.path).name)
    thumb = page.thumbnails.get(i)
    image = (f'<img data-t="{position[i]}" width="{thumb[1]}" height="{thumb[2]}" alt="{name}" '
             f'title="{escape(record.path)}">' if thumb else '<div class="noimg">no image</div>')
    lines = [name, f"p {record.probability:.3f}"]
    if answered:
        lines.append(f"answer: {escape(t.names[record.node])}")
    if record.label is not None:
        lines.append(f"true: {escape(t.names[record.label])}")
    return f'<figure class="{outcome}">{image}<figcaption>{"<br>".join(lines)}</figcaption></figure>'


def galleries_section(page: Page, position: dict[int, int]) -> str:
    t, limits = page.taxonomy, page.limits
    links = " ".join(f'<a href="#{g.key}">{escape(g.title.split(":")[0])} ({g.total})</a>'
                     for g in page.galleries if not g.key[2:].isdigit())
    parts = [f"<p>{links}</p>" if links else "",
             (f'<p class="note">Thumbnails at most {limits["per_node"]} per node and {limits["node_budget"]} in '
              f'all node galleries ({limits["per_special"]} in each of the others); a larger gallery shows a random '
              "sample. Click a node of the taxonomy to see its gallery.</p>")]
    for g in page.galleries:
        special = not g.key[2:].isdigit()
        title = escape(g.title) if special else " › ".join(escape(t.names[j]) for j in t.lineage(int(g.key[2:])))
        shown = f"all {g.total}" if len(g.items) == g.total else f"a sample of {len(g.items)} of {g.total}"
        figures = "".join(figure(page, i, position, answered=special) for i in g.items)
        parts.append(f'<section class="gallery" id="{g.key}"><h3>{title}</h3><p class="n">{g.total} images; '
                     f"showing {shown}, {escape(g.order)}</p>{figures}</section>\n")
    return "".join(parts)


def classes_section(page: Page) -> str:
    if not page.stats.labelled:
        return ""
    t = page.taxonomy
    rows = []
    for c in page.stats.per_class:
        n, reached = c["images"], c["exact"] + c["below"]
        rows.append(f'<tr><td class="l">{escape(t.names[c["node"]])}</td><td>{n}</td><td>{percent(reached, n)}</td>'
                    f'<td class="l"><span class="bar" style="width:{100 * reached / n:.0f}px"></span></td>'
                    f'<td>{percent(c["above"], n)}</td><td>{percent(c["wrong"], n)}</td>'
                    f'<td>{percent(n - c["wrong"], n)}</td><td>{c["mean_depth"]:.2f}</td></tr>')
    # the promise is on average over the images; the class it holds least for is what a new mix of classes risks
    worst = most_surely_short(page.stats.per_class, lambda c: c["images"] - c["wrong"], lambda c: c["images"])
    return ('<section id="classes"><h2>Per-class recall</h2><p class="note">Per label, worst first: answers at or '
            "below the label (recall), answers that stopped above it, mistakes, correct answers (all but the "
            "mistakes) and their mean depth. Most surely short of the promise (the lowest upper bound of its "
            "fraction correct, as hier evaluate names it): "
            f'<b>{escape(t.names[worst["node"]])}</b>, {percent(worst["images"] - worst["wrong"], worst["images"])} '
            f'of {worst["images"]}.</p><div class="scroll"><table>'
            '<tr><th class="l">label</th><th>images</th><th>recall</th><th></th><th>stopped above</th>'
            f"<th>mistakes</th><th>correct</th><th>mean depth</th></tr>{''.join(rows)}</table></div></section>\n")


def confusion_section(page: Page) -> str:
    c = page.stats.confusion
    if c is None:
        return ""
    head = "".join(f"<th>{escape(name)}</th>" for name in c.columns)
    rows = []
    for row, counts in zip(c.rows, c.counts):
        diagonal, name = row if row < len(c.columns) - 2 else -1, c.columns[row]
        cells = "".join(f'<td{" class=diag" if k == diagonal else ""}>{v or ""}</td>' for k, v in enumerate(counts))
        rows.append(f'<tr><th class="l">{escape(name)}</th>{cells}<td>{sum(counts)}</td></tr>')
    return (f'<section id="confusion"><h2>Confusion at {escape(c.level)}</h2><p class="note">Rows: the label\'s '
            f"{escape(c.level)}; columns: the answer's; \"no {escape(c.level)}\": stopped above it (or none on the "
            f"lineage). Choose the level with --rank.</p><div class=\"scroll\"><table><tr><th class=\"l\">true \\ "
            f"answer</th>{head}<th>total</th></tr>{''.join(rows)}</table></div></section>\n")


def unreadable_section(page: Page) -> str:
    bad = [r for r in page.records if r.node is None]
    if not bad:
        return ""
    rows = "".join(f'<tr><td class="l">{escape(r.path)}</td><td class="l">{escape(r.error)}</td></tr>'
                   for r in bad[:MAX_UNREADABLE])
    more = f'<p class="note">and {len(bad) - MAX_UNREADABLE} more</p>' if len(bad) > MAX_UNREADABLE else ""
    return (f'<section id="unreadable"><h2>Unreadable images ({len(bad)})</h2><table>{rows}</table>{more}'
            "</section>\n")
