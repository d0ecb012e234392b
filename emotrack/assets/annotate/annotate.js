// emotrack annotate: sample the listener's point on the valence-arousal plane at 2 Hz of the song's time.
// Labels sit on the model's hop grid (t = 0.5, 1.0, ... s of audio time); the server turns them into CSV.
"use strict";
(function () {
  const HOP = 0.5;       // seconds of audio between labels (2 Hz)
  const KEY_STEP = 0.05; // arrow-key step on the [-1, 1] plane
  const audio = document.getElementById("audio");
  const plane = document.getElementById("plane");
  const dot = document.getElementById("dot");
  const readout = document.getElementById("readout");
  const count = document.getElementById("count");
  const status = document.getElementById("status");
  const point = { v: 0, a: 0 };
  const samples = [];    // [time_s, valence, arousal], increasing time
  let dragging = false;
  let saved = false;

  const clamp = (x) => Math.max(-1, Math.min(1, x));
  const round = (x) => Math.round(x * 1e4) / 1e4;

  function setPoint(v, a) {
    point.v = clamp(v); point.a = clamp(a);
    dot.style.left = ((point.v + 1) / 2 * 100) + "%";
    dot.style.top = ((1 - point.a) / 2 * 100) + "%";
    const text = `valence ${point.v >= 0 ? "+" : ""}${point.v.toFixed(2)}, arousal ${point.a >= 0 ? "+" : ""}${point.a.toFixed(2)}`;
    readout.textContent = text;
    plane.setAttribute("aria-valuetext", text);
  }

  function fromPointer(ev) {
    const r = plane.getBoundingClientRect();
    setPoint(2 * (ev.clientX - r.left) / r.width - 1, 1 - 2 * (ev.clientY - r.top) / r.height);
  }

  plane.addEventListener("pointerdown", (ev) => {
    dragging = true; plane.focus(); fromPointer(ev);
    if (plane.setPointerCapture) { try { plane.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic */ } }
    ev.preventDefault();
  });
  plane.addEventListener("pointermove", (ev) => { if (dragging) fromPointer(ev); });
  const stop = () => { dragging = false; };
  plane.addEventListener("pointerup", stop);
  plane.addEventListener("pointercancel", stop);

  document.addEventListener("keydown", (ev) => {
    const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[ev.key];
    if (!d || (ev.target && ev.target.tagName === "AUDIO")) return;
    setPoint(point.v + d[0] * KEY_STEP, point.a + d[1] * KEY_STEP);
    ev.preventDefault();
  });

  // Record one label per 0.5 s grid point the playback passes; a seek back drops what follows it.
  function sample() {
    const t = audio.currentTime;
    while (samples.length && samples[samples.length - 1][0] > t + 1e-6) samples.pop();
    if (!audio.paused && !audio.ended) {
      let next = samples.length ? samples[samples.length - 1][0] + HOP : HOP;
      if (t - next > 2 * HOP) next = Math.floor(t / HOP) * HOP; // jumped forward: start at the new time
      while (next <= t + 1e-6) { samples.push([round(next), round(point.v), round(point.a)]); next += HOP; }
    }
    count.textContent = `${samples.length} labels`;
  }
  setInterval(sample, 40);
  audio.addEventListener("seeked", sample);

  async function save() {
    sample();
    status.className = ""; status.textContent = "saving…";
    const body = { time_s: samples.map((s) => s[0]), valence: samples.map((s) => s[1]),
                   arousal: samples.map((s) => s[2]) };
    try {
      const res = await fetch("curve", { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify(body) });
      const reply = await res.json();
      if (!res.ok) throw new Error(reply.error || res.statusText);
      saved = true;
      status.textContent = `saved ${reply.rows} labels to ${reply.path}`;
      return reply;
    } catch (err) {
      status.className = "error"; status.textContent = "not saved: " + err.message;
      return { error: err.message };
    }
  }
  document.getElementById("save").addEventListener("click", save);
  audio.addEventListener("ended", () => { sample(); if (!saved) save(); });

  fetch("info").then((r) => r.json()).then((info) => {
    document.getElementById("song").textContent = info.song;
  }).catch(() => {});
  setPoint(0, 0);
  window.annotator = { samples, point, setPoint, save, sample, isSaved: () => saved };
})();
