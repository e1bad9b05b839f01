// The dashboard page: reads the JSON API and the plots every second and
// redraws the current view in place (no reload). Routes: #/ (jobs),
// #/job/ID, #/nodes, #/allocations. Nothing is fetched from elsewhere.
"use strict";

// Redraw every second, or less often when a redraw takes long (a job of
// very many chunks): the page waits at least SLACK times as long as its
// last redraw took, so that it never keeps the server busy more than 1/SLACK
// of the time.
const POLL_MS = 1000;
const SLACK = 50;
let info = null;
let generation = 0;
// Per node, its done count at the previous poll, for the task rate.
const previousDone = new Map();

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "onclick") node.onclick = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

async function get(path, as = "json") {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error; } catch (_) { /* not JSON */ }
    throw new Error(`${path}: ${message}`);
  }
  return as === "json" ? response.json() : response.text();
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

function elapsed(job) {
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return Math.max(0.001, (end - Date.parse(job.started_at)) / 1000);
}

function progressBar(job) {
  const value = job.progress ?? (job.tasks_total ? job.tasks.done / job.tasks_total : null);
  const percent = value === null ? "–" : `${(value * 100).toFixed(1)} %`;
  return el("span", { class: "progress", "data-value": value ?? "" },
    el("span", { class: "bar" }, el("span", { style: `width: ${Math.min(100, (value ?? 0) * 100)}%` })),
    " ", percent);
}

function rate(job) {
  const seconds = elapsed(job);
  const chunks = (job.tasks.done + job.tasks.failed) / seconds;
  return job.input_bytes ? `${bytes(job.finished_bytes / seconds)}/s` : `${chunks.toFixed(1)} chunks/s`;
}

// ---- jobs ----

function filtersForm(params) {
  const state = el("select", { name: "state" }, el("option", { value: "" }, "any state"),
    info.job_states.map((s) => el("option", { value: s, ...(params.get("state") === s ? { selected: "" } : {}) }, s)));
  const name = el("input", { name: "name", placeholder: "name contains", value: params.get("name") ?? "" });
  const since = el("input", { name: "since", placeholder: "since (1h, 2d)", size: 10, value: params.get("since") ?? "" });
  const form = el("form", { class: "filters" }, state, name, since, el("button", { type: "submit" }, "Filter"));
  form.onsubmit = (event) => {
    event.preventDefault();
    const query = new URLSearchParams(new FormData(form));
    for (const [key, value] of [...query]) if (!value) query.delete(key);
    location.hash = `#/?${query}`;
  };
  return form;
}

async function showJobs(params) {
  const jobs = await get(`/api/jobs?${params}`);
  const rows = jobs.slice().reverse().map((job) => {
    const total = job.tasks_total ?? "?";
    const row = el("tr", { class: "job", "data-id": job.id, onclick: () => { location.hash = `#/job/${job.id}`; } },
      el("td", { class: "num" }, job.id),
      el("td", {}, job.name ?? ""),
      el("td", { class: `state state-${job.state}` }, job.state),
      el("td", {}, progressBar(job)),
      el("td", { class: "num done" }, `${job.tasks.done} / ${total}`),
      el("td", { class: "num" }, rate(job)),
      el("td", { class: "num" }, job.state === "running" ? duration(job.eta_seconds) : "–"),
      el("td", { class: "num failed" }, job.tasks.failed),
      el("td", {}, job.module),
      el("td", {}, job.input ?? "–"),
      el("td", {}, job.where));
    return row;
  });
  return [
    filtersForm(params),
    el("table", { id: "jobs" },
      el("thead", {}, el("tr", {}, ["job", "name", "state", "progress", "chunks done", "rate", "ETA",
        "failed", "module", "input", "where"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
    jobs.length ? "" : el("p", {}, "no jobs match"),
  ];
}

// ---- one job ----

const LEGEND = [["done", "#2e7d32"], ["failed", "#c62828"], ["running", "#1565c0"], ["suspended", "#ef6c00"], ["cancelled", "#9e9e9e"]];

function failureGroups(detail, logs) {
  const groups = new Map();
  for (const task of detail.tasks.filter((t) => t.error_kind)) {
    const key = `${task.error_kind}: ${task.error ?? ""}`;
    if (!groups.has(key)) groups.set(key, { tasks: [], logs: [] });
    groups.get(key).tasks.push(task.index);
  }
  for (const attempt of logs.filter((a) => a.outcome !== "done")) {
    const key = `${attempt.outcome}: ${attempt.error ?? ""}`;
    if (!groups.has(key)) groups.set(key, { tasks: [], logs: [] });
    const group = groups.get(key);
    if (!group.tasks.includes(attempt.task)) group.tasks.push(attempt.task);
    if (attempt.log) group.logs.push(`chunk ${attempt.task}, attempt ${attempt.attempt}${attempt.node ? ` on ${attempt.node}` : ""}:\n${attempt.log}`);
  }
  if (!groups.size) return el("p", { id: "failures" }, "no failures");
  return el("table", { id: "failures" },
    el("thead", {}, el("tr", {}, el("th", {}, "reason"), el("th", {}, "chunks"), el("th", {}, "logs"))),
    el("tbody", {}, [...groups].map(([reason, group]) => el("tr", {},
      el("td", { class: "error" }, reason),
      el("td", {}, `${group.tasks.length}: ${group.tasks.slice(0, 20).join(", ")}${group.tasks.length > 20 ? ", …" : ""}`),
      el("td", {}, group.logs.length ? el("pre", {}, group.logs.slice(0, 10).join("\n")) : "–")))));
}

function movesTable(detail) {
  const moved = detail.tasks.filter((t) => t.snapshot || t.resumed_from || t.lost > 0 || t.suspended);
  if (!moved.length) return el("p", { id: "moves" }, "no snapshots or moves");
  const snap = (s) => (s ? `${s.position} at ${s.taken_at} (${s.blake3.slice(0, 12)}…)` : "–");
  return el("table", { id: "moves" },
    el("thead", {}, el("tr", {}, ["chunk", "state", "moves", "latest snapshot", "resumed from", "suspended"].map((h) => el("th", {}, h)))),
    el("tbody", {}, moved.map((t) => el("tr", {},
      el("td", { class: "num" }, t.index), el("td", {}, t.state), el("td", { class: "num" }, t.lost),
      el("td", {}, snap(t.snapshot)), el("td", {}, snap(t.resumed_from)), el("td", {}, t.suspended ?? "–")))));
}

async function showJob(id) {
  const [detail, logs, timeline, throughput] = await Promise.all([
    get(`/api/jobs/${id}`), get(`/api/jobs/${id}/logs`),
    get(`/api/jobs/${id}/timeline.svg`, "text"), get(`/api/jobs/${id}/throughput.svg`, "text")]);
  const job = detail.job;
  const plot = (svgText, id) => { const div = el("div", { class: "plot", id }); div.innerHTML = svgText; return div; };
  const output = job.state === "done"
    ? el("a", { id: "output-link", href: `/api/jobs/${id}/output`, download: `job-${id}-output` }, "download the output")
    : el("span", {}, "the output can be downloaded once the job is done");
  return [
    el("h2", {}, `job ${job.id}${job.name ? ` (${job.name})` : ""}: `, el("span", { id: "job-state", class: `state-${job.state}` }, job.state)),
    el("dl", { class: "summary", id: "job-summary", "data-id": job.id },
      el("dt", {}, "progress"), el("dd", {}, progressBar(job)),
      el("dt", {}, "chunks"), el("dd", { id: "job-chunks" },
        `${job.tasks.done} done, ${job.tasks.running} running, ${job.tasks.queued} queued, ${job.tasks.failed} failed of ${job.tasks_total ?? "?"}`),
      el("dt", {}, "rate"), el("dd", {}, rate(job)),
      el("dt", {}, "ETA"), el("dd", {}, job.state === "running" ? duration(job.eta_seconds) : "–"),
      el("dt", {}, "module"), el("dd", {}, job.module),
      el("dt", {}, "input"), el("dd", {}, `${job.input ?? "–"} (${bytes(job.input_bytes)})`),
      el("dt", {}, "where"), el("dd", {}, job.where),
      el("dt", {}, "started"), el("dd", {}, `${job.started_at} (run ${job.runs})`),
      el("dt", {}, "output"), el("dd", {}, output)),
    el("h2", {}, "Chunk timeline"),
    el("div", { class: "legend" }, LEGEND.map(([name, colour]) => el("span", {}, el("i", { style: `background:${colour}` }), name))),
    plot(timeline, "timeline"),
    el("h2", {}, "Throughput"),
    plot(throughput, "throughput"),
    el("h2", {}, "Failures by reason"),
    failureGroups(detail, logs),
    el("h2", {}, "Snapshots and moves"),
    movesTable(detail),
    el("h2", {}, "Definition"),
    el("pre", { id: "definition" }, JSON.stringify(detail.spec, null, 2)),
  ];
}

// ---- nodes and allocations (a broker) ----

async function showNodes() {
  const nodes = await get("/api/nodes");
  const rows = nodes.map((n) => {
    const before = previousDone.get(n.name);
    previousDone.set(n.name, { done: n.done, at: Date.now() });
    const taskRate = before ? (n.done - before.done) / Math.max(0.001, (Date.now() - before.at) / 1000) : null;
    return el("tr", { class: "node" },
      el("td", {}, n.name), el("td", {}, n.address), el("td", { class: "num" }, n.slots),
      el("td", { class: "num" }, n.running), el("td", { class: "num" }, n.done),
      el("td", { class: "num" }, taskRate === null ? "–" : `${taskRate.toFixed(1)} /s`),
      el("td", { class: "num" }, `${duration(n.last_heard_ms / 1000)} ago`),
      el("td", { class: "num" }, duration(n.connected_ms / 1000)),
      el("td", { class: "num" }, n.walltime_left_ms == null ? "–" : duration(n.walltime_left_ms / 1000)),
      el("td", {}, n.draining == null ? "up" : `draining: ${n.draining}`),
      el("td", {}, n.allocation ?? "–"));
  });
  return [el("h2", {}, "Nodes"), el("table", { id: "nodes" },
    el("thead", {}, el("tr", {}, ["node", "address", "slots", "running", "done", "task rate", "last heartbeat", "connected for", "walltime left", "state", "allocation"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)), nodes.length ? "" : el("p", {}, "no nodes are connected")];
}

async function showAllocations() {
  const queues = await get("/api/allocations");
  const time = (ms) => (ms ? new Date(ms).toISOString() : "–");
  return [el("h2", {}, "Allocation queues"), queues.length ? "" : el("p", {}, "no allocation queues (add one with wrun alloc add)"),
    queues.map((q) => [
      el("h2", {}, `queue ${q.spec.name}: `, q.paused ? `paused (${q.paused})` : "active", `, ${q.failures} failures in a row`),
      el("table", { class: "allocations" },
        el("thead", {}, el("tr", {}, ["allocation", "state", "reason", "node", "submitted", "started"].map((h) => el("th", {}, h)))),
        el("tbody", {}, q.allocations.map((a) => el("tr", {},
          el("td", {}, a.id), el("td", { class: `state-${a.state}` }, a.state), el("td", {}, a.reason ?? "–"),
          el("td", {}, a.connected ? "connected" : "–"), el("td", {}, time(a.submitted_at)), el("td", {}, time(a.started_at))))))])];
}

// ---- routing and polling ----

async function render() {
  const mine = ++generation;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query ?? "");
  let content;
  try {
    const job = path.match(/^\/job\/(\d+)$/);
    if (job) content = await showJob(job[1]);
    else if (path === "/nodes") content = await showNodes();
    else if (path === "/allocations") content = await showAllocations();
    else content = await showJobs(params);
  } catch (error) {
    content = el("p", { class: "error" }, error.message);
  }
  if (mine !== generation) return;
  const view = $("#view");
  // Keep a filter field being typed in.
  const focused = document.activeElement && view.contains(document.activeElement) && document.activeElement.name;
  if (focused) return;
  view.replaceChildren(...[content].flat(2).filter((c) => c !== ""));
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function start() {
  info = await get("/api/info");
  $("#where").textContent = info.where;
  $("#nav-nodes").hidden = !info.nodes;
  $("#nav-allocations").hidden = !info.allocations;
  window.addEventListener("hashchange", render);
  const tick = async () => {
    const started = performance.now();
    await render();
    setTimeout(tick, Math.max(POLL_MS, SLACK * (performance.now() - started)));
  };
  tick();
}

start().catch((error) => { $("#view").textContent = error.message; });
