// Drives the live-search page in the system's headless Chromium (playwright-core: no browser
// download) against a running service; invoked by tests/test_web_e2e.py with one JSON
// argument. Prints progress lines on stderr and one JSON object (what it saw) as the last line
// of stdout; exits non-zero, with the reason, as soon as the page does not behave.
//
// Config: {url, apiKey, chromium, artifacts, grow, stall, sample, problem}

import { chromium } from "playwright-core";
import path from "node:path";

const cfg = JSON.parse(process.argv[2]);
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const out = { errors: [] };
const log = (...args) => console.error("[e2e]", ...args);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const browser = await chromium.launch({ executablePath: cfg.chromium, args: FLAGS,
  headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 1480, height: 940 },
    deviceScaleFactor: 1 });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: cfg.url });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on("pageerror", (e) => out.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    // The first request without a key is answered 401 (that is how the page learns it needs
    // one), and Chromium logs every failed load; anything else is a real error.
    if (m.type() === "error" && !/status of 401/.test(m.text())) {
      out.errors.push(`console: ${m.text()}`);
    }
  });

  // ------------------------------------------------------------ the key, asked for once
  await page.goto(`${cfg.url}/`);
  await page.waitForSelector("#key-dialog[open]");
  await page.fill("#key-input", cfg.apiKey);
  await page.click("#key-save");
  await page.waitForFunction(() => !document.getElementById("key-dialog").open);
  out.keyStored = await page.evaluate(() => sessionStorage.getItem("prover.apiKey"));
  log("key stored");

  // ------------------------------------------------------------ a dataset problem by name
  await page.fill("#problem-search", cfg.problem);
  await page.waitForFunction((name) =>
    document.getElementById("statement").value.startsWith(`theorem ${name}`), cfg.problem);
  out.problemStatement = await page.inputValue("#statement");
  out.problemHeader = await page.inputValue("#header");
  log("problem loaded");
  await page.waitForFunction(() => document.getElementById("dataset").options.length > 1
    && !document.getElementById("lean-env-field").hidden);
  out.datasets = await page.$$eval("#dataset option", (os) => os.map((o) => o.value));
  out.leanEnvs = await page.$$eval("#lean-env option", (os) => os.map((o) => o.value));

  // ------------------------------------------------------------ job 1: RMaxTS, grows, proves
  await page.fill("#statement", cfg.grow);
  await page.click("details.field summary"); // the header the problem brought along goes
  await page.fill("#header", "");
  await page.fill("#informal", "");
  await page.click("label[for=search-rmaxts]");
  await page.fill("#budget", "600");
  await page.click("#start");
  await page.waitForFunction(() => /job=/.test(location.hash));
  const growId = await page.evaluate(() => location.hash.split("job=")[1]);
  const series = [];
  for (;;) {
    const [n, done] = await page.evaluate(() => [
      Number(document.getElementById("tree-canvas").dataset.nodes),
      !document.getElementById("result").hidden,
    ]);
    series.push(n);
    if (done) break;
    check(series.length < 600, "no result within 60 s");
    await page.waitForTimeout(100);
  }
  log("grow job finished; node counts seen:", [...new Set(series)].join(","));
  // Once new nodes have glided into place, every one of them is on screen and drawn.
  await page.waitForFunction(() => {
    const canvas = document.getElementById("tree-canvas");
    return canvas.dataset.proofPath > 0 && canvas.dataset.drawn === canvas.dataset.nodes;
  }, null, { timeout: 5000 }).catch(() => log("not every node is drawn"));
  const grow = await page.evaluate(() => {
    const canvas = document.getElementById("tree-canvas");
    return {
      nodes: Number(canvas.dataset.nodes),
      drawn: Number(canvas.dataset.drawn),
      treeSize: Number(canvas.dataset.treeSize),
      proofPath: Number(canvas.dataset.proofPath),
      statNodes: document.getElementById("stat-nodes").textContent,
      status: document.getElementById("job-status").textContent,
      verdict: document.getElementById("result-verdict").textContent,
      title: document.getElementById("result-title").textContent,
      proof: document.getElementById("proof-code").textContent,
      verdictTotal: Number(document.getElementById("verdicts").dataset.total),
      samples: document.getElementById("stat-samples").textContent,
      reconciled: canvas.dataset.reconciled || "no",
    };
  });
  grow.jobId = growId;
  grow.series = series;
  await page.click("#copy");
  await page.waitForFunction(() => document.getElementById("copy").textContent.includes("Copied"));
  grow.clipboard = await page.evaluate(() => navigator.clipboard.readText());

  // Hover a node of the proof path: its goal shows in the tooltip.
  const box = await page.locator("#tree-canvas").boundingBox();
  const target = await page.evaluate(() => {
    const t = window.liveView.tree;
    const v = t.proofPath[Math.max(1, t.proofPath.length - 2)] || t.proofPath[0];
    return { x: v.sx, y: v.sy, state: v.state };
  });
  await page.waitForTimeout(400); // nodes glide into place first
  const settled = await page.evaluate(() => {
    const t = window.liveView.tree;
    const v = t.proofPath[Math.max(1, t.proofPath.length - 2)] || t.proofPath[0];
    return { x: v.sx, y: v.sy };
  });
  await page.mouse.move(box.x + settled.x, box.y + settled.y);
  await page.waitForSelector("#tooltip:not([hidden])");
  grow.tooltip = await page.textContent("#tip-state");
  grow.hoveredState = target.state;
  grow.tooltipHead = await page.textContent("#tip-head");
  out.grow = grow;
  out.screenshot = path.join(cfg.artifacts, "live-search-proved.png");
  await page.screenshot({ path: out.screenshot });
  log("screenshot", out.screenshot);
  await page.mouse.move(2, 2);

  // ------------------------------------------------------------ job 2: cancelled mid-search
  await page.fill("#statement", cfg.stall);
  await page.fill("#budget", "5000");
  await page.click("#start");
  await page.waitForFunction((prev) => /job=/.test(location.hash)
    && !location.hash.endsWith(prev), growId);
  const stallId = await page.evaluate(() => location.hash.split("job=")[1]);
  await page.waitForFunction(() => document.body.dataset.jobStatus === "running"
    && Number(document.getElementById("tree-canvas").dataset.nodes) > 3);
  out.stallNodesBeforeCancel = await page.evaluate(() =>
    Number(document.getElementById("tree-canvas").dataset.nodes));
  await page.click("#cancel");
  await page.waitForFunction(() => document.body.dataset.resultStatus === "cancelled");
  out.stall = {
    jobId: stallId,
    status: await page.textContent("#job-status"),
    cancelVisible: await page.isVisible("#cancel"),
    title: await page.textContent("#result-title"),
  };
  await page.screenshot({ path: path.join(cfg.artifacts, "live-search-cancelled.png") });
  log("stall job cancelled");

  // ------------------------------------------------------------ job 3: sampling, verdicts
  await page.fill("#statement", cfg.sample);
  await page.click("label[for=search-sampling]");
  await page.fill("#budget", "24");
  await page.click("#start");
  await page.waitForFunction((prev) => /job=/.test(location.hash)
    && !location.hash.endsWith(prev), stallId);
  await page.waitForFunction(() => document.body.dataset.resultStatus === "succeeded"
    && !document.getElementById("result").hidden);
  await page.waitForTimeout(200);
  out.sample = await page.evaluate(() => ({
    jobId: location.hash.split("job=")[1],
    verdictTotal: Number(document.getElementById("verdicts").dataset.total),
    verdicts: [...document.querySelectorAll("#verdicts .verdict")].map((e) => e.textContent),
    attempts: Number(document.getElementById("attempt-canvas").dataset.attempts),
    treeHidden: document.getElementById("tree-canvas").hidden,
    title: document.getElementById("result-title").textContent,
  }));
  await page.screenshot({ path: path.join(cfg.artifacts, "live-search-sampling.png") });
  log("sampling job done");

  // ------------------------------------------------------------ recent jobs; a late viewer
  await page.click("#refresh-jobs");
  await page.waitForFunction(() => document.querySelectorAll("#job-list li").length >= 3);
  out.jobList = await page.evaluate(() => [...document.querySelectorAll("#job-list li")].map(
    (li) => ({ id: li.dataset.jobId, status: li.dataset.status, text: li.textContent })));
  // A fresh tab (a new session: the key is asked for again) opening the finished RMaxTS job
  // rebuilds the whole tree from the snapshot endpoint.
  const late = await context.newPage();
  late.on("pageerror", (e) => out.errors.push(`pageerror (late): ${e.message}`));
  await late.goto(`${cfg.url}/#job=${growId}`);
  await late.waitForSelector("#key-dialog[open]");
  await late.fill("#key-input", cfg.apiKey);
  await late.click("#key-save");
  await late.waitForFunction((n) => Number(document.getElementById("tree-canvas").dataset.nodes)
    === n && Number(document.getElementById("tree-canvas").dataset.proofPath) > 0,
  grow.nodes);
  out.late = await late.evaluate(() => ({
    nodes: Number(document.getElementById("tree-canvas").dataset.nodes),
    proofPath: Number(document.getElementById("tree-canvas").dataset.proofPath),
    verdict: document.getElementById("result-verdict").textContent,
  }));
  await late.close();
  log("late viewer rebuilt the tree");

  // ------------------------------------------------------------ 5,000 nodes stay responsive
  await page.evaluate((id) => { location.hash = `job=${id}`; }, growId);
  await page.waitForFunction(() => !document.getElementById("tree-canvas").hidden);
  out.big = await page.evaluate(async () => {
    const tree = window.liveView.tree;
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const nodes = [{ id: 0, parent: null, state: "⊢ big", depth: 0 }];
    tree.apply({ reset: true, new_nodes: nodes, stats: [[0, 1, 0.5]] });
    const frames = [];
    const started = performance.now();
    let last = started;
    let id = 1;
    while (id < 5000) {
      for (let d = 0; d < 25 && id < 5000; d++) {
        // Parents biased to recent nodes, as a search deepens where it found new states.
        const parent = nodes[Math.floor(nodes.length * Math.sqrt(rand()))];
        const node = { id, parent: parent.id, state: `⊢ goal ${id}\n⊢ second`,
          depth: parent.depth + 1 };
        nodes.push(node);
        id++;
        const stats = [];
        for (let p = node; p; p = p.parent === null ? null : nodes[p.parent]) {
          stats.push([p.id, 1 + rand() * 40, rand()]);
        }
        tree.apply({ expanded: parent.id, reward: 1, new_nodes: [node], stats,
          proof_path: null });
      }
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    // Then pan for a second: every frame redraws all 5,000 nodes.
    const panFrames = [];
    for (let i = 0; i < 40; i++) {
      tree.autoFit = false;
      tree.view.x += 2;
      tree.request();
      const t0 = performance.now();
      await new Promise((r) => requestAnimationFrame(r));
      panFrames.push(performance.now() - t0);
    }
    frames.sort((a, b) => a - b);
    panFrames.sort((a, b) => a - b);
    tree.fit();
    return {
      nodes: tree.size,
      totalMs: performance.now() - started,
      frames: frames.length,
      medianFrameMs: frames[Math.floor(frames.length / 2)],
      p95FrameMs: frames[Math.floor(frames.length * 0.95)],
      medianPanFrameMs: panFrames[Math.floor(panFrames.length / 2)],
      drawMs: tree.drawMs,
    };
  });
  await page.waitForTimeout(800);
  out.big.drawn = await page.evaluate(() =>
    Number(document.getElementById("tree-canvas").dataset.drawn));
  await page.screenshot({ path: path.join(cfg.artifacts, "live-search-5000-nodes.png") });
  log("5,000 nodes:", JSON.stringify(out.big));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
