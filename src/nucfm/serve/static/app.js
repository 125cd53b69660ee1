// nucfm serve: the page. Plain JS, no build step, no network access beyond this server.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
};
const FORMS = { fold: "fold", embed: "embed", vep: "vep", probs: "probs" };
const BASE_COLOURS = { A: "#e6550d", C: "#3182bd", G: "#31a354", T: "#756bb1", U: "#756bb1" };

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (_) { /* a file or an empty body */ }
  if (!response.ok) {
    let message = (body && body.error) || `${response.status} ${response.statusText}`;
    const retry = response.headers.get("Retry-After");
    if (retry) message += ` (retry after ${retry} s)`;
    throw new Error(message);
  }
  return body;
}

function setStatus(name, text, error = false) {
  const s = $(`#${name}-status`);
  s.textContent = text;
  s.classList.toggle("error", error);
}

function formData(form) {
  const data = new FormData();
  for (const [k, v] of new FormData(form).entries()) {
    if (v instanceof File) { if (v.size > 0) data.append(k, v); }
    else if (v !== "") data.append(k, v);
  }
  if (data.has("file")) data.delete("text");  // an upload wins over pasted text
  return data;
}

function downloads(name, links) {
  const box = $(`#${name}-downloads`);
  box.replaceChildren();
  for (const [label, url] of Object.entries(links)) box.append(el("a", { href: url, download: "" }, `download ${label}`));
}

async function waitForJob(job, onProgress) {
  while (job.status === "queued" || job.status === "running") {
    onProgress(job);
    await new Promise((r) => setTimeout(r, 300));
    job = await api(job.url);
  }
  if (job.status === "failed") throw new Error(job.error);
  return job;
}

async function submit(name, form, render, params = "") {
  const button = $("button[type=submit]", form);
  button.disabled = true;
  setStatus(name, "working…");
  const started = performance.now();
  try {
    let job = await api(`/api/${name}${params}`, { method: "POST", body: formData(form) });
    job = await waitForJob(job, (j) => {
      const p = j.progress;
      setStatus(name, `${j.status}: ${p.done}${p.total ? " / " + p.total : ""} ${p.unit}`);
      const bar = $(`#${name}-progress`);
      if (bar && p.total) { bar.hidden = false; bar.max = p.total; bar.value = p.done; }
    });
    render(job.result);
    setStatus(name, `done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    setStatus(name, e.message, true);
  } finally {
    button.disabled = false;
  }
}

// ---- fold ----------------------------------------------------------------------------------------
function renderFold(result) {
  downloads("fold", { "dot-bracket": result.downloads.dbn, BPSEQ: result.downloads.bpseq, CT: result.downloads.ct,
                      "pair probabilities (.npz)": result.downloads.probs });
  const box = $("#fold-results");
  box.replaceChildren();
  for (const rec of result.records) {
    const pre = el("pre", { class: "dbn" }, `${rec.sequence}\n${rec.dot_bracket}`);
    const img = el("img", { src: rec.plot, alt: `structure of ${rec.id}`, loading: "lazy", class: "plot" });
    box.append(el("div", { class: "record" },
      el("h3", {}, `${rec.id} `, el("span", { class: "muted" }, `${rec.length} nt, ${rec.pairs.length} pairs`)),
      pre, img));
  }
}

// ---- embed ---------------------------------------------------------------------------------------
function renderEmbed(result) {
  $("#embed-progress").value = $("#embed-progress").max;
  downloads("embed", { [result.pool === "mean" ? "Parquet (pooled)" : "HDF5 (per residue)"]: result.download });
  $("#embed-downloads").append(el("span", { class: "muted" },
    `${result.records} records, ${result.residues} nt, ${result.dim} dimensions, layer ${result.layer}, ${result.model}`));
}

// ---- variant effects -------------------------------------------------------------------------------
function renderVep(result) {
  downloads("vep", { [`scored ${result.format.toUpperCase()}`]: result.download });
  $("#vep-downloads").append(el("span", { class: "muted" },
    Object.entries(result.counts).map(([k, v]) => `${k}: ${v}`).join(", ")));
  const table = $("#vep-table");
  let rows = result.rows.map((r, i) => ({ r, i }));
  const numeric = result.columns.map((_, c) => result.rows.every((r) => r[c] === null || typeof r[c] === "number"));
  const draw = () => {
    const body = el("tbody");
    for (const { r } of rows) {
      body.append(el("tr", {}, ...r.map((v, c) =>
        el("td", numeric[c] ? { class: "num" } : {}, v === null ? "" : (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : String(v))))));
    }
    table.replaceChildren(head, body);
  };
  const head = el("thead", {}, el("tr", {}, ...result.columns.map((name, c) => {
    const th = el("th", { scope: "col", "data-col": c }, name);
    th.addEventListener("click", () => {
      const asc = th.getAttribute("aria-sort") !== "ascending";
      for (const other of head.querySelectorAll("th")) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      rows.sort((a, b) => {
        const x = a.r[c], y = b.r[c];
        if (x === y) return a.i - b.i;
        if (x === null) return 1;  // missing values last either way
        if (y === null) return -1;
        const cmp = numeric[c] ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
        return asc ? cmp : -cmp;
      });
      draw();
    });
    return th;
  })));
  draw();
}

// ---- probabilities and logo --------------------------------------------------------------------------
function renderProbs(result) {
  downloads("probs", { "probabilities (TSV)": result.download });
  const n = result.pos.length, colW = Math.max(12, Math.min(28, Math.floor(1100 / n)));
  const h = 160, top = 10, left = 40, bottom = 40, bits = h / 2;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", left + n * colW + 10);
  svg.setAttribute("height", top + h + bottom);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `sequence logo of ${result.chrom}:${result.start}-${result.end}`);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  add("line", { x1: left, y1: top, x2: left, y2: top + h, stroke: "#999" });
  for (const b of [0, 1, 2]) {
    add("text", { x: left - 6, y: top + h - b * bits + 4, "text-anchor": "end", "font-size": 10, fill: "#666" }, `${b}`);
  }
  add("text", { x: 10, y: top + h / 2, "font-size": 10, fill: "#666", transform: `rotate(-90 10 ${top + h / 2})`,
                "text-anchor": "middle" }, "bits");
  result.pos.forEach((pos, k) => {
    const ic = result.information[k];
    const letters = result.probs[k].map((p, b) => ({ b: result.bases[b], height: p * ic * bits }))
      .sort((a, b) => a.height - b.height);
    let y = top + h;
    for (const { b, height } of letters) {
      if (height < 0.5) continue;
      // a 100-px letter's cap height is about 72 px: scale it to `height` pixels tall, colW wide
      const t = add("text", { x: 0, y: 0, "font-size": 100, "font-family": "Arial, Helvetica, sans-serif",
                              "font-weight": "bold", fill: BASE_COLOURS[b], class: "logo-letter" }, b);
      t.setAttribute("transform", `translate(${left + k * colW} ${y}) scale(${colW / 70} ${height / 72})`);
      y -= height;
    }
    const ref = result.ref[k];
    add("text", { x: left + k * colW + colW / 2, y: top + h + 14, "text-anchor": "middle", "font-size": 11,
                  "font-family": "monospace", fill: /[a-z]/.test(ref) ? "#aaa" : "#333" }, ref);
    if (k % 10 === 0) add("text", { x: left + k * colW, y: top + h + 30, "font-size": 9, fill: "#666" }, `${pos}`);
  });
  $("#probs-logo").replaceChildren(svg);
}

// ---- capabilities -> tabs ---------------------------------------------------------------------------
function fillSelect(select, names) {
  if (!select) return;
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
}

function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const p of document.querySelectorAll(".panel")) p.hidden = true;
  const cap = window.nucfmCapabilities.find((c) => c.name === name);
  if (FORMS[name]) $(`#panel-${name}`).hidden = false;
  else { $("#generic-description").textContent = cap.description; $("#panel-generic").hidden = false; }
  history.replaceState(null, "", `#${name}`);
}

async function main() {
  let caps;
  try {
    caps = await api("/api/capabilities");
  } catch (e) {
    $("#server-status").textContent = `server unreachable: ${e.message}`;
    return;
  }
  window.nucfmCapabilities = caps.capabilities;
  $("#version").textContent = `v${caps.version}`;
  $("#server-status").textContent = `${caps.models.length} model(s), ${caps.genomes.length} genome(s)`;
  $("#limits").textContent = `${caps.limits.max_records} records per request, fold ≤ ${caps.limits.max_fold_len} nt, ` +
    `variants ≤ ${caps.limits.max_variants}, region ≤ ${caps.limits.max_region} positions, ` +
    `body ≤ ${caps.limits.max_body_mb} MiB`;
  const tabs = $("#tabs");
  for (const cap of caps.capabilities) {
    const b = el("button", { role: "tab", "data-tab": cap.name, title: cap.description, id: `tab-${cap.name}` }, cap.title);
    b.addEventListener("click", () => showTab(cap.name));
    tabs.append(b);
    const panel = $(`#panel-${cap.name}`);
    if (!panel) continue;
    fillSelect($("select[name=model]", panel), cap.models);
    fillSelect($("select[name=genome]", panel), cap.genomes);
  }
  if (!caps.capabilities.length) { $("#no-capabilities").hidden = false; return; }
  const wanted = location.hash.slice(1);
  showTab(caps.capabilities.some((c) => c.name === wanted) ? wanted : caps.capabilities[0].name);
  const renders = { fold: renderFold, embed: renderEmbed, vep: renderVep, probs: renderProbs };
  for (const [name, render] of Object.entries(renders)) {
    const form = $(`#${name}-form`);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      submit(name, form, render, name === "embed" ? "" : "?wait=false");
    });
  }
  document.body.dataset.ready = "true";
}

main();
