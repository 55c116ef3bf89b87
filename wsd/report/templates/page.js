(function(){
  "use strict";
  var player = document.getElementById("clip-player");
  var current = null;
  function bar(b){ var c = b && b.parentNode.querySelector(".cpos"); return c; }
  function reset(b){
    if(b){ b.classList.remove("playing"); b.innerHTML = "&#9654;"; }
    var c = bar(b); if(c){ c.style.display = "none"; }
  }
  function mark(){
    var c = bar(current);
    if(c && player.duration > 0){
      c.style.left = "calc(" + (100 * player.currentTime / player.duration).toFixed(2)
        + "% - 1px)";
      c.style.display = "block";
    }
  }
  function follow(){ mark(); if(!player.paused){ window.requestAnimationFrame(follow); } }
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
  player.addEventListener("play", follow);
  player.addEventListener("timeupdate", mark);
  player.addEventListener("pause", function(){ reset(current); });
  player.addEventListener("ended", function(){ reset(current); current = null; });
  document.querySelectorAll("figure.timeline").forEach(function(tl){
    var audio = tl.querySelector("audio"), img = tl.querySelector("img");
    var cur = tl.querySelector(".cursor"), btn = tl.querySelector(".tl-play");
    if(!audio){ return; }
    var box = JSON.parse(tl.getAttribute("data-box"));
    var t0 = parseFloat(tl.getAttribute("data-t0")), t1 = parseFloat(tl.getAttribute("data-t1"));
    // the audio plays `speed` times faster than recorded: recording time = t0 + speed * audio time
    var speed = parseFloat(tl.getAttribute("data-speed") || "1") || 1;
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
      var t = t0 + speed * audio.currentTime, f = (t - t0) / (t1 - t0);
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
      if(f >= 0 && f <= 1){ audio.currentTime = f * (t1 - t0) / speed; place(); }
    });
    window.addEventListener("resize", place);
  });
})();
