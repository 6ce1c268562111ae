// The live-search page: submit a proof search, follow its event stream, show the tree/attempts,
// the verified proof, and the recent jobs.
//
// Events are read with fetch() and a small Server-Sent Events parser instead of EventSource,
// because EventSource cannot send an Authorization header: with API keys configured the key
// would have to go into the URL, where proxies log it and the browser history keeps it. The
// reader resumes after a dropped connection with Last-Event-ID, as EventSource would.

import { AttemptGrid, TreeView, VERDICT_COLORS, VERDICT_ORDER } from "./tree.js";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "prover.apiKey";
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

// ------------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let keyPrompt = null; // the pending "ask for the key" promise, shared by concurrent callers

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function errorOf(response) {
  let code = "http_" + response.status;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      if (Array.isArray(body.error.details) && body.error.details.length) {
        message += ": " + body.error.details.map((d) => d.msg).join("; ");
      }
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(response.status, code, message);
}

/** fetch() with the API key; a 401 asks for the key (once for all callers) and retries. */
async function request(path, options = {}, retried = false) {
  const response = await fetch(path, {
    ...options,
    headers: headers(options.headers || {}),
    cache: "no-store",
  });
  if (response.status === 401 && !retried) {
    await askForKey(apiKey() ? "That key was refused." : "");
    return request(path, options, true);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

async function api(path, options = {}) {
  const body = options.json === undefined ? undefined : JSON.stringify(options.json);
  const response = await request(path, {
    method: options.method || (body ? "POST" : "GET"),
    headers: body ? { "Content-Type": "application/json" } : {},
    body,
    signal: options.signal,
  });
  return response.status === 204 ? null : response.json();
}

function askForKey(message = "") {
  if (keyPrompt) return keyPrompt;
  const dialog = $("key-dialog");
  const input = $("key-input");
  const error = $("key-error");
  error.textContent = message;
  error.hidden = !message;
  input.value = "";
  keyPrompt = new Promise((resolve) => {
    const done = () => {
      keyPrompt = null;
      resolve();
    };
    dialog.addEventListener("close", done, { once: true });
  });
  dialog.showModal();
  input.focus();
  return keyPrompt;
}

// ------------------------------------------------------------------------- SSE over fetch

/** Yields {id, data} for each event of a text/event-stream response body. */
async function* readEvents(response, onRetry) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let id = null;
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        let line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length) yield { id, data: JSON.parse(data.join("\n")) };
          id = null;
          data = [];
        } else if (line.startsWith(":")) {
          // comment (heartbeat)
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "data") data.push(val);
          else if (field === "id") id = val;
          else if (field === "retry" && /^\d+$/.test(val)) onRetry(Number(val));
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** Follows a job's events from after `lastId` until its result, reconnecting as needed. */
async function follow(jobId, lastId, signal, onEvent) {
  let retry = 3000;
  let last = lastId;
  while (!signal.aborted) {
    try {
      const response = await request(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: { Accept: "text/event-stream", "Last-Event-ID": last },
        signal,
      });
      setConnection("live");
      for await (const event of readEvents(response, (ms) => { retry = ms; })) {
        if (event.id) last = event.id;
        onEvent(event.data);
        if (event.data.type === "result") {
          setConnection("idle");
          return;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 404) {
        setConnection("idle");
        throw err;
      }
    }
    if (signal.aborted) return;
    setConnection("retrying");
    await sleep(retry, signal);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function setConnection(state) {
  const el = $("connection");
  el.className = "connection " + state;
  el.textContent = { live: "live", retrying: "reconnecting…", idle: "idle" }[state] || state;
}

// ------------------------------------------------------------------------- job view

const tree = new TreeView($("tree-canvas"), $("tooltip"), {
  onChange: (view) => {
    $("stat-nodes").textContent = view.size.toLocaleString();
    $("stat-depth").textContent = String(view.maxDepth);
  },
});
const grid = new AttemptGrid($("attempt-canvas"));
let current = null; // {id, controller, search, status, budget, startedAt, result}

function theoremName(statement) {
  const m = /\b(?:theorem|lemma)\s+([^\s:({[]+)/.exec(statement || "");
  return m ? m[1] : (statement || "").split("\n")[0].slice(0, 60);
}

function setStatus(status) {
  const chip = $("job-status");
  chip.textContent = status;
  chip.className = "chip " + status;
  $("cancel").hidden = FINISHED.has(status);
  $("waiting").hidden = status !== "queued";
  document.body.dataset.jobStatus = status;
  if (current) current.status = status;
}

function searchName(search) {
  return { rmaxts: "RMaxTS", sampling: "sampling", repair: "repair", bfs: "best-first" }[search]
    || "profile's default";
}

// Sampling and repair draw whole attempts (a grid of verdicts); RMaxTS and best-first, a tree.
// A job without a search runs the workers' profile's default, shown as a tree until it says.
function hasTree(search) {
  return search !== "sampling" && search !== "repair";
}

function setProgress(progress) {
  if (!progress) return;
  const samples = progress.samples || 0;
  const budget = progress.budget || current?.budget || 0;
  $("stat-samples").textContent = samples.toLocaleString();
  $("stat-budget").textContent = budget.toLocaleString();
  $("progress-bar").style.width = budget ? `${Math.min(100, (100 * samples) / budget)}%` : "0";
  if (hasTree(current?.search)) $("stat-depth").textContent = String(tree.maxDepth);
  if (progress.round !== undefined) {
    // repair: the correction round of the latest attempt, of the last one there can be
    $("stat-round").textContent = `${progress.round} / ${progress.rounds}`;
    $("stat-round").parentElement.hidden = false;
  }
  if (progress.tree_size !== undefined) $("tree-canvas").dataset.treeSize = progress.tree_size;
  if (progress.verdicts) {
    setVerdicts(progress.verdicts);
    if (!hasTree(current?.search)) grid.update(progress.verdicts);
  }
}

function setVerdicts(counts) {
  const box = $("verdicts");
  box.replaceChildren();
  let total = 0;
  for (const verdict of VERDICT_ORDER.concat(Object.keys(counts))) {
    const n = counts[verdict];
    if (!n || box.querySelector(`[data-verdict="${verdict}"]`)) continue;
    total += n;
    const chip = document.createElement("span");
    chip.className = "verdict";
    chip.dataset.verdict = verdict;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = VERDICT_COLORS[verdict] || "#8b949e";
    const count = document.createElement("b");
    count.textContent = n.toLocaleString();
    chip.append(swatch, verdict.replace("_", " "), " ", count);
    box.append(chip);
  }
  box.dataset.total = String(total);
}

function tickTime() {
  if (!current) return;
  const el = $("stat-time");
  if (current.result && typeof current.result.time_s === "number") {
    el.textContent = duration(current.result.time_s);
  } else if (current.startedAt && current.status === "running") {
    el.textContent = duration(Date.now() / 1000 - current.startedAt);
  } else if (!current.startedAt) el.textContent = "—";
}
setInterval(tickTime, 500);

function duration(s) {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function showResult(status, result, error) {
  const box = $("result");
  const chip = $("result-verdict");
  const title = $("result-title");
  const code = $("proof-code");
  const err = $("result-error");
  box.hidden = false;
  err.hidden = true;
  $("copy").hidden = true;
  $("proof").hidden = true;
  if (status === "succeeded" && result) {
    const verdict = result.verdict || (result.proved ? "proved" : "failed");
    chip.textContent = verdict;
    chip.className = "chip " + verdict;
    if (result.proved) {
      title.textContent = `Proof found and verified by Lean · ${result.samples} sample`
        + `${result.samples === 1 ? "" : "s"} · ${duration(result.time_s || 0)}`;
      code.textContent = result.proof || "";
      $("proof").hidden = false;
      $("copy").hidden = false;
      $("progress-bar").classList.add("done");
    } else {
      title.textContent = `No proof within the budget (${result.samples} samples); `
        + `the last attempt ended ${verdict}`;
    }
  } else if (status === "cancelled") {
    chip.textContent = "cancelled";
    chip.className = "chip cancelled";
    title.textContent = "The search was cancelled.";
  } else {
    chip.textContent = status;
    chip.className = "chip " + status;
    title.textContent = "The job could not run.";
    err.textContent = error || "";
    err.hidden = !error;
  }
  document.body.dataset.resultStatus = status;
}

function onEvent(event) {
  switch (event.type) {
    case "status":
      setStatus(event.status);
      if (event.status === "running" && current && !current.startedAt) {
        current.startedAt = Date.now() / 1000;
      }
      break;
    case "progress":
      setProgress(event);
      break;
    case "tree":
      for (const delta of event.deltas || []) tree.apply(delta);
      $("stat-depth").textContent = String(tree.maxDepth);
      break;
    case "result":
      setStatus(event.status);
      if (current) current.result = event.result;
      if (event.result) {
        setProgress({ samples: event.result.samples, tree_size: event.result.tree_size });
      }
      showResult(event.status, event.result, event.error);
      tickTime();
      refreshJobs();
      if (hasTree(current?.search)) reconcile(current);
      break;
    default:
      break;
  }
}

/** After the result: if the stream lost tree events (a finished job's are dropped from it a
 * minute later, so a reader that far behind misses some), take the final tree from the
 * snapshot instead. Normally the two agree and nothing happens. */
async function reconcile(job) {
  try {
    const view = await api(`/v1/jobs/${encodeURIComponent(job.id)}/tree`,
      { signal: job.controller.signal });
    if (current !== job || !view.tree) return;
    const snapshot = view.tree;
    if (snapshot.new_nodes.length !== tree.size || (snapshot.proof_path && !tree.proofPath)) {
      tree.apply(snapshot);
      $("tree-canvas").dataset.reconciled = "1";
    }
  } catch {
    /* the view stays as the stream built it */
  }
}

async function openJob(id) {
  if (current?.id === id) return;
  current?.controller.abort();
  const controller = new AbortController();
  current = { id, controller, status: "queued" };
  $("empty").hidden = true;
  $("job").hidden = false;
  $("result").hidden = true;
  $("progress-bar").classList.remove("done");
  $("verdicts").replaceChildren();
  $("job-title").textContent = "…";
  markActive();
  tree.clear();
  tree.fit();
  delete $("tree-canvas").dataset.reconciled;
  let view;
  try {
    view = await api(`/v1/jobs/${encodeURIComponent(id)}/tree`, { signal: controller.signal });
  } catch (err) {
    if (controller.signal.aborted) return;
    $("job-title").textContent = `job ${id}: ${err.message}`;
    setStatus("failed");
    return;
  }
  if (controller.signal.aborted) return;
  Object.assign(current, {
    search: view.search, budget: view.budget, startedAt: view.started_at,
    result: view.result,
  });
  $("job-title").textContent = view.formal_statement || id;
  $("job-title").title = view.formal_statement || "";
  $("stat-search").textContent = searchName(view.search);
  const sampling = !hasTree(view.search);
  $("stat-round").parentElement.hidden = true;
  $("tree-canvas").hidden = sampling;
  $("attempt-canvas").hidden = !sampling;
  $("tree-legend").hidden = sampling;
  $("sampling-legend").hidden = !sampling;
  $("layout-toggle").hidden = sampling;
  $("fit").hidden = sampling;
  $("stat-depth").parentElement.hidden = sampling;
  $("stat-nodes").parentElement.hidden = sampling;
  grid.reset(view.budget);
  setStatus(view.status);
  if (view.tree) tree.apply(view.tree);
  setProgress(view.progress);
  tree.request();
  tickTime();
  if (FINISHED.has(view.status)) {
    showResult(view.status, view.result, view.error);
    tickTime();
    return;
  }
  try {
    await follow(id, view.event_id, controller.signal, onEvent);
  } catch (err) {
    if (!controller.signal.aborted) $("job-title").textContent = `job ${id}: ${err.message}`;
  }
}

// ------------------------------------------------------------------------- recent jobs

let refreshing = null;

async function refreshJobs() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const { jobs } = await api("/v1/jobs?limit=25");
      renderJobs(jobs);
    } catch (err) {
      $("job-list-empty").textContent = `Could not list jobs: ${err.message}`;
      $("job-list-empty").hidden = false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function ago(t) {
  const s = Date.now() / 1000 - t;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t * 1000).toLocaleDateString();
}

function renderJobs(jobs) {
  const list = $("job-list");
  list.replaceChildren();
  $("job-list-empty").textContent = "No jobs yet.";
  $("job-list-empty").hidden = jobs.length > 0;
  for (const job of jobs) {
    const li = document.createElement("li");
    li.dataset.jobId = job.job_id;
    li.dataset.status = job.status;
    li.title = job.formal_statement || job.job_id;
    const dot = document.createElement("span");
    dot.className = `status-dot status-${job.status}`;
    if (job.status === "succeeded" && job.proved === false) dot.classList.add("unproved");
    const name = document.createElement("span");
    name.className = "job-name";
    name.textContent = theoremName(job.formal_statement) || job.job_id;
    const badge = document.createElement("span");
    badge.className = "job-badge";
    badge.textContent = job.status === "succeeded" ? (job.proved ? "proved ✓" : "no proof")
      : job.status;
    const meta = document.createElement("span");
    meta.className = "job-meta";
    const samples = job.progress?.samples ?? 0;
    meta.textContent = `${searchName(job.search)} · `
      + `${samples}/${job.budget ?? "?"} samples · ${ago(job.created_at)}`;
    li.append(dot, name, badge, meta);
    li.addEventListener("click", () => { location.hash = `job=${job.job_id}`; });
    list.append(li);
  }
  markActive();
}

function markActive() {
  for (const li of $("job-list").children) {
    li.classList.toggle("active", li.dataset.jobId === current?.id);
  }
}

// ------------------------------------------------------------------------- the form

let problemTimer = 0;
let problemNames = new Set();

async function searchProblems() {
  const dataset = $("dataset").value;
  const q = $("problem-search").value.trim();
  const hint = $("problem-hint");
  try {
    const params = new URLSearchParams({ dataset, q, limit: "40" });
    const found = await api(`/v1/problems?${params}`);
    const options = $("problem-options");
    options.replaceChildren();
    problemNames = new Set();
    for (const p of found.problems) {
      const option = document.createElement("option");
      option.value = p.name;
      option.label = p.split ? `${p.split} · ${p.formal_statement.slice(0, 80)}` : p.name;
      options.append(option);
      problemNames.add(p.name);
    }
    hint.textContent = q ? `${found.total} match${found.total === 1 ? "" : "es"}` : "";
    if (problemNames.has(q)) await loadProblem(dataset, q);
  } catch (err) {
    hint.textContent = err.message;
  }
}

async function loadProblem(dataset, name) {
  const p = await api(`/v1/problems/${encodeURIComponent(dataset)}/${encodeURIComponent(name)}`);
  $("statement").value = p.formal_statement;
  $("header").value = p.header || "";
  $("informal").value = p.informal_prefix || "";
  $("problem-hint").textContent = `${p.dataset} · ${p.split || "no split"} · loaded`;
  // Check it in the Lean its statements were written for, when the service has that one.
  const target = $("dataset").selectedOptions[0]?.dataset.leanEnv;
  if (target && [...$("lean-env").options].some((o) => o.value === target)) {
    $("lean-env").value = target;
  }
}

/** The dataset picker: every dataset the service knows (published benchmarks first). */
async function loadDatasets() {
  try {
    const { datasets } = await api("/v1/datasets");
    const select = $("dataset");
    const chosen = select.value;
    select.replaceChildren();
    for (const d of datasets) {
      const option = document.createElement("option");
      option.value = d.name;
      option.textContent = d.on_disk ? d.name : `${d.name} (downloaded on first use)`;
      if (d.lean_env) option.dataset.leanEnv = d.lean_env;
      select.append(option);
    }
    if (datasets.some((d) => d.name === chosen)) select.value = chosen;
  } catch {
    /* the built-in choice stays */
  }
}

/** The environment picker, from /healthz: the service's Lean environments, the default first
 * selected; hidden when the service reports none. */
function showEnvironments(environments) {
  const select = $("lean-env");
  select.replaceChildren();
  for (const env of environments || []) {
    const option = document.createElement("option");
    option.value = env.name;
    option.textContent = `${env.name} · Lean ${env.lean_version}`
      + (env.default ? " (default)" : "");
    option.selected = Boolean(env.default);
    select.append(option);
  }
  $("lean-env-field").hidden = select.options.length === 0;
}

async function submit(event) {
  event.preventDefault();
  const error = $("form-error");
  error.hidden = true;
  const statement = $("statement").value.trim();
  if (!statement) return;
  const body = {
    formal_statement: statement,
    search: document.querySelector("input[name=search]:checked").value,
    budget: Number($("budget").value),
  };
  const header = $("header").value;
  const informal = $("informal").value.trim();
  if (header.trim()) body.header = header.endsWith("\n") ? header : header + "\n";
  if (informal) body.informal_prefix = informal;
  if ($("lean-env").value) body.lean_env = $("lean-env").value;
  const button = $("start");
  button.disabled = true;
  try {
    const { job_id: id } = await api("/v1/prove", { json: body });
    location.hash = `job=${id}`;
    refreshJobs();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function cancelJob() {
  if (!current) return;
  const button = $("cancel");
  button.disabled = true;
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(current.id)}`, { method: "DELETE" });
    setStatus(job.status);
    refreshJobs();
  } catch (err) {
    $("job-title").textContent = `cancel failed: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

async function copyProof() {
  const text = $("proof-code").textContent;
  const button = $("copy");
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Outside a secure context (plain http to another host) there is no clipboard API.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied ✓";
  setTimeout(() => { button.textContent = "Copy proof"; }, 1500);
}

// ------------------------------------------------------------------------- wiring

function route() {
  const m = /job=([A-Za-z0-9_.:-]+)/.exec(location.hash);
  if (m) openJob(m[1]);
}

$("prove-form").addEventListener("submit", submit);
$("cancel").addEventListener("click", cancelJob);
$("copy").addEventListener("click", copyProof);
$("refresh-jobs").addEventListener("click", refreshJobs);
$("fit").addEventListener("click", () => tree.fit());
$("layout-toggle").addEventListener("click", () => {
  const next = { auto: "tree", tree: "radial", radial: "auto" }[tree.mode];
  tree.setMode(next);
  $("layout-toggle").textContent = `layout: ${next}`;
});
$("problem-search").addEventListener("input", () => {
  clearTimeout(problemTimer);
  problemTimer = setTimeout(searchProblems, 200);
});
$("dataset").addEventListener("change", searchProblems);
$("key-button").addEventListener("click", () => askForKey());
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  $("key-dialog").close();
  refreshJobs();
});
$("key-forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORAGE);
  $("key-input").value = "";
});
window.addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshJobs();
});
setInterval(() => { if (!document.hidden) refreshJobs(); }, 10000);

// For tests and the console: the view's own node count, not a number the server reported.
window.liveView = { tree, grid, current: () => current };

// Preselect the search that suits the workers' prover profile (repair for chat provers), and
// list the Lean environments.
fetch("/healthz").then((r) => r.json()).then((health) => {
  const radio = $(`search-${health.default_search}`);
  if (radio) radio.checked = true;
  showEnvironments(health.environments);
}).catch(() => {});
loadDatasets();

refreshJobs();
route();
