// kva viewer: the clip panel. A clip (clips/<id>.mjpg) is MJPEG at its original timing whose
// parts carry Content-Length and X-Kva-Capture-Ns; the panel reads it with fetch, shows each
// JPEG as it arrives and moves the scrubber to that frame's capture time. Dragging the
// scrubber shows the frames already received; letting go plays from there. Every text is set
// as textContent. window.kvaClip holds what a test (or a curious person) may read: the state,
// frames shown, the current frame's capture time and the click-to-first-frame time.
"use strict";
window.KvaClip = function createClipPlayer(withToken, onClose) {
  const panel = document.getElementById("clip");
  const img = document.getElementById("clip-img");
  const scrub = document.getElementById("clip-scrub");
  const timeText = document.getElementById("clip-time");
  const status = document.getElementById("clip-status");
  const title = document.getElementById("clip-title");
  const source = document.getElementById("clip-source");
  const download = document.getElementById("clip-download");
  const CRLF2 = [13, 10, 13, 10];
  const latin1 = new TextDecoder("latin1");
  const stats = (window.kvaClip = {state: "closed", frames: 0, current_ns: null, first_frame_ms: null, error: null});
  let clip = null; // {stream, from, to}
  let controller = null;
  let frames = []; // {ns, seq, url}, in the order shown
  let dragging = false;

  function query(from) {
    return "from_ms=" + Math.floor(from) + "&to_ms=" + Math.floor(clip.to) + "&source=" + source.value;
  }
  function clipUrl(kind, from) {
    return withToken("clips/" + encodeURIComponent(clip.stream) + "." + kind + "?" + query(from));
  }

  function clock(ns) {
    const d = new Date(ns / 1e6);
    return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }

  function setStatus(state, text) {
    stats.state = state;
    status.className = "clip-status " + state;
    status.textContent = text;
  }

  function showTime(frame) {
    const into = (frame.ns / 1e6 - clip.from) / 1000;
    timeText.textContent = clock(frame.ns) + " · +" + into.toFixed(1) + " s · #" + frame.seq;
    stats.current_ns = frame.ns;
    if (!dragging) scrub.value = String(Math.floor(frame.ns / 1e6));
  }

  function forget() {
    for (const f of frames) URL.revokeObjectURL(f.url);
    frames = [];
  }

  function stop() {
    if (controller) controller.abort();
    controller = null;
  }

  function find(buffer, pattern, from) {
    outer: for (let i = from; i <= buffer.length - pattern.length; i++) {
      for (let j = 0; j < pattern.length; j++) if (buffer[i + j] !== pattern[j]) continue outer;
      return i;
    }
    return -1;
  }

  // The parts of a multipart body, each {headers, body}: a part is complete once its
  // Content-Length bytes are in (no need to wait for the next boundary).
  async function* parts(reader) {
    let buffer = new Uint8Array(0);
    let need = null; // headers of the part whose body is awaited
    for (;;) {
      let start = 0;
      while (start < buffer.length && (buffer[start] === 13 || buffer[start] === 10)) start++;
      if (need === null) {
        const end = find(buffer, CRLF2, start);
        if (latin1.decode(buffer.subarray(start, start + 12)).startsWith("--kvaframe--")) return;
        if (end >= 0) {
          const lines = latin1.decode(buffer.subarray(start, end)).split("\r\n");
          need = {};
          for (const line of lines.slice(1)) {
            const at = line.indexOf(":");
            if (at > 0) need[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
          }
          buffer = buffer.subarray(end + 4);
          continue;
        }
      } else {
        const length = Number(need["content-length"]);
        if (buffer.length >= length) {
          yield {headers: need, body: buffer.slice(0, length)};
          buffer = buffer.subarray(length);
          need = null;
          continue;
        }
      }
      const {value, done} = await reader.read();
      if (done) return;
      const grown = new Uint8Array(buffer.length + value.length);
      grown.set(buffer);
      grown.set(value, buffer.length);
      buffer = grown;
    }
  }

  function show(part, clickedAt) {
    const frame = {
      ns: Number(part.headers["x-kva-capture-ns"]),
      seq: part.headers["x-kva-seq"] || "",
      url: URL.createObjectURL(new Blob([part.body], {type: part.headers["content-type"] || "image/jpeg"})),
    };
    frames.push(frame);
    stats.frames = frames.length;
    if (!dragging) img.src = frame.url;
    if (frames.length === 1) {
      img.decode().then(() => {
        if (stats.first_frame_ms === null) stats.first_frame_ms = performance.now() - clickedAt;
      }, () => {});
    }
    showTime(frame);
  }

  async function play(from) {
    stop();
    forget();
    const clickedAt = performance.now();
    stats.first_frame_ms = null;
    stats.error = null;
    stats.frames = 0;
    download.href = clipUrl("avi", clip.from);
    const mine = (controller = new AbortController());
    setStatus("loading", "reading the clip from Kafka…");
    try {
      const response = await fetch(clipUrl("mjpg", from), {cache: "no-store", signal: mine.signal});
      if (!response.ok) {
        let message = "HTTP " + response.status;
        try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
        stats.error = message;
        setStatus("error", message);
        return;
      }
      setStatus("playing", "playing at the original speed");
      for await (const part of parts(response.body.getReader())) {
        if (mine.signal.aborted) return;
        show(part, clickedAt);
      }
      setStatus("ended", frames.length + " frames · drag the scrubber to look back, or replay");
    } catch (err) {
      if (err.name === "AbortError") return;
      stats.error = err.message;
      setStatus("error", "the clip stopped: " + err.message);
    } finally {
      if (controller === mine) controller = null;
    }
  }

  function nearest(ms) {
    let best = null;
    for (const f of frames) if (f.ns / 1e6 <= ms + 0.5) best = f;
    return best || frames[0] || null;
  }

  scrub.addEventListener("input", () => {
    dragging = true;
    const frame = nearest(Number(scrub.value));
    if (frame) { img.src = frame.url; showTime(frame); }
  });
  scrub.addEventListener("change", () => {
    dragging = false;
    const ms = Number(scrub.value);
    const last = frames.length ? frames[frames.length - 1].ns / 1e6 : -Infinity;
    if (stats.state === "ended" && ms <= last) return; // already here: the frame is shown
    play(ms);
  });
  source.addEventListener("change", () => { if (clip) play(clip.from); });
  document.getElementById("clip-replay").addEventListener("click", () => { if (clip) play(clip.from); });
  document.getElementById("clip-close").addEventListener("click", close);
  panel.addEventListener("click", (e) => { if (e.target === panel) close(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && clip) close(); });

  // spec: {stream, from_ms, to_ms, title, raw (whether raw frames can be chosen)}
  function open(spec) {
    clip = {stream: spec.stream, from: spec.from_ms, to: spec.to_ms};
    title.textContent = spec.title;
    source.hidden = !spec.raw;
    if (!spec.raw) source.value = "annotated";
    scrub.min = String(Math.floor(clip.from));
    scrub.max = String(Math.floor(clip.to));
    scrub.value = scrub.min;
    timeText.textContent = clock(clip.from * 1e6);
    img.removeAttribute("src");
    panel.hidden = false;
    play(clip.from);
  }

  function close() {
    stop();
    forget();
    clip = null;
    img.removeAttribute("src");
    panel.hidden = true;
    setStatus("closed", "");
    onClose();
  }

  // The playing clip ({stream, from, to}, ms) or null.
  return {open, close, isOpen: () => clip !== null, current: () => clip && {...clip}};
};
