// kva viewer: a stream's timeline. The bar spans what can be replayed (from replay_from_ms,
// the oldest frame Kafka still keeps, to now) with the stream's events marked on it; a click
// on a mark plays that event's clip, a click elsewhere plays a clip starting there. The clip
// panel draws the playing clip's stream too, its window shaded on the bar.
"use strict";
window.KvaTimeline = (function () {
  const MARK_PICK_PX = 6;

  function span(ms) {
    const s = ms / 1000;
    if (s < 120) return Math.max(0, Math.round(s)) + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  function make() {
    const root = document.createElement("div");
    root.className = "timeline";
    const label = document.createElement("div");
    label.className = "tl-label";
    const bar = document.createElement("div");
    bar.className = "tl-bar";
    bar.title = "click to play from there";
    root.append(label, bar);
    return {root, label, bar, range: null, marks: []};
  }

  // Draws `stream` (an /api/streams item) at server time `nowMs`, with `shade` ({from, to}, ms)
  // shaded when given; a click calls onPick({at_ms, event}) for a mark or onPick({from_ms})
  // for any other point.
  function render(tl, stream, nowMs, onPick, shade) {
    const from = stream.replay_from_ms;
    tl.bar.replaceChildren();
    if (from === null || from === undefined || from >= nowMs) {
      tl.range = null;
      tl.label.textContent = from === null || from === undefined
        ? "replayable: not known yet" : "replayable: nothing kept yet";
      tl.bar.hidden = true;
      return;
    }
    tl.range = {from, to: nowMs};
    tl.label.textContent = "replayable: last " + span(nowMs - from);
    tl.bar.hidden = false;
    const at = (ms) => ((100 * (ms - from)) / (nowMs - from)).toFixed(3) + "%";
    if (shade && shade.to > from) {
      const shaded = document.createElement("span");
      shaded.className = "tl-window";
      shaded.style.left = at(Math.max(from, shade.from));
      shaded.style.width = ((100 * (Math.min(nowMs, shade.to) - Math.max(from, shade.from))) / (nowMs - from)).toFixed(3) + "%";
      tl.bar.append(shaded);
    }
    tl.marks = (stream.timeline || []).filter((m) => m.t_ms >= from && m.t_ms <= nowMs);
    for (const m of tl.marks) {
      const mark = document.createElement("span");
      mark.className = "tl-mark " + m.type;
      mark.dataset.event = m.id;
      mark.style.left = at(m.t_ms);
      mark.title = m.type.replace("_", " ") + " at " + new Date(m.t_ms).toTimeString().slice(0, 8);
      tl.bar.append(mark);
    }
    tl.onPick = onPick;
    if (!tl.bound) {
      tl.bound = true;
      tl.bar.addEventListener("click", (e) => {
        e.stopPropagation(); // not the card's click (which enlarges the stream)
        if (!tl.range) return;
        const box = tl.bar.getBoundingClientRect();
        const x = Math.min(Math.max(0, e.clientX - box.left), box.width);
        const scale = (tl.range.to - tl.range.from) / box.width;
        let best = null;
        for (const m of tl.marks) {
          const px = Math.abs((m.t_ms - tl.range.from) / scale - x);
          if (px <= MARK_PICK_PX && (best === null || px < best.px)) best = {m, px};
        }
        if (best) tl.onPick({at_ms: best.m.t_ms, event: best.m.id});
        else tl.onPick({from_ms: Math.floor(tl.range.from + x * scale)});
      });
    }
  }

  return {make, render};
})();
