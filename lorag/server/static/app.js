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
  if (resp.status === 401) { askToken(); throw apiError({ error: t("token.needed"), code: "http_401" }); }
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) throw apiError(body || { error: resp.statusText, code: "http_" + resp.status });
  return body;
}

// An Error that keeps the server's code and parameters, so errorText() can show it in the page's language.
function apiError(body) {
  const err = new Error((body && body.error) || t("error"));
  err.code = body && body.code;
  err.params = (body && body.params) || {};
  return err;
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

function toast(what, isError = false) {
  const el = $("#toast");
  toast.what = what;
  el.textContent = what instanceof Error ? errorText(what) : what;
  el.className = "toast" + (isError ? " error" : "");
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

// Decimal units, as the CLI, the plan and the build messages print them: 1 MB = 1,000,000 bytes.
const formatBytes = (n) => {
  if (!n && n !== 0) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
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

// The conversation so far (user and assistant turns), sent with each question so follow-ups find their documents.
let conversation = [];
const HISTORY_TURNS = 20;

function newChat() {
  conversation = [];
  $("#messages").innerHTML = `<p class="hint" data-i18n="chat.empty">${t("chat.empty")}</p>`;
  $("#source-panel").hidden = true;
}

async function ask(event) {
  event.preventDefault();
  const question = $("#question").value.trim();
  if (!question) return;
  $("#question").value = "";
  $("#ask-button").disabled = true;
  addMessage("user", escapeHtml(question));
  const box = addMessage("bot", `<div class="answer muted">${t("chat.thinking")}</div><div class="source-chips"></div>`);
  // What the message shows, kept so a language switch can draw it again.
  const view = { text: "", sources: [], citations: [], error: null, finish: "stop", done: false };
  box.view = view;
  box.addEventListener("click", (e) => {
    const btn = e.target.closest("[data-n]");
    const source = btn && view.sources[btn.dataset.n - 1];  // [n] numbers the sources in rank order
    if (source) showSource(source, btn.dataset.n);
  });
  const body = { question, stream: true, history: conversation.slice(-HISTORY_TURNS) };
  if ($("#collection").value) body.collection = $("#collection").value;
  try {
    const resp = await fetch("/api/query", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!resp.ok) throw apiError(await resp.json().catch(() => ({ error: resp.statusText })));
    await readSSE(resp, (name, data) => {
      if (name === "sources") view.sources = data.hits;
      else if (name === "token") { view.text += data.text; drawMessage(box); }
      else if (name === "done") {
        Object.assign(view, { text: data.answer, sources: data.sources, citations: data.citations,
                              finish: data.finish_reason || "stop", done: true });
        drawMessage(box);
      } else if (name === "error") throw apiError(data);
    });
    conversation.push({ role: "user", content: question }, { role: "assistant", content: view.text });
    box.dataset.done = "1";
  } catch (err) {
    view.error = err;
    drawMessage(box);
  } finally {
    $("#ask-button").disabled = false;
  }
}

function drawMessage(box) {
  const view = box.view;
  const answerEl = box.querySelector(".answer");
  if (view.error) {
    answerEl.classList.remove("muted");
    answerEl.innerHTML = `<span class="error-text">${t("error")}: ${escapeHtml(errorText(view.error))}</span>`;
    return;
  }
  if (!view.text) { answerEl.textContent = t("chat.thinking"); return; }
  answerEl.classList.remove("muted");
  renderAnswer(answerEl, view.text, view.sources);
  if (view.finish === "length") answerEl.insertAdjacentHTML("beforeend", ` <span class="muted">${t("chat.truncated")}</span>`);
  if (view.done) renderChips(box, view.citations, view.sources);
}

function renderChips(box, citations, sources) {
  const chips = box.querySelector(".source-chips");
  if (!citations.length || !sources.length) { chips.innerHTML = ""; return; }
  // The server lists the sources the answer cited first; they are marked.
  chips.innerHTML = `<span class="muted">${t("chat.sources")}:</span> ` + citations.map((c) => {
    const page = c.page ? (c.page_label && c.page_label != c.page ? ` p.${escapeHtml(c.page_label)} (PDF ${c.page})` : ` p.${c.page}`) : "";
    const title = c.cited ? ` title="${t("chat.cited")}"` : "";
    return `<button class="chip${c.cited ? " cited" : ""}" data-n="${c.n}"${title}>[${c.n}] ${escapeHtml(c.name)}${page}</button>`;
  }).join(" ");
}

// Collections, from the documents' own field: the selectors show only when there is more than one.
async function loadCollections() {
  let names = [];
  try {
    const { documents } = await api("/api/documents");
    names = [...new Set(documents.map((d) => d.collection || "default"))].sort();
  } catch (_) { /* the chat still works without the selector */ }
  for (const [picker, select] of [["#collection-picker", "#collection"], ["#doc-collection-picker", "#doc-collection"]]) {
    const el = $(select);
    const chosen = el.value;
    el.innerHTML = `<option value="">${t("chat.allCollections")}</option>` +
      names.map((n) => `<option value="${escapeHtml(n)}">${escapeHtml(n)}</option>`).join("");
    el.value = names.includes(chosen) ? chosen : "";
    $(picker).hidden = names.length < 2;
  }
}

// ---- documents --------------------------------------------------------------------------------
async function loadDocuments() {
  const { documents: all } = await api("/api/documents");
  const only = $("#doc-collection").value;
  const documents = only ? all.filter((d) => (d.collection || "default") === only) : all;
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
  } catch (err) { toast(err, true); btn.disabled = false; }
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
    if (xhr.status >= 400) {
      uploadView = { error: apiError(Object.keys(body).length ? body : { error: xhr.statusText, code: "http_" + xhr.status }) };
    } else {
      uploadView = { report: body.report };
      $("#upload-files").value = "";
      loadDocuments();
      loadCollections();
    }
    drawUploadStatus();
  };
  xhr.onerror = () => { status.textContent = t("error"); };
  xhr.send(form);
}

let uploadView = null;

function drawUploadStatus() {
  const status = $("#upload-status");
  if (!uploadView) return;
  if (uploadView.error) { status.textContent = `${t("error")}: ${errorText(uploadView.error)}`; return; }
  const report = uploadView.report;
  const failed = report.failed.map((f) => `${f.name || f.path}: ${f.reason}`).join("; ");
  status.textContent = `${t("docs.done")}: ${report.added.length + report.updated.length + report.unchanged.length}` +
    (failed ? ` — ${t("docs.failed")}: ${failed}` : "");
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

// The plan's reason and option labels come as a code and parameters; English keeps the server's own sentence.
function planReason(plan) {
  const p = plan.reason_params || {};
  if (LANG === "en" || !plan.reason_code || !MESSAGES[LANG]["plan." + plan.reason_code]) return plan.reason;
  const room = p.gpu_free ? tf("plan.room_gpu", p) : tf("plan.room_cpu", p);
  const need = p.smallest ? tf("plan.need_smallest", p) : "";
  const label = plan.chosen === null ? "" : optionLabel(plan.options[plan.chosen]);
  return tf("plan." + plan.reason_code, { ...p, room, need, label, what: t("plan." + p.what) });
}

function optionLabel(o) {
  if (LANG === "en") return o.label;
  const name = { transformers: "transformers", llamacpp: "GGUF", ollama: "Ollama" }[o.backend] || o.backend;
  return `${name} ${o.precision}（${t("place." + o.placement)}）`;
}

async function loadPlan() {
  if (!$("#plan-reason").textContent) $("#plan-reason").textContent = t("models.planning");
  try {
    const plan = await api("/api/models/plan");
    $("#plan-reason").textContent = planReason(plan);
    $("#plan-rows").innerHTML = plan.options.slice(0, 6).map((o, i) => `
      <tr class="${i === plan.chosen ? "chosen" : ""}">
        <td>${escapeHtml(optionLabel(o))}</td><td class="num">${formatBytes(o.memory_bytes)}</td>
        <td>${o.fits ? t("models.fits") : t("models.noFit")}${o.needs_build ? " · " + t("models.needsBuild") : ""}${i === plan.chosen ? " · <strong>" + t("models.chosen") + "</strong>" : ""}</td>
      </tr>`).join("");
  } catch (err) { $("#plan-reason").textContent = `${t("error")}: ${errorText(err)}`; }
}

async function loadJobs() {
  if (!STAGES.length) STAGES = (await api("/api/build/stages")).stages;
  const { jobs } = await api("/api/jobs");
  $("#job-rows").innerHTML = jobs.map((j) => `
    <tr data-id="${j.id}">
      <td>${formatTime(j.created_at)}</td>
      <td><span class="badge ${j.status}" data-status="${j.status}">${t("status." + j.status)}</span></td>
      <td class="path">${escapeHtml(j.params.lora_path)}</td><td>${escapeHtml(j.params.quantization)}</td>
      <td class="actions"><button class="ghost small" data-act="show">▶</button></td>
    </tr>`).join("");
}

let currentJob = null;
let jobSource = null;

// The history row of a job follows its live status (queued → running → done) without a reload.
function updateJobRow(id, status) {
  const badge = document.querySelector(`#job-rows tr[data-id="${id}"] .badge`);
  if (!badge) { loadJobs(); return; }
  badge.className = "badge " + status;
  badge.dataset.status = status;
  badge.textContent = t("status." + status);
}

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

function skipStage(stage, message) {
  const li = $(`#stage-list li[data-stage="${stage}"]`);
  if (!li) return;
  li.classList.add("skipped");
  li.dataset.skipped = /unreachable/i.test(message || "") ? "unreachable" : "none";
  li.querySelector(".pct").textContent = t("stage.skipped");
  li.title = message || "";
  drawSkipped();
}

function drawSkipped() {
  document.querySelectorAll("#stage-list li.skipped").forEach((li) => {
    li.querySelector(".stage-name").textContent = `${t("stage." + li.dataset.stage)}（${t("stage.skipped." + li.dataset.skipped)}）`;
    li.querySelector(".pct").textContent = t("stage.skipped");
  });
}

function finishStage(stage) {
  const li = $(`#stage-list li[data-stage="${stage}"]`);
  if (!li || li.classList.contains("done") || li.classList.contains("skipped")) return;
  li.querySelector(".fill").style.width = "100%";
  li.querySelector(".pct").textContent = "100%";
  li.classList.add("done");
}

let jobView = {};

function followJob(id) {
  if (jobSource) jobSource.close();
  currentJob = id;
  jobView = {};
  resetStages();
  $("#build-progress").hidden = false;
  $("#build-result").hidden = true;
  $("#build-message").textContent = "";
  const source = new EventSource(`/api/jobs/${id}/events`);
  jobSource = source;
  source.addEventListener("progress", (e) => {
    const data = JSON.parse(e.data);
    if (data.skipped) { skipStage(data.stage, data.message); jobView.skipped = data.message; return; }
    if (STAGES.includes(data.stage)) setStage(data.stage, data.percent);
    const bytes = data.bytes_total ? ` (${formatBytes(data.bytes_done)} / ${formatBytes(data.bytes_total)})` : "";
    if (data.message || bytes) $("#build-message").textContent = (data.message || "") + bytes;
  });
  source.addEventListener("status", (e) => {
    const data = JSON.parse(e.data);
    setStatus(data.status);
    updateJobRow(id, data.status);
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
  jobView.result = result;
  const fid = result.fidelity || {};
  const beh = result.behaviour || {};
  const num = (v, digits) => (typeof v === "number" ? v.toFixed(digits) : "—");
  const pct = (v) => (typeof v === "number" ? (v * 100).toFixed(1) + "%" : "—");
  const rows = [
    ["models.gguf", escapeHtml(result.gguf)],
    ["models.quant", escapeHtml(result.quantization)],
    ["models.size", formatBytes(result.size_bytes)],
    ["models.kl", num(fid.kl_mean, 4)],
    ["models.top1", pct(fid.top1)],
    ["models.agreement", typeof beh.agreement === "number" ? num(beh.agreement, 2) : escapeHtml(beh.skipped || "—")],
    ["models.identical", typeof beh.exact === "number" ? `${beh.exact} / ${beh.prompts}` : "—"],
    ["models.evalSource", beh.generic ? escapeHtml(t("models.evalGeneric")) : escapeHtml(beh.source || "—")],
    ["stage.register", result.registered_as ? escapeHtml(result.registered_as)
      : escapeHtml(t("stage.skipped." + (/unreachable/i.test(jobView.skipped || (result.warnings || []).join(" ")) ? "unreachable" : "none")))],
  ];
  const el = $("#build-result");
  el.innerHTML = `<h3>${t("models.result")}</h3><dl class="kv">` +
    rows.map(([k, v]) => `<dt>${t(k)}</dt><dd>${v}</dd>`).join("") + "</dl>" +
    routeChoiceTable(result.route_choice) + worstAnswers(beh.worst) +
    (result.config_updated ? `<p class="ok">${t("models.switched")}</p>` : `<p class="muted">${t("models.notSwitched")}</p>`);
  el.hidden = false;
}

function routeChoiceTable(choice) {
  if (!choice || !(choice.candidates || []).length) return "";
  const num = (v, digits) => (typeof v === "number" ? v.toFixed(digits) : "—");
  const head = ["models.candidate", "models.kl", "models.top1", "models.agreement", "models.identical", "models.reason"]
    .map((k) => `<th>${t(k)}</th>`).join("");
  const body = choice.candidates.map((c) => `<tr class="${c.chosen ? "chosen" : ""}" data-candidate="${escapeHtml(c.name)}">` +
    `<td>${escapeHtml(c.name)}${c.chosen ? ` (${t("models.chosen")})` : ""}</td><td>${num(c.kl_mean, 4)}</td>` +
    `<td>${typeof c.top1 === "number" ? (c.top1 * 100).toFixed(0) + "%" : "—"}</td><td>${num(c.agreement, 2)}</td>` +
    `<td>${typeof c.exact === "number" ? `${c.exact} / ${c.prompts}` : "—"}</td><td>${escapeHtml(c.reason || "")}</td></tr>`).join("");
  return `<h3>${t("models.routeChoice")}</h3><p class="muted">${t("models.rule")} (${num(choice.tolerance, 2)})</p>` +
    `<table class="table compact route-choice"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function worstAnswers(worst) {
  if (!worst || !worst.length) return "";
  const items = worst.filter((a) => a.agreement < 1).map((a) => `<li><span class="muted">${escapeHtml(a.prompt)}</span><br>` +
    `${t("models.reference")}: ${escapeHtml(a.reference)}<br>${t("models.candidateAnswer")}: ${escapeHtml(a.candidate)} ` +
    `(${a.agreement.toFixed(2)})</li>`).join("");
  return items ? `<h3>${t("models.worst")}</h3><ul class="worst-answers">${items}</ul>` : "";
}

async function startBuild(event) {
  event.preventDefault();
  const body = { lora_path: $("#lora-path").value.trim(), quantization: $("#quantization").value, mode: $("#mode").value };
  const name = $("#build-name").value.trim();
  if (name) body.name = name;
  const evalPrompts = $("#eval-prompts").value.trim();
  if (evalPrompts) body.eval_prompts = evalPrompts;
  body.update_config = $("#switch-config").checked;
  try {
    const data = await api("/api/quantize-model", { method: "POST", json: body });
    if (data.shared) toast(t("models.shared"));
    setStatus(data.job.status);
    followJob(data.job_id);
    loadJobs();
  } catch (err) { toast(err, true); }
}

async function cancelBuild() {
  if (!currentJob) return;
  try { await api(`/api/jobs/${currentJob}/cancel`, { method: "POST" }); } catch (err) { toast(err, true); }
}

// ---- language switch: draw again everything already on screen -----------------------------------
function redrawForLanguage() {
  document.querySelectorAll("#messages .msg.bot").forEach((box) => { if (box.view) drawMessage(box); });
  const el = $("#toast");
  if (!el.hidden && toast.what) el.textContent = toast.what instanceof Error ? errorText(toast.what) : toast.what;
  drawUploadStatus();
  document.querySelectorAll("#stage-list li").forEach((li) => {
    li.querySelector(".stage-name").textContent = t("stage." + li.dataset.stage);
  });
  drawSkipped();
  const status = $("#build-progress").dataset.status;
  if (status) setStatus(status);
  if (jobView.result) showResult(jobView.result);
  document.querySelectorAll("#job-rows .badge").forEach((b) => { b.textContent = t("status." + b.dataset.status); });
  loadCollections();
  const active = document.querySelector(".tab.active").id.replace("tab-", "");
  if (active === "documents") loadDocuments();
  if (active === "models") { $("#plan-reason").textContent = ""; loadModels(); }
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
  $("#new-chat").addEventListener("click", newChat);
  $("#doc-collection").addEventListener("change", loadDocuments);
  loadCollections();
  document.addEventListener("lorag:language", redrawForLanguage);
});
