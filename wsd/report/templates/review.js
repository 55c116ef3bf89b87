(function(){
  // Review blocks (wsd/report/review.py): mark items yes / no / unsure, keep the marks in
  // localStorage under the reviewed file's identity, download them as a labels CSV.
  "use strict";
  var blocks = Array.prototype.slice.call(document.querySelectorAll("div.review"));
  if(!blocks.length){ return; }
  var player = document.getElementById("clip-player");
  var items = Array.prototype.slice.call(document.querySelectorAll("div.review .ritem"));
  var active = null;

  function load(block){
    // marks: span key -> yes/no/unsure; where: span key -> the group it was marked in;
    // yes: group -> its "yes" label as typed
    var s = {marks: {}, where: {}, yes: {}};
    try {
      var v = JSON.parse(window.localStorage.getItem(block.dataset.store) || "null");
      if(v && typeof v === "object"){
        s.marks = v.marks || {}; s.where = v.where || {}; s.yes = v.yes || {};
      }
    } catch(e){ /* no storage: marks last until the page is closed */ }
    return s;
  }
  function save(block){
    try { window.localStorage.setItem(block.dataset.store, JSON.stringify(block.wsd)); }
    catch(e){ block.querySelector(".rcount").title = "marks are not kept: " + e.message; }
  }
  function groups(block){ return Array.prototype.slice.call(block.querySelectorAll(".rgroup")); }
  function labelOf(block, item, mark){
    // yes: the label of the group the span was marked in (an item shown in several groups
    // shares its mark)
    if(mark !== "yes"){ return block.dataset[mark]; }
    var gs = groups(block), gi = block.wsd.where[item.dataset.key];
    var g = gs[gi] || item.closest(".rgroup");
    var f = g.querySelector("input.ryes");
    return f.value.trim() || f.dataset.default;
  }
  function paint(block){
    var marks = block.wsd.marks, seen = {}, n = 0, c = {yes: 0, no: 0, unsure: 0};
    block.querySelectorAll(".ritem").forEach(function(it){
      var m = marks[it.dataset.key] || "";
      it.dataset.mark = m;
      it.querySelectorAll("button.rmark").forEach(function(b){
        b.classList.toggle("on", m !== "" && b.dataset.mark === m);
      });
      it.querySelector(".rstate").textContent = m ? "\u2192 " + labelOf(block, it, m) : "";
      if(!seen[it.dataset.key]){ seen[it.dataset.key] = true; n += 1; if(m){ c[m] += 1; } }
    });
    var done = c.yes + c.no + c.unsure;
    block.querySelector(".rcount").textContent = done + " of " + n + " marked: " + c.yes
      + " yes, " + c.no + " no, " + c.unsure + " unsure";
    block.querySelector(".rdownload").disabled = done === 0;
  }
  function setMark(item, mark){
    var block = item.closest("div.review");
    var key = item.dataset.key;
    if(mark){
      block.wsd.marks[key] = mark;
      block.wsd.where[key] = groups(block).indexOf(item.closest(".rgroup"));
    } else { delete block.wsd.marks[key]; delete block.wsd.where[key]; }
    save(block); paint(block);
  }
  function csvCell(v){
    v = String(v);
    return /[",\r\n]/.test(v) ? "\"" + v.replace(/"/g, "\"\"") + "\"" : v;
  }
  function csv(block){
    var rows = ["path,start_s,end_s,label"], seen = {};
    block.querySelectorAll(".ritem").forEach(function(it){
      var k = it.dataset.key, m = block.wsd.marks[k];
      if(!m || seen[k]){ return; }
      seen[k] = true;
      rows.push([it.dataset.path, it.dataset.start, it.dataset.end, labelOf(block, it, m)]
        .map(csvCell).join(","));
    });
    return rows.join("\n") + "\n";
  }
  function download(block){
    var url = URL.createObjectURL(new Blob([csv(block)], {type: "text/csv"}));
    var a = document.createElement("a");
    a.href = url; a.download = block.dataset.file; a.style.display = "none";
    document.body.appendChild(a); a.click(); a.remove();
    window.setTimeout(function(){ URL.revokeObjectURL(url); }, 60000);
  }
  function playButton(item){ return item.querySelector("button.play[data-src]"); }
  function activate(item, scroll){
    if(active){ active.classList.remove("active"); }
    active = item;
    if(!item){ return; }
    item.classList.add("active");
    if(scroll){ item.scrollIntoView({block: "nearest"}); }
  }
  function move(step){
    var i = active ? items.indexOf(active) + step : (step > 0 ? 0 : items.length - 1);
    if(i < 0 || i >= items.length){ return; }
    activate(items[i], true);
    var auto = items[i].closest("div.review").querySelector("input.rauto");
    var b = playButton(items[i]);
    if(auto && auto.checked && b && !b.classList.contains("playing")){ b.click(); }
  }

  blocks.forEach(function(block){
    block.wsd = load(block);
    groups(block).forEach(function(g, gi){
      var f = g.querySelector("input.ryes");
      if(typeof block.wsd.yes[gi] === "string"){ f.value = block.wsd.yes[gi]; }
      f.addEventListener("input", function(){
        block.wsd.yes[gi] = f.value; save(block); paint(block);
      });
    });
    block.querySelector(".rdownload").addEventListener("click", function(){ download(block); });
    block.querySelector(".rclear").addEventListener("click", function(){
      var n = Object.keys(block.wsd.marks).length;
      if(!n || !window.confirm("Clear the " + n + " marks of this review?")){ return; }
      block.wsd.marks = {}; block.wsd.where = {}; save(block); paint(block);
    });
    paint(block);
  });
  items.forEach(function(it){
    it.addEventListener("click", function(ev){
      activate(it, false);
      var b = ev.target.closest("button");
      if(b && b.classList.contains("rmark")){ setMark(it, b.dataset.mark); }
      if(b){ b.blur(); }  // so that space plays the item, not this button again
    });
  });

  var KEYS = {j: 1, arrowdown: 1, arrowright: 1, k: -1, arrowup: -1, arrowleft: -1};
  var MARKS = {y: "yes", n: "no", u: "unsure", x: ""};
  document.addEventListener("keydown", function(ev){
    var t = ev.target;
    if(ev.ctrlKey || ev.metaKey || ev.altKey || (t && (t.isContentEditable
        || /^(INPUT|TEXTAREA|SELECT|AUDIO)$/.test(t.tagName)))){ return; }
    var key = (ev.key || "").toLowerCase();
    if(key === " " && t && t.tagName === "BUTTON"){ return; }  // the button's own click
    if(key in KEYS){
      if(!active && key.indexOf("arrow") === 0){ return; }  // arrows scroll until j or a click
      move(KEYS[key]);
    }
    else if(key in MARKS){
      if(!active){ move(1); return ev.preventDefault(); }
      setMark(active, MARKS[key]);
      if(MARKS[key]){ move(1); }
    } else if(key === " " && active){
      var b = playButton(active);
      if(b){ b.click(); }
    } else { return; }
    ev.preventDefault();
  });

  // the cursor over the thumbnail of the item whose clip plays
  function cursor(){
    document.querySelectorAll(".review .rcur").forEach(function(c){ c.style.display = "none"; });
    var b = document.querySelector(".review button.play.playing");
    var sp = b && b.closest(".ritem, .rquery").querySelector(".rspec[data-c0]");
    if(sp && !player.paused){
      var t = +sp.dataset.c0 + (+sp.dataset.speed) * player.currentTime;
      var f = (t - sp.dataset.t0) / (sp.dataset.t1 - sp.dataset.t0);
      var c = sp.querySelector(".rcur");
      c.style.left = "calc(" + (100 * Math.max(0, Math.min(1, f))).toFixed(2) + "% - 1px)";
      c.style.display = "block";
    }
    if(!player.paused){ window.requestAnimationFrame(cursor); }
  }
  player.addEventListener("play", cursor);
  player.addEventListener("pause", cursor);
  player.addEventListener("ended", cursor);
})();
