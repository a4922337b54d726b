"""hier report: the page from records on real plankton JPEGs, its structure and escaping, and the page opened in
a real headless browser (Debian's chromium)."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from hier.core.errors import InputError
from hier.infer import report, report_page
from hier.infer.report import Record, labelled_records, read_run, records_from_predictions, write_report
from hier.metrics.bounds import clopper_pearson_upper
from hier.taxo.csv_source import build_from_table

RANKS = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
EVIL = "<img src=x onerror=alert(1)>"


def by_name(taxonomy, name: str) -> int:
    return taxonomy.names.index(name)


@pytest.fixture
def fake_run(tmp_path, data_dir):
    """A run directory (taxonomy, config, calibration, evaluation; no weights: the report never loads them) and a
    copy of the real phytoplankton images, one of them renamed to an HTML-injection attempt."""
    source = data_dir / "phytoplankton"
    taxonomy = build_from_table(source / "taxonomy.csv", rank_columns=RANKS, label_column="folder")
    run = tmp_path / "runs" / "phyto"
    run.mkdir(parents=True)
    taxonomy.save(run / "taxonomy.json")
    images = Path(shutil.copytree(source / "images", tmp_path / "images"))
    first = min((images / "Tripos_fusus").iterdir())
    first.rename(first.with_name(f"{EVIL}.jpg"))
    (run / "config.yaml").write_text(yaml.safe_dump({"head": "arcface", "backbone": "efficientnet_lite0",
                                                     "dataset": str(images)}))
    table = [{"level": round(0.5 + 0.01 * k, 2), "threshold": round(0.4 + 0.01 * k, 3), "correct": 0.9,
              "lower_bound": 0.85, "mean_depth": 3.0} for k in range(50)]
    (run / "calibration.json").write_text(json.dumps({
        "format": "hier-calibration", "version": 1, "temperature": 1.3, "delta": 0.05, "n": 1234, "table": table,
        "weights_sha256": "0" * 64, "split": "calibration"}))
    thresholds = [k / 50 for k in range(1, 50)]
    (run / "evaluation.json").write_text(json.dumps({
        "images": 25, "dataset": f"{images}/<b>", "split": "test", "confidence": 0.9, "operating_curve": {
            "threshold": thresholds, "correct": [0.7 + 0.3 * t for t in thresholds],
            "information_recall": [1 - 0.8 * t for t in thresholds], "mean_depth": [5 - 3 * t for t in thresholds]}}))
    return run, images, taxonomy


def labelled(taxonomy, images: Path) -> list[Record]:
    """Every image with its folder's label, answered: right, above the label, below an inner label, wrong, and one
    unreadable."""
    out = []
    wrong_node = by_name(taxonomy, "Detritus")
    for k, path in enumerate(sorted(images.rglob("*.jpg"))):
        label = by_name(taxonomy, path.parent.name.replace("_", " "))
        node, kind = label, k % 4
        if kind == 1:
            node = int(taxonomy.parent[label])  # stopped above the label
        elif kind == 2 and path.parent.name == "Chaetoceros":
            node = by_name(taxonomy, "Chaetoceros affinis")  # below an inner label
        elif kind == 3 and path.parent.name != "Detritus":
            node = wrong_node
        if EVIL in path.name:
            node = wrong_node
        out.append(Record(str(path), node, 0.5 + 0.02 * k, label, None))
    out.append(Record(str(images / "gone.jpg"), None, label=by_name(taxonomy, "Bubbles"), error="no such file"))
    return out


class Structure(HTMLParser):
    """Ids, the galleries' figures, the thumbnails' JSON and every element name the page holds."""

    def __init__(self):
        super().__init__()
        self.ids, self.tags, self.figures, self.gallery = {}, [], {}, None
        self.scripts, self._in_script = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids[attrs["id"]] = tag
        if tag == "section" and "gallery" in attrs.get("class", ""):
            self.gallery = attrs["id"]
            self.figures[self.gallery] = []
        if tag == "img" and self.gallery:
            self.figures[self.gallery].append(attrs)
        if tag == "script":
            self._in_script = attrs

    def handle_data(self, data):
        if self._in_script is not None:
            self.scripts.append((self._in_script, data))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None
        if tag == "section":
            self.gallery = None


def parse(text: str) -> Structure:
    parser = Structure()
    parser.feed(text)
    return parser


def test_labelled_page_structure(fake_run, tmp_path):
    run, images, _ = fake_run
    taxonomy, info = read_run(run)
    records = labelled(taxonomy, images)
    out = tmp_path / "report.html"
    summary = write_report(out, records, taxonomy, info, confidence=0.9, data="test split", progress=False)
    text = out.read_text()
    page = parse(text)
    stats = report.compute_stats(records, taxonomy)
    assert summary.images == len(records) == 26 and summary.thumbnails == 25 and summary.bytes == len(text.encode())
    # one gallery per answered node, plus mistakes and stopped-above; each figure's thumbnail is in the JSON
    answered = {r.node for r in records if r.node is not None}
    assert set(page.figures) == {f"g-{n}" for n in answered} | {"g-mistakes", "g-above"}
    thumbs = json.loads(next(data for attrs, data in page.scripts if attrs.get("id") == "thumbs"))
    for figures in page.figures.values():
        assert all(0 <= int(f["data-t"]) < len(thumbs) for f in figures)
    for n in answered:
        assert len(page.figures[f"g-{n}"]) == sum(r.node == n for r in records)
        assert f'<a href="#g-{n}">' in text  # its node in the tree opens it
    assert len(page.figures["g-mistakes"]) == stats.counts["wrong"] > 0
    assert len(page.figures["g-above"]) == stats.counts["above"] > 0 and stats.counts["below"] > 0
    # header, curve with its chosen point, per rank, per class, confusion at the default level, unreadable
    assert "certified on 1234 images of calibration" in text and "threshold 0.800" in text
    assert "<svg" in text and "<circle" in text and "<polyline" in text and "&lt;b&gt;" in text
    assert all(k in page.ids for k in ("curve", "ranks", "tree", "classes", "confusion", "unreadable"))
    assert "species" in text and "Per-class recall" in text and "no such file" in text
    upper = {c["node"]: clopper_pearson_upper(c["images"] - c["wrong"], c["images"]) for c in stats.per_class}
    worst = min(upper.values())
    named = [n for n, u in upper.items() if u == worst]  # the lowest bound (ties: the lower fraction correct)
    assert any(f"as hier evaluate names it): <b>{escape_html(taxonomy.names[n])}</b>" in text for n in named)
    # the file named like an HTML tag is text, never an element
    assert EVIL not in text and escape_html(EVIL) in text
    assert not any(tag == "img" and attrs.get("src") == "x" for tag, attrs in page.tags)
    # thumbnails are real JPEGs at most 96 px a side
    assert all(base64.b64decode(t)[:2] == b"\xff\xd8" for t in thumbs)
    assert all(max(int(f["width"]), int(f["height"])) <= 96 for fs in page.figures.values() for f in fs)


def escape_html(text: str) -> str:
    import html

    return html.escape(text)


def test_counts_recall_and_precision(fake_run):
    _, images, taxonomy = fake_run
    records = labelled(taxonomy, images)
    stats = report.compute_stats(records, taxonomy, "class")
    root = taxonomy.root
    judged = [r for r in records if r.node is not None]
    assert stats.labels_under[root] == stats.reached_under[root] == len(judged)
    chaeto = by_name(taxonomy, "Chaetoceros")
    under = [r for r in judged if chaeto in taxonomy.lineage(r.label)]
    reached = [r for r in under if chaeto in taxonomy.lineage(r.node)]
    assert stats.labels_under[chaeto] == len(under) and stats.reached_under[chaeto] == len(reached)
    assert stats.correct_at.sum() == len(judged) - stats.counts["wrong"]
    assert stats.per_class[0]["exact"] + stats.per_class[0]["below"] <= stats.per_class[-1]["exact"] + \
        stats.per_class[-1]["below"] + stats.per_class[-1]["images"]
    for c in stats.per_class:  # the answers' mean depth per label
        answers = [int(taxonomy.depth[r.node]) for r in judged if r.label == c["node"]]
        assert c["mean_depth"] == pytest.approx(sum(answers) / len(answers))
    assert stats.confusion.level == "class" and sum(map(sum, stats.confusion.counts)) == len(judged)
    assert sum(count for _, count in stats.per_rank) == len(judged)
    with pytest.raises(InputError, match="no such rank"):
        report.compute_stats(records, taxonomy, "tribe")


def test_sampling_is_bounded():
    assert report.node_cap([1000] * 100) == 15 and report.node_cap([3, 5]) == report.PER_NODE
    assert sum(min(s, report.node_cap([500] * 7 + [1] * 900)) for s in [500] * 7 + [1] * 900) <= report.NODE_BUDGET


def test_predictions_csv(fake_run, tmp_path, monkeypatch):
    run, images, taxonomy = fake_run
    monkeypatch.chdir(tmp_path)
    rows = []
    for k, path in enumerate(sorted(images.rglob("*.jpg"))):
        node = by_name(taxonomy, path.parent.name.replace("_", " ")) if k % 3 else int(taxonomy.root)
        rows.append([str(path.relative_to(tmp_path)), taxonomy.ids[node], taxonomy.names[node],
                     int(taxonomy.depth[node]), f"{0.9:.6f}", taxonomy.path_ids(node), ""])
    rows.append(["images/missing.jpg", "", "", "", "", "", "cannot identify image file"])
    predictions = tmp_path / "predictions.csv"
    with predictions.open("w", newline="") as f:
        csv.writer(f).writerows([list(report.PREDICTION_COLUMNS), *rows])
    records = records_from_predictions(predictions, taxonomy)
    assert len(records) == 26 and records[-1].node is None and records[0].file.is_file()
    out = tmp_path / "unlabelled.html"
    _, info = read_run(run)
    write_report(out, records, taxonomy, info, confidence=0.9, data=str(predictions), progress=False,
                 inputs=report.inputs_of(run, records, predictions))
    text = out.read_text()
    assert "g-mistakes" not in text and "Per-class recall</h2>" not in text and escape_html(EVIL) in text
    with pytest.raises(InputError, match="exists; use --force"):
        write_report(out, records, taxonomy, info, confidence=0.9, progress=False)
    write_report(out, records, taxonomy, info, confidence=0.9, force=True, progress=False)
    with pytest.raises(InputError, match="inputs"):
        write_report(predictions, records, taxonomy, info, confidence=0.9, force=True, progress=False,
                     inputs=[predictions])


def test_bad_predictions_are_input_errors(fake_run, tmp_path):
    _, _, taxonomy = fake_run
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\na.jpg,x\n")
    with pytest.raises(InputError, match="not a hier predict file"):
        records_from_predictions(bad, taxonomy)
    bad.write_text("path,node_id,node_name,depth,confidence,path_ids,error\na.jpg,nope,n,1,0.5,x,\n")
    with pytest.raises(InputError, match="line 2: node 'nope' is not in the run's taxonomy"):
        records_from_predictions(bad, taxonomy)
    with pytest.raises(InputError, match="not a hier run directory"):
        read_run(tmp_path)


def test_labelled_records_asks_the_injected_scorer(fake_run):
    _, images, taxonomy = fake_run
    paths = sorted(images.rglob("*.jpg"))[:4]
    asked = []

    def answer(given):
        asked.append(given)
        return [(int(taxonomy.root), 0.99, None), "cannot identify image file", (1, 0.5, 2), (1, 0.6, None)]

    records = labelled_records([(p, p.parent.name) for p in paths], taxonomy, answer)
    assert asked == [paths] and records[1].node is None and records[1].error == "cannot identify image file"
    assert records[0].label == by_name(taxonomy, paths[0].parent.name) and records[2].top_leaf == 2
    with pytest.raises(InputError, match="match no single taxonomy node"):
        labelled_records([(paths[0], "Nothing_here")], taxonomy, answer)


# ---- in a real browser ----------------------------------------------------------------------------

SELFTEST = """(function () {
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message || (e.target && e.target.tagName))); }, true);
  window.addEventListener("load", function () {
    var T = JSON.parse(document.getElementById("thumbs").textContent), pending = [], decoded = 0;
    T.forEach(function (t) { var im = new Image(); im.src = "data:image/jpeg;base64," + t;
      pending.push(im.decode().then(function () { if (im.naturalWidth > 0) decoded++; })); });
    var link = document.querySelector('#tree a[href="#NODE"]');
    link.click();
    setTimeout(function () {
      var g = document.getElementById("NODE"), imgs = g.querySelectorAll("img"), ok = 0;
      for (var k = 0; k < imgs.length; k++) if (imgs[k].complete && imgs[k].naturalWidth > 0) ok++;
      Promise.allSettled(pending).then(function () {
        var out = document.createElement("pre"); out.id = "selftest";
        out.textContent = JSON.stringify({errors: errors, thumbs: T.length, decoded: decoded,
          shown: getComputedStyle(g).display !== "none", shownGalleries: document.querySelectorAll(".gallery.shown").length,
          galleryImages: imgs.length, galleryDecoded: ok, evilElements: document.querySelectorAll('img[src="x"]').length,
          evilText: document.body.textContent.indexOf("EVIL") >= 0});
        document.body.appendChild(out);
      });
    }, 300);
  });
})();"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:  # make test installs it as root (the Makefile's browser target)
        pytest.skip("no chromium: install Debian's chromium (apt-get install chromium, as root) for the browser test")
    return found


def with_selftest(text: str, node: str) -> str:
    """The page with the test's script first in <head>, its hash added to the page's script-src."""
    script = SELFTEST.replace("NODE", node).replace("EVIL", EVIL.replace('"', '\\"'))
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    text = text.replace("script-src ", f"script-src 'sha256-{digest}' ", 1)
    return text.replace("<head>", f"<head><script>{script}</script>", 1)


def test_page_in_headless_chromium(fake_run, tmp_path):
    browser = chromium()
    run, images, _ = fake_run
    taxonomy, info = read_run(run)
    records = labelled(taxonomy, images)
    out = tmp_path / "report.html"
    write_report(out, records, taxonomy, info, confidence=0.9, progress=False)
    node = f"g-{by_name(taxonomy, 'Chaetoceros')}"
    test_page = tmp_path / "selftest.html"
    test_page.write_text(with_selftest(out.read_text(), node))
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
                           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=30000", "--dump-dom",
                           test_page.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="selftest">(.*?)</pre>', done.stdout)
    assert found, f"no self-test result: {done.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Content Security Policy" in line]
    assert result["errors"] == [] and console == [], (result, console)
    assert result["decoded"] == result["thumbs"] == 25
    assert result["shown"] and result["shownGalleries"] == 1
    assert result["galleryImages"] == result["galleryDecoded"] > 0
    assert result["evilElements"] == 0 and result["evilText"]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile2'}", "--window-size=1200,1600", f"--screenshot={shot}",
                    out.as_uri() + "#" + node], check=False, capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_page_renders_without_labels_or_curve(fake_run, tmp_path):
    run, images, _ = fake_run
    (run / "evaluation.json").unlink()
    (run / "calibration.json").unlink()
    taxonomy, info = read_run(run)
    records = [Record(str(p), int(taxonomy.root), 0.95) for p in sorted(images.rglob("*.jpg"))]
    out = tmp_path / "plain.html"
    write_report(out, records, taxonomy, info, confidence=0.8, progress=False)
    text = out.read_text()
    assert "No operating curve" in text and "no: threshold = confidence" in text
    assert report_page.CSP in text


# ---- the command, end to end on a trained run ----------------------------------------------------------


def test_hier_report_on_labelled_data_and_on_predictions(run_cli, trained, run_copy, tmp_path):
    run = run_copy("classifier")
    page = tmp_path / "labelled.html"
    code, _, err = run_cli("report", run, trained.data, "-o", page, "--uncalibrated", "--workers", "0")
    assert code == 0, err
    text = page.read_text()
    test_images = sum(1 for _ in (trained.data / "test").rglob("*.png"))
    assert f"({test_images} images)" in text or f"test, {test_images} images" in text
    assert "Mistakes" in text or "mistakes" in text
    assert run_cli("report", run, trained.data, "-o", page, "--uncalibrated")[0] == 2  # exists: --force
    predictions = tmp_path / "p.csv"
    assert run_cli("predict", run, trained.data / "test", "-o", predictions, "--uncalibrated")[0] == 0
    code, _, err = run_cli("report", run, "--predictions", predictions, "-o", tmp_path / "unlabelled.html",
                           "--uncalibrated")
    assert code == 0, err
    assert f"hier predict, {test_images} images" in (tmp_path / "unlabelled.html").read_text()
    code, _, err = run_cli("report", run, trained.data, "--predictions", predictions, "-o", tmp_path / "x.html")
    assert code == 2 and "not both" in err
