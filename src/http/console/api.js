// The console's one way to the server: the same routes and auth as any client. The API key and
// the admin token live in sessionStorage (gone when the tab closes), never in a cookie, so the
// server grants the page nothing it would not grant curl.

const KEY = "ptr.apiKey";
const ADMIN = "ptr.adminToken";

export const auth = {
  get apiKey() { return sessionStorage.getItem(KEY) || ""; },
  set apiKey(v) { v ? sessionStorage.setItem(KEY, v) : sessionStorage.removeItem(KEY); },
  get adminToken() { return sessionStorage.getItem(ADMIN) || ""; },
  set adminToken(v) { v ? sessionStorage.setItem(ADMIN, v) : sessionStorage.removeItem(ADMIN); },
};

/// An error answer in words: the envelope's message, its `param`, the HTTP status.
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.param = e.param || null;
    this.code = e.code || null;
  }
}

function headers(admin, extra = {}) {
  const token = admin ? auth.adminToken : auth.apiKey;
  const h = { ...extra };
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

async function answer(res) {
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

/// A JSON call to `/v1` (admin = false) or `/admin/v1` (admin = true, `path` relative to it).
export async function call(method, path, body, { admin = false, signal } = {}) {
  const url = admin ? `/admin/v1${path}` : path;
  const init = { method, headers: headers(admin), signal };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return answer(await fetch(url, init));
}

export const admin = (method, path, body, opts = {}) => call(method, path, body, { ...opts, admin: true });

/// Uploads a browser File as an admin file of `purpose`; the file object.
export async function upload(file, purpose) {
  const form = new FormData();
  form.append("purpose", purpose);
  form.append("file", file, file.name);
  return answer(await fetch("/admin/v1/files", { method: "POST", headers: headers(true), body: form }));
}

/// A file's content as text.
export async function fileText(id) {
  const res = await fetch(`/admin/v1/files/${encodeURIComponent(id)}/content`, { headers: headers(true) });
  if (!res.ok) await answer(res);
  return res.text();
}

/// Reads an SSE response (fetch, so that it can carry the Authorization header and be aborted)
/// and calls `onEvent(name, data, id)` for each event; resolves when the stream ends.
export async function readSse(res, onEvent) {
  if (!res.ok) await answer(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = "message", id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") name = v;
        else if (field === "data") data.push(v);
        else if (field === "id") id = v;
      }
      if (data.length) onEvent(name, data.join("\n"), id);
    }
  }
}

/// POSTs a generation body to `/v1/refinements` and streams its events.
export async function refine(body, onEvent, signal) {
  const res = await fetch("/v1/refinements", {
    method: "POST",
    headers: headers(false, { "content-type": "application/json", accept: "text/event-stream" }),
    body: JSON.stringify(body),
    signal,
  });
  return readSse(res, (name, data) => onEvent(name, JSON.parse(data)));
}

/// Follows an admin job's events (`?stream=true`) until `[DONE]` or the signal aborts.
export async function followEvents(jobId, onEvent, signal) {
  const res = await fetch(`/admin/v1/jobs/${encodeURIComponent(jobId)}/events?stream=true`, {
    headers: headers(true, { accept: "text/event-stream" }),
    signal,
  });
  return readSse(res, (_name, data) => { if (data !== "[DONE]") onEvent(JSON.parse(data)); });
}

/// `el("div", {class: "x", onclick: f}, child, "text", …)`: a small DOM builder.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

/// A UNIX time as local date and time.
export const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "—");
