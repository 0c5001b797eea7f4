"""One static HTML page per explain run: every image's maps, labels, scores and metrics.

Built from ``explain_index.json`` alone; opens from disk (relative links, inline CSS and JS, nothing
fetched from the network). A label select filters the images, a metric select sorts them. The page
reads ``?label=<name>&sort=<metric>&order=worst|best`` on load; with ``&selftest=1`` it also waits for
every image and writes what loaded into ``<pre id="selftest-result">`` (JSON), for headless tests.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from otx_xai.explain.dump import atomic_write_bytes
from otx_xai.report.csv_index import (
    MapTarget,
    box_targets,
    entry_labels,
    ground_truth_labels,
    higher_is_better,
    image_metrics,
    load_index,
    map_targets,
    metric_names,
)
from otx_xai.report.numbers import for_people

GALLERY_HTML = "gallery.html"
_HEADER_KEYS = ("task", "explain_method", "checkpoint", "data_root")

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
header{padding:12px 16px;background:#263238;color:#eceff1}header h1{font-size:18px;margin:0 0 4px}
header dl{display:flex;flex-wrap:wrap;gap:4px 16px;margin:0}header dt{opacity:.7}header dd{margin:0 8px 0 4px}
#controls{position:sticky;top:0;z-index:1;display:flex;gap:12px;align-items:center;padding:8px 16px;
background:#fff;border-bottom:1px solid #ccc}
#cards{display:flex;flex-wrap:wrap;gap:12px;padding:16px}
.card{background:#fff;border:1px solid #ccc;border-radius:6px;padding:8px;max-width:100%}
.card[hidden]{display:none}.card.error{border-color:#c62828;background:#fff5f5}
.card h2{font-size:14px;margin:0 0 4px;word-break:break-all}.card .source{font-size:12px;color:#555}
.maps{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0}figure{margin:0;text-align:center}
figure img{display:block;max-width:220px;max-height:220px;image-rendering:auto}
figure img.input{width:160px;height:auto}
figure img.raw{width:160px;height:auto;max-height:none;image-rendering:pixelated;background:#000}
figcaption{font-size:12px}.pred,.gt,.metrics{font-size:12px;margin:2px 0}.err{color:#c62828}
table.summary{border-collapse:collapse;margin:0 16px}table.summary td{padding:2px 8px;border-bottom:1px solid #ddd}
.sag figure img{max-width:450px;max-height:300px}
"""

_JS = """
(function () {
  "use strict";
  var grid = document.getElementById("cards");
  var cards = Array.prototype.slice.call(grid.querySelectorAll(".card"));
  var labelSel = document.getElementById("label-filter");
  var sortSel = document.getElementById("sort-by");
  var orderSel = document.getElementById("sort-order");
  var data = cards.map(function (card) {
    return {card: card, order: Number(card.dataset.order), labels: JSON.parse(card.dataset.labels),
            metrics: JSON.parse(card.dataset.metrics)};
  });
  function value(item, name) {
    var v = item.metrics[name];
    return typeof v === "number" ? v : null;
  }
  function apply() {
    var label = labelSel.value, name = sortSel.value, visible = 0;
    data.forEach(function (item) {
      var show = !label || item.labels.indexOf(label) >= 0;
      item.card.hidden = !show;
      if (show) { visible += 1; }
    });
    var option = sortSel.options[sortSel.selectedIndex];
    var ascending = (option && option.dataset.higher === "1") === (orderSel.value === "worst");
    var sorted = data.slice().sort(function (a, b) {
      if (!name) { return a.order - b.order; }
      var x = value(a, name), y = value(b, name);
      if (x === null || y === null) { return x === y ? a.order - b.order : (x === null ? 1 : -1); }
      return (ascending ? x - y : y - x) || a.order - b.order;
    });
    sorted.forEach(function (item) { grid.appendChild(item.card); });
    document.getElementById("shown-count").textContent = visible + " of " + data.length + " images";
    return visible;
  }
  function choose(select, wanted) {
    for (var i = 0; i < select.options.length; i += 1) {
      if (select.options[i].value === wanted) { select.selectedIndex = i; return true; }
    }
    return false;
  }
  function selftest(params) {
    var images = Array.prototype.slice.call(document.images);
    images.forEach(function (img) { img.loading = "eager"; });
    var started = Date.now();
    (function poll() {
      var pending = images.filter(function (img) { return !img.complete; });
      if (pending.length && Date.now() - started < 20000) { setTimeout(poll, 50); return; }
      var broken = images.filter(function (img) { return !(img.naturalWidth > 0); });
      var visible = data.filter(function (item) { return !item.card.hidden; });
      var shown = images.map(function (img) {
        return {src: img.getAttribute("src"), kind: img.className, width: Math.round(img.getBoundingClientRect().width),
                natural_width: img.naturalWidth};
      });
      var out = document.createElement("pre");
      out.id = "selftest-result";
      out.textContent = JSON.stringify({
        label: labelSel.value, label_applied: params.get("label") === null || labelSel.value === params.get("label"),
        sort: sortSel.value, order: orderSel.value, images: images.length,
        loaded: images.length - broken.length, broken: broken.map(function (img) { return img.getAttribute("src"); }),
        pending: pending.length, cards: data.length, visible: visible.length, shown: shown,
        visible_ids: Array.prototype.slice.call(grid.querySelectorAll(".card:not([hidden])"))
          .map(function (card) { return card.dataset.imageId; })
      });
      document.body.appendChild(out);
    })();
  }
  var params = new URLSearchParams(window.location.search);
  if (params.get("label") !== null) { choose(labelSel, params.get("label")); }
  if (params.get("sort") !== null) { choose(sortSel, params.get("sort")); }
  if (params.get("order") !== null) { choose(orderSel, params.get("order")); }
  labelSel.addEventListener("change", apply);
  sortSel.addEventListener("change", apply);
  orderSel.addEventListener("change", apply);
  apply();
  if (params.get("selftest") !== null) {
    if (document.readyState === "complete") { selftest(params); }
    else { window.addEventListener("load", function () { selftest(params); }); }
  }
})();
"""


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)


def _url(path: str) -> str:
    """A relative path as an escaped URL (percent-encoded, ``/`` kept)."""
    return _attr(quote(path.replace(os.sep, "/"), safe="/"))


def _source_href(source_path: str, run_dir: Path) -> str:
    """A link to the original image, relative to the run folder when possible (links are not resolved: a
    symlink loop or a dangling link is shown as it is named)."""
    source = os.path.abspath(source_path)
    try:
        return _url(os.path.relpath(source, os.path.abspath(run_dir)))
    except ValueError:  # another drive (Windows)
        return _attr(Path(source).as_uri())


def _input_figure(entry: dict[str, Any], run_dir: Path) -> str:
    """The input image itself, shown 160 px wide before its maps."""
    href = _source_href(str(entry["source_path"]), run_dir)
    alt = _attr(f"{entry.get('image_id', '')}: input")
    return (f'<figure><a href="{href}"><img class="input" src="{href}" alt="{alt}" loading="lazy" '
            'decoding="async"></a><figcaption>input</figcaption></figure>')


def _figure(target: MapTarget, image_id: str, raw: bool) -> str:
    """One map; a raw map (the model's grid, e.g. 7×7 pixels) is drawn 160 px wide, nearest-neighbour."""
    alt = _attr(f"{image_id}: {target.name}")
    link = f' <a href="{_url(target.colour_map)}">map</a>' if target.colour_map else ""
    kind = ' class="raw"' if raw and target.shown.endswith("_saliency_map.png") else ""
    return (f'<figure><a href="{_url(target.shown)}"><img{kind} src="{_url(target.shown)}" alt="{alt}" '
            f'loading="lazy" decoding="async"></a><figcaption>{escape(target.name)}{link}</figcaption></figure>')


def _sag_figure(sag: Any, image_id: str) -> str:
    """A SAG run's graph picture (roots and children with their scores) and links to its root masks."""
    if not isinstance(sag, dict) or not sag.get("graph"):
        return ""
    roots = [root for root in sag.get("roots") or [] if isinstance(root, dict) and root.get("file")]
    links = " ".join(f'<a href="{_url(str(root["file"]))}">root {k} ({for_people(root.get("score"))})</a>'
                     for k, root in enumerate(roots))
    label = (sag.get("class") or {}).get("label", "") if isinstance(sag.get("class"), dict) else ""
    graph = _url(str(sag["graph"]))
    return (f'<div class="maps sag"><figure><a href="{graph}"><img src="{graph}" alt="{_attr(image_id)}: SAG" '
            f'loading="lazy" decoding="async"></a><figcaption>SAG of {escape(str(label))}: {links}'
            "</figcaption></figure></div>")


def _predicted(entry: dict[str, Any]) -> str:
    parts = []
    for item in entry.get("predicted") or []:
        label = item.get("label", item.get("index", "")) if isinstance(item, dict) else item
        score = item.get("score") if isinstance(item, dict) else None
        shown = f" {for_people(score)}" if isinstance(score, int | float) and not isinstance(score, bool) else ""
        parts.append(f"<b>{escape(str(label))}</b>{shown}")
    return ", ".join(parts) or "none"


def _card(entry: dict[str, Any], order: int, run_dir: Path, raw: bool) -> str:
    image_id = str(entry.get("image_id", ""))
    metrics = image_metrics(entry)
    error = entry.get("error")
    source = str(entry.get("source_path", ""))
    lines = [
        f'<article class="card{" error" if error else ""}" data-order="{order}" data-image-id="{_attr(image_id)}" '
        f'data-labels="{_attr(json.dumps(entry_labels(entry)))}" data-metrics="{_attr(json.dumps(metrics))}">',
        f"<h2>{escape(image_id)}</h2>",
        f'<div class="source"><a href="{_source_href(source, run_dir)}">{escape(source)}</a></div>' if source else "",
    ]
    if error:
        lines.append(f'<p class="err">error: {escape(str(error))}</p>')
    else:
        lines.append(f'<p class="pred">predicted: {_predicted(entry)}</p>')
        truth = ground_truth_labels(entry)
        if truth:
            lines.append(f'<p class="gt">ground truth: {escape(", ".join(truth))}</p>')
        shown = _input_figure(entry, run_dir) if source else ""
        shown += "".join(_figure(t, image_id, raw) for t in map_targets(entry))
        lines.append(f'<div class="maps">{shown}</div>')
        boxes = box_targets(entry)
        if boxes:
            lines.append('<div class="maps boxes">' + "".join(_figure(t, image_id, raw) for t in boxes) + "</div>")
        lines.append(_sag_figure(entry.get("sag"), image_id))
    if metrics:
        shown = ", ".join(f"{escape(name)} {for_people(value)}" for name, value in metrics.items())
        lines.append(f'<p class="metrics">{shown}</p>')
    lines.append("</article>")
    return "\n".join(line for line in lines if line)


def _options(values: list[str], first: str) -> str:
    return f'<option value="">{escape(first)}</option>' + "".join(
        f'<option value="{_attr(v)}">{escape(v)}</option>' for v in values)


def _controls(labels: list[str], metrics: list[str]) -> str:
    sorts = '<option value="">index order</option>' + "".join(
        f'<option value="{_attr(m)}" data-higher="{int(higher_is_better(m))}">{escape(m)}</option>' for m in metrics)
    return (
        '<nav id="controls">'
        f'<label>label <select id="label-filter">{_options(labels, "all labels")}</select></label>'
        f'<label>sort by <select id="sort-by">{sorts}</select></label>'
        '<label>order <select id="sort-order"><option value="worst">worst first</option>'
        '<option value="best">best first</option></select></label>'
        '<span id="shown-count"></span></nav>'
    )


def _header(index: dict[str, Any], run_dir: Path) -> str:
    items = [(key, index.get(key)) for key in _HEADER_KEYS if index.get(key) is not None]
    group = (index.get("explain_config") or {}).get("target_explain_group")
    if group is not None:
        items.append(("target group", group))
    summary = index.get("summary") or {}
    items += [(key, value) for key, value in summary.items() if isinstance(value, str | int | float | bool)]
    details = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(for_people(v))}</dd>" for k, v in items)
    return f"<header><h1>explain run {escape(run_dir.name)}</h1><dl>{details}</dl></header>"


def _labels(index: dict[str, Any]) -> list[str]:
    """The model's labels (a label no image has filters to nothing), then any other label some image has."""
    present = [label for entry in index["images"] for label in entry_labels(entry)]
    return list(dict.fromkeys([str(label) for label in index.get("label_names") or []] + present))


def render_gallery(index: dict[str, Any], run_dir: Path) -> str:
    """The gallery page of an index document whose files are relative to ``run_dir``."""
    images = index["images"]
    raw = not (index.get("explain_config") or {}).get("postprocess")  # maps at the model's grid size
    cards = "\n".join(_card(entry, order, run_dir, raw) for order, entry in enumerate(images))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>otx_xai gallery: {escape(run_dir.name)}</title><style>{_CSS}</style></head>\n<body>"
        f"{_header(index, run_dir)}{_controls(_labels(index), metric_names(images))}"
        f'\n<main id="cards">\n{cards}\n</main>\n<script>{_JS}</script>\n</body></html>\n'
    )


def write_gallery(run_dir: Path) -> Path:
    """Write ``<run>/gallery.html`` from ``<run>/explain_index.json`` (atomically) and return its path."""
    run_dir = Path(run_dir)
    path = run_dir / GALLERY_HTML
    atomic_write_bytes(path, render_gallery(load_index(run_dir), run_dir).encode("utf-8", "backslashreplace"))
    return path
