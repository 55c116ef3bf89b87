"""The report page: one self-contained ``index.html`` (no server, no network, plain inline JS)
showing the figures, the metrics table and play buttons for the clips beside it.

The page is described by plain blocks (:class:`Figure`, :class:`Timeline`, :class:`Gallery`,
:class:`ClipTable`, :class:`Note`) grouped in sections; :func:`render` turns them into HTML.
A timeline player moves a cursor over the spectrogram: the figure's axes bounds (fractions of
the image, written into the page) map the audio's time to x exactly.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field


@dataclass
class Figure:
    src: str
    caption: str


@dataclass
class Timeline:
    """A recording's timeline figure ``src`` spanning ``t0``..``t1`` s with the audio ``audio``
    of that span; ``box``: the axes bounds (left, right, top, bottom fractions of the image);
    ``windows``: ``[[start_s, end_s, score, detected], ...]`` for the live decision square."""

    src: str
    caption: str
    t0: float
    t1: float
    box: dict
    audio: str | None = None
    windows: list | None = None
    score_name: str = "score"


@dataclass
class Gallery:
    """A gallery figure with a play button under each panel: ``entries`` are
    ``(x_centre_fraction, clip or None, tooltip)``."""

    src: str
    caption: str
    entries: list = field(default_factory=list)


@dataclass
class ClipTable:
    """A table whose rows may carry a clip: ``rows`` are ``(cells, clip or None)``."""

    caption: str
    columns: list
    rows: list


@dataclass
class Note:
    text: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    anchor: str = ""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def flatten_metrics(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested metrics as ``(dotted name, value text)`` rows (lists of numbers kept whole)."""
    rows = []
    for k, v in metrics.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            rows += flatten_metrics(v, name)
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            rows += flatten_metrics({str(i): x for i, x in enumerate(v)}, name)
        else:
            rows.append((name, _fmt(v)))
    return rows


def _play(clip: str | None, title: str) -> str:
    if clip is None:
        return (f'<button class="play" disabled title="{_e(title)} (no clip: over --max-clips '
                f'or recording not found)">&#9654;</button>')
    return (f'<button class="play" data-src="{_e(clip)}" title="{_e(title)}">&#9654;</button>')


def _block(b) -> str:
    if isinstance(b, Note):
        return f'<p class="note">{_e(b.text)}</p>'
    if isinstance(b, Figure):
        return (f'<figure><img src="{_e(b.src)}" alt="{_e(b.caption)}" loading="lazy">'
                f'<figcaption>{_e(b.caption)}</figcaption></figure>')
    if isinstance(b, Gallery):
        buttons = "".join(
            f'<span class="gbtn" style="left:{100 * x:.3f}%">{_play(clip, tip)}</span>'
            for x, clip, tip in b.entries)
        return (f'<figure class="gallery"><div class="gwrap"><img src="{_e(b.src)}" '
                f'alt="{_e(b.caption)}" loading="lazy"><div class="gbar">{buttons}</div></div>'
                f'<figcaption>{_e(b.caption)}</figcaption></figure>')
    if isinstance(b, ClipTable):
        head = "".join(f"<th>{_e(c)}</th>" for c in ["play", *b.columns])
        body = "".join(
            "<tr><td>" + _play(clip, " ".join(str(c) for c in cells)) + "</td>"
            + "".join(f"<td>{_e(_fmt(c))}</td>" for c in cells) + "</tr>"
            for cells, clip in b.rows)
        return (f'<div class="tablewrap"><table class="clips"><caption>{_e(b.caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
    if isinstance(b, Timeline):
        data = (f' data-t0="{b.t0:.6f}" data-t1="{b.t1:.6f}" data-box="{_e(json.dumps(b.box))}"'
                + (f' data-windows="{_e(json.dumps(b.windows))}"' if b.windows else ""))
        if b.audio:
            controls = (f'<div class="tlbar"><button class="tl-play">&#9654; play</button>'
                        f'<audio class="tl-audio" preload="auto" src="{_e(b.audio)}" controls>'
                        f'</audio><span class="time">{b.t0:.2f} s</span>'
                        + ('<span class="indicator" title="decision at the cursor"></span>'
                           f'<span class="decision" data-name="{_e(b.score_name)}">'
                           f'{_e(b.score_name)}: -</span>'
                           if b.windows else "") + "</div>")
        else:
            controls = '<p class="note">No audio for this recording (file not found).</p>'
        return (f'<figure class="timeline"{data}>{controls}<div class="tlwrap">'
                f'<img src="{_e(b.src)}" alt="{_e(b.caption)}"><div class="cursor"></div></div>'
                f"<figcaption>{_e(b.caption)}</figcaption></figure>")
    raise TypeError(f"unknown block {type(b).__name__}")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1480px;
padding:0 18px 40px;color:#222;background:#fff}
h1{font-size:1.5em;margin:18px 0 4px}h2{font-size:1.2em;border-bottom:1px solid #ccc;
margin-top:34px;padding-bottom:3px}
nav a{margin-right:14px}figure{margin:14px 22px 22px 0;display:inline-block;vertical-align:top;
max-width:100%}figure img{max-width:100%;display:block}
figure.timeline,figure.gallery{display:block}
figcaption{font-size:.9em;color:#444;margin-top:4px;max-width:900px}
.mtables{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.note{color:#555;font-size:.92em}
table{border-collapse:collapse;font-size:.88em;margin:8px 0}td,th{border:1px solid #ddd;
padding:3px 8px;text-align:left;vertical-align:middle}th{background:#f3f3f3}
caption{text-align:left;font-weight:600;padding:4px 0}
.tablewrap{max-height:420px;overflow:auto;display:inline-block;border:1px solid #eee}
button.play{width:30px;height:24px;border:1px solid #888;border-radius:4px;background:#f7f7f7;
cursor:pointer;font-size:12px;padding:0}
button.play.playing{background:#2ca02c;color:#fff}button.play:disabled{opacity:.35;cursor:default}
.gwrap{position:relative;display:inline-block;max-width:100%}.gbar{position:relative;height:30px}
.gbtn{position:absolute;top:3px;transform:translateX(-50%)}
.tlwrap{position:relative;display:inline-block;max-width:100%}
.tlwrap img{cursor:crosshair}
.cursor{position:absolute;width:2px;background:#00e5ff;box-shadow:0 0 3px #000;display:none;
pointer-events:none}
.tlbar{display:flex;align-items:center;gap:10px;margin:4px 0}.tlbar audio{height:30px}
.tl-play{height:28px}.time{font-variant-numeric:tabular-nums;min-width:70px}
.indicator{display:inline-block;width:22px;height:22px;border:1px solid #333;background:#ccc}
.indicator.pos{background:#2ca02c}.indicator.neg{background:#d62728}
.decision{font-variant-numeric:tabular-nums}
"""

JS = r"""
(function(){
  "use strict";
  var player = document.getElementById("clip-player");
  var current = null;
  function reset(b){ if(b){ b.classList.remove("playing"); b.innerHTML = "&#9654;"; } }
  function pauseTimelines(){
    document.querySelectorAll("audio.tl-audio").forEach(function(a){ if(!a.paused) a.pause(); });
  }
  document.querySelectorAll("button.play[data-src]").forEach(function(b){
    b.addEventListener("click", function(){
      if(current === b && !player.paused){ player.pause(); return; }
      pauseTimelines(); reset(current); current = b;
      player.src = b.getAttribute("data-src");
      b.classList.add("playing"); b.innerHTML = "&#9632;";
      var p = player.play();
      if(p && p.catch){ p.catch(function(e){ b.title = "cannot play: " + e.message; reset(b); }); }
    });
  });
  player.addEventListener("pause", function(){ reset(current); });
  player.addEventListener("ended", function(){ reset(current); current = null; });
  document.querySelectorAll("figure.timeline").forEach(function(tl){
    var audio = tl.querySelector("audio"), img = tl.querySelector("img");
    var cur = tl.querySelector(".cursor"), btn = tl.querySelector(".tl-play");
    if(!audio){ return; }
    var box = JSON.parse(tl.getAttribute("data-box"));
    var t0 = parseFloat(tl.getAttribute("data-t0")), t1 = parseFloat(tl.getAttribute("data-t1"));
    var wins = tl.hasAttribute("data-windows")
      ? JSON.parse(tl.getAttribute("data-windows")) : null;
    var ind = tl.querySelector(".indicator"), dec = tl.querySelector(".decision");
    var clock = tl.querySelector(".time");
    var name = dec ? dec.getAttribute("data-name") : "";
    function windowAt(t){
      var lo = 0, hi = wins.length - 1, best = -1;
      while(lo <= hi){
        var mid = (lo + hi) >> 1;
        if(wins[mid][0] <= t){ best = mid; lo = mid + 1; } else { hi = mid - 1; }
      }
      return (best >= 0 && t < wins[best][1]) ? wins[best] : null;
    }
    function place(){
      var t = t0 + audio.currentTime, f = (t - t0) / (t1 - t0);
      f = Math.max(0, Math.min(1, f));
      var w = img.clientWidth, h = img.clientHeight;
      cur.style.left = ((box.left + f * (box.right - box.left)) * w - 1) + "px";
      cur.style.top = (box.top * h) + "px";
      cur.style.height = ((box.bottom - box.top) * h) + "px";
      cur.style.display = "block";
      clock.textContent = t.toFixed(2) + " s";
      if(wins && ind){
        var wdw = windowAt(t);
        ind.className = "indicator" + (wdw ? (wdw[3] ? " pos" : " neg") : "");
        dec.textContent = name + ": " + (wdw ? wdw[2].toPrecision(3)
          + (wdw[3] ? " (detected)" : " (not detected)") : "-");
      }
    }
    function loop(){ place(); if(!audio.paused){ window.requestAnimationFrame(loop); } }
    audio.addEventListener("play", function(){
      if(!player.paused){ player.pause(); }
      if(btn){ btn.innerHTML = "&#10074;&#10074; pause"; }
      loop();
    });
    audio.addEventListener("pause", function(){
      if(btn){ btn.innerHTML = "&#9654; play"; }
      place();
    });
    audio.addEventListener("timeupdate", place);
    audio.addEventListener("seeked", place);
    if(btn){
      btn.addEventListener("click", function(){
        if(!audio.paused){ audio.pause(); return; }
        pauseTimelines();
        var p = audio.play();
        if(p && p.catch){ p.catch(function(e){ btn.title = "cannot play: " + e.message; }); }
      });
    }
    img.addEventListener("click", function(ev){
      var r = img.getBoundingClientRect();
      var f = ((ev.clientX - r.left) / r.width - box.left) / (box.right - box.left);
      if(f >= 0 && f <= 1){ audio.currentTime = f * (t1 - t0); place(); }
    });
    window.addEventListener("resize", place);
  });
})();
"""


def render(title: str, subtitle: str, inputs: list[list], metrics: dict,
           sections: list[Section], warnings: list[str]) -> str:
    """The whole ``index.html`` as a string.

    ``inputs``: rows ``[file, kind, rows, role, made by]``; ``metrics``: the nested dict
    written to metrics.json (shown flattened); ``warnings``: lines shown at the top.
    """
    nav = " ".join(f'<a href="#{_e(s.anchor)}">{_e(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1><p class=\"note\">{_e(subtitle)}</p>",
        f"<nav>{nav} <a href=\"#metrics\">metrics</a> <a href=\"#inputs\">inputs</a></nav>",
        '<audio id="clip-player" preload="none"></audio>',
    ]
    if warnings:
        parts.append('<div class="note"><b>Warnings:</b><ul>'
                     + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")
    for s in sections:
        parts.append(f'<section id="{_e(s.anchor)}"><h2>{_e(s.title)}</h2>')
        parts += [_block(b) for b in s.blocks]
        parts.append("</section>")
    parts.append('<section id="metrics"><h2>Metrics</h2>'
                 '<p class="note">All of it is in metrics.json beside this page. '
                 '"stored": as the command that made the file wrote them; "computed": '
                 "recomputed here from the file's rows (ROC AUC and average precision from "
                 "the scores, the rest from the stored decisions).</p>"
                 '<div class="mtables">')
    results = metrics.get("results", {})
    for name, res in results.items():
        rows = flatten_metrics({k: v for k, v in res.items() if k != "file"})
        parts.append(f'<div class="tablewrap"><table><caption>{_e(res.get("file", name))}'
                     "</caption><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>"
                     + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
                     + "</tbody></table></div>")
    if not results:
        parts.append('<p class="note">No metrics in these inputs.</p>')
    parts.append("</div></section>")
    parts.append('<section id="inputs"><h2>Inputs</h2><table><thead><tr><th>file</th>'
                 "<th>kind</th><th>rows</th><th>role</th><th>made by</th></tr></thead><tbody>"
                 + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>"
                           for r in inputs)
                 + "</tbody></table></section>")
    parts.append(f"<script>{JS}</script></body></html>")
    return "\n".join(parts)
