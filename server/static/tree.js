// The RMaxTS tree on a canvas, fed by the service's tree deltas.
//
// Why a hand-written canvas renderer: thousands of nodes arrive a few at a time, several times
// a second. DOM or SVG nodes would each cost layout and style work; here a delta only appends
// to arrays, and at most one frame per display refresh (requestAnimationFrame) recomputes the
// layout (one O(n) pass: node ids grow with insertion, so parents always precede children and
// no recursion or sorting is needed) and redraws everything in a handful of canvas paths.
// Nodes glide from their parent to their place, so growth is easy to follow.

const TAU = Math.PI * 2;
// Value (mean discounted reward of the subtree: how often expanding there found new states)
// from cold to hot.
const RAMP = ["#56657c", "#3f78b3", "#4fa3d9", "#7dd3c0", "#e9d27a", "#f59e0b"];
const BUCKETS = 12;
const PALETTE = Array.from({ length: BUCKETS }, (_, i) => mix(RAMP, i / (BUCKETS - 1)));
const GREEN = "#3fb950";
const EDGE = "rgba(130, 152, 182, 0.30)";
const RECENT_MS = 1600; // how long the ring of a just-expanded node fades
const EASE = 0.2; // fraction of the remaining distance a node moves per frame

function hex(c) {
  const n = parseInt(c.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function mix(stops, t) {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = hex(stops[i]);
  const b = hex(stops[i + 1]);
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

function conclusion(state) {
  // The goal a label shows: the `⊢` line of the first goal, else the state's last line.
  const lines = (state || "").split("\n");
  const turnstile = lines.find((l) => l.trimStart().startsWith("⊢"));
  return (turnstile || lines[lines.length - 1] || "").trim();
}

export class TreeView {
  constructor(canvas, tooltip, { onChange } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.tooltip = tooltip;
    this.tipHead = tooltip.querySelector("#tip-head");
    this.tipState = tooltip.querySelector("#tip-state");
    this.onChange = onChange || (() => {});
    this.mode = "auto"; // auto | tree | radial
    this.view = { k: 1, x: 0, y: 0 };
    this.autoFit = true;
    this.hover = null;
    this.pinned = null;
    this.frame = 0;
    this.width = 0;
    this.height = 0;
    this.buckets = Array.from({ length: BUCKETS }, () => []);
    this.clear();
    this._bind();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  // ------------------------------------------------------------------ data

  clear() {
    this.nodes = [];
    this.byId = new Map();
    this.maxDepth = 0;
    this.proofPath = null;
    this.proofSet = new Set();
    this.recent = []; // [node, time] of the latest expansions, newest last
    this.layoutDirty = true;
    this.pinned = null;
    this.hover = null;
    this._hideTip();
    this.request();
  }

  /** Fold one delta (`search.tree.Tree.delta`) into the view; `reset` ones replace it. */
  apply(delta) {
    if (delta.reset) this.clear();
    for (const n of delta.new_nodes || []) this._add(n);
    for (const [id, visits, value] of delta.stats || []) {
      const node = this.byId.get(id);
      if (node) {
        node.visits = visits;
        node.value = value;
      }
    }
    if (delta.expanded !== null && delta.expanded !== undefined) {
      const node = this.byId.get(delta.expanded);
      if (node) {
        this.recent.push([node, performance.now()]);
        if (this.recent.length > 24) this.recent.shift();
      }
    }
    if (delta.proof_path) this.setProofPath(delta.proof_path);
    this.request();
  }

  setProofPath(path) {
    this.proofPath = path.filter((id) => this.byId.has(id)).map((id) => this.byId.get(id));
    this.proofSet = new Set(this.proofPath);
    this.request();
  }

  _add({ id, parent, state, depth }) {
    if (this.byId.has(id)) return; // a replayed delta
    let p = parent === null || parent === undefined ? null : this.byId.get(parent) || null;
    if (!p && parent !== null && parent !== undefined && this.nodes.length) p = this.nodes[0];
    const node = {
      id, parent: p, state, depth: depth || 0, children: [], visits: 0, value: 0,
      leaves: 1, start: 0, x: p ? p.x : 0, y: p ? p.y : 0, tx: 0, ty: 0,
    };
    if (p) p.children.push(node);
    this.nodes.push(node);
    this.byId.set(id, node);
    if (node.depth > this.maxDepth) this.maxDepth = node.depth;
    this.layoutDirty = true;
  }

  get size() {
    return this.nodes.length;
  }

  setMode(mode) {
    this.mode = mode;
    this.layoutDirty = true;
    this.request();
  }

  effectiveMode() {
    if (this.mode !== "auto") return this.mode;
    const leaves = this.nodes.length ? this.nodes[0].leaves : 1;
    return leaves > 80 ? "radial" : "tree";
  }

  // ------------------------------------------------------------------ layout

  _layout() {
    const nodes = this.nodes;
    const n = nodes.length;
    this.layoutDirty = false;
    if (!n) return;
    // Leaf counts bottom-up (children have larger ids than their parents) ...
    for (let i = n - 1; i >= 0; i--) {
      const v = nodes[i];
      if (v.children.length === 0) v.leaves = 1;
      else {
        let s = 0;
        for (const c of v.children) s += c.leaves;
        v.leaves = s;
      }
    }
    // ... then each subtree gets a contiguous run of leaf slots, top-down.
    const roots = nodes.filter((v) => !v.parent);
    let offset = 0;
    for (const r of roots) {
      r.start = offset;
      offset += r.leaves;
    }
    for (let i = 0; i < n; i++) {
      const v = nodes[i];
      let cursor = v.start;
      for (const c of v.children) {
        c.start = cursor;
        cursor += c.leaves;
      }
    }
    const total = Math.max(1, offset);
    const depth = Math.max(1, this.maxDepth);
    const w = Math.max(100, this.width);
    const h = Math.max(100, this.height);
    this.layoutMode = this.effectiveMode();
    if (this.layoutMode === "radial") {
      // An ellipse on wide (or tall) views: rings keep their order and the space is used.
      const ry = Math.min(h * 0.45, w * 0.45);
      const rx = Math.min(w * 0.46, ry * 1.7);
      this.ring = ry / depth;
      this.stretch = rx / ry;
      for (const v of nodes) {
        const angle = ((v.start + v.leaves / 2) / total) * TAU - Math.PI / 2;
        const r = v.depth * this.ring;
        v.tx = Math.cos(angle) * r * this.stretch;
        v.ty = Math.sin(angle) * r;
      }
    } else {
      this.gapX = Math.min(110, Math.max(1.2, (w * 0.92) / total));
      this.gapY = Math.min(110, Math.max(22, (h * 0.8) / depth));
      const left = (-total * this.gapX) / 2;
      const top = (-depth * this.gapY) / 2;
      for (const v of nodes) {
        v.tx = left + (v.start + v.leaves / 2) * this.gapX;
        v.ty = top + v.depth * this.gapY;
      }
    }
    if (nodes[0] && nodes[0].x === 0 && nodes[0].y === 0 && n === 1) {
      nodes[0].x = nodes[0].tx;
      nodes[0].y = nodes[0].ty;
    }
  }

  // ------------------------------------------------------------------ drawing

  request() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this._draw());
  }

  resize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    this.width = rect.width;
    this.height = rect.height;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(rect.width * dpr));
    this.canvas.height = Math.max(1, Math.round(rect.height * dpr));
    this.layoutDirty = true;
    if (this.autoFit) this.fit();
    this.request();
  }

  fit() {
    this.autoFit = true;
    this.view = { k: 1, x: this.width / 2, y: this.height / 2 };
    this.request();
  }

  _density() {
    // Smaller dots as the tree fills the view, so structure stays visible at 5,000 nodes.
    return Math.max(0.25, Math.min(1, Math.sqrt(260 / Math.max(1, this.nodes.length))));
  }

  _radius(v, k, density) {
    const base = (3 + 2 * Math.log1p(v.visits)) * density;
    return Math.max(1.3, Math.min(20, base * Math.min(3, Math.max(0.7, Math.sqrt(k)))));
  }

  _draw() {
    this.frame = 0;
    if (this.canvas.hidden) return;
    const began = performance.now();
    if (this.layoutDirty) this._layout();
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    const nodes = this.nodes;
    const { k, x: ox, y: oy } = this.view;
    let moving = false;
    for (const v of nodes) {
      const dx = v.tx - v.x;
      const dy = v.ty - v.y;
      if (Math.abs(dx) > 0.2 || Math.abs(dy) > 0.2) {
        v.x += dx * EASE;
        v.y += dy * EASE;
        moving = true;
      } else {
        v.x = v.tx;
        v.y = v.ty;
      }
      v.sx = v.x * k + ox;
      v.sy = v.y * k + oy;
    }
    const tidy = this.layoutMode !== "radial";
    const density = this._density();
    const path = this.proofPath;

    // Edges: one path for all of them.
    ctx.beginPath();
    for (const v of nodes) {
      const p = v.parent;
      if (!p) continue;
      ctx.moveTo(p.sx, p.sy);
      if (tidy) {
        const my = (p.sy + v.sy) / 2;
        ctx.bezierCurveTo(p.sx, my, v.sx, my, v.sx, v.sy);
      } else {
        ctx.lineTo(v.sx, v.sy);
      }
    }
    ctx.strokeStyle = EDGE;
    ctx.lineWidth = 1;
    ctx.globalAlpha = path && path.length ? 0.6 : 1;
    ctx.stroke();
    ctx.globalAlpha = 1;

    // Nodes, batched by colour; those off screen are skipped.
    for (const b of this.buckets) b.length = 0;
    let drawn = 0;
    const margin = 30;
    for (const v of nodes) {
      if (v.sx < -margin || v.sy < -margin || v.sx > this.width + margin
          || v.sy > this.height + margin) continue;
      const t = Math.pow(Math.min(1, Math.max(0, v.value || 0)), 0.6);
      this.buckets[Math.round(t * (BUCKETS - 1))].push(v);
      drawn++;
    }
    ctx.globalAlpha = path && path.length ? 0.6 : 1; // a proof: the rest steps back
    for (let b = 0; b < BUCKETS; b++) {
      const list = this.buckets[b];
      if (!list.length) continue;
      ctx.beginPath();
      for (const v of list) {
        const r = this._radius(v, k, density);
        ctx.moveTo(v.sx + r, v.sy);
        ctx.arc(v.sx, v.sy, r, 0, TAU);
      }
      ctx.fillStyle = PALETTE[b];
      ctx.fill();
      if (nodes.length < 1500) { // a hairline rim keeps dark nodes visible on the background
        ctx.strokeStyle = "rgba(220, 230, 245, 0.22)";
        ctx.lineWidth = 1;
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;

    // The proof path, over the other nodes.
    if (path && path.length) {
      ctx.save();
      ctx.beginPath();
      for (let i = 1; i < path.length; i++) {
        const p = path[i - 1];
        const v = path[i];
        ctx.moveTo(p.sx, p.sy);
        if (tidy) {
          const my = (p.sy + v.sy) / 2;
          ctx.bezierCurveTo(p.sx, my, v.sx, my, v.sx, v.sy);
        } else ctx.lineTo(v.sx, v.sy);
      }
      const qed = this._qed();
      const last = path[path.length - 1];
      ctx.moveTo(last.sx, last.sy);
      ctx.lineTo(qed.x, qed.y);
      ctx.strokeStyle = GREEN;
      ctx.lineWidth = 3;
      ctx.shadowColor = GREEN;
      ctx.shadowBlur = 10;
      ctx.stroke();
      ctx.restore();
    }

    // The root, the proof path's nodes and the QED mark.
    if (nodes.length) {
      const root = nodes[0];
      ctx.beginPath();
      ctx.arc(root.sx, root.sy, this._radius(root, k, density) + 3, 0, TAU);
      ctx.strokeStyle = "#6cb6ff";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    if (path && path.length) {
      ctx.save();
      ctx.fillStyle = GREEN;
      ctx.shadowColor = GREEN;
      ctx.shadowBlur = 12;
      ctx.beginPath();
      for (const v of path) {
        const r = this._radius(v, k, density) + 1;
        ctx.moveTo(v.sx + r, v.sy);
        ctx.arc(v.sx, v.sy, r, 0, TAU);
      }
      ctx.fill();
      const qed = this._qed();
      const s = 7;
      ctx.beginPath();
      ctx.moveTo(qed.x, qed.y - s);
      ctx.lineTo(qed.x + s, qed.y);
      ctx.lineTo(qed.x, qed.y + s);
      ctx.lineTo(qed.x - s, qed.y);
      ctx.closePath();
      ctx.fill();
      ctx.shadowBlur = 0;
      ctx.font = "600 12px " + getComputedStyle(document.body).fontFamily;
      ctx.fillStyle = "#7ee787";
      ctx.textBaseline = "middle";
      ctx.fillText("QED", qed.x + s + 5, qed.y);
      ctx.restore();
    }

    // Rings of the nodes just expanded, fading.
    const now = performance.now();
    let fading = false;
    for (let i = 0; i < this.recent.length; i++) {
      const [v, at] = this.recent[i];
      const age = now - at;
      const newest = i === this.recent.length - 1;
      if (age > RECENT_MS && !newest) continue;
      const alpha = newest ? Math.max(0.55, 1 - age / RECENT_MS) : 1 - age / RECENT_MS;
      if (age < RECENT_MS) fading = true;
      ctx.beginPath();
      ctx.arc(v.sx, v.sy, this._radius(v, k, density) + 3 + (newest ? 1 : 0), 0, TAU);
      ctx.strokeStyle = `rgba(255, 255, 255, ${alpha.toFixed(3)})`;
      ctx.lineWidth = newest ? 2 : 1.2;
      ctx.stroke();
    }

    // Labels, when there is room for them.
    if (tidy && nodes.length <= 60 && this.gapX * k >= 80) {
      ctx.font = "11px " + getComputedStyle(document.body).getPropertyValue("--mono");
      ctx.fillStyle = "rgba(200, 212, 226, 0.75)";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const room = Math.max(8, Math.floor((this.gapX * k - 12) / 7)); // ~7 px a character
      for (const v of nodes) {
        let text = conclusion(v.state);
        if (text.length > room) text = text.slice(0, room - 1) + "…";
        ctx.fillText(text, v.sx, v.sy + this._radius(v, k, density) + 4);
      }
      ctx.textAlign = "start";
    }

    // Hovered or pinned node.
    const focus = this.pinned || this.hover;
    if (focus) {
      ctx.beginPath();
      ctx.arc(focus.sx, focus.sy, this._radius(focus, k, density) + 5, 0, TAU);
      ctx.strokeStyle = "#6cb6ff";
      ctx.lineWidth = 2;
      ctx.stroke();
      if (this.pinned) this._placeTip(focus.sx, focus.sy);
    }

    this.canvas.dataset.nodes = String(nodes.length);
    this.canvas.dataset.drawn = String(drawn);
    this.canvas.dataset.proofPath = String(path ? path.length : 0);
    this.onChange(this);
    this.drawMs = performance.now() - began; // layout included; read by the browser test
    if (moving || fading) this.request();
  }

  _qed() {
    const last = this.proofPath[this.proofPath.length - 1];
    const k = this.view.k;
    if (this.layoutMode === "radial") {
      const cx = this.view.x;
      const cy = this.view.y;
      const dx = last.sx - cx;
      const dy = last.sy - cy;
      const len = Math.hypot(dx, dy) || 1;
      const step = Math.max(18, (this.ring || 30) * k * 0.6);
      return { x: last.sx + (dx / len) * step, y: last.sy + (dy / len) * step };
    }
    return { x: last.sx, y: last.sy + Math.max(18, (this.gapY || 40) * k * 0.6) };
  }

  // ------------------------------------------------------------------ interaction

  _nodeAt(px, py) {
    const k = this.view.k;
    const density = this._density();
    let best = null;
    let bestD = Infinity;
    for (const v of this.nodes) {
      const d = Math.hypot(v.sx - px, v.sy - py);
      const reach = this._radius(v, k, density) + 5;
      if (d <= reach && d < bestD) {
        best = v;
        bestD = d;
      }
    }
    return best;
  }

  _showTip(v) {
    const onProof = this.proofSet.has(v);
    this.tipHead.replaceChildren();
    const title = document.createElement("b");
    title.textContent = v.id === 0 ? "root" : `node ${v.id}`;
    this.tipHead.append(title,
      ` · depth ${v.depth} · visits ${fmt(v.visits)} · value ${fmt(v.value)}`
      + ` · ${v.children.length} child${v.children.length === 1 ? "" : "ren"}`);
    if (onProof) {
      const mark = document.createElement("span");
      mark.className = "on-proof";
      mark.textContent = " · on the proof path";
      this.tipHead.append(mark);
    }
    this.tipState.textContent = v.state || "(no goals)";
    this.tooltip.hidden = false;
    this.tooltip.classList.toggle("pinned", this.pinned === v);
  }

  _placeTip(x, y) {
    const tip = this.tooltip;
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    let left = x + 16;
    let top = y + 14;
    if (left + w > this.width - 6) left = Math.max(6, x - w - 16);
    if (top + h > this.height - 6) top = Math.max(6, this.height - h - 6);
    tip.style.left = `${left}px`;
    tip.style.top = `${top}px`;
  }

  _hideTip() {
    if (this.tooltip) this.tooltip.hidden = true;
  }

  _bind() {
    const c = this.canvas;
    let drag = null;
    const pos = (e) => {
      const r = c.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    c.addEventListener("pointerdown", (e) => {
      const [x, y] = pos(e);
      drag = { x, y, vx: this.view.x, vy: this.view.y, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      const [x, y] = pos(e);
      if (drag) {
        if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) drag.moved = true;
        if (drag.moved) {
          c.classList.add("dragging");
          this.autoFit = false;
          this.view.x = drag.vx + x - drag.x;
          this.view.y = drag.vy + y - drag.y;
          if (this.pinned) this._placeTip(this.pinned.sx, this.pinned.sy);
          this.request();
          return;
        }
      }
      if (this.pinned) return;
      const v = this._nodeAt(x, y);
      if (v !== this.hover) {
        this.hover = v;
        this.request();
      }
      if (v) {
        this._showTip(v);
        this._placeTip(x, y);
      } else this._hideTip();
    });
    c.addEventListener("pointerup", (e) => {
      const wasDrag = drag && drag.moved;
      drag = null;
      c.classList.remove("dragging");
      if (wasDrag) return;
      const [x, y] = pos(e);
      const v = this._nodeAt(x, y);
      this.pinned = v && v !== this.pinned ? v : null;
      if (this.pinned) {
        this._showTip(this.pinned);
        this._placeTip(this.pinned.sx, this.pinned.sy);
      } else if (!v) this._hideTip();
      this.request();
    });
    c.addEventListener("pointerleave", () => {
      if (!this.pinned) {
        this.hover = null;
        this._hideTip();
        this.request();
      }
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = pos(e);
      const factor = Math.exp(-e.deltaY * 0.0015);
      const k = Math.min(60, Math.max(0.2, this.view.k * factor));
      const f = k / this.view.k;
      this.view = { k, x: x - (x - this.view.x) * f, y: y - (y - this.view.y) * f };
      this.autoFit = false;
      this.request();
    }, { passive: false });
    c.addEventListener("dblclick", () => this.fit());
  }
}

function fmt(x) {
  if (x === null || x === undefined) return "–";
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2);
}

// ---------------------------------------------------------------------- sampling

export const VERDICT_COLORS = {
  proved: "#3fb950",
  failed: "#f85149",
  incomplete: "#d29922",
  rejected: "#bc8cff",
  timeout: "#db6d28",
  system_error: "#8b949e",
};
export const VERDICT_ORDER = ["proved", "failed", "incomplete", "rejected", "timeout",
  "system_error"];

/** Whole-proof sampling has no tree: one square per attempt, coloured by its verdict, in the
 * order the progress events reported them (within one event the order is unknown). */
export class AttemptGrid {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.frame = 0;
    this.reset(0);
    new ResizeObserver(() => this.request()).observe(canvas.parentElement);
  }

  reset(budget) {
    this.budget = Math.max(1, budget || 1);
    this.cells = [];
    this.counts = {};
    this.request();
  }

  /** Cumulative verdict counts from a progress event; new ones are appended in order. */
  update(counts) {
    for (const verdict of VERDICT_ORDER.concat(Object.keys(counts))) {
      const before = this.counts[verdict] || 0;
      const now = counts[verdict] || 0;
      for (let i = before; i < now; i++) this.cells.push(verdict);
      if (now > before) this.counts[verdict] = now;
    }
    this.request();
  }

  request() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this._draw());
  }

  _draw() {
    this.frame = 0;
    if (this.canvas.hidden) return;
    const began = performance.now();
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(rect.width * dpr));
    this.canvas.height = Math.max(1, Math.round(rect.height * dpr));
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, rect.width, rect.height);
    const total = Math.max(this.budget, this.cells.length);
    const pad = 18;
    const w = rect.width - 2 * pad;
    const h = rect.height - 2 * pad;
    let size = Math.sqrt((w * h) / total);
    let cols = Math.max(1, Math.floor(w / size));
    while (cols * Math.floor(h / size) < total && size > 1) {
      size *= 0.95;
      cols = Math.max(1, Math.floor(w / size));
    }
    size = Math.min(size, 34);
    cols = Math.max(1, Math.min(cols, Math.floor(w / size), total));
    const rows = Math.ceil(total / cols);
    const left = pad + Math.max(0, (w - cols * size) / 2);
    const top = pad + Math.max(0, (h - rows * size) / 2);
    const gap = size > 6 ? Math.max(1, size * 0.14) : 0;
    ctx.fillStyle = "#18202b";
    for (let i = this.cells.length; i < Math.min(total, 20000); i++) {
      ctx.fillRect(left + (i % cols) * size, top + Math.floor(i / cols) * size, size - gap,
        size - gap);
    }
    for (let i = 0; i < this.cells.length; i++) {
      ctx.fillStyle = VERDICT_COLORS[this.cells[i]] || "#8b949e";
      ctx.fillRect(left + (i % cols) * size, top + Math.floor(i / cols) * size, size - gap,
        size - gap);
    }
    this.canvas.dataset.attempts = String(this.cells.length);
  }
}
