// The pointsman dashboard. Everything shown comes from the admin API (/ui/api/...), sent
// the admin key as an Authorization header; the key lives in sessionStorage only.
// Prompts, model names and metadata are untrusted: the DOM is built with createElement and
// textContent, never from HTML strings.
"use strict";
(() => {
  const KEY = "pointsman.adminKey";
  const POLL_MS = 5000;  // live updates; windows over 6 hours poll every 30 s (heavier queries)
  const pollMs = () => (Number($("window").value) > 21600 ? 30000 : POLL_MS);
  const PALETTE = ["#2f6fde", "#e8743b", "#19a979", "#945ecf", "#d14343", "#13a4b4",
                   "#c98a00", "#6c8893", "#ee6868", "#2f4b7c"];
  const PAGES = ["overview", "routing", "latency", "budgets", "experiments", "requests"];
  const charts = new Map();
  const filters = {};
  let selected = null;
  let before = null;  // the request browser's page: rows older than this time (null: newest)
  let oldest = null;
  let timer = null;
  let generation = 0;  // a sign-out ends the polling chain that was running
  let busy = false;

  const $ = (id) => document.getElementById(id);

  // -- DOM helpers: text only ------------------------------------------------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  const clear = (node) => { node.replaceChildren(); return node; };

  function table(target, head, rows, empty) {
    const node = clear(typeof target === "string" ? $(target) : target);
    if (!rows.length) {
      node.append(el("caption", {class: "empty", text: empty || "Nothing yet."}));
      return node;
    }
    node.append(el("thead", {}, el("tr", {}, ...head.map(
      (h) => el("th", {class: h.startsWith("#") ? "num" : null, text: h.replace(/^#/, "")})))));
    const body = el("tbody");
    for (const row of rows) {
      const tr = row instanceof Node ? row : el("tr", {}, ...row.map(cell));
      body.append(tr);
    }
    node.append(body);
    return node;
  }
  function cell(value) {
    if (value instanceof Node) return el("td", {}, value);
    if (value && typeof value === "object" && "num" in value) {
      return el("td", {class: "num", text: value.num});
    }
    return el("td", {text: value === null || value === undefined ? "—" : value});
  }
  const num = (text) => ({num: text});

  // -- formats ---------------------------------------------------------------------------
  const count = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en"));
  function usd(n) {
    if (n === null || n === undefined) return "—";
    const a = Math.abs(n);
    const digits = a === 0 ? 2 : a < 0.01 ? 6 : a < 1 ? 4 : 2;
    return "$" + Number(n).toFixed(digits);
  }
  const ms = (n) => (n === null || n === undefined ? "—" : `${Math.round(n).toLocaleString("en")} ms`);
  const pct = (n) => (n === null || n === undefined || !isFinite(n) ? "—" : `${(100 * n).toFixed(1)}%`);
  const when = (ts) => new Date(ts * 1000).toLocaleString("en-GB", {hour12: false});
  function clock(ts) {  // today: the time only
    const d = new Date(ts * 1000);
    const today = d.toDateString() === new Date().toDateString();
    return today ? d.toLocaleTimeString("en-GB", {hour12: false})
      : d.toLocaleString("en-GB", {hour12: false, day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit"});
  }
  const shortUsd = (v) => (v === 0 ? "$0" : `$${Number(v.toPrecision(2))}`);
  const pill = (text) => el("span", {class: `pill ${String(text).replace(/[^a-z_]/g, "")}`, text});
  function bar(fraction, color) {
    const f = Math.max(0, Math.min(1, fraction || 0));
    const fill = el("span");
    fill.style.width = `${(100 * f).toFixed(1)}%`;  // CSSOM, allowed by the CSP
    if (color) fill.style.background = color;
    return el("div", {class: `bar${fraction >= 1 ? " over" : fraction >= 0.8 ? " warn" : ""}`}, fill);
  }
  function card(stat, label, value, sub, tone) {
    return el("div", {class: `card${tone ? " " + tone : ""}`, "data-stat": stat},
      el("div", {class: "label", text: label}), el("div", {class: "value", text: value}),
      sub ? el("div", {class: "sub", text: sub}) : null);
  }

  // -- the API ---------------------------------------------------------------------------
  class Refused extends Error {}
  async function api(path) {
    const key = sessionStorage.getItem(KEY);
    if (!key) throw new Refused("Admin key required.");
    const response = await fetch(path, {headers: {Authorization: `Bearer ${key}`,
      Accept: "application/json"}, cache: "no-store", credentials: "omit"});
    if (response.status === 401 || response.status === 403) {
      let why = "Admin key required.";
      try { why = `Admin key required: ${(await response.json()).error.message}`; } catch (e) { /* keep */ }
      throw new Refused(why);
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }
  const windowS = () => $("window").value;

  // -- charts (uPlot) --------------------------------------------------------------------
  // kind "line" (gaps stay gaps, points shown), "bars" (series drawn over each other, the
  // first at the back) or "stack" (each bucket's shares stacked to 100%).
  function chart(id, xs, series, opts) {
    const o = opts || {};
    const box = $(id);
    const old = charts.get(id);
    if (old) { old.destroy(); charts.delete(id); }
    clear(box);
    if (!xs.length || !series.length || series.every((s) => s.values.every((v) => !v))) {
      box.append(el("div", {class: "empty", text: "No requests in this window."}));
      return;
    }
    const fmt = o.y || String;
    const own = series.map((s) => s.values);
    let drawn = own;
    if (o.kind === "stack") {  // cumulative, drawn largest first so every share shows
      let acc = xs.map(() => 0);
      drawn = own.map((values) => (acc = acc.map((a, i) => a + (values[i] || 0))));
      drawn = drawn.map((values) => values.map((v, i) => (own.some((w) => w[i] !== null) ? v : null)));
    }
    const order = series.map((s, i) => i);
    if (o.kind === "stack") order.reverse();
    const bars = o.kind === "stack" || o.kind === "bars" ? uPlot.paths.bars({size: [0.85, 48]}) : null;
    const width = Math.max(280, box.clientWidth || box.parentElement.clientWidth - 32);
    const plot = new uPlot({
      width, height: 220, legend: {live: true},
      scales: {x: {time: true}, y: {range: (u, min, max) => [0, o.kind === "stack" ? 100 : max > 0 ? max * 1.1 : 1]}},
      axes: [{}, {size: 70, values: (u, ticks) => ticks.map(o.axis || fmt)}],
      series: [{}, ...order.map((i) => {
        const color = series[i].color || PALETTE[i % PALETTE.length];
        return {label: series[i].label, stroke: color, width: bars ? 1 : 2, paths: bars || undefined,
          fill: bars ? color : series[i].fill, points: {show: !bars, size: 5},
          value: (u, v, si, idx) => (idx === null || own[i][idx] === null || own[i][idx] === undefined
            ? "—" : fmt(own[i][idx]))};
      })],
    }, [xs, ...order.map((i) => drawn[i])], box);
    charts.set(id, plot);
  }
  function axis(since, step, buckets) {
    // every bucket of the window, so gaps read as zero rather than as a straight line
    const xs = [];
    const last = buckets.length ? Math.max(...buckets) : since;
    const end = Math.max(last, Date.now() / 1000 - step);
    for (let t = since; t <= end + 1e-9; t += step) xs.push(t);
    return xs;
  }

  // -- overview --------------------------------------------------------------------------
  async function overview() {
    const data = await api(`/ui/api/overview?window=${windowS()}`);
    const t = data.totals;
    const saved = t.baseline_cost_usd > 0 ? t.savings_usd / t.baseline_cost_usd : null;
    clear($("overview-cards")).append(
      card("requests", "Requests", count(t.requests), `${count(t.failed)} failed`),
      card("spend", "Spend", usd(t.cost_usd), `${count(t.prompt_tokens + t.completion_tokens)} tokens`),
      card("baseline", "Always-strongest", usd(t.baseline_cost_usd), "the same requests on the strongest model"),
      card("savings", "Savings", usd(t.savings_usd), saved === null ? "" : `${pct(saved)} of always-strongest`,
        t.savings_usd >= 0 ? "good" : "bad"),
      card("errors", "Error rate", t.requests ? pct(t.failed / t.requests) : "—", "", t.failed ? "bad" : null));
    if (!data.logging) show("The request log is off (gateway.request_log.enabled): no history to show.");
    const byT = new Map(data.series.map((b) => [b.t, b]));
    const xs = axis(data.since, data.step, data.series.map((b) => b.t));
    const pick = (k) => xs.map((x) => (byT.has(x) ? byT.get(x)[k] : 0));
    chart("chart-requests", xs, [{label: "requests", values: pick("requests")},
      {label: "failed", values: pick("failed"), color: "#d14343"}], {kind: "bars"});
    chart("chart-spend", xs, [{label: "always-strongest", values: pick("baseline_cost_usd"), color: "#e8743b"},
      {label: "spend", values: pick("cost_usd"), color: "#2f6fde"}], {kind: "bars", y: usd, axis: shortUsd});
  }

  // -- routing ---------------------------------------------------------------------------
  async function routing() {
    const data = await api(`/ui/api/routing?window=${windowS()}`);
    const xs = axis(data.since, data.step, data.buckets);
    const totals = new Map();
    for (const cells of Object.values(data.by.model)) {
      for (const [t, n] of cells) totals.set(t, (totals.get(t) || 0) + n);
    }
    const all = [...totals.values()].reduce((a, b) => a + b, 0);
    for (const group of ["model", "tier", "reason"]) {
      const names = Object.keys(data.by[group]).sort();
      const series = names.map((name, i) => {
        const cells = new Map(data.by[group][name]);
        return {label: name, color: PALETTE[i % PALETTE.length],
          values: xs.map((x) => (totals.get(x) ? (100 * (cells.get(x) || 0)) / totals.get(x) : null))};
      });
      chart(`chart-${group}`, xs, series, {kind: "stack", y: (v) => `${v.toFixed(1)}%`,
        axis: (v) => `${Math.round(v)}%`});
      const rows = names.map((name, i) => {
        const n = data.by[group][name].reduce((a, [, c]) => a + c, 0);
        return el("tr", {"data-name": name},
          el("td", {}, el("span", {class: "swatch", "data-color": i}), name),
          el("td", {class: "num", text: count(n)}), el("td", {class: "num", text: pct(all ? n / all : 0)}),
          el("td", {}, bar(all ? n / all : 0, PALETTE[i % PALETTE.length])));
      }).sort((a, b) => Number(b.children[1].textContent.replace(/,/g, "")) -
        Number(a.children[1].textContent.replace(/,/g, "")));
      table(`share-${group}`, [group, "#requests", "#share", ""], rows, "No requests in this window.");
      for (const sw of $(`share-${group}`).querySelectorAll(".swatch")) {
        sw.style.background = PALETTE[Number(sw.dataset.color) % PALETTE.length];
      }
    }
  }

  // -- latency ---------------------------------------------------------------------------
  async function latency() {
    const data = await api(`/ui/api/latency?window=${windowS()}`);
    const models = [...new Set(data.mean_ms.map((r) => r.model))].sort();
    const xs = axis(data.since, data.step, data.mean_ms.map((r) => r.t));
    const series = models.map((m) => {
      const cells = new Map(data.mean_ms.filter((r) => r.model === m).map((r) => [r.t, r.ms]));
      return {label: m, values: xs.map((x) => (cells.has(x) ? cells.get(x) : null))};
    });
    chart("chart-latency", xs, series, {y: (v) => `${Math.round(v)} ms`});
    const stats = (map) => Object.entries(map).map(([name, s]) => [name, num(count(s.samples)),
      num(ms(s.p50_total_ms)), num(ms(s.p95_total_ms)), num(ms(s.p50_ttft_ms)), num(ms(s.p95_ttft_ms))]);
    const head = ["#samples", "#p50 total", "#p95 total", "#p50 first token", "#p95 first token"];
    table("latency-models", ["model", ...head], stats(data.models),
      `No samples in the last ${Math.round(data.window_s)} s.`);
    table("latency-deployments", ["deployment", ...head], stats(data.deployments),
      `No samples in the last ${Math.round(data.window_s)} s.`);
    table("health", ["model", "deployment", "state", "available"], data.health.map((h) =>
      [h.model, h.deployment, pill(h.state), h.available ? "yes" : "cooling down"]), "No deployments.");
  }

  // -- budgets ---------------------------------------------------------------------------
  async function budgets() {
    const data = await api("/ui/api/budgets");
    const d = data.day, m = data.month;
    clear($("budget-cards")).append(
      card("day", "Spent today", usd(d.spent_usd), `${count(d.requests)} requests, resets ${d.resets_at}`),
      card("month", "Spent this month", usd(m.spent_usd), `${count(m.requests)} requests`),
      card("day-savings", "Saved today", usd(d.savings_usd), `${pct(d.savings_fraction)} of always-strongest`, "good"),
      card("budgets", "Budgets", count(data.positions.length), data.enabled ? "enforced" : "none configured"));
    const rows = data.positions.map((p) => {
      const r = p.report;
      const used = r && p.limit_usd ? r.spent_usd / p.limit_usd : null;
      return [p.scope, p.subject, p.window, num(r ? usd(r.spent_usd) : "—"),
        num(p.limit_usd === null ? "—" : usd(p.limit_usd)), num(r ? usd(r.remaining_usd) : "—"),
        used === null ? "—" : el("div", {}, bar(used), el("span", {class: "hint", text: pct(used)})),
        r ? r.resets_at : "—"];
    });
    table("budget-positions", ["scope", "subject", "window", "#spent", "#limit", "#remaining", "used", "resets"],
      rows, "No budgets configured (budgets.limits).");
    table("budget-alerts", ["budget", "#threshold", "#spent", "#limit", "resets"], data.alerts.map((a) =>
      [a.budget, num(pct(a.threshold)), num(usd(a.spent_usd)), num(usd(a.limit_usd)), a.resets_at]),
    `No alert sent by this process (thresholds: ${data.thresholds.map(pct).join(", ")}).`);
  }

  // -- experiments and labels ------------------------------------------------------------
  async function experiments() {
    const data = await api(`/ui/api/experiments?window=${windowS()}`);
    const box = clear($("experiments-list"));
    if (!data.experiments.length) box.append(el("div", {class: "panel empty", text: "No experiments configured."}));
    for (const x of data.experiments) {
      const panel = el("div", {class: "panel", "data-experiment": x.name}, el("h3", {text: `Experiment ${x.name}`}));
      if (x.error) panel.append(el("p", {class: "problem", text: x.error}));
      else panel.append(reportTable(x.report));
      box.append(panel);
    }
    table("labels", ["source", "model", "#labels", "#mean score"], data.labels.map((l) =>
      [l.source, l.model, num(count(l.labels)), num(l.mean_score.toFixed(3))]), "No labels in this window.");
  }
  function reportTable(report) {
    const arms = report && Array.isArray(report.arms) ? report.arms : [];
    const box = el("div");
    const est = (m, f) => (m && m.value !== null && m.value !== undefined
      ? `${f(m.value)}${m.ci95 && m.ci95[0] !== null ? ` (${f(m.ci95[0])}–${f(m.ci95[1])})` : ""}` : "—");
    const fixed = (v) => Number(v).toFixed(3);
    box.append(el("p", {class: "hint", text: `unit ${report.unit}, control ${report.control}, ` +
      `margin ${report.margin}${report.enabled ? "" : " (disabled: reports only)"}`}));
    box.append(table(el("table"), ["arm", "#share", "#requests", "#errors", "cost / request (95% CI)",
      "strong share", "quality (labels)", "p95 latency", "#saved vs strongest", "stopped"],
    arms.map((a) => [a.arm, num(pct(a.share)), num(count(a.requests)), num(count(a.errors)),
      est(a.cost_per_request_usd, usd), est(a.strong_share, pct),
      `${est(a.quality, fixed)} n=${a.quality ? a.quality.n : 0}`, est(a.p95_latency_ms, ms),
      num(pct(a.savings_vs_strongest)), (report.stopped || {})[a.arm] || ""]), "No arms."));
    const verdicts = el("ul");
    for (const v of report.verdicts || []) verdicts.append(el("li", {text: v}));
    box.append(verdicts);
    return box;
  }

  // -- the request log browser -----------------------------------------------------------
  async function requests() {
    const query = new URLSearchParams({window: windowS(), limit: "100"});
    for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
    if (before !== null) query.set("before", String(before));
    const data = await api(`/ui/api/requests?${query}`);
    for (const select of document.querySelectorAll("#filters select")) {
      const name = select.dataset.filter;
      const current = filters[name] || "";
      const values = data.choices[name] || [];
      if (current && !values.includes(current)) values.unshift(current);
      clear(select).append(el("option", {value: "", text: "any"}),
        ...values.map((v) => el("option", {value: v, text: v})));
      select.value = current;
    }
    const rows = data.requests.map((r) => {
      const tr = el("tr", {"data-id": r.id, class: r.id === selected ? "selected" : null},
        ...[clock(r.ts), r.key, r.user, r.model || r.requested_model, pill(r.outcome), num(usd(r.cost_usd)),
          num(ms(r.total_ms)), el("span", {class: "prompt", text: r.prompt === null ? "" : r.prompt})].map(cell));
      tr.addEventListener("click", () => openRequest(r.id));
      return tr;
    });
    table("requests-table", ["time", "key", "user", "model", "outcome", "#cost", "#latency", "prompt"], rows,
      "No request matches.");
    oldest = data.requests.length ? data.requests[data.requests.length - 1].ts : null;
    $("older").disabled = data.requests.length < 100;
    $("newest").disabled = before === null;
    $("requests-count").textContent = `${data.requests.length} shown (${before === null ? "newest" :
      "older than " + when(before)} first, at most 100)` +
      (data.log_messages ? "" : "; prompts are not logged (gateway.request_log.log_messages)");
  }

  async function openRequest(id) {
    selected = id;
    for (const tr of document.querySelectorAll("#requests-table tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.id === id);
    }
    const r = await guarded(() => api(`/ui/api/requests/${encodeURIComponent(id)}`));
    if (!r) return;
    const box = clear($("detail"));
    box.hidden = false;
    const d = r.decision || {};
    const pairs = [["request", r.id], ["time", when(r.ts)], ["door", r.door], ["key", r.key], ["user", r.user],
      ["team", r.team], ["session", r.session], ["requested", r.requested_model], ["answered by", r.model],
      ["tried", (r.models_tried || []).join(" → ")], ["outcome", pill(r.outcome)], ["error", r.error],
      ["tokens", `${count(r.prompt_tokens)} in, ${count(r.completion_tokens)} out`],
      ["cost", usd(r.cost_usd)], ["always-strongest", usd(r.baseline_cost_usd)],
      ["saved", usd(r.baseline_cost_usd - r.cost_usd)], ["latency", ms(r.total_ms)],
      ["first token", ms(r.ttft_ms)], ["experiment", r.experiment ? `${r.experiment} / ${r.arm}` : null]];
    box.append(el("h3", {text: "Request"}), dl(pairs));
    box.append(el("h3", {text: "Decision"}), dl([["reason", d.reason], ["strategy", d.strategy],
      ["rule", d.rule], ["stage", d.stage], ["task type", d.task_type], ["threshold", d.threshold],
      ["baseline model", d.baseline_model], ["fallbacks", (d.fallbacks || []).join(", ")]]));
    const scores = Object.entries(d.scores || {}).concat(Object.entries(d.signals || {}).map(([k, v]) => [`signal ${k}`, v]));
    box.append(el("h3", {text: "Scores"}), table(el("table"), ["name", "#value"],
      scores.map(([k, v]) => [k, num(typeof v === "number" ? v.toPrecision(4) : String(v))]), "No scores."));
    const cands = (d.candidates || []).map((c) => {
      const tr = el("tr", {class: c.model === d.model ? "chosen" : null}, ...[c.model, num(c.total), num(c.fit),
        num(c.cost), num(c.latency), num(usd(c.estimated_cost_usd))].map(cell));
      return tr;
    });
    box.append(el("h3", {text: "Candidates (chosen in bold)"}), table(el("table"),
      ["model", "#total", "#fit", "#cost", "#latency", "#est. cost"], cands, "No candidates scored."));
    box.append(el("h3", {text: "Rejected before scoring"}), table(el("table"), ["model", "why"],
      Object.entries(d.filtered_out || {}), "None."));
    box.append(el("h3", {text: "Messages"}));
    const messages = r.messages || [];
    if (!messages.length) box.append(el("p", {class: "hint", text: "Not logged (gateway.request_log.log_messages)."}));
    for (const m of messages) {
      box.append(el("div", {class: "hint", text: m.role}), el("pre", {class: "message", text: messageText(m.content)}));
    }
    if ((r.labels || []).length) {
      box.append(el("h3", {text: "Labels"}), table(el("table"), ["source", "#score", "comment"],
        r.labels.map((l) => [l.source, num(l.score), l.comment])));
    }
  }
  function dl(pairs) {
    const node = el("dl");
    for (const [k, v] of pairs) {
      if (v === null || v === undefined || v === "") continue;
      node.append(el("dt", {text: k}), el("dd", {}, v instanceof Node ? v : String(v)));
    }
    return node;
  }
  function messageText(content) {
    if (typeof content === "string") return content;
    if (Array.isArray(content)) return content.map((p) => (p && p.text ? p.text : JSON.stringify(p))).join("\n");
    return JSON.stringify(content);
  }

  // -- navigation, sign-in, live updates -------------------------------------------------
  const LOADERS = {overview, routing, latency, budgets, experiments, requests};
  const current = () => {
    const name = location.hash.replace("#", "");
    return PAGES.includes(name) ? name : "overview";
  };
  function show(problem) {
    const p = $("problem");
    p.textContent = problem || "";
    p.hidden = !problem;
  }
  async function guarded(load) {
    try {
      const out = await load();
      $("live").textContent = `live · updated ${new Date().toLocaleTimeString("en-GB", {hour12: false})}`;
      $("live").className = "live ok";
      return out;
    } catch (err) {
      if (err instanceof Refused) { signIn(err.message); return null; }
      $("live").textContent = "stale: the gateway did not answer";
      $("live").className = "live stale";
      show(String(err.message || err));
      return null;
    }
  }
  async function refresh() {
    if (busy || document.hidden || !sessionStorage.getItem(KEY)) return;
    busy = true;
    const page = current();
    try {
      show("");
      await guarded(LOADERS[page]);
    } finally {
      busy = false;
    }
  }
  function navigate() {
    const page = current();
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === page);
    for (const s of document.querySelectorAll(".page")) s.hidden = s.dataset.page !== page;
    document.body.dataset.page = page;
    refresh();
  }
  function signIn(message) {
    generation += 1;
    if (timer !== null) { clearTimeout(timer); timer = null; }
    sessionStorage.removeItem(KEY);
    $("main").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    const m = $("login-message");
    if (message) { m.textContent = message; m.classList.add("refused"); }
    $("live").textContent = "not connected";
    $("live").className = "live";
    $("key").focus();
  }
  function poll() {
    const mine = generation;
    timer = setTimeout(async () => {
      await refresh();
      if (mine === generation) poll();
    }, pollMs());
  }
  function enter() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    if (timer === null) poll();
    navigate();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();  // the key goes nowhere but sessionStorage and the header
      const key = $("key").value.trim();
      $("key").value = "";
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      enter();
    });
    $("logout").addEventListener("click", () => signIn("Signed out."));
    $("window").addEventListener("change", refresh);
    window.addEventListener("hashchange", navigate);
    document.addEventListener("visibilitychange", refresh);
    $("filters").addEventListener("change", (event) => {
      const name = event.target.dataset.filter;
      if (name) { filters[name] = event.target.value; before = null; refresh(); }
    });
    $("older").addEventListener("click", () => { if (oldest !== null) { before = oldest; refresh(); } });
    $("newest").addEventListener("click", () => { before = null; refresh(); });
    $("filters").addEventListener("reset", () => {
      before = null;
      for (const k of Object.keys(filters)) delete filters[k];
      setTimeout(refresh, 0);
    });
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    let resizing = null;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(refresh, 250); });
    if (sessionStorage.getItem(KEY)) enter(); else signIn("");
  });
})();
