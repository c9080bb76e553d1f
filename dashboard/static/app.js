// phasegate dashboard: polls /api/summary, renders it, and sends weight control actions.
// Plain JavaScript, no dependencies; charts are inline SVG.
"use strict";

const TOKEN_KEY = "phasegate-token";
const view = {
  rollout: null, span: null, refresh: 5, timer: null, data: null,
  sort: { key: "uses", dir: "desc" }, sliderDirty: false,
};
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- formatting
const dash = "\u2013";
const pct = (v) => (v == null ? dash : (v * 100).toFixed(1) + "%");
const fixed3 = (v) => (v == null ? dash : v.toFixed(3));
const ms = (v) => (v == null ? dash : Math.round(v) + " ms");
const int = (v) => (v == null ? dash : Number(v).toLocaleString("en-US"));
const signed = (v, fmt) => (v == null ? dash : (v > 0 ? "+" : "") + fmt(v));
const counts = (obj) => {
  const entries = Object.entries(obj || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return entries.length ? entries.map(([k, n]) => `${k} ${n}`).join(", ") : "none";
};
const clock = (iso) => (iso ? new Date(iso).toISOString().slice(11, 19) : dash);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// ---------------------------------------------------------------- API
function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search);
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["X-Phasegate-Token"] = token;
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  $("token-form").hidden = resp.status !== 401;
  if (!resp.ok) throw new Error((body && body.error) || `${resp.status} ${resp.statusText}`);
  return body;
}

// ---------------------------------------------------------------- refresh loop
async function refresh() {
  clearTimeout(view.timer);
  try {
    const query = view.span ? `?span=${view.span}` : "";
    view.data = await api(`/api/summary${query}`);
    render(view.data);
  } catch (e) {
    showBanner(`cannot load the dashboard data: ${e.message}`);
    $("updated").textContent = "not updated";
  }
  if (view.refresh > 0) view.timer = setTimeout(refresh, view.refresh * 1000);
}

function showBanner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

function render(data) {
  const problems = [];
  if (!data.worker.ok) problems.push(data.worker.error);
  problems.push(...data.logs.errors);
  showBanner(problems.join(" \u2022 "));
  $("updated").textContent = `updated ${clock(data.generated_at)} UTC`;
  const names = data.rollouts.map((r) => r.rollout);
  if (!names.includes(view.rollout)) view.rollout = names[0] || null;
  fillSelect($("rollout"), names.map((n) => [n, n]), view.rollout);
  const r = data.rollouts.find((x) => x.rollout === view.rollout);
  if (!r) { $("span-label").textContent = "no rollout seen yet"; return; }
  view.span = r.span;
  fillSelect($("span"), r.spans.map((s) => [String(s), `${s / 60} min`]), String(r.span));
  $("span-label").textContent = r.span ? `rolling ${r.span / 60} min, up to ${clock(r.end)} UTC` : "";
  renderState(r);
  renderWinner(r.winner);
  renderSystems(r);
  renderGates(r);
  renderAlerts(r);
  renderRules(r.rules);
  renderHistory(r.state.history);
  renderCharts(r);
}

function fillSelect(select, options, selected) {
  const current = [...select.options].map((o) => o.value + "\u0000" + o.text).join("|");
  const wanted = options.map(([v, t]) => v + "\u0000" + t).join("|");
  if (current !== wanted) select.replaceChildren(...options.map(([v, t]) => el("option", { value: v, text: t })));
  if (selected != null) select.value = selected;
}

// ---------------------------------------------------------------- panels
function renderState(r) {
  const s = r.state;
  $("weight").textContent = `${s.weight}%`;
  // A weight set directly (not by promote) has no phase in the log: show the plan's.
  const derived = s.phase === 0 && s.weight > 0;
  $("phase").textContent = String(derived ? s.phase_by_weight : s.phase);
  $("phase-label").textContent = derived ? "phase (by weight)" : `phase: ${s.phase_name}`;
  $("next-step").textContent = s.next_phase ? `phase ${s.next_phase.phase} at ${s.next_phase.weight}%` : "last phase";
  $("next-label").textContent = s.phase === 0 ? "start goes to" : "promote goes to";
  // The plan decides the limits: up at most to the next phase's weight (s.max_weight).
  $("slider").max = s.max_weight;
  if (!view.sliderDirty) {
    $("slider").value = s.weight;
    $("slider-value").textContent = `${s.weight}%`;
  }
  const quick = $("quick-weights");
  if (quick.dataset.weights !== String(s.quick_weights)) {
    quick.dataset.weights = String(s.quick_weights);
    quick.replaceChildren(...s.quick_weights.map((w) => el("button",
      { type: "button", class: "quick-weight", "data-weight": w, id: `quick-${w}`, text: `${w}%` })));
  }
  for (const b of quick.children) {
    const w = Number(b.dataset.weight);
    b.classList.toggle("current", w === s.weight);
    b.disabled = w > s.max_weight;
    b.title = b.disabled ? `the plan raises the weight one phase at a time (next: ${s.max_weight}%)` : "";
  }
  const targets = [["", "0% (stop the candidate)"],
    ...s.rollback_phases.map((p) => [String(p.phase), `phase ${p.phase} (${p.name}, ${p.weight}%)`])];
  fillSelect($("rollback-to"), targets, targets.some(([v]) => v === $("rollback-to").value) ? $("rollback-to").value : "");
}

function renderWinner(w) {
  $("winner").textContent = w.message;
  $("winner").classList.toggle("decided", Boolean(w.decided));
}

// How a value and a candidate-minus-baseline difference of each unit of the metric
// registry (schemas/metrics.py, sent as r.metrics) are shown.
const FIGURE = { share: pct, ms, score: fixed3, count: int };
const DIFFERENCE = {
  share: (v) => signed(v == null ? null : v * 100, (x) => x.toFixed(1) + " pt"),
  ms: (v) => signed(v, (x) => Math.round(x) + " ms"),
  score: (v) => signed(v, (x) => x.toFixed(3)),
  count: (v) => signed(v, (x) => String(x)),
};
const value = (e) => (e == null ? null : e.value);

function rowsOf(r) {
  return [
    ["queries", "count", (s) => int(s.count), null],
    ...r.metrics.map((m) => [m.title, m.name, (s) => FIGURE[m.unit](value(s[m.name])),
      (d) => DIFFERENCE[m.unit](d[m.name])]),
    ["errors by type", "errors", (s) => counts(s.errors), null],
    ["feedback", "feedback", (s) => counts(s.feedback), null],
  ];
}

function renderSystems(r) {
  const table = $("systems");
  const head = el("tr", {}, el("th", { text: "" }));
  for (const s of r.systems) {
    head.append(el("th", { class: `num system-${s.role}`, text: `${s.system} (${s.role})` }));
  }
  head.append(el("th", { class: "num", text: "candidate \u2212 baseline" }));
  table.tHead.replaceChildren(head);
  const rows = rowsOf(r).map(([label, metric, fmt, delta]) => {
    const tr = el("tr", {}, el("th", { text: label }));
    for (const s of r.systems) {
      tr.append(el("td", { class: "num", "data-system": s.system, "data-metric": metric, text: fmt(s) }));
    }
    tr.append(el("td", { class: "num", "data-metric": `delta-${metric}`, text: delta ? delta(r.delta) : "" }));
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
}

function renderGates(r) {
  const gates = r.gates;
  const verdicts = gates ? gates.verdicts : [];
  $("gates-empty").hidden = Boolean(gates);
  $("gates-title").textContent = gates ? `phase ${gates.phase} (${gates.phase_name}): ${gates.outcome}` : "";
  $("gates-title").className = gates ? `verdict-${gates.outcome}` : "muted";
  $("incidents").textContent = r.incidents.length ? r.incidents.join(", ") : "none";
  const units = Object.fromEntries(r.metrics.map((m) => [m.name, m.unit]));
  $("gates").tBodies[0].replaceChildren(...verdicts.map((v) => {
    const fmt = FIGURE[units[v.metric]];  // each figure in its metric's unit
    const samples = int(v.samples) + (v.reference_samples == null ? "" : ` vs ${int(v.reference_samples)}`);
    return el("tr", {},
      el("td", { text: v.criterion }),
      el("td", { class: `verdict-${v.outcome}`, text: v.outcome + (v.note ? ` (${v.note})` : "") }),
      el("td", { class: "num", text: fmt(v.observed) }),
      el("td", { class: "num", text: v.low == null ? dash : `${fmt(v.low)} ${dash} ${fmt(v.high)}` }),
      el("td", { class: "num", text: fmt(v.threshold) }),
      el("td", { class: "num", text: samples }));
  }));
}

function renderAlerts(r) {
  $("alert-counts").textContent = counts(r.alert_counts);
  const items = r.alerts.map((a) => {
    const action = a.action ? `; weight ${a.action.weight_from}% \u2192 ${a.action.weight_to}%` : "";
    return el("li", {},
      el("span", { class: `sev-${a.severity}`, text: `${clock(a.ts)} ${a.dry_run ? "dry-run " : ""}${a.kind}${a.attribution ? ` [${a.attribution}]` : ""}` }),
      ` ${a.system}: ${a.metric} ${Number(a.observed).toFixed(3)} (threshold ${a.threshold}) over ${a.samples} ${a.counted}${action}`,
      el("div", { class: "why muted", text: a.evidence }),
      ...(a.why ? [el("div", { class: "why muted", text: `why: ${a.why}` })] : []));
  });
  $("alerts").replaceChildren(...(items.length ? items : [el("li", { class: "muted", text: "no alerts" })]));
}

function renderRules(rules) {
  const { key, dir } = view.sort;
  const sorted = [...rules].sort((a, b) => {
    const diff = (a[key] ?? -1) - (b[key] ?? -1);
    return (dir === "asc" ? diff : -diff) || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0);
  });
  for (const b of document.querySelectorAll("#rules th button")) {
    b.classList.remove("asc", "desc");
    if (b.dataset.sort === key) b.classList.add(dir);
  }
  $("rules").tBodies[0].replaceChildren(...sorted.map((r) => el("tr", {},
    el("td", { text: r.rule }), el("td", { text: r.system }),
    el("td", { class: "num", text: int(r.uses) }), el("td", { class: "num", text: pct(r.success_rate) }))));
}

function renderHistory(events) {
  $("history").tBodies[0].replaceChildren(...[...events].reverse().slice(0, 15).map((e) => el("tr", {},
    el("td", { text: clock(e.ts) }), el("td", { text: e.type }),
    el("td", { class: "num", text: e.weight == null ? dash : `${e.weight}%` }),
    el("td", { class: "num", text: e.phase == null ? dash : String(e.phase) }),
    el("td", { text: e.actor }), el("td", { text: e.reason }))));
}

// ---------------------------------------------------------------- charts
const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3600 * 1000;
const COLORS = { baseline: "#2563eb", candidate: "#d97706", other: "#7c3aed" };

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// lines: [{name, color, points: [[t, v], ...], step}] ; t in ms
function lineChart(container, lines, { from, to, format, min, max }) {
  const W = 320, H = 150, L = 44, R = 8, T = 8, B = 18;
  const values = lines.flatMap((l) => l.points.map((p) => p[1])).filter((v) => v != null);
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
  if (!values.length) {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
    t.textContent = "no data yet";
    chart.append(t);
    container.replaceChildren(chart);
    return;
  }
  let lo = min ?? Math.min(...values), hi = max ?? Math.max(...values);
  if (hi === lo) { hi += Math.abs(hi) * 0.05 || 1; lo -= Math.abs(lo) * 0.05 || 0; }
  const x = (t) => L + ((t - from) / Math.max(1, to - from)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  chart.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(lo), y2: y(lo) }));
  chart.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(hi), y2: y(hi) }));
  for (const [v, anchor] of [[hi, T + 8], [lo, H - B]]) {
    const label = svg("text", { x: L - 4, y: anchor, "text-anchor": "end" });
    label.textContent = format(v);
    chart.append(label);
  }
  for (const [t, anchor] of [[from, "start"], [to, "end"]]) {
    const label = svg("text", { x: x(t), y: H - 4, "text-anchor": anchor });
    label.textContent = new Date(t).toISOString().slice(11, 16);
    chart.append(label);
  }
  for (const line of lines) {
    const pts = line.points.filter((p) => p[1] != null && p[0] >= from);
    if (!pts.length) continue;
    let d = "";
    pts.forEach(([t, v], i) => {
      if (i === 0) d += `M${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      else if (line.step) d += `H${x(t).toFixed(1)}V${y(v).toFixed(1)}`;
      else d += `L${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    });
    if (line.step) d += `H${x(to).toFixed(1)}`;
    const path = svg("path", { d, fill: "none", stroke: line.color, "stroke-width": 2 });
    const title = svg("title", {});
    title.textContent = line.name;
    path.append(title);
    chart.append(path);
  }
  const legend = el("div", { class: "legend" });
  for (const line of lines) {
    const swatch = el("span", { text: "\u25A0 " });
    swatch.style.color = line.color;
    legend.append(swatch, `${line.name}  `);
  }
  container.replaceChildren(chart, legend);
}

function renderCharts(r) {
  const roles = Object.fromEntries(r.systems.map((s) => [s.system, s.role]));
  roles[r.baseline] = "baseline";
  roles[r.candidate] = "candidate";
  // Up to the last hour, zoomed to the windows the worker holds.
  const points = Object.values(r.series).flat();
  const to = points.length ? Math.max(...points.map((p) => Date.parse(p.end))) : Date.now();
  const first = points.length ? Math.min(...points.map((p) => Date.parse(p.start))) : to - HOUR;
  const from = Math.max(to - HOUR, first);
  const series = (field) => Object.entries(r.series).map(([system, points]) => ({
    name: system, color: COLORS[roles[system] || "other"],
    points: points.map((p) => [(Date.parse(p.start) + Date.parse(p.end)) / 2, p[field]]),
  }));
  lineChart($("chart-success"), series("success_rate"), { from, to, format: pct });
  lineChart($("chart-confidence"), series("mean_confidence"), { from, to, format: fixed3 });
  lineChart($("chart-p95"), series("p95_latency_ms"), { from, to, format: (v) => Math.round(v) });
  lineChart($("chart-count"), series("count"), { from, to, format: (v) => Math.round(v), min: 0 });
  const now = Date.now();
  const weights = r.state.weights.map((w) => [Date.parse(w.ts), w.weight]);
  const start = Math.max(now - HOUR, Math.min(from, weights.length ? weights[0][0] : now));
  const before = weights.filter((w) => w[0] < start).pop();
  const shown = weights.filter((w) => w[0] >= start);
  if (before) shown.unshift([start, before[1]]);
  lineChart($("chart-weight"), [{ name: "candidate weight", color: COLORS.candidate, points: shown, step: true }],
    { from: start, to: now, format: (v) => `${Math.round(v)}%`, min: 0, max: 100 });
}

// ---------------------------------------------------------------- control
function message(text, kind) {
  const m = $("control-message");
  m.textContent = text;
  m.className = `message ${kind || ""}`;
}

async function act(action, extra = {}) {
  if (!view.rollout) { message("no rollout selected", "error"); return; }
  const body = Object.assign({ actor: $("actor").value, reason: $("reason").value }, extra);
  if (action === "rollback" || (action === "set_weight" && extra.weight === 0)) {
    const to = extra.to_phase ? `phase ${extra.to_phase}` : "0%? Every request goes to the baseline";
    if (!window.confirm(`Roll ${view.rollout} back to ${to}?`)) {
      message("rollback cancelled");
      return;
    }
    body.confirm = true;
  }
  try {
    const result = await api(`/api/rollouts/${encodeURIComponent(view.rollout)}/${action}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const e = result.event;
    const weight = e.weight == null ? "" : ` weight ${e.weight}%`;
    message(`written to the rollout log: ${e.type}${weight} by ${e.actor}`, "ok");
    view.sliderDirty = false;
    $("reason").value = "";
    $("force").checked = false;
    setTimeout(refresh, 800);
  } catch (err) {
    message(`refused: ${err.message}`, "error");
  }
}

function setup() {
  takeTokenFromUrl();
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    refresh();
  });
  $("rollout").addEventListener("change", (ev) => { view.rollout = ev.target.value; view.span = null; refresh(); });
  $("span").addEventListener("change", (ev) => { view.span = Number(ev.target.value); refresh(); });
  $("refresh").addEventListener("change", (ev) => { view.refresh = Number(ev.target.value); refresh(); });
  $("slider").addEventListener("input", (ev) => {
    view.sliderDirty = true;
    $("slider-value").textContent = `${ev.target.value}%`;
  });
  $("apply-weight").addEventListener("click", () => act("set_weight", { weight: Number($("slider").value) }));
  $("quick-weights").addEventListener("click", (ev) => {
    const b = ev.target.closest(".quick-weight");
    if (b && !b.disabled) act("set_weight", { weight: Number(b.dataset.weight) });
  });
  $("start").addEventListener("click", () => act("start"));
  $("promote").addEventListener("click", () => act("promote", $("force").checked ? { force: true } : {}));
  $("hold").addEventListener("click", () => act("hold"));
  $("rollback").addEventListener("click", () => {
    const to = $("rollback-to").value;
    act("rollback", to ? { to_phase: Number(to) } : {});
  });
  for (const b of document.querySelectorAll("#rules th button")) {
    b.addEventListener("click", () => {
      const key = b.dataset.sort;
      view.sort = { key, dir: view.sort.key === key && view.sort.dir === "desc" ? "asc" : "desc" };
      if (view.data) render(view.data);
    });
  }
  refresh();
}

document.addEventListener("DOMContentLoaded", setup);
