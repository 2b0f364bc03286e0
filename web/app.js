// PoseReel web client: upload videos, follow their jobs, watch and download the results.
// Plain ES module, no build step, no dependencies. The API's base URL and auth scheme come from
// config.json next to this page (same origin and an API key when there is none).

const $ = (selector) => document.querySelector(selector);
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "REJECTED"]);
const MAX_BATCH = 10;
const POLL_MIN_MS = 1000;
const POLL_MAX_MS = 10000;
const KEY_STORAGE = "posereel.key";

const STAGES = {
  UPLOAD: "Waiting for the upload",
  SCAN: "Virus scan",
  VALIDATE: "Checking the file",
  PLAN: "Planning",
  ANALYZE: "Tracking poses",
  MERGE: "Merging",
  COMPILE: "Cutting the reel",
  DONE: "Done",
};
const TYPE_PROBLEM = "This file cannot be used as a video: ";
const SIZE_PROBLEM = "This video is too big to process: ";
const ERROR_MESSAGES = {
  NOT_A_VIDEO: TYPE_PROBLEM + "it is not a video file.",
  EMPTY_FILE: TYPE_PROBLEM + "the file is empty.",
  NO_VIDEO_STREAM: TYPE_PROBLEM + "it has no video track.",
  UNREADABLE: TYPE_PROBLEM + "it is damaged or in a format that cannot be decoded.",
  TOO_LARGE: SIZE_PROBLEM + "the file is larger than allowed.",
  TOO_LONG: SIZE_PROBLEM + "it is longer than allowed.",
  RESOLUTION_TOO_HIGH: SIZE_PROBLEM + "its resolution is higher than allowed.",
  MALWARE: "The virus scan found malware in this file; it was deleted.",
};
const UPLOADED = "Uploaded — waiting for the pipeline to start";
const NO_MOVEMENT = "Done, but no movement or no person was found: there is no reel.";
const VIDEO_TYPES = { mp4: "video/mp4", m4v: "video/x-m4v", mov: "video/quicktime", webm: "video/webm",
  mkv: "video/x-matroska", avi: "video/x-msvideo", mpg: "video/mpeg", mpeg: "video/mpeg" };

const config = { apiUrl: "", auth: "api_key" };
let key = "";
let nextCursor = null;
let jobPage = null; // the job page's poller, stopped when leaving it

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message, retryAfterS = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (key) headers[config.auth === "jwt" ? "Authorization" : "x-api-key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(config.apiUrl + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "NETWORK", `Cannot reach the server (${err.message}). Check your connection.`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { /* not JSON: a proxy's error page */ }
  if (response.ok) return doc;
  const retryAfter = Number(response.headers.get("Retry-After")) || null;
  let message = doc?.message || `The server answered ${response.status} ${response.statusText}`;
  if (response.status === 401 || response.status === 403) {
    message += key ? " — check the API key in Settings." : " — enter your API key in Settings.";
    $("#settings").open = true;
  }
  throw new ApiError(response.status, doc?.code || `HTTP_${response.status}`, message, retryAfter);
}

async function loadConfig() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) return;
    const doc = await response.json();
    config.apiUrl = String(doc.api_url || "").replace(/\/+$/, "");
    config.auth = doc.auth === "jwt" ? "jwt" : "api_key";
  } catch { /* no config.json: the API is on this origin */ }
}

// The key arrives once in the fragment (#key=..., or #id_token=... from a sign-in page), is kept
// in localStorage and removed from the address bar so it is not bookmarked or shared.
function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromUrl = params.get("key") || params.get("id_token") || params.get("token");
  if (fromUrl) {
    localStorage.setItem(KEY_STORAGE, fromUrl);
    history.replaceState(null, "", location.pathname + location.search);
  }
  key = localStorage.getItem(KEY_STORAGE) || "";
  $("#api-key").value = key;
}

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fmtTime = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;
const fmtDuration = (s) => (s < 60 ? `${Math.round(s)} s` : s < 3600
  ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`);
const fmtUsd = (usd) => `$${usd.toFixed(usd < 0.01 ? 4 : 2)}`;
const fmtBytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB`
  : `${Math.max(1, Math.round(n / 1e3))} kB`);

function showError(message) {
  $("#error-text").textContent = message;
  $("#error").hidden = false;
}

function jobMessage(job) {
  if (job.status === "SUCCEEDED") {
    if (job.result && job.result.segments === 0) return NO_MOVEMENT;
    const n = job.result?.segments;
    return `Done: ${n} segment${n === 1 ? "" : "s"}, reel ${job.result?.reel_duration_s?.toFixed(1)} s.`;
  }
  if (job.status === "REJECTED" || job.status === "FAILED") {
    const code = job.error?.code;
    const human = ERROR_MESSAGES[code]
      || (job.status === "FAILED" ? "Processing failed on our side; try again later." : "The file was refused.");
    return job.error?.message ? `${human} Details: ${job.error.message}` : human;
  }
  if (job.status === "AWAITING_UPLOAD") return "Waiting for the upload";
  const chunks = job.chunks_total ? ` (chunk ${job.chunks_done}/${job.chunks_total})` : "";
  const verb = job.status === "QUEUED" ? "Queued" : STAGES[job.stage] || job.stage;
  return `${verb}${chunks} — ${Math.round(job.percent || 0)}%`;
}

function notifyMessage(notify) {
  const last = notify.deliveries.at(-1);
  if (!last) return `Webhook ${notify.url}: told when the job ends.`;
  if (last.ok) return `Webhook ${notify.url}: told (${last.http_status}).`;
  const why = last.error || `answered ${last.http_status}`;
  return `Webhook ${notify.url}: attempt ${last.attempt} failed (${why}).`;
}

// "Cost so far (estimate): $0.0042 · $0.0021 per video minute · CPU 4 min 10 s · GPU 0 s"
function costMessage(job) {
  const cost = job.cost;
  if (!cost) return null;
  const parts = [`${TERMINAL.has(job.status) ? "Cost" : "Cost so far"} (estimate): ${fmtUsd(cost.total_usd)}`];
  if (cost.per_video_minute_usd !== null) parts.push(`${fmtUsd(cost.per_video_minute_usd)} per video minute`);
  parts.push(`CPU ${fmtDuration(cost.cpu_s)}`, `GPU ${fmtDuration(cost.gpu_s)}`);
  return parts.join(" · ");
}

// Follows one job until it ends: 1 s between polls, growing to 10 s while nothing changes, back
// to 1 s on progress; network and server errors are retried with the same backoff.
function pollJob(jobId, onJob, onRetry) {
  let stopped = false;
  (async () => {
    let delay = POLL_MIN_MS;
    let last = "";
    while (!stopped) {
      try {
        const job = await api("GET", `/jobs/${encodeURIComponent(jobId)}`);
        if (stopped) return;
        onJob(job);
        if (TERMINAL.has(job.status)) return;
        const seen = `${job.status}/${job.stage}/${job.percent}/${job.chunks_done}`;
        delay = seen !== last ? POLL_MIN_MS : Math.min(delay * 1.6, POLL_MAX_MS);
        last = seen;
      } catch (err) {
        if (stopped) return;
        if (!(err instanceof ApiError) || !err.transient) { onRetry(err, null); return; }
        delay = Math.min(Math.max(delay * 2, (err.retryAfterS || 0) * 1000), POLL_MAX_MS);
        onRetry(err, delay);
      }
      await sleep(delay);
    }
  })();
  return { stop: () => { stopped = true; } };
}

// ---------------------------------------------------------------- job rows (upload page)

function jobRow(name, jobId = null) {
  const link = el("a", { "data-testid": "job-link", hidden: true }, "Open");
  const when = el("time", { class: "row-time" });
  const bar = el("progress", { max: 100, value: 0, "data-testid": "row-progress", "aria-label": `Progress of ${name}` });
  const status = el("p", { class: "row-status", "data-testid": "row-status", "aria-live": "polite" });
  const node = el("li", { class: "job-row", "data-testid": "job-row", "data-filename": name },
    el("div", { class: "row-head" }, el("span", { class: "row-name" }, name), when, link), bar, status);
  const row = {
    node,
    setJobId(id) {
      node.dataset.jobId = id;
      link.href = `#/jobs/${encodeURIComponent(id)}`;
      link.hidden = false;
    },
    set(state, text, percent = null) {
      node.dataset.status = state;
      status.textContent = text;
      if (percent !== null) bar.value = percent;
      bar.hidden = TERMINAL.has(state) || state === "ERROR" || state === "AWAITING_UPLOAD";
    },
    reject(code, detail = "") {
      node.dataset.code = code;
      const human = ERROR_MESSAGES[code];
      row.set("REJECTED", human ? `${human}${detail ? ` Details: ${detail}` : ""}` : detail);
    },
    uploadProgress(percent, leftS = null) {
      node.dataset.uploadPercent = String(Math.round(percent));
      const left = leftS !== null && percent < 100 ? ` · about ${fmtDuration(leftS)} left` : "";
      row.set("UPLOADING", `Uploading — ${Math.round(percent)}%${left}`, percent);
    },
    showJob(job) {
      const uploaded = job.status === "AWAITING_UPLOAD" && node.dataset.uploadPercent === "100";
      row.set(job.status, uploaded ? UPLOADED : jobMessage(job), job.percent || 0);
      if (job.created_at && !when.dateTime) {
        when.dateTime = job.created_at;
        when.textContent = new Date(job.created_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      }
      node.dataset.code = job.error?.code || "";
    },
    follow() {
      pollJob(node.dataset.jobId, row.showJob, (err, delay) => {
        if (delay === null) row.set("ERROR", err.message);
        else status.textContent = `${err.message} Retrying in ${Math.round(delay / 1000)} s…`;
      });
    },
  };
  if (jobId) row.setJobId(jobId);
  return row;
}

function renderJobs(jobs) {
  const list = $("#jobs");
  for (const job of jobs) {
    if (list.querySelector(`[data-job-id="${CSS.escape(job.job_id)}"]`)) continue;
    const row = jobRow(job.source?.name || job.job_id, job.job_id);
    row.showJob(job);
    list.append(row.node);
    if (job.status === "QUEUED" || job.status === "RUNNING") row.follow();
  }
  $("#jobs-empty").hidden = list.children.length > 0;
}

async function loadJobs(more = false) {
  const query = new URLSearchParams({ limit: "20" });
  if (more && nextCursor) query.set("cursor", nextCursor);
  try {
    const page = await api("GET", `/jobs?${query}`);
    nextCursor = page.next_cursor || null;
    renderJobs(page.jobs || []);
  } catch (err) {
    showError(`Could not list your jobs: ${err.message}`);
  }
  $("#jobs-more").hidden = !nextCursor;
}

// ---------------------------------------------------------------- uploads

function contentType(file) {
  if (file.type) return file.type;
  return VIDEO_TYPES[file.name.split(".").pop().toLowerCase()] || "";
}

function xhr(method, url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, url);
    request.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded, e.total);
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) return resolve(request);
      const s3Message = /<Message>([^<]*)<\/Message>/.exec(request.responseText || "")?.[1];
      const error = new ApiError(request.status, "STORAGE", `Storage refused the upload: ${s3Message || request.status}`);
      reject(error);
    };
    request.onerror = () => reject(new ApiError(0, "NETWORK", "Network error while uploading."));
    request.send(body);
  });
}

async function withRetries(what, row, attempt) {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ApiError) || !err.transient || tries >= 4) throw err;
      row.set("UPLOADING", `${err.message} Retrying ${what} (${tries}/3)…`);
      await sleep(1000 * 2 ** tries);
    }
  }
}

// Seconds left at the rate since ``startedMs`` (bytes ``fromBytes`` then, ``doneBytes`` now); null
// while too little has gone up to tell.
function secondsLeft(startedMs, fromBytes, doneBytes, totalBytes) {
  const elapsedS = (performance.now() - startedMs) / 1000;
  const rate = (doneBytes - fromBytes) / elapsedS;
  return elapsedS < 2 || rate <= 0 ? null : (totalBytes - doneBytes) / rate;
}

async function sendFile(file, upload, row) {
  row.node.dataset.uploadMethod = upload.post ? "post" : "multipart";
  if (upload.post) {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.post.fields)) form.append(name, value);
    form.append("file", file); // S3 ignores every field after the file
    const started = performance.now();
    await withRetries("the upload", row, () => xhr("POST", upload.post.url, form, (loaded, total) =>
      row.uploadProgress((100 * loaded) / total, secondsLeft(started, 0, loaded, total))));
    row.uploadProgress(100);
    return;
  }
  rememberUpload(file, upload.job_id);
  await sendParts(file, upload.job_id, upload.multipart.part_size_bytes, upload.multipart.parts, [], row);
  forgetUpload(file);
  row.uploadProgress(100);
}

// A multipart upload survives a flaky connection and a reload: its parts go up PART_PARALLELISM
// at a time, each retried, and while it runs the page keeps which job the file went to (by name,
// size and modification time) in localStorage. Choosing the same file again resumes it from the
// parts S3 already holds (GET /uploads/{job}/parts) instead of starting over.
const PENDING_STORAGE = "posereel.pendingUploads";
const PART_PARALLELISM = 4;

function fileKey(file) {
  return `${file.name}|${file.size}|${file.lastModified}`;
}

function pendingUploads() {
  try {
    return JSON.parse(localStorage.getItem(PENDING_STORAGE) || "{}");
  } catch {
    return {};
  }
}

function savePending(pending) {
  localStorage.setItem(PENDING_STORAGE, JSON.stringify(pending));
  showPending();
}

function rememberUpload(file, jobId) {
  savePending({ ...pendingUploads(), [fileKey(file)]: { job_id: jobId, filename: file.name, size_bytes: file.size } });
}

function forgetUpload(file) {
  const pending = pendingUploads();
  delete pending[fileKey(file)];
  savePending(pending);
}

function showPending() {
  const names = Object.values(pendingUploads()).map((p) => p.filename);
  const note = $("#pending-uploads");
  note.hidden = names.length === 0;
  note.textContent = names.length
    ? `Unfinished uploads: ${names.join(", ")}. Choose the same file again to go on from where it stopped.`
    : "";
}

// PUT the parts in ``todo`` (``done``: those S3 holds, {part_number, etag, size_bytes}), then
// complete the upload with every part's ETag.
async function sendParts(file, jobId, partSize, todo, done, row) {
  const etags = done.map(({ part_number, etag }) => ({ part_number, etag }));
  let sent = done.reduce((n, part) => n + part.size_bytes, 0);
  const loading = new Map();
  const [started, alreadySent] = [performance.now(), sent];
  const progress = () => {
    const bytes = sent + [...loading.values()].reduce((a, b) => a + b, 0);
    row.uploadProgress((100 * bytes) / file.size, secondsLeft(started, alreadySent, bytes, file.size));
  };
  const queue = [...todo];
  let failed = false;
  async function sender() {
    while (queue.length && !failed) {
      const part = queue.shift();
      const start = (part.part_number - 1) * partSize;
      const blob = file.slice(start, Math.min(start + partSize, file.size));
      let answer;
      try {
        answer = await withRetries(`part ${part.part_number}`, row, () =>
          xhr("PUT", part.url, blob, (loaded) => { loading.set(part.part_number, loaded); progress(); }));
      } catch (err) {
        failed = true;
        throw err;
      }
      loading.delete(part.part_number);
      const etag = answer.getResponseHeader("ETag");
      if (!etag) throw new ApiError(0, "STORAGE", "The storage did not expose the ETag header (CORS).");
      etags.push({ part_number: part.part_number, etag });
      sent += blob.size;
      progress();
    }
  }
  progress();
  await Promise.all(Array.from({ length: Math.min(PART_PARALLELISM, queue.length) }, sender));
  etags.sort((a, b) => a.part_number - b.part_number);
  await api("POST", `/uploads/${encodeURIComponent(jobId)}/complete`, { parts: etags });
}

// Go on with an upload this page started before a reload; false when there is none to go on
// with (it was completed, expired or never started here).
async function resumeUpload(file, row) {
  const pending = pendingUploads()[fileKey(file)];
  if (!pending) return false;
  let progress;
  try {
    progress = await api("GET", `/uploads/${encodeURIComponent(pending.job_id)}/parts`);
  } catch (err) {
    if (err.status === 404 || err.status === 409) {
      forgetUpload(file);
      return false;
    }
    throw err;
  }
  row.setJobId(pending.job_id);
  row.node.dataset.uploadMethod = "multipart";
  row.node.dataset.resumed = String(progress.uploaded.length);
  row.set("UPLOADING", `Resuming: ${progress.uploaded.length} of ${progress.part_count} parts were already uploaded…`);
  await sendParts(file, pending.job_id, progress.part_size_bytes, progress.parts, progress.uploaded, row);
  forgetUpload(file);
  return true;
}

// The webhook of the upload form, when one is filled in.
function notifyChoice() {
  const url = $("#notify-url").value.trim();
  return url ? { url, secret: $("#notify-secret").value } : null;
}

async function announce(batch) {
  const notify = notifyChoice();
  const body = {
    files: batch.map(({ file }) => ({
      filename: file.name, size_bytes: file.size, content_type: contentType(file), ...(notify ? { notify } : {}),
    })),
  };
  try {
    return (await api("POST", "/uploads", body)).uploads;
  } catch (err) {
    // One refused file refuses the whole request: ask again file by file so only it fails.
    if (batch.length > 1 && (err.status === 413 || err.status === 422)) {
      const each = await Promise.all(batch.map((item) => announce([item]).catch((e) => [e])));
      return each.flat();
    }
    throw err;
  }
}

async function uploadFiles(fileList) {
  const items = [];
  const rows = [];
  for (const file of fileList) {
    const row = jobRow(file.name);
    rows.push(row.node);
    if (file.size === 0) row.reject("EMPTY_FILE");
    else if (!contentType(file).startsWith("video/")) row.reject("NOT_A_VIDEO", `its type is ${file.type || "unknown"}`);
    else { row.set("UPLOADING", "Starting the upload…", 0); items.push({ file, row }); }
  }
  $("#jobs").prepend(...rows); // newest first, in the order they were chosen
  $("#jobs-empty").hidden = true;
  const fresh = [];
  await Promise.all(items.map(async (item) => {
    try {
      if (!(await resumeUpload(item.file, item.row))) return fresh.push(item);
      item.row.set("AWAITING_UPLOAD", UPLOADED, 100);
      item.row.follow();
    } catch (err) {
      item.row.set("ERROR", err.message);
    }
    return null;
  }));
  items.splice(0, items.length, ...fresh);
  for (let i = 0; i < items.length; i += MAX_BATCH) {
    const batch = items.slice(i, i + MAX_BATCH);
    let uploads;
    try {
      uploads = await announce(batch);
    } catch (err) {
      batch.forEach(({ row }) => row.set("ERROR", err.message));
      continue;
    }
    await Promise.all(batch.map(async ({ file, row }, k) => {
      const upload = uploads[k];
      if (upload instanceof Error) {
        return upload.code in ERROR_MESSAGES ? row.reject(upload.code, upload.message) : row.set("ERROR", upload.message);
      }
      row.setJobId(upload.job_id);
      try {
        await sendFile(file, upload, row);
        row.set("AWAITING_UPLOAD", UPLOADED, 100);
        row.follow();
      } catch (err) {
        row.set("ERROR", err.message);
      }
    }));
  }
}

function setUpDropZone() {
  const zone = $("#drop-zone");
  const input = $("#file-input");
  input.addEventListener("change", () => { uploadFiles([...input.files]); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    uploadFiles([...e.dataTransfer.files]);
  });
}

// ---------------------------------------------------------------- job page

function seek(segment) {
  const reel = $("#reel-video");
  const source = $("#source-video");
  if (reel.src && segment.reel_start_s !== null) reel.currentTime = segment.reel_start_s;
  if (source.src) source.currentTime = segment.start_s;
  document.querySelectorAll("[data-segment].active").forEach((n) => n.classList.remove("active"));
  document.querySelectorAll(`[data-segment="${segment.index}"]`).forEach((n) => n.classList.add("active"));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function tickStep(span, maxTicks) {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (span / step <= maxTicks) return step;
  return 1200;
}

// Motion energy per track as lines (the primary subject emphasised), segments as bands.
// Drawn at the container's width in CSS pixels, so labels keep their size on a phone.
function drawTimeline(timeline, segments) {
  const box = $("#timeline");
  box.drawn = () => drawTimeline(timeline, segments);
  const W = Math.max(280, box.clientWidth - 16); const H = 200; const TOP = 10; const BOTTOM = 24;
  const t0 = timeline.start_s; const span = Math.max(timeline.end_s - t0, 1e-3);
  const PAD = 24; // room for the first and last time labels
  const x = (t) => PAD + ((t - t0) / span) * (W - 2 * PAD);
  const values = timeline.tracks.flatMap((tr) => tr.energy.filter((e) => e !== null));
  const top = Math.max(1, ...values);
  const y = (e) => TOP + (1 - e / top) * (H - TOP - BOTTOM);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Motion energy per person over time; segments shaded" });
  for (const seg of segments) {
    const band = svg("rect", {
      x: x(seg.start_s), y: 0, width: Math.max(2, x(seg.end_s) - x(seg.start_s)), height: H - BOTTOM,
      class: "band", tabindex: 0, role: "button", "data-testid": "segment-band", "data-segment": seg.index,
      "aria-label": `Segment ${seg.index + 1}: ${fmtTime(seg.start_s)} to ${fmtTime(seg.end_s)}`,
    }, svg("title", {}, `Segment ${seg.index + 1}: ${fmtTime(seg.start_s)}–${fmtTime(seg.end_s)}`));
    band.addEventListener("click", () => seek(seg));
    band.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); seek(seg); } });
    root.append(band);
  }
  const step = tickStep(span, W / 70);
  for (let t = Math.ceil(t0 / step) * step; t <= timeline.end_s; t += step) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: H - BOTTOM, y2: H - BOTTOM + 5, class: "tick" }),
      svg("text", { x: x(t), y: H - 4, class: "tick-label" }, fmtTime(t).replace(/\.0$/, "")));
  }
  const color = (track, i) => (track.primary ? "primary" : `other c${i % 4}`);
  const tracks = timeline.tracks.map((track, i) => ({ track, cls: color(track, i) }));
  tracks.sort((a, b) => a.track.primary - b.track.primary); // primary drawn last, on top
  tracks.forEach(({ track, cls }) => {
    let d = ""; let pen = "M";
    track.energy.forEach((e, k) => {
      if (e === null) { pen = "M"; return; }
      d += `${pen}${x(track.t0_s + k * track.dt_s).toFixed(1)},${y(e).toFixed(1)}`;
      pen = "L";
    });
    root.append(svg("path", { d, class: `energy ${cls}`,
      "data-track": track.track_id }, svg("title", {}, `Person ${track.track_id}${track.primary ? " (main)" : ""}`)));
  });
  root.append(svg("line", { x1: PAD, x2: W - PAD, y1: H - BOTTOM, y2: H - BOTTOM, class: "axis" }));
  const head = svg("line", { x1: PAD, x2: PAD, y1: 0, y2: H - BOTTOM, class: "playhead", "data-testid": "playhead" });
  root.append(head);
  box.playhead = (t) => {
    const at = x(Math.min(Math.max(t, t0), timeline.end_s)).toFixed(1);
    head.setAttribute("x1", at); head.setAttribute("x2", at); head.dataset.t = t.toFixed(2);
  };
  const legend = el("p", { class: "legend" }, ...timeline.tracks.map((tr, i) =>
    el("button", { type: "button", class: `key ${color(tr, i)}`, "data-testid": "legend-person", "data-track": tr.track_id,
      title: "Choose this person for a new reel", onclick: () => choosePerson(tr.track_id) },
    `Person ${tr.track_id}${tr.primary ? " (main)" : ""}`)),
  el("span", {}, "Height: how fast the body moves. Shaded: segments (click to watch). The line: where the video is."));
  box.replaceChildren(root, legend);
  movePlayhead();
}

const JITTER_WORDS = {
  low: "steady: the skeleton holds still between frames",
  medium: "some shake from frame to frame",
  high: "shaky: the person is small, blurred or half hidden, or moves very suddenly",
};

function personWords(person) {
  const gaps = person.gaps === 0 ? "Never lost"
    : `Lost ${person.gaps === 1 ? "once" : `${person.gaps} times`}, the longest for ${person.longest_gap_s.toFixed(1)} s`;
  return [
    `On screen ${Math.round(person.on_screen_pct)} % of the time (${fmtTime(person.first_s)}–${fmtTime(person.last_s)})`,
    gaps,
    `Moved ${person.moved_body_lengths.toFixed(person.moved_body_lengths < 10 ? 1 : 0)} body lengths`,
  ];
}

function choosePerson(trackId, { scroll = true } = {}) {
  const box = document.querySelector(`#recut-people input[value="${trackId}"]`);
  if (!box) return;
  box.checked = !box.checked;
  if (scroll) box.closest("label").scrollIntoView({ block: "nearest" });
  document.querySelectorAll(`[data-testid="person-card"][data-track="${trackId}"], [data-testid="legend-person"][data-track="${trackId}"]`)
    .forEach((node) => node.classList.toggle("chosen", box.checked));
  markChosen();
}

// The chosen people drawn full, everyone else faded, on both players.
function markChosen() {
  const chosen = new Set([...document.querySelectorAll('#recut-people input:checked')].map((i) => Number(i.value)));
  for (const layer of Object.values(layers)) { layer.chosen = chosen; layer.draw(); }
}

function renderPeople(people, timeline) {
  const order = (timeline?.tracks || []).map((t) => t.track_id);
  const colour = (p) => (p.primary ? "primary" : `other c${Math.max(0, order.indexOf(p.track_id)) % 4}`);
  $("#people").replaceChildren(...people.map((p) => el("li", {
    class: "person", "data-testid": "person-card", "data-track": p.track_id, "data-jitter": p.jitter_level,
    tabindex: 0, role: "button", title: "Click to choose this person for a new reel",
    onclick: () => choosePerson(p.track_id),
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choosePerson(p.track_id); } },
  },
  el("span", { class: `key ${colour(p)} person-name` }, `Person ${p.track_id}${p.primary ? " (main)" : ""}`),
  el("ul", {}, ...personWords(p).map((line) => el("li", {}, line)),
    el("li", { title: `jitter ${p.jitter.toFixed(3)} body lengths per frame` },
      el("span", { class: `jitter ${p.jitter_level}` }, `Jitter ${p.jitter_level}`), `: ${JITTER_WORDS[p.jitter_level]}`)))));
  if (!people.length) $("#people").replaceChildren(el("li", { class: "hint" }, "No person was tracked."));
  $("#recut-people").replaceChildren(...people.map((p) => el("label", { class: "choice" },
    el("input", { type: "checkbox", name: "track_ids", value: p.track_id, "data-testid": "recut-person" }),
    ` Person ${p.track_id}${p.primary ? " (main)" : ""}`)));
}

// ---------------------------------------------------------------- skeletons over the players

// BlazePose's 33-landmark skeleton (posereel.render.POSE_CONNECTIONS) and the track colours of the
// thumbnails (tab10 without grey), so a person has one colour everywhere.
const BONES = [[0, 1], [1, 2], [2, 3], [3, 7], [0, 4], [4, 5], [5, 6], [6, 8], [9, 10], [11, 12], [11, 13],
  [13, 15], [15, 17], [15, 19], [15, 21], [17, 19], [12, 14], [14, 16], [16, 18], [16, 20], [16, 22],
  [18, 20], [11, 23], [12, 24], [23, 24], [23, 25], [24, 26], [25, 27], [26, 28], [27, 29], [28, 30],
  [29, 31], [30, 32], [27, 31], [28, 32]];
const TRACK_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"];
const MIN_VISIBILITY = 0.5;
const CONTROLS_PX = 48; // the height of a <video>'s own controls bar
const trackColour = (id) => (id === null || id === undefined ? "#b0b0b0"
  : TRACK_COLOURS[id] || `hsl(${Math.round(((id * 0.6180339887498949) % 1) * 360)} 70% 50%)`);

// tracks.json as frames by analysis-grid index, so a time finds its frame at once.
function poseIndex(tracks) {
  const byIndex = new Map(tracks.frames.map((f) => [f.index, f]));
  return { fps: tracks.analysis_fps, byIndex };
}

// Where the picture sits inside a <video> box (object-fit: contain letterboxes it).
function pictureRect(video) {
  const W = video.clientWidth; const H = video.clientHeight;
  const vw = video.videoWidth || W; const vh = video.videoHeight || H;
  const scale = Math.min(W / vw, H / vh);
  return { x: (W - vw * scale) / 2, y: (H - vh * scale) / 2, w: vw * scale, h: vh * scale };
}

// A canvas over ``video`` that draws the people of the analysed frame nearest to the source time
// ``sourceTime(video.currentTime)`` (null: nothing to draw), at every frame the video shows.
function skeletonLayer(video, canvas) {
  const layer = { poses: null, sourceTime: null, on: true, chosen: new Set(), hits: [] };
  const ctx = canvas.getContext("2d");
  layer.draw = () => {
    const ratio = window.devicePixelRatio || 1;
    const W = video.clientWidth; const H = video.clientHeight;
    if (canvas.width !== Math.round(W * ratio) || canvas.height !== Math.round(H * ratio)) {
      canvas.width = Math.round(W * ratio); canvas.height = Math.round(H * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, W, H);
    canvas.dataset.people = "0";
    canvas.dataset.boxes = "[]";
    layer.hits = [];
    if (!layer.on || !layer.poses || !layer.sourceTime) return;
    const t = layer.sourceTime(video.currentTime);
    if (t === null) return;
    const frame = layer.poses.byIndex.get(Math.round(t * layer.poses.fps));
    if (!frame) return;
    const r = pictureRect(video);
    const unit = Math.max(1.5, r.h / 240);
    for (const person of frame.persons) {
      if (person.track_id !== null && person.track_id !== undefined) {
        const [x0, y0, x1, y1] = person.box;
        layer.hits.push({ track: person.track_id, x0: r.x + x0 * r.w, y0: r.y + y0 * r.h, x1: r.x + x1 * r.w, y1: r.y + y1 * r.h });
      }
      const faded = layer.chosen.size && !layer.chosen.has(person.track_id);
      ctx.globalAlpha = faded ? 0.35 : 1;
      const at = (k) => [r.x + person.landmarks[k][0] * r.w, r.y + person.landmarks[k][1] * r.h];
      const seen = (k) => person.landmarks[k][3] >= MIN_VISIBILITY;
      ctx.beginPath();
      for (const [a, b] of BONES) {
        if (!seen(a) || !seen(b)) continue;
        ctx.moveTo(...at(a)); ctx.lineTo(...at(b));
      }
      ctx.lineCap = "round";
      ctx.strokeStyle = "rgba(0, 0, 0, 0.55)"; // a dark edge, so a bone shows on light and dark clothes alike
      ctx.lineWidth = unit * 2.4;
      ctx.stroke();
      ctx.strokeStyle = ctx.fillStyle = trackColour(person.track_id);
      ctx.lineWidth = unit * 1.2;
      ctx.stroke();
      for (let k = 11; k < 33; k++) if (seen(k)) { ctx.beginPath(); ctx.arc(...at(k), unit * 1.3, 0, 2 * Math.PI); ctx.fill(); }
      if (person.track_id !== null && person.track_id !== undefined) {
        ctx.font = `600 ${Math.round(8 + unit * 4)}px system-ui, sans-serif`;
        ctx.fillText(`#${person.track_id}`, r.x + person.box[0] * r.w, Math.max(12, r.y + person.box[1] * r.h - 4));
      }
    }
    ctx.globalAlpha = 1;
    canvas.dataset.people = String(frame.persons.length);
    canvas.dataset.boxes = JSON.stringify(layer.hits.map((h) => [h.track, h.x0, h.y0, h.x1, h.y1].map(Math.round)));
  };
  // At the video's own frame rate where the browser can (requestVideoFrameCallback), else per paint.
  const tick = () => { layer.draw(); schedule(); };
  const schedule = () => {
    if (video.paused || video.ended) return;
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(tick);
    else requestAnimationFrame(tick);
  };
  for (const name of ["play", "seeked", "loadeddata", "pause"]) video.addEventListener(name, () => { layer.draw(); schedule(); });
  new ResizeObserver(() => layer.draw()).observe(video);
  // A click on a drawn person chooses them (as their card does), not play/pause; the smallest box
  // wins where people overlap. The controls' bar at the bottom keeps its clicks.
  const personAt = (e) => {
    const box = video.getBoundingClientRect(); // not offsetX: the controls' shadow tree may be the target
    const x = e.clientX - box.left; const y = e.clientY - box.top;
    if (y > video.clientHeight - CONTROLS_PX) return null;
    const under = layer.hits.filter((h) => x >= h.x0 && x <= h.x1 && y >= h.y0 && y <= h.y1);
    under.sort((a, b) => (a.x1 - a.x0) * (a.y1 - a.y0) - (b.x1 - b.x0) * (b.y1 - b.y0));
    return under.length ? under[0].track : null;
  };
  video.addEventListener("click", (e) => {
    const track = personAt(e);
    if (track === null) return;
    e.preventDefault();
    choosePerson(track, { scroll: false }); // the page stays on the video being watched
  });
  video.addEventListener("mousemove", (e) => {
    const track = personAt(e);
    video.style.cursor = track === null ? "" : "pointer";
    video.title = track === null ? "" : `Person ${track}: click to choose them for a new reel`;
  });
  return layer;
}

// Reel time -> source time through the reel's windows in play order (reel.json); null between
// them. A cropped reel (9:16, 1:1) moves its frame with the people, so no mapping is drawn on it.
const cropped = (cut, sourceAspect) => Math.abs(cut.size_px[0] / cut.size_px[1] - sourceAspect) > 0.02;
function reelClock(cut, sourceAspect) {
  if (!cut?.windows?.length || cropped(cut, sourceAspect)) return null;
  const starts = []; let at = 0;
  for (const win of cut.windows) { starts.push(at); at += win.end_s - win.start_s; }
  return (t) => {
    for (let i = cut.windows.length - 1; i >= 0; i--) {
      if (t >= starts[i]) {
        const win = cut.windows[i];
        return Math.min(win.start_s + (t - starts[i]), win.end_s);
      }
    }
    return null;
  };
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return response.json();
}

const layers = {};
function setUpSkeletons() {
  layers.reel = skeletonLayer($("#reel-video"), $("#reel-skeleton"));
  layers.source = skeletonLayer($("#source-video"), $("#source-skeleton"));
  const toggle = $("#skeleton-toggle");
  toggle.addEventListener("change", () => {
    for (const layer of Object.values(layers)) { layer.on = toggle.checked; layer.draw(); }
  });
  for (const video of [$("#reel-video"), $("#source-video")]) video.addEventListener("timeupdate", movePlayhead);
}

function showSkeletons(poses, sourceAspect) {
  layers.source.poses = layers.reel.poses = poses;
  layers.source.sourceTime = (t) => t;
  layers.reel.aspect = sourceAspect;
  for (const layer of Object.values(layers)) layer.draw();
}

async function reelSkeletons(cutFile) {
  const layer = layers.reel;
  layer.sourceTime = null;
  $("#reel-skeleton-note").hidden = true;
  if (!cutFile || !layer.aspect) return layer.draw();
  try {
    const cut = await getJson(cutFile.url);
    layer.sourceTime = reelClock(cut, layer.aspect);
    $("#reel-skeleton-note").hidden = !cut.windows?.length || !cropped(cut, layer.aspect);
  } catch (err) {
    layer.sourceTime = null; // the reel still plays; only its poses are missing
  }
  layer.draw();
}

// One playhead on the timeline: where the source player is, or the reel's place in the source.
function movePlayhead(event) {
  const head = $("#timeline").playhead;
  if (!head) return;
  const video = event?.target || $("#source-video");
  const t = video.id === "reel-video" ? layers.reel.sourceTime?.(video.currentTime) : video.currentTime;
  if (t === null || t === undefined) return;
  head(t);
}

// "Play this segment": the source from the segment's start, paused at its end.
function playSegment(segment) {
  const video = $("#source-video");
  if (!video.src) return seek(segment);
  seek(segment);
  const stop = () => { if (video.currentTime >= segment.end_s) { video.pause(); video.removeEventListener("timeupdate", stop); } };
  video.removeEventListener("timeupdate", video.segmentStop || (() => {}));
  video.segmentStop = stop;
  video.addEventListener("timeupdate", stop);
  video.play().catch(() => {});
}

// ---------------------------------------------------------------- reels

const REEL_WORDS = { QUEUED: "Waiting to start…", RUNNING: "Cutting…", FAILED: "Failed" };

function reelOptionsWords(options) {
  const words = [];
  if (options.track_ids?.length) words.push(`person ${options.track_ids.join(", ")}`);
  if (options.min_still_s !== null && options.min_still_s !== undefined) words.push(`rests ${options.min_still_s} s`);
  if (options.max_duration_s) words.push(`at most ${options.max_duration_s} s`);
  if (options.order === "energy") words.push("strongest first");
  if (options.aspect && options.aspect !== "source") words.push(options.aspect);
  if (options.blur_faces) words.push("faces blurred");
  if (options.clips) words.push("clips");
  return words.length ? words.join(", ") : "everyone, as filmed";
}

function playReel(reel) {
  const video = $("#reel-video");
  if (!reel.files?.reel) return;
  video.src = reel.files.reel.url;
  video.closest("figure").hidden = false;
  reelSkeletons(reel.files.cut);
  $("#reel-caption").textContent = reel.reel_id === 0 ? "Highlight reel" : `Reel ${reel.reel_id}: ${reelOptionsWords(reel.options)}`;
  video.play().catch(() => {});
}

function reelRow(reel) {
  const row = el("li", { class: "reel", "data-testid": "reel-row", "data-reel": reel.reel_id, "data-status": reel.status });
  const title = reel.reel_id === 0 ? "First reel" : `Reel ${reel.reel_id}`;
  const state = reel.status === "SUCCEEDED"
    ? (reel.duration_s ? `${reel.duration_s.toFixed(1)} s, ${reel.segment_count} segment${reel.segment_count === 1 ? "" : "s"}` : "Nothing moved as asked: no reel")
    : reel.status === "FAILED" ? `Failed: ${reel.error?.message || "try again"}` : REEL_WORDS[reel.status];
  row.append(el("strong", {}, title), el("span", { class: "hint" }, ` ${reelOptionsWords(reel.options)} — `), el("span", { class: "reel-state" }, state));
  if (reel.files?.reel) row.append(el("button", { type: "button", "data-testid": "reel-play", onclick: () => playReel(reel) }, "Play"));
  const links = Object.entries(reel.files || {}).filter(([kind]) => kind !== "cut").map(([kind, file]) =>
    el("a", { href: file.url, download: file.name, "data-testid": `reel-download-${kind}` }, file.name));
  if (links.length) row.append(el("span", { class: "reel-files" }, ...links));
  if (reel.reel_id !== 0 && TERMINAL.has(reel.status)) {
    row.append(el("button", { type: "button", class: "link", "data-testid": "reel-delete", onclick: () => deleteReel(reel) }, "Delete"));
  }
  return row;
}

async function loadReels(jobId, page) {
  const listed = await api("GET", `/jobs/${encodeURIComponent(jobId)}/reels`);
  if (jobPage !== page) return;
  const rows = [];
  for (const summary of listed.reels) {
    let reel = summary;
    if (summary.status === "SUCCEEDED") {
      try { reel = await api("GET", `/jobs/${encodeURIComponent(jobId)}/reels/${summary.reel_id}`); } catch { /* the summary will do */ }
    }
    rows.push(reelRow(reel));
  }
  if (jobPage !== page) return;
  $("#reels").replaceChildren(...rows);
  if (listed.reels.some((r) => !TERMINAL.has(r.status))) {
    clearTimeout(page.reelTimer);
    page.reelTimer = setTimeout(() => loadReels(jobId, page).catch(() => {}), POLL_MIN_MS * 2);
  }
}

function recutBody(form) {
  const body = {};
  const ids = [...form.querySelectorAll('input[name="track_ids"]:checked')].map((b) => Number(b.value));
  if (ids.length) body.track_ids = ids;
  for (const name of ["min_still_s", "min_segment_s", "buffer_before_s", "buffer_after_s", "max_duration_s"]) {
    const value = form.elements[name].value;
    if (value !== "") body[name] = Number(value);
  }
  for (const name of ["order", "aspect"]) if (form.elements[name].value) body[name] = form.elements[name].value;
  for (const name of ["blur_faces", "clips"]) if (form.elements[name].checked) body[name] = true;
  return body;
}

async function submitRecut(event) {
  event.preventDefault();
  const page = jobPage;
  if (!page) return;
  const button = $("#recut-form button[type=submit]");
  button.disabled = true;
  try {
    await api("POST", `/jobs/${encodeURIComponent(page.jobId)}/reels`, recutBody(event.target));
    await loadReels(page.jobId, page);
  } catch (err) {
    showError(`Could not cut the reel: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

async function deleteReel(reel) {
  const page = jobPage;
  if (!page || !confirm(`Delete reel ${reel.reel_id} and its files?`)) return;
  try {
    await api("DELETE", `/jobs/${encodeURIComponent(page.jobId)}/reels/${reel.reel_id}`);
  } catch (err) {
    if (err.status !== 404) { showError(`Could not delete the reel: ${err.message}`); return; }
  }
  await loadReels(page.jobId, page);
}

function renderResults(results) {
  const files = results.files || {};
  const reel = $("#reel-video");
  const source = $("#source-video");
  $("#job-results").hidden = false; // first: the timeline is drawn at its container's width
  reel.closest("figure").hidden = !files.reel;
  source.closest("figure").hidden = !results.source;
  if (files.reel) reel.src = files.reel.url;
  if (results.source) source.src = results.source.url;
  loadSkeletons(files);
  if (results.timeline?.tracks?.length) drawTimeline(results.timeline, results.segments || []);
  else {
    $("#timeline").drawn = null;
    $("#timeline").replaceChildren(el("p", { class: "hint" }, "No person was tracked."));
  }
  renderPeople(results.people || [], results.timeline);
  const thumbs = Object.fromEntries((results.thumbnails || []).map((t) => [t.segment_index, t.url]));
  $("#segments").replaceChildren(...(results.segments || []).map((seg) => el("li", { class: "segment-item" },
    results.source ? el("button", { type: "button", class: "play-segment", "data-testid": "play-segment",
      "aria-label": `Play segment ${seg.index + 1} in the whole video`, title: "Play this segment", onclick: () => playSegment(seg) }, "▶") : null,
    el("button", { type: "button", class: "segment", "data-testid": "segment-row", "data-segment": seg.index, onclick: () => seek(seg) },
      thumbs[seg.index] ? el("img", { src: thumbs[seg.index], alt: "", loading: "lazy" }) : null,
      el("span", { class: "seg-time" }, `${fmtTime(seg.start_s)}–${fmtTime(seg.end_s)}`),
      el("span", {}, `Person ${seg.track_ids.join(", ")}`),
      el("span", {}, `score ${seg.score.toFixed(2)}`),
      el("span", { class: "seg-parts" }, seg.top_parts.map((p) => p.replace(/_/g, " ")).join(", "))))));
  if (!results.segments?.length) $("#segments").replaceChildren(el("li", { class: "hint" }, NO_MOVEMENT));
  // "Download all" first: one zip of every file below (the first reel's; re-cuts have their own links).
  const { bundle, ...each } = files;
  $("#download-all").hidden = !bundle;
  if (bundle) {
    $("#download-all").href = bundle.url;
    $("#download-all").textContent = `Download all (zip, ${fmtBytes(bundle.size_bytes || 0)})`;
  }
  $("#downloads").replaceChildren(...Object.entries(each).map(([name, file]) => el("li", {},
    el("a", { href: file.url, download: file.name, "data-testid": `download-${name}` }, file.name),
    ` ${fmtBytes(file.size_bytes || 0)}`)));
}

// tracks.json, then the skeletons over the whole video and, through its reel.json, over the reel.
async function loadSkeletons(files) {
  const toggle = $("#skeleton-toggle").closest("label");
  toggle.hidden = !files.tracks;
  if (!files.tracks) return;
  const page = jobPage;
  try {
    const tracks = await getJson(files.tracks.url);
    if (jobPage !== page) return;
    showSkeletons(poseIndex(tracks), tracks.video.width / tracks.video.height);
    await reelSkeletons(files.cut);
  } catch (err) {
    toggle.hidden = true;
    showError(`Could not load the poses to draw: ${err.message}`);
  }
}

async function showJobPage(jobId) {
  $("#job-title").textContent = "Job";
  $("#job-results").hidden = true;
  $("#job-status").textContent = "Loading…";
  $("#job-progress").hidden = false;
  for (const video of [$("#reel-video"), $("#source-video")]) { video.removeAttribute("src"); video.load(); }
  for (const layer of Object.values(layers)) { layer.poses = null; layer.sourceTime = null; layer.chosen = new Set(); layer.draw(); }
  const page = { jobId, poller: null };
  jobPage = page;
  page.poller = pollJob(jobId, async (job) => {
    $("#job-title").textContent = job.source?.name || job.job_id;
    $("#job-status").textContent = jobMessage(job);
    $("#job-notify").hidden = !job.notify;
    if (job.notify) $("#job-notify").textContent = notifyMessage(job.notify);
    const cost = costMessage(job);
    $("#job-cost").hidden = !cost;
    $("#job-cost").textContent = cost || "";
    $("#job-view").dataset.status = job.status;
    $("#job-progress").value = job.percent || 0;
    $("#job-progress").hidden = TERMINAL.has(job.status);
    if (job.status !== "SUCCEEDED") return;
    try {
      const results = await api("GET", `/jobs/${encodeURIComponent(jobId)}/results`);
      if (jobPage === page) renderResults(results);
      if (jobPage === page) await loadReels(jobId, page);
    } catch (err) {
      showError(`Could not load the results: ${err.message}`);
    }
  }, (err, delay) => {
    $("#job-status").textContent = delay === null ? err.message : `${err.message} Retrying in ${Math.round(delay / 1000)} s…`;
  });
}

async function deleteJob() {
  const jobId = jobPage?.jobId;
  if (!jobId || !confirm("Delete this job, its upload and all its results? This cannot be undone.")) return;
  try {
    await api("DELETE", `/jobs/${encodeURIComponent(jobId)}`);
  } catch (err) {
    if (err.status !== 404) { showError(`Could not delete the job: ${err.message}`); return; }
  }
  $("#jobs").querySelector(`[data-job-id="${CSS.escape(jobId)}"]`)?.remove();
  location.hash = "#/";
}

// ---------------------------------------------------------------- routing and start

function route() {
  jobPage?.poller?.stop();
  clearTimeout(jobPage?.reelTimer);
  jobPage = null;
  for (const video of [$("#reel-video"), $("#source-video")]) video.pause();
  const match = /^#\/jobs\/([^/?]+)/.exec(location.hash);
  $("#job-view").hidden = !match;
  $("#upload-view").hidden = Boolean(match);
  if (match) showJobPage(decodeURIComponent(match[1]));
  document.body.dataset.view = match ? "job" : "upload";
}

async function start() {
  takeKeyFromFragment();
  setUpSkeletons();
  $("#settings-form").addEventListener("submit", (e) => {
    e.preventDefault();
    key = $("#api-key").value.trim();
    localStorage.setItem(KEY_STORAGE, key);
    $("#settings").open = false;
    $("#error").hidden = true;
    $("#jobs").replaceChildren();
    loadJobs();
  });
  $("#error-close").addEventListener("click", () => { $("#error").hidden = true; });
  $("#jobs-more").addEventListener("click", () => loadJobs(true));
  $("#delete-job").addEventListener("click", deleteJob);
  $("#recut-form").addEventListener("submit", submitRecut);
  setUpDropZone();
  showPending();
  await loadConfig();
  if (!key) $("#settings").open = true;
  window.addEventListener("hashchange", route);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => $("#timeline").drawn?.(), 100);
  });
  route();
  await loadJobs();
  document.body.dataset.ready = "true";
}

start();
