// kva viewer: polls /api/streams once a second and keeps one card per stream, with the
// counts of its lines and zones, its newest events (each linking to its clip) and its
// timeline (every text set as textContent). Clips play in the clip panel (clip.js); while
// it is open the grid shows snapshots, so the clip has a connection of its own.
// Browsers open at most 6 connections per server, and every MJPEG stream holds one,
// so a grid of more than MJPEG_GRID_LIMIT streams shows refreshed snapshots instead
// (the enlarged stream is always live MJPEG).
"use strict";
(function () {
  const MJPEG_GRID_LIMIT = 4;
  const SNAPSHOT_INTERVAL_MS = 200;
  const POLL_MS = 1000;
  const token = new URLSearchParams(location.search).get("token");
  const cards = new Map();
  let focused = null;
  let lastStreams = [];
  let clipSettings = {before_s: 5, after_s: 5, max_s: 60, raw: false};
  let nowMs = Date.now();
  const player = window.KvaClip(withToken, () => update({streams: lastStreams, now_ms: nowMs, clips: clipSettings}));

  function withToken(url) {
    if (!token) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }
  for (const id of ["api-link", "events-link", "metrics-link"]) {
    const link = document.getElementById(id);
    link.href = withToken(link.getAttribute("href"));
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 120) return seconds.toFixed(1) + " s";
    return Math.round(seconds / 60) + " min";
  }

  function streamUrl(id, kind) {
    return withToken("streams/" + encodeURIComponent(id) + "." + kind);
  }

  function makeCard(id) {
    const card = el("div", "card");
    card.dataset.stream = id;
    const media = el("div", "media");
    const img = el("img");
    img.alt = "stream " + id;
    const live = el("span", "badge live", "live");
    const age = el("span", "badge age", "");
    const veil = el("div", "stale-veil");
    media.append(img, live, age, veil);
    const info = el("div", "info");
    const title = el("div", "title");
    const name = el("h3", "", id);
    const meta = el("span", "meta", "");
    title.append(name, meta);
    const counts = el("div", "counts");
    const preds = el("div", "preds");
    const feed = el("ol", "feed");
    const timeline = window.KvaTimeline.make();
    info.append(title, counts, preds, feed);
    card.append(media, timeline.root, info);
    card.addEventListener("click", () => openFocus(id));
    const entry = {card, img, live, age, veil, meta, preds, counts, feed, timeline, seen: null, mode: null, timer: null};
    cards.set(id, entry);
    return entry;
  }

  function setMode(entry, id, mode) {
    if (entry.mode === mode) return;
    stopImage(entry);
    entry.mode = mode;
    if (mode === "mjpg") {
      entry.img.src = streamUrl(id, "mjpg");
    } else {
      const refresh = () => {
        if (entry.mode !== "jpg") return;
        const next = new Image();
        next.onload = () => { entry.img.src = next.src; entry.timer = setTimeout(refresh, SNAPSHOT_INTERVAL_MS); };
        next.onerror = () => { entry.timer = setTimeout(refresh, 1000); };
        next.src = streamUrl(id, "jpg") + (token ? "&" : "?") + "t=" + Date.now();
      };
      refresh();
    }
  }

  function stopImage(entry) {
    clearTimeout(entry.timer);
    entry.mode = null;
    entry.img.removeAttribute("src"); // closes an MJPEG connection
  }

  function renderPreds(container, stream) {
    container.replaceChildren();
    const preds = stream.predictions;
    if (!preds || !preds.models || preds.models.length === 0) {
      container.append(el("div", "none", "no predictions yet"));
      return;
    }
    for (const model of preds.models) {
      const block = el("div", "model-block");
      let heading = model.model;
      if (model.kind === "detection") heading += " · " + model.count + " detected";
      if (model.latency_ms !== undefined) heading += " · " + Math.round(model.latency_ms) + " ms";
      block.append(el("div", "model", heading));
      if (model.error) block.append(el("div", "err", model.error));
      model.labels.slice(0, 3).forEach((item, i) => {
        const row = el("div", "label" + (i === 0 ? " top" : ""));
        row.append(el("span", "name", item.label));
        row.append(el("span", "score", item.score === null ? "" : (item.score * 100).toFixed(1) + "%"));
        const bg = el("div", "bar-bg");
        const fg = el("div", "bar-fg");
        fg.style.width = item.score === null ? "0" : Math.min(100, item.score * 100) + "%";
        bg.append(fg);
        row.append(bg);
        block.append(row);
      });
      if (model.text) block.append(el("div", "none", model.text));
      container.append(block);
    }
  }

  const COUNT_ORDER = {line: ["in", "out"], zone: ["inside", "entered"]};
  const EVENT_WORDS = {line_cross: "crossed", zone_enter: "entered", zone_exit: "left", loiter: "loitering in"};

  function renderCounts(container, events) {
    container.replaceChildren();
    container.hidden = !events || (events.lines.length === 0 && events.zones.length === 0);
    if (container.hidden) return;
    for (const [kind, items] of [["line", events.lines], ["zone", events.zones]]) {
      for (const item of items) {
        const row = el("div", "count-row " + kind);
        row.dataset.kind = kind;
        row.dataset.name = item.name;
        row.append(el("span", "kind", kind), el("span", "count-name", item.name));
        const known = COUNT_ORDER[kind];
        const keys = known.filter((k) => k in item.counts)
          .concat(Object.keys(item.counts).filter((k) => !known.includes(k)));
        for (const key of keys) {
          const chip = el("span", "count", "");
          chip.dataset.key = key;
          chip.append(el("span", "count-key", key), el("b", "", String(item.counts[key])));
          row.append(chip);
        }
        container.append(row);
      }
    }
  }

  function fmtClock(ns) {
    const d = new Date(ns / 1e6);
    return d.toTimeString().slice(0, 8);
  }

  function describeEvent(e) {
    let text = "#" + e.track + " " + e.label + " " + (EVENT_WORDS[e.type] || e.type) + " ";
    if (e.line !== null) text += e.line + " (" + e.direction + ")";
    else if (e.zone !== null) text += e.zone;
    if (e.dwell_s !== null) text += " · " + e.dwell_s.toFixed(1) + " s";
    return text;
  }

  // A clip of `stream`: around an event (at_ms, the settings' before/after) or from a time.
  function clipSpec(stream, pick, text) {
    const length = (clipSettings.before_s + clipSettings.after_s) * 1000;
    const from = pick.at_ms !== undefined ? pick.at_ms - clipSettings.before_s * 1000 : pick.from_ms;
    return {
      stream,
      from_ms: Math.max(0, Math.floor(from)),
      to_ms: Math.floor(from + Math.min(Math.max(length, 1000), clipSettings.max_s * 1000)),
      title: stream + " · " + text,
      raw: clipSettings.raw,
    };
  }

  function playClip(spec) {
    if (focused) closeFocus(); // its MJPEG connection goes to the clip
    player.open(spec);
    update({streams: lastStreams, now_ms: nowMs, clips: clipSettings});
  }

  function clipLink(e) {
    const spec = clipSpec(e.stream, {at_ms: Math.floor(e.capture_ns / 1e6)}, describeEvent(e));
    const link = el("a", "clip-link", "▶ clip");
    link.href = withToken("clips/" + encodeURIComponent(e.stream) + ".mjpg?from_ms=" + spec.from_ms + "&to_ms=" + spec.to_ms);
    link.title = "play this event's clip";
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      ev.stopPropagation(); // not the card's click
      playClip(spec);
    });
    return link;
  }

  // `seen` holds the ids shown last time: the others are new and flash once.
  function renderFeed(container, events, seen) {
    container.replaceChildren();
    const recent = events ? events.recent : [];
    container.hidden = recent.length === 0;
    const ids = new Set();
    for (const e of recent) {
      ids.add(e.id);
      const row = el("li", "event " + e.type + (seen && !seen.has(e.id) ? " new" : ""));
      row.dataset.event = e.id;
      row.append(el("span", "when", fmtClock(e.capture_ns)), el("span", "what", describeEvent(e)), clipLink(e));
      container.append(row);
    }
    return ids;
  }

  // A timeline's click on `stream`: the marked event's clip, or a clip from that point.
  function picker(stream) {
    return (pick) => {
      const known = lastStreams.find((x) => x.id === stream);
      const marked = pick.event && known && known.events
        ? known.events.recent.find((e) => e.id === pick.event) : null;
      const text = marked ? describeEvent(marked)
        : pick.event ? "event at " + fmtClock(pick.at_ms * 1e6) : "from " + fmtClock(pick.from_ms * 1e6);
      playClip(clipSpec(stream, pick, text));
    };
  }

  function renderTimeline(entry, s) {
    window.KvaTimeline.render(entry.timeline, s, nowMs, picker(s.id));
  }

  // The clip panel's timeline: the playing clip's stream, the clip's window shaded.
  const panelTimeline = window.KvaTimeline.make();
  document.getElementById("clip-timeline").append(panelTimeline.root);
  function renderPanelTimeline() {
    const playing = player.current();
    const s = playing && lastStreams.find((x) => x.id === playing.stream);
    panelTimeline.root.hidden = !s;
    if (s) window.KvaTimeline.render(panelTimeline, s, nowMs, picker(s.id), playing);
  }

  function update(data) {
    const streams = data.streams;
    lastStreams = streams;
    if (data.now_ms) nowMs = data.now_ms;
    if (data.clips) clipSettings = data.clips;
    const grid = document.getElementById("grid");
    document.getElementById("empty").hidden = streams.length > 0;
    const seen = new Set();
    const mode = streams.length <= MJPEG_GRID_LIMIT && !player.isOpen() ? "mjpg" : "jpg";
    grid.classList.toggle("few", streams.length <= 2);
    let live = 0;
    for (const s of streams) {
      seen.add(s.id);
      const entry = cards.get(s.id) || makeCard(s.id);
      if (!entry.card.isConnected) grid.append(entry.card);
      if (s.width !== null) setMode(entry, s.id, focused === s.id ? "jpg" : mode);
      entry.card.classList.toggle("stale", s.stale);
      if (!s.stale) live += 1;
      entry.live.textContent = s.stale ? "stale" : s.fps.toFixed(1) + " fps";
      entry.age.textContent = "age " + fmtAge(s.age_seconds);
      entry.veil.replaceChildren(
        el("div", "", s.silent_seconds === null ? "no frames yet" : "no frames for " + fmtAge(s.silent_seconds)),
      );
      entry.meta.textContent = s.width === null ? "" : s.width + "×" + s.height + " · #" + s.sequence;
      renderPreds(entry.preds, s);
      renderCounts(entry.counts, s.events);
      entry.seen = renderFeed(entry.feed, s.events, entry.seen);
      renderTimeline(entry, s);
    }
    for (const [id, entry] of cards) {
      if (!seen.has(id)) { stopImage(entry); entry.card.remove(); cards.delete(id); }
    }
    document.getElementById("summary").textContent =
      streams.length + " stream" + (streams.length === 1 ? "" : "s") + " · " + live + " live";
    renderPanelTimeline();
    if (focused) renderFocus();
  }

  function openFocus(id) {
    focused = id;
    document.getElementById("focus-img").src = streamUrl(id, "mjpg");
    document.getElementById("focus").hidden = false;
    const entry = cards.get(id);
    if (entry && entry.mode === "mjpg") setMode(entry, id, "jpg"); // keep connections free
    renderFocus();
  }

  function closeFocus() {
    focused = null;
    document.getElementById("focus-img").removeAttribute("src");
    document.getElementById("focus").hidden = true;
    update({streams: lastStreams, now_ms: nowMs, clips: clipSettings});
  }

  function renderFocus() {
    const s = lastStreams.find((x) => x.id === focused);
    document.getElementById("focus-title").textContent = focused;
    const stats = document.getElementById("focus-stats");
    stats.replaceChildren();
    if (!s) return;
    const rows = [
      ["state", s.stale ? "no frames for " + fmtAge(s.silent_seconds) : "live"],
      ["fps", s.fps.toFixed(1)],
      ["frame age", fmtAge(s.age_seconds)],
      ["resolution", s.width === null ? "–" : s.width + "×" + s.height],
      ["sequence", s.sequence === null ? "–" : String(s.sequence)],
    ];
    const dl = el("dl", "stats");
    for (const [k, v] of rows) dl.append(el("dt", "", k), el("dd", "", v));
    stats.append(dl);
    renderPreds(document.getElementById("focus-preds"), s);
    renderCounts(document.getElementById("focus-counts"), s.events);
    renderFeed(document.getElementById("focus-feed"), s.events, null);
  }

  document.getElementById("focus-close").addEventListener("click", closeFocus);
  document.getElementById("focus").addEventListener("click", (e) => {
    if (e.target.id === "focus") closeFocus();
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && focused && !player.isOpen()) closeFocus(); });

  async function poll() {
    try {
      const response = await fetch(withToken("api/streams"), {cache: "no-store"});
      if (!response.ok) throw new Error("HTTP " + response.status);
      update(await response.json());
    } catch (err) {
      document.getElementById("summary").textContent = "viewer unreachable (" + err.message + ")";
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  if (window.KVA && window.KVA.initial) update(window.KVA.initial);
  setTimeout(poll, POLL_MS);
})();
