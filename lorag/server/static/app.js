// lorag web page: chat (streamed, cited), documents, models (plan, build with live progress, history).
"use strict";

const $ = (sel) => document.querySelector(sel);
let STAGES = [];  // the build's stage names, in order, as /api/build/stages serves them
const FINISHED = ["succeeded", "failed", "cancelled"];

// ---- token: taken from the URL fragment (#token=...) once, then kept in localStorage -------------
function captureToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    localStorage.setItem("lorag-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}
const token = () => localStorage.getItem("lorag-token") || "";

function askToken() {
  const dialog = $("#token-dialog");
  $("#token-input").value = token();
  dialog.showModal();
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") {
      localStorage.setItem("lorag-token", $("#token-input").value.trim());
      toast(t("token.saved"));
    }
  }, { once: true });
}

// ---- HTTP helpers -----------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401) { askToken(); throw new Error(t("token.needed")); }
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) throw new Error((body && body.error) || resp.statusText);
  return body;
}

// Parse a text/event-stream body from fetch, calling onEvent(name, data) per event.
async function readSSE(resp, onEvent) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function toast(text, isError = false) {
  const el = $("#toast");
  el.textContent = text;
  el.className = "toast" + (isError ? " error" : "");
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

const formatBytes = (n) => {
  if (!n && n !== 0) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};
const formatDate = (iso) => {
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString(LANG === "ja" ? "ja-JP" : "en-GB");
};
const formatTime = (seconds) => new Date(seconds * 1000).toLocaleString(LANG === "ja" ? "ja-JP" : "en-GB");

// ---- tabs -------------------------------------------------------------------------------------
function showTab(name) {
  document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("active", s.id === "tab-" + name));
  if (name === "documents") loadDocuments();
  if (name === "models") loadModels();
}

// ---- chat -------------------------------------------------------------------------------------
function renderAnswer(el, text, sources) {
  // Citations like [2] become buttons that open the source passage.
  el.innerHTML = escapeHtml(text).replace(/\[(\d{1,2})\]/g, (whole, n) =>
    sources[n - 1] ? `<button class="cite" data-n="${n}">[${n}]</button>` : whole);
}

function showSource(source, n) {
  const where = [source.name];
  if (source.page) where.push(`${t("chat.page")} ${source.page}`);
  where.push(`${t("chat.chars")} ${source.start}–${source.end}`);
  $("#source-where").textContent = `[${n}] ` + where.join(" · ");
  $("#source-text").textContent = source.text || "";
  $("#source-panel").hidden = false;
}

function addMessage(kind, html) {
  const hint = $("#messages .hint");
  if (hint) hint.remove();
  const el = document.createElement("div");
  el.className = "msg " + kind;
  el.innerHTML = html;
  $("#messages").appendChild(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

async function ask(event) {
  event.preventDefault();
  const question = $("#question").value.trim();
  if (!question) return;
  $("#question").value = "";
  $("#ask-button").disabled = true;
  addMessage("user", escapeHtml(question));
  const box = addMessage("bot", `<div class="answer muted">${t("chat.thinking")}</div><div class="source-chips"></div>`);
  const answerEl = box.querySelector(".answer");
  let sources = [];
  let text = "";
  box.addEventListener("click", (e) => {
    const btn = e.target.closest("[data-n]");
    if (btn && sources[btn.dataset.n - 1]) showSource(sources[btn.dataset.n - 1], btn.dataset.n);
  });
  try {
    const resp = await fetch("/api/query", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, stream: true }),
    });
    if (!resp.ok) throw new Error((await resp.json()).error || resp.statusText);
    await readSSE(resp, (name, data) => {
      if (name === "sources") sources = data.hits;
      else if (name === "token") { text += data.text; answerEl.classList.remove("muted"); renderAnswer(answerEl, text, sources); }
      else if (name === "done") { text = data.answer; sources = data.sources; renderAnswer(answerEl, text, sources); renderChips(box, data.citations, sources); }
      else if (name === "error") throw new Error(data.error);
    });
    box.dataset.done = "1";
  } catch (err) {
    answerEl.classList.remove("muted");
    answerEl.innerHTML = `<span class="error-text">${t("error")}: ${escapeHtml(err.message)}</span>`;
  } finally {
    $("#ask-button").disabled = false;
  }
}

function renderChips(box, citations, sources) {
  const chips = box.querySelector(".source-chips");
  if (!citations.length) return;
  chips.innerHTML = `<span class="muted">${t("chat.sources")}:</span> ` + citations.map((c) => {
    const page = c.page ? ` p.${c.page}` : "";
    return `<button class="chip${c.cited ? " cited" : ""}" data-n="${c.n}">[${c.n}] ${escapeHtml(c.name)}${page}</button>`;
  }).join(" ");
  if (!sources.length) chips.innerHTML = "";
}

// ---- documents --------------------------------------------------------------------------------
async function loadDocuments() {
  const { documents } = await api("/api/documents");
  $("#docs-empty").hidden = documents.length > 0;
  $("#doc-rows").innerHTML = documents.map((d) => `
    <tr data-id="${d.id}">
      <td>${escapeHtml(d.name)}</td><td class="num">${d.n_chunks}</td><td>${escapeHtml(formatDate(d.added_at))}</td>
      <td class="actions">
        <button class="ghost small" data-act="reingest">${t("docs.reingest")}</button>
        <button class="danger small" data-act="delete">${t("docs.delete")}</button>
      </td>
    </tr>`).join("");
}

async function documentAction(event) {
  const btn = event.target.closest("button[data-act]");
  if (!btn) return;
  const id = btn.closest("tr").dataset.id;
  try {
    if (btn.dataset.act === "delete") {
      if (!confirm(t("docs.confirmDelete"))) return;
      await api(`/api/documents/${id}`, { method: "DELETE" });
    } else {
      btn.disabled = true;
      await api(`/api/documents/${id}/reingest`, { method: "POST" });
      toast(t("docs.done"));
    }
    loadDocuments();
  } catch (err) { toast(err.message, true); btn.disabled = false; }
}

function upload(event) {
  event.preventDefault();
  const files = $("#upload-files").files;
  if (!files.length) { toast(t("docs.choose"), true); return; }
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const bar = $("#upload-progress");
  const status = $("#upload-status");
  bar.hidden = false;
  bar.firstElementChild.style.width = "0%";
  status.textContent = t("docs.uploading");
  // XHR rather than fetch: it reports upload progress.
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/documents");
  if (token()) xhr.setRequestHeader("Authorization", "Bearer " + token());
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    const pct = Math.round((e.loaded / e.total) * 100);
    bar.firstElementChild.style.width = pct + "%";
    if (pct >= 100) status.textContent = t("docs.ingesting");
  };
  xhr.onload = () => {
    bar.firstElementChild.style.width = "100%";
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status === 401) { askToken(); status.textContent = t("token.needed"); return; }
    if (xhr.status >= 400) { status.textContent = `${t("error")}: ${body.error || xhr.statusText}`; return; }
    const report = body.report;
    const failed = report.failed.map((f) => `${f.path}: ${f.reason}`).join("; ");
    status.textContent = `${t("docs.done")}: ${report.added.length + report.updated.length + report.unchanged.length}` +
      (failed ? ` — ${t("docs.failed")}: ${failed}` : "");
    $("#upload-files").value = "";
    loadDocuments();
  };
  xhr.onerror = () => { status.textContent = t("error"); };
  xhr.send(form);
}

// ---- models -----------------------------------------------------------------------------------
async function loadModels() {
  const data = await api("/api/models");
  const c = data.current;
  $("#current-model").innerHTML = [
    ["models.backend", c.backend], ["models.model", c.model], ["models.adapter", c.adapter || "—"], ["models.context", c.context],
  ].map(([k, v]) => `<dt>${t(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("");
  $("#artifact-list").innerHTML = data.artifacts.length
    ? data.artifacts.map((a) => `<li><code>${escapeHtml(a.name)}</code> ${escapeHtml(a.quantization || "")} · ${formatBytes(a.size_bytes)}</li>`).join("")
    : `<li class="muted">${t("models.noArtifacts")}</li>`;
  const ol = data.ollama;
  $("#ollama-status").textContent = ol.reachable
    ? `${t("models.ollamaModels")}: ${ol.models.map((m) => m.name).join(", ") || "—"}`
    : `${t("models.ollamaDown")} (${ol.host})`;
  if (!$("#lora-path").value && data.roots.length) $("#lora-path").placeholder = data.roots[0] + "/…";
  loadJobs();
  loadPlan();
}

async function loadPlan() {
  if (!$("#plan-reason").textContent) $("#plan-reason").textContent = t("models.planning");
  try {
    const plan = await api("/api/models/plan");
    $("#plan-reason").textContent = plan.reason;
    $("#plan-rows").innerHTML = plan.options.slice(0, 6).map((o, i) => `
      <tr class="${i === plan.chosen ? "chosen" : ""}">
        <td>${escapeHtml(o.label)}</td><td class="num">${formatBytes(o.memory_bytes)}</td>
        <td>${o.fits ? t("models.fits") : t("models.noFit")}${o.needs_build ? " · " + t("models.needsBuild") : ""}${i === plan.chosen ? " · <strong>" + t("models.chosen") + "</strong>" : ""}</td>
      </tr>`).join("");
  } catch (err) { $("#plan-reason").textContent = `${t("error")}: ${err.message}`; }
}

async function loadJobs() {
  if (!STAGES.length) STAGES = (await api("/api/build/stages")).stages;
  const { jobs } = await api("/api/jobs");
  $("#job-rows").innerHTML = jobs.map((j) => `
    <tr data-id="${j.id}">
      <td>${formatTime(j.created_at)}</td>
      <td><span class="badge ${j.status}">${t("status." + j.status)}</span></td>
      <td class="path">${escapeHtml(j.params.lora_path)}</td><td>${escapeHtml(j.params.quantization)}</td>
      <td class="actions"><button class="ghost small" data-act="show">▶</button></td>
    </tr>`).join("");
}

let currentJob = null;
let jobSource = null;

function resetStages() {
  $("#stage-list").innerHTML = STAGES.map((s) => `
    <li data-stage="${s}"><span class="stage-name">${t("stage." + s)}</span>
      <div class="progress"><div class="fill"></div></div><span class="pct">0%</span></li>`).join("");
}

function setStage(stage, percent) {
  const li = $(`#stage-list li[data-stage="${stage}"]`);
  if (!li) return;
  const pct = Math.max(0, Math.min(100, Math.round(percent || 0)));
  // Earlier stages are done once a later one reports.
  for (const s of STAGES.slice(0, STAGES.indexOf(stage))) finishStage(s);
  li.querySelector(".fill").style.width = pct + "%";
  li.querySelector(".pct").textContent = pct + "%";
  li.classList.add("active");
  if (pct >= 100) li.classList.add("done");
}

function finishStage(stage) {
  const li = $(`#stage-list li[data-stage="${stage}"]`);
  if (!li || li.classList.contains("done")) return;
  li.querySelector(".fill").style.width = "100%";
  li.querySelector(".pct").textContent = "100%";
  li.classList.add("done");
}

function followJob(id) {
  if (jobSource) jobSource.close();
  currentJob = id;
  resetStages();
  $("#build-progress").hidden = false;
  $("#build-result").hidden = true;
  $("#build-message").textContent = "";
  const source = new EventSource(`/api/jobs/${id}/events`);
  jobSource = source;
  source.addEventListener("progress", (e) => {
    const data = JSON.parse(e.data);
    if (STAGES.includes(data.stage)) setStage(data.stage, data.percent);
    const bytes = data.bytes_total ? ` (${formatBytes(data.bytes_done)} / ${formatBytes(data.bytes_total)})` : "";
    if (data.message || bytes) $("#build-message").textContent = (data.message || "") + bytes;
  });
  source.addEventListener("status", (e) => {
    const data = JSON.parse(e.data);
    setStatus(data.status);
    if (FINISHED.includes(data.status)) {
      source.close();
      if (data.status === "succeeded") { STAGES.forEach(finishStage); showResult(data.result); }
      if (data.error) $("#build-message").textContent = data.error;
      loadJobs();
      if (data.status === "succeeded") loadModels();
    }
  });
}

function setStatus(status) {
  $("#build-status").textContent = t("status." + status);
  $("#build-status").className = "badge " + status;
  $("#build-progress").dataset.status = status;
  $("#cancel-button").hidden = FINISHED.includes(status);
}

function showResult(result) {
  if (!result) return;
  const fid = result.fidelity || {};
  const num = (v, digits) => (typeof v === "number" ? v.toFixed(digits) : "—");
  const rows = [
    ["models.gguf", escapeHtml(result.gguf)],
    ["models.quant", escapeHtml(result.quantization)],
    ["models.size", formatBytes(result.size_bytes)],
    ["models.kl", num(fid.kl_mean, 4)],
    ["models.top1", typeof fid.top1 === "number" ? (fid.top1 * 100).toFixed(1) + "%" : "—"],
  ];
  const el = $("#build-result");
  el.innerHTML = `<h3>${t("models.result")}</h3><dl class="kv">` +
    rows.map(([k, v]) => `<dt>${t(k)}</dt><dd>${v}</dd>`).join("") + "</dl>" +
    (result.config_updated ? `<p class="ok">${t("models.switched")}</p>` : "");
  el.hidden = false;
}

async function startBuild(event) {
  event.preventDefault();
  const body = { lora_path: $("#lora-path").value.trim(), quantization: $("#quantization").value, mode: $("#mode").value };
  const name = $("#build-name").value.trim();
  if (name) body.name = name;
  try {
    const data = await api("/api/quantize-model", { method: "POST", json: body });
    if (data.shared) toast(t("models.shared"));
    setStatus(data.job.status);
    followJob(data.job_id);
    loadJobs();
  } catch (err) { toast(err.message, true); }
}

async function cancelBuild() {
  if (!currentJob) return;
  try { await api(`/api/jobs/${currentJob}/cancel`, { method: "POST" }); } catch (err) { toast(err.message, true); }
}

// ---- start ------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  captureToken();
  applyLanguage();
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("#lang-toggle").addEventListener("click", toggleLanguage);
  $("#token-button").addEventListener("click", askToken);
  $("#ask-form").addEventListener("submit", ask);
  $("#question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("#ask-form").requestSubmit();
  });
  $("#source-close").addEventListener("click", () => { $("#source-panel").hidden = true; });
  $("#upload-form").addEventListener("submit", upload);
  $("#doc-rows").addEventListener("click", documentAction);
  $("#build-form").addEventListener("submit", startBuild);
  $("#cancel-button").addEventListener("click", cancelBuild);
  $("#job-rows").addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-act=show]");
    if (btn) followJob(btn.closest("tr").dataset.id);
  });
  document.addEventListener("lorag:language", () => {
    const active = document.querySelector(".tab.active").id.replace("tab-", "");
    if (active !== "chat") showTab(active);
  });
});
