// emotrack live dashboard: one page, no build step, no frameworks, no external assets.
//
// It connects to the WebSocket of the `emotrack run` that served it (same host and port), draws the
// valence-arousal plane with a fading trail and the whole run's timelines, and keeps its counters correct across
// server restarts: a `hello` with a new run_id starts everything afresh. Tests read the state from
// document.body.dataset, the element ids below, and window.emotrack.
"use strict";

(() => {
  const QUADRANTS = { 0: "no music", 1: "happy / energetic", 2: "tense / agitated", 3: "sad / low", 4: "calm / relaxed" };
  const PROTOCOL_VERSION = 2;
  const TRAIL_HOPS = 120; // 60 s at 0.5 s hops: enough to see a direction, short enough to stay readable
  const LATENCY_WINDOW = 20; // the latency shown is the median of this many hops: one slow hop is not news
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 10000;
  const REFUSED_AFTER = 4; // failures in a row without ever opening: most likely a wrong or missing token
  const RESTART_GAP = 10; // seq this far backwards without a new hello: the stream restarted, not a duplicate

  const params = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const el = {
    status: $("status"), quadrant: $("quadrant"), valence: $("valence-value"), arousal: $("arousal-value"),
    confidence: $("confidence"), latency: $("latency"), dropped: $("dropped"), missed: $("missed"), hops: $("hops"),
    model: $("model"), session: $("session"), markers: $("markers"), message: $("message"),
    form: $("marker-form"), input: $("marker-label"), send: $("marker-send"), fullscreen: $("fullscreen"),
    plane: $("plane"), valenceTimeline: $("valence-timeline"), arousalTimeline: $("arousal-timeline"),
  };

  // ---- the run: everything the server has told us since its hello -------------------------------------------

  const run = newRun(null);
  let latest = null; // the last emotion message, for the readouts
  let lastHopAt = 0; // performance.now() of that message: readouts go blank when it gets old

  function newRun(id) {
    return {
      id, hopS: 0.5, t: [], v: [], a: [], vr: [], ar: [], act: [],
      lastSeq: null, missed: 0, latencies: [], dropped: null, markers: [], markerKeys: new Set(),
    };
  }

  function resetRun(id) {
    // Replace the contents, not the object: the test hooks below hold on to `run`.
    Object.assign(run, newRun(id));
    latest = null;
    el.markers.replaceChildren();
    render();
  }

  function onHello(msg) {
    // Older servers send no run_id; their start time is the next best name for a run.
    const id = msg.run_id != null ? String(msg.run_id) : msg.started != null ? `started-${msg.started}` : null;
    if (id === null || id !== run.id) resetRun(id);
    if (msg.hop_s > 0) run.hopS = msg.hop_s;
    el.model.textContent = (msg.model || "—") + (shownStream ? ` · stream ${shownStream}` : "");
    const session = msg.session;
    el.session.textContent = session && session.id != null
      ? `#${session.id}` + (session.started ? ` since ${clock(session.started)}` : "") : "not recording";
    if (msg.version > PROTOCOL_VERSION) {
      showMessage(`The server speaks protocol version ${msg.version}; this page knows ${PROTOCOL_VERSION}.`);
    }
  }

  function onHistory(msg) {
    if (msg.run_id != null && String(msg.run_id) !== run.id) resetRun(String(msg.run_id));
    if (msg.hop_s > 0) run.hopS = msg.hop_s;
    const arr = (name) => (Array.isArray(msg[name]) ? msg[name].slice() : []);
    // The history is the server's whole record of the run, so it replaces ours (a reconnect mid-run fills the gap).
    run.t = arr("stream_time");
    const n = run.t.length;
    const fill = (name, fallback) => { const a = arr(name); return a.length === n ? a : (fallback || new Array(n).fill(0)); };
    run.v = fill("valence");
    run.a = fill("arousal");
    run.vr = fill("valence_raw", run.v.slice());
    run.ar = fill("arousal_raw", run.a.slice());
    run.act = fill("active", new Array(n).fill(1));
    run.lastSeq = n ? Math.round(run.t[n - 1] / run.hopS) - 1 : null;
    for (const m of Array.isArray(msg.markers) ? msg.markers : []) addMarker(m);
    render();
  }

  function onEmotion(msg) {
    const seq = Number.isInteger(msg.seq) ? msg.seq : null;
    if (seq !== null && run.lastSeq !== null) {
      if (seq <= run.lastSeq) {
        if (run.lastSeq - seq <= RESTART_GAP) return; // already in the history
        resetRun(run.id);
      } else if (seq > run.lastSeq + 1) {
        run.missed += seq - run.lastSeq - 1; // only ever grows: a restart resets it, never subtracts from it
      }
    }
    if (seq !== null) run.lastSeq = seq;
    const raw = msg.raw || {};
    run.t.push(Number.isFinite(msg.stream_time) ? msg.stream_time : ((seq ?? run.t.length) + 1) * run.hopS);
    run.v.push(msg.valence);
    run.a.push(msg.arousal);
    run.vr.push(Number.isFinite(raw.valence) ? raw.valence : msg.valence);
    run.ar.push(Number.isFinite(raw.arousal) ? raw.arousal : msg.arousal);
    run.act.push(msg.active === false ? 0 : 1);
    const total = msg.latency_ms && msg.latency_ms.total;
    if (Number.isFinite(total)) {
      run.latencies.push(total);
      if (run.latencies.length > LATENCY_WINDOW) run.latencies.shift();
    }
    if (Number.isFinite(msg.dropped_samples)) run.dropped = msg.dropped_samples;
    latest = msg;
    lastHopAt = performance.now();
    render();
  }

  // ---- markers -------------------------------------------------------------------------------------------------

  let pendingMarker = null; // {label, timer}: the label we sent, until the server echoes it

  function addMarker(m) {
    if (!m || typeof m.label !== "string") return;
    // The history and the live echo may both carry a marker after a reconnect: keep one.
    const key = m.id != null ? `id:${m.id}` : `t:${m.stream_time}:${m.label}`;
    if (run.markerKeys.has(key)) return;
    run.markerKeys.add(key);
    run.markers.push(m);
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.textContent = Number.isFinite(m.stream_time) ? mmss(m.stream_time) : "";
    li.append(time, document.createTextNode(m.label));
    if (m.source) {
      const src = document.createElement("span");
      src.className = "source";
      src.textContent = `(${m.source})`;
      li.append(src);
    }
    el.markers.prepend(li); // newest first: that is the one someone just added
    // The server may tidy the label (trim, shorten), so any echo of a dashboard marker confirms ours.
    if (pendingMarker && m.source === "dashboard") {
      clearTimeout(pendingMarker.timer);
      pendingMarker = null;
      showMessage("");
    }
  }

  el.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const label = el.input.value.trim();
    if (!label) { el.input.focus(); return; }
    if (!ws || ws.readyState !== WebSocket.OPEN) { showMessage("Not connected: the marker was not sent."); return; }
    ws.send(JSON.stringify({ type: "marker", label, source: "dashboard" }));
    el.input.value = "";
    if (pendingMarker) clearTimeout(pendingMarker.timer);
    const timer = setTimeout(() => { pendingMarker = null; showMessage(`No echo for the marker "${label}" yet.`); }, 4000);
    pendingMarker = { label, timer };
  });

  let messageTimer = null;
  function showMessage(text) {
    el.message.textContent = text;
    clearTimeout(messageTimer);
    if (text) messageTimer = setTimeout(() => { el.message.textContent = ""; }, 10000);
  }

  // ---- connection ----------------------------------------------------------------------------------------------

  let ws = null;
  let state = "connecting";
  let everOpened = false;
  let failures = 0; // connection attempts in a row that never opened
  let attempts = 0; // reconnect attempts since the connection was last open
  let retryDelay = RETRY_MIN_MS;
  let retryTimer = null;

  // With several streams in one process (--per-channel, --url) the page shows one: ?stream=NAME, or the first
  // one it hears about. The server filters by the subscription, so the others cost no bandwidth.
  let shownStream = params.get("stream");

  function wsUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams();
    const token = params.get("token");
    if (token) query.set("token", token);
    if (shownStream) query.set("stream", shownStream);
    const text = query.toString();
    return `${scheme}://${location.host}/` + (text ? `?${text}` : "");
  }

  function ofShownStream(msg) {
    if (msg.stream === undefined) return true;
    if (shownStream === null) {
      shownStream = msg.stream;
      if (ws) ws.send(JSON.stringify({ type: "subscribe", streams: [shownStream] }));
      document.title = `emotrack · ${shownStream}`;
    }
    return msg.stream === shownStream;
  }

  function connect() {
    retryTimer = null;
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (err) {
      failures++;
      scheduleRetry();
      return;
    }
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      opened = everOpened = true;
      failures = attempts = 0;
      retryDelay = RETRY_MIN_MS;
      setState("live");
    };
    sock.onmessage = (ev) => {
      if (sock !== ws || typeof ev.data !== "string") return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch (err) { return; }
      if (!msg || typeof msg !== "object") return;
      if ((msg.type === "emotion" || msg.type === "history") && !ofShownStream(msg)) return;
      if (msg.type === "emotion") onEmotion(msg);
      else if (msg.type === "hello") onHello(msg);
      else if (msg.type === "history") onHistory(msg);
      else if (msg.type === "marker") { addMarker(msg); scheduleDraw(); }
      else if (msg.type === "error") showMessage(`Server: ${msg.error}`);
    };
    // A refused handshake (HTTP 401/403) and a server that is gone look the same from here: a close event,
    // usually code 1006. Only the count of failures without ever opening hints at the token.
    sock.onclose = () => {
      if (sock !== ws) return;
      ws = null;
      if (!opened) failures++;
      scheduleRetry();
    };
  }

  function scheduleRetry() {
    attempts++;
    setState(!everOpened && failures >= REFUSED_AFTER ? "refused" : "reconnecting");
    const delay = retryDelay * (0.85 + 0.3 * Math.random()); // jitter: many tablets should not retry in step
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    retryTimer = setTimeout(connect, delay);
  }

  function retryNow() {
    if (retryTimer === null) return;
    clearTimeout(retryTimer);
    retryDelay = RETRY_MIN_MS;
    connect();
  }
  // A tablet waking up or a network coming back should not wait out a 10 s backoff.
  window.addEventListener("online", retryNow);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { retryNow(); scheduleDraw(); } });

  function setState(next) {
    state = next;
    render();
  }

  // ---- readouts ------------------------------------------------------------------------------------------------

  const staleMs = () => Math.max(3000, 6000 * run.hopS);
  const isFresh = () => state === "live" && latest !== null && performance.now() - lastHopAt < staleMs();

  function render() {
    const fresh = isFresh();
    body.dataset.state = state;
    body.dataset.fresh = fresh ? "yes" : "no";
    body.dataset.runId = run.id || "";
    body.dataset.hops = String(run.t.length);
    el.send.disabled = state !== "live";

    let status;
    if (state === "live") {
      status = "live";
      if (latest === null) status += " · waiting for audio";
      else if (!fresh) status += ` · no data for ${Math.round((performance.now() - lastHopAt) / 1000)} s`;
    } else if (state === "connecting") status = "connecting…";
    else if (state === "refused") status = `cannot connect (token?) · ${attempts} tries`;
    else status = `reconnecting… (${attempts})`;
    if (el.status.textContent !== status) el.status.textContent = status; // aria-live: announce changes only

    // Values that are not current are not shown: a frozen number on a wall looks like a calm client.
    const m = fresh ? latest : null;
    setText(el.valence, m ? signed(m.valence) : "—", m ? m.valence : "");
    setText(el.arousal, m ? signed(m.arousal) : "—", m ? m.arousal : "");
    const quadrant = m ? (m.active === false ? 0 : m.quadrant) : null;
    setText(el.quadrant, quadrant === null ? "—" : QUADRANTS[quadrant] || "—", quadrant === null ? "" : quadrant);
    body.dataset.music = m ? (quadrant === 0 ? "no" : "yes") : "unknown";
    setText(el.confidence, m && Number.isFinite(m.confidence) ? `${Math.round(m.confidence * 100)} %` : "—",
      m ? m.confidence : "");
    const med = median(run.latencies);
    setText(el.latency, m && med !== null ? `${med.toFixed(med < 10 ? 1 : 0)} ms` : "—", med ?? "");
    setText(el.dropped, run.dropped === null ? "—" : dropped(run.dropped), run.dropped ?? "");
    setText(el.missed, String(run.missed), run.missed);
    setText(el.hops, String(run.t.length), run.t.length);
    scheduleDraw();
  }

  function setText(node, text, value) {
    if (node.textContent !== text) node.textContent = text;
    node.dataset.value = String(value);
  }

  function dropped(samples) {
    if (!samples) return "0";
    const rate = (latest && latest.sample_rate) || 16000;
    return `${samples} samples (${(samples / rate).toFixed(2)} s)`;
  }

  // A slow clock for what changes without messages: staleness and its "no data for N s".
  setInterval(render, 1000);

  // ---- drawing -------------------------------------------------------------------------------------------------

  let palette = {};
  let fontPx = 16;
  function readStyle() {
    const css = getComputedStyle(document.documentElement);
    for (const name of ["text", "muted", "line", "valence", "arousal", "dot", "shade", "marker", "panel", "bg"]) {
      palette[name] = css.getPropertyValue(`--${name}`).trim();
    }
    fontPx = parseFloat(css.fontSize) || 16;
  }

  let drawPending = false;
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; draw(); });
  }

  function draw() {
    drawPlane();
    drawTimeline(el.valenceTimeline, run.v, run.vr, palette.valence, true);
    drawTimeline(el.arousalTimeline, run.a, run.ar, palette.arousal, false);
  }

  // Size a canvas's backing store to its CSS size times devicePixelRatio (crisp on phones and 4K projectors) and
  // return a context that draws in CSS pixels.
  function fit(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    const bw = Math.max(1, Math.round(w * dpr));
    const bh = Math.max(1, Math.round(h * dpr));
    if (canvas.width !== bw || canvas.height !== bh) { canvas.width = bw; canvas.height = bh; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }

  const font = (scale, weight = 400) => `${weight} ${Math.round(fontPx * scale)}px system-ui, sans-serif`;

  function trailStart() { return Math.max(0, run.t.length - TRAIL_HOPS); }

  function drawPlane() {
    const { ctx, w, h } = fit(el.plane);
    const side = Math.min(w, h);
    if (side < 40) return;
    const pad = Math.max(fontPx * 1.8, side * 0.06); // room for the axis labels outside the square
    const size = side - 2 * pad;
    const left = (w - side) / 2 + pad;
    const top = (h - side) / 2 + pad;
    const X = (v) => left + ((clamp(v) + 1) / 2) * size;
    const Y = (a) => top + ((1 - clamp(a)) / 2) * size;
    const fresh = isFresh();
    const current = fresh && latest.active !== false ? latest.quadrant : 0;

    // Quadrants: Q1 top right, Q2 top left, Q3 bottom left, Q4 bottom right; the current one lit a little.
    const half = size / 2;
    const corners = { 1: [left + half, top], 2: [left, top], 3: [left, top + half], 4: [left + half, top + half] };
    for (const [q, [qx, qy]] of Object.entries(corners)) {
      ctx.fillStyle = Number(q) === current ? "rgba(255,255,255,0.07)" : "rgba(255,255,255,0.02)";
      ctx.fillRect(qx, qy, half, half);
    }
    ctx.strokeStyle = palette.line;
    ctx.lineWidth = 1;
    ctx.strokeRect(left + 0.5, top + 0.5, size - 1, size - 1);
    ctx.beginPath();
    ctx.moveTo(left + half, top); ctx.lineTo(left + half, top + size);
    ctx.moveTo(left, top + half); ctx.lineTo(left + size, top + half);
    ctx.stroke();

    // Quadrant names in their corners.
    const inset = Math.max(6, size * 0.025);
    ctx.font = font(size > 500 ? 1.0 : 0.85, 500);
    const name = (q, x, y, align, base) => {
      ctx.fillStyle = q === current ? palette.text : palette.muted;
      ctx.textAlign = align; ctx.textBaseline = base;
      ctx.fillText(QUADRANTS[q], x, y);
    };
    name(1, left + size - inset, top + inset, "right", "top");
    name(2, left + inset, top + inset, "left", "top");
    name(3, left + inset, top + size - inset, "left", "bottom");
    name(4, left + size - inset, top + size - inset, "right", "bottom");

    // Axis labels: valence along the bottom, arousal up the left side.
    ctx.fillStyle = palette.muted;
    ctx.font = font(0.85);
    ctx.textBaseline = "middle";
    const by = top + size + pad / 2;
    ctx.textAlign = "left"; ctx.fillText("← negative", left, by);
    ctx.textAlign = "right"; ctx.fillText("positive →", left + size, by);
    ctx.textAlign = "center"; ctx.fillStyle = palette.text; ctx.fillText("valence", left + half, by);
    ctx.save();
    ctx.translate(left - pad / 2, top + half);
    ctx.rotate(-Math.PI / 2);
    ctx.fillStyle = palette.muted;
    ctx.textAlign = "left"; ctx.fillText("← low", -half, 0);
    ctx.textAlign = "right"; ctx.fillText("high →", half, 0);
    ctx.textAlign = "center"; ctx.fillStyle = palette.text; ctx.fillText("arousal", 0, 0);
    ctx.restore();

    // The trail: the last minute, older segments fainter; no-music stretches grey.
    const start = trailStart();
    const n = run.t.length;
    ctx.lineCap = "round";
    ctx.lineWidth = Math.max(2, size / 220);
    for (let i = start + 1; i < n; i++) {
      const age = (i - start) / (n - start); // 0 oldest .. 1 newest
      ctx.globalAlpha = 0.08 + 0.72 * age * age;
      ctx.strokeStyle = run.act[i] ? palette.dot : palette.muted;
      ctx.beginPath();
      ctx.moveTo(X(run.v[i - 1]), Y(run.a[i - 1]));
      ctx.lineTo(X(run.v[i]), Y(run.a[i]));
      ctx.stroke();
    }
    ctx.globalAlpha = 1;

    // The live dot: bright while current, a grey ring at the last place while stale, nothing before any data.
    if (n > 0) {
      const r = Math.max(6, size / 40);
      const x = X(run.v[n - 1]);
      const y = Y(run.a[n - 1]);
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      if (fresh && latest.active !== false) {
        ctx.fillStyle = palette.dot;
        ctx.fill();
        ctx.lineWidth = 3;
        ctx.strokeStyle = palette.valence;
        ctx.stroke();
      } else {
        // No music: a plain grey ring; stale (disconnected or silent server): a dashed one.
        ctx.lineWidth = 2;
        ctx.strokeStyle = palette.muted;
        if (!fresh) ctx.setLineDash([3, 3]);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
  }

  function drawTimeline(canvas, smooth, raw, color, labels) {
    const { ctx, w, h } = fit(canvas);
    if (w < 40 || h < 30) return;
    const left = fontPx * 2.2;
    const right = fontPx * 0.6;
    const top = labels ? fontPx * 1.3 : fontPx * 0.4; // marker labels sit above the valence plot
    const bottom = fontPx * 1.4;
    const pw = w - left - right;
    const ph = h - top - bottom;
    const n = run.t.length;
    // The whole run, from its first kept hop; at least a minute wide so the start does not look zoomed in.
    const t0 = n ? Math.max(0, run.t[0] - run.hopS) : 0;
    const t1 = Math.max(t0 + 60, n ? run.t[n - 1] : 0);
    const X = (t) => left + ((t - t0) / (t1 - t0)) * pw;
    const Y = (v) => top + ((1 - clamp(v)) / 2) * ph;

    // No-music stretches shaded, under everything else.
    ctx.fillStyle = palette.shade;
    for (let i = 0; i < n; i++) {
      if (run.act[i]) continue;
      let j = i;
      while (j + 1 < n && !run.act[j + 1]) j++;
      const xa = X(run.t[i] - run.hopS);
      ctx.fillRect(xa, top, Math.max(1, X(run.t[j]) - xa), ph);
      i = j;
    }

    // Value grid: -1, 0, +1 labelled, ±0.5 faint.
    ctx.font = font(0.75);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of [1, 0.5, 0, -0.5, -1]) {
      ctx.strokeStyle = palette.line;
      ctx.globalAlpha = v === 0 || Math.abs(v) === 1 ? 1 : 0.5;
      ctx.beginPath(); ctx.moveTo(left, Math.round(Y(v)) + 0.5); ctx.lineTo(left + pw, Math.round(Y(v)) + 0.5); ctx.stroke();
      ctx.globalAlpha = 1;
      if (v !== 0.5 && v !== -0.5) { ctx.fillStyle = palette.muted; ctx.fillText(v > 0 ? "+1" : v < 0 ? "−1" : "0", left - 6, Y(v)); }
    }

    // Time axis in mm:ss, a tick spacing that leaves room for the labels.
    const span = t1 - t0;
    const step = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400]
      .find((s) => (s / span) * pw >= fontPx * 4.5) || 14400;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillStyle = palette.muted;
    for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-6; t += step) {
      const x = X(t);
      ctx.fillRect(Math.round(x), top + ph, 1, 4);
      ctx.fillText(mmss(t), clampNum(x, left + fontPx, left + pw - fontPx), top + ph + 5);
    }

    if (n > 0) {
      // Raw faint: one min-max bar per pixel column when there are more hops than pixels, else a thin line.
      ctx.strokeStyle = color;
      ctx.globalAlpha = 0.35;
      ctx.lineWidth = 1;
      ctx.beginPath();
      if (n > pw) {
        let col = -1; let lo = 0; let hi = 0;
        const flush = () => { if (col >= 0) { ctx.moveTo(left + col + 0.5, Y(hi)); ctx.lineTo(left + col + 0.5, Y(lo) + 0.5); } };
        for (let i = 0; i < n; i++) {
          const c = Math.floor(X(run.t[i]) - left);
          if (c !== col) { flush(); col = c; lo = hi = raw[i]; } else { lo = Math.min(lo, raw[i]); hi = Math.max(hi, raw[i]); }
        }
        flush();
      } else {
        for (let i = 0; i < n; i++) (i ? ctx.lineTo : ctx.moveTo).call(ctx, X(run.t[i]), Y(raw[i]));
      }
      ctx.stroke();
      ctx.globalAlpha = 1;

      // Smoothed bold; it is smooth, so every k-th hop is enough when the run is longer than the plot is wide.
      ctx.lineWidth = Math.max(2, fontPx / 6);
      ctx.lineJoin = "round";
      ctx.beginPath();
      const k = Math.max(1, Math.floor(n / (2 * pw)));
      for (let i = 0; i < n; i += k) (i ? ctx.lineTo : ctx.moveTo).call(ctx, X(run.t[i]), Y(smooth[i]));
      ctx.lineTo(X(run.t[n - 1]), Y(smooth[n - 1]));
      ctx.stroke();
    }

    // Markers: labelled vertical lines (labels on the upper timeline only, skipped where they would overlap).
    ctx.font = font(0.75, 500);
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    let freeFrom = -Infinity;
    for (const m of run.markers) {
      if (!Number.isFinite(m.stream_time) || m.stream_time < t0) continue;
      const x = Math.round(X(Math.min(m.stream_time, t1))) + 0.5;
      ctx.strokeStyle = palette.marker;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + ph); ctx.stroke();
      ctx.setLineDash([]);
      if (labels && x >= freeFrom) {
        const text = m.label.length > 28 ? `${m.label.slice(0, 27)}…` : m.label;
        const tw = ctx.measureText(text).width;
        const tx = Math.min(x + 3, w - tw - 2);
        ctx.fillStyle = palette.marker;
        ctx.fillText(text, tx, 1);
        freeFrom = tx + tw + 8;
      }
    }
  }

  // ---- formatting ----------------------------------------------------------------------------------------------

  function clamp(v) { return Number.isFinite(v) ? Math.max(-1, Math.min(1, v)) : 0; }
  function clampNum(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function signed(v) { return Number.isFinite(v) ? (v < 0 ? "−" : "+") + Math.abs(v).toFixed(2) : "—"; }
  function median(xs) {
    if (!xs.length) return null;
    const s = xs.slice().sort((p, q) => p - q);
    const mid = s.length >> 1;
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  }
  function mmss(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const hh = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
    const ss = String(s % 60).padStart(2, "0");
    return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
  }
  function clock(unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // ---- page controls -------------------------------------------------------------------------------------------

  if (params.get("kiosk") === "1") body.classList.add("kiosk");

  if (!document.fullscreenEnabled) el.fullscreen.hidden = true;
  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch((err) => showMessage(`Full screen refused: ${err.message}`));
  }
  el.fullscreen.addEventListener("click", toggleFullscreen);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "f" && !ev.ctrlKey && !ev.metaKey && !ev.altKey && ev.target === document.body) toggleFullscreen();
  });
  document.addEventListener("fullscreenchange", () => {
    el.fullscreen.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
  });

  // Redraw whenever a canvas changes size (window resize, rotation, full screen) or the pixel ratio changes (zoom).
  const onResize = () => { readStyle(); scheduleDraw(); };
  if (window.ResizeObserver) {
    const ro = new ResizeObserver(onResize);
    for (const c of [el.plane, el.valenceTimeline, el.arousalTimeline]) ro.observe(c);
  }
  window.addEventListener("resize", onResize);

  // ---- hooks for tests and curious users (read-only views of the live state) ----------------------------------

  window.emotrack = {
    get hops() { return run.t.length; },
    get runId() { return run.id; },
    get missed() { return run.missed; },
    get state() { return state; },
    get markers() { return run.markers.map((m) => ({ ...m })); },
    timeline: { get length() { return run.t.length; } },
    trail: { get length() { return run.t.length - trailStart(); } },
    get latest() { return latest ? { ...latest } : null; },
  };

  readStyle();
  render();
  connect();
})();
