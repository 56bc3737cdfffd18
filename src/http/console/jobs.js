// Jobs: the index over every kind (refreshed every 2 s while shown), the create forms, and a
// detail page per job that follows the job's event stream (SSE) and redraws from it: dataset
// progress, similarity histogram, threshold sweep and records; the fine-tuning loss curve (one
// point per step, from `metrics` events), checkpoints, cancel / pause / resume and "load this
// model"; the evaluation's per-round table and chart, flips, and each item's answer per round.

import { admin, followEvents, fileText, el, when } from "./api.js";
import { lineChart, histogram, bin } from "./chart.js";
import { createForm } from "./forms.js";

const KINDS = { dataset: "Dataset", fine_tune: "Fine-tuning", eval: "Evaluation" };
const TERMINAL = ["succeeded", "failed", "cancelled"];

export const badge = (s) => el("span", { class: "status", "data-status": s }, s);

export function show(main, params) {
  if (params[0] === "new") return showNew(main, params[1] || "dataset");
  if (params[0]) return showJob(main, params[0]);
  return showIndex(main);
}

function showIndex(main) {
  const body = el("tbody", { id: "jobs-body" });
  const msg = el("p", { class: "msg", role: "status" });
  main.append(el("section", { class: "panel" },
    el("h1", {}, "Jobs"),
    el("div", { class: "toolbar" },
      Object.entries(KINDS).map(([k, name]) => el("a", { href: `#/jobs/new/${k}`, id: `new-${k}` }, `New ${name.toLowerCase()} job`))),
    el("div", { class: "table-wrap" }, el("table", { class: "stack" },
      el("thead", {}, el("tr", {}, ["Job", "Kind", "Status", "Progress", "Created"].map((h) => el("th", { scope: "col" }, h)))),
      body)),
    msg));
  const load = async () => {
    try {
      const list = await admin("GET", "/jobs?limit=100");
      body.replaceChildren(...list.data.map((j) => el("tr", { "data-job": j.id },
        el("td", { "data-label": "Job" }, el("a", { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id)),
        el("td", { "data-label": "Kind" }, KINDS[j.kind] || j.kind),
        el("td", { "data-label": "Status" }, badge(j.status)),
        el("td", { "data-label": "Progress" }, progressText(j)),
        el("td", { "data-label": "Created" }, when(j.created_at)))));
      if (!list.data.length) body.append(el("tr", {}, el("td", { colspan: 5 }, "No jobs yet.")));
      msg.textContent = "";
    } catch (e) {
      msg.textContent = `Cannot list the jobs: ${e.message}`;
    }
  };
  load();
  const timer = setInterval(load, 2000);
  return () => clearInterval(timer);
}

function progressText(j) {
  if (j.request_counts) return `${j.request_counts.completed}/${j.request_counts.total} records`;
  if (j.progress) return `${j.progress.done}/${j.progress.total} items`;
  if (j.fine_tuned_model) return j.fine_tuned_model;
  return "";
}

function showNew(main, kind) {
  const holder = el("div");
  main.append(el("p", {}, el("a", { href: "#/jobs" }, "← Jobs")), holder);
  createForm(kind, (job) => { location.hash = `#/jobs/${encodeURIComponent(job.id)}`; })
    .then((form) => holder.append(form))
    .catch((e) => holder.append(el("p", { class: "msg" }, `Cannot build the form: ${e.message}`)));
}

function showJob(main, id) {
  const stop = new AbortController();
  const head = el("section", { class: "panel", id: "job-head" });
  const views = el("div", { id: "job-views" });
  const log = el("ol", { class: "events", id: "job-events", "aria-label": "Events", tabindex: 0 });
  const msg = el("p", { class: "msg", role: "alert" });
  main.append(el("p", {}, el("a", { href: "#/jobs" }, "← Jobs")), head, views,
    el("section", { class: "panel" }, el("h2", {}, "Events"), log), msg);
  const events = [];
  let job = null;
  let pending = null;
  const redraw = () => {
    if (!job) return;
    drawHead(head, job, msg, refresh);
    const draw = { dataset: drawDataset, fine_tune: drawFineTune, eval: drawEval }[job.kind];
    if (draw) draw(views, job, events);
  };
  const refresh = async () => {
    try {
      job = await admin("GET", `/jobs/${encodeURIComponent(id)}`);
      redraw();
    } catch (e) {
      msg.textContent = `Cannot read the job: ${e.message}`;
    }
  };
  // Events come in bursts: one job read per burst.
  const soon = () => { pending ??= setTimeout(() => { pending = null; refresh(); }, 300); };
  refresh().then(() => followEvents(id, (e) => {
    events.push(e);
    log.append(el("li", { "data-level": e.level }, `${new Date(e.created_at * 1000).toLocaleTimeString()} ${e.message}`));
    log.scrollTop = log.scrollHeight;
    soon();
  }, stop.signal)).then(() => refresh()).catch((e) => {
    if (e.name !== "AbortError") msg.textContent = `The event stream stopped: ${e.message}`;
  });
  return () => { stop.abort(); clearTimeout(pending); };
}

function drawHead(head, job, msg, refresh) {
  const act = (label, path, id) => el("button", {
    type: "button", id,
    onclick: async () => {
      try { await admin("POST", path); await refresh(); } catch (e) { msg.textContent = `${label} failed: ${e.message}`; }
    },
  }, label);
  const base = job.kind === "fine_tune" ? `/fine_tuning/jobs/${job.id}` : `/jobs/${job.id}`;
  const running = !TERMINAL.includes(job.status);
  head.replaceChildren(
    el("h1", {}, `${KINDS[job.kind] || job.kind} job `, el("code", {}, job.id), " ", badge(job.status)),
    el("dl", { class: "kv" },
      el("dt", {}, "Created"), el("dd", {}, when(job.created_at)),
      el("dt", {}, "Started"), el("dd", {}, when(job.started_at)),
      el("dt", {}, "Finished"), el("dd", {}, when(job.finished_at)),
      job.error ? [el("dt", {}, "Error"), el("dd", {}, `${job.error.message || ""} (${job.error.code || ""})`)] : null),
    el("div", { class: "toolbar" },
      running ? act("Cancel", `${base}/cancel`, "job-cancel") : null,
      job.kind === "fine_tune" && ["running", "queued"].includes(job.status) ? act("Pause", `${base}/pause`, "job-pause") : null,
      job.kind === "fine_tune" && job.status === "paused" ? act("Resume", `${base}/resume`, "job-resume") : null));
  head.dataset.status = job.status;
}

function section(id, title, ...children) {
  return el("section", { class: "panel", id }, el("h2", {}, title), ...children);
}

function drawDataset(views, job, events) {
  const c = job.request_counts || {};
  const rate = [...events].reverse().find((e) => e.data && e.data.records_per_minute !== undefined);
  const sims = events.filter((e) => e.data && e.data.scores).map((e) => e.data.scores.sample_similarity);
  const threshold = (job.filter && job.filter.threshold) ?? 0.8;
  const s = job.summary;
  const old = views.querySelector("#ds-records");
  views.replaceChildren(el("div", { class: "grid2" },
    section("ds-progress", "Progress", el("dl", { class: "kv" },
      ["total", "completed", "accepted", "rejected", "failed"].flatMap((k) => [el("dt", {}, k), el("dd", { "data-count": k }, c[k] ?? 0)]),
      el("dt", {}, "records / minute"), el("dd", {}, rate ? rate.data.records_per_minute.toFixed(1) : "—"))),
    section("ds-histogram", "Answer-sample similarity",
      histogram("Similarity of the answer samples per record", bin(sims, Math.min(0, ...sims), 1, 10), threshold))),
    s ? section("ds-sweep", "Threshold sweep", el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "threshold"), el("th", {}, "would keep"))),
      el("tbody", {}, (s.threshold_sweep || []).map((r) => el("tr", {}, el("td", {}, r.threshold), el("td", {}, r.accepted))))))) : null,
    old || section("ds-records", "Records", el("p", { class: "hint" }, "Shown when the job has written its files.")));
  const records = views.querySelector("#ds-records");
  if (job.output_file_id && !records.dataset.loaded) {
    records.dataset.loaded = "yes";
    loadRecords(records, job);
  }
}

async function loadRecords(target, job) {
  const lines = async (id) => (id ? (await fileText(id)).split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  try {
    const [kept, rejected] = await Promise.all([lines(job.output_file_id), lines(job.error_file_id)]);
    const cards = [...kept.map((r) => ({ ...r, verdict: "accepted" })), ...rejected.map((r) => ({ ...r, verdict: `rejected: ${r.reason}` }))]
      .map((r, i) => record(r, i));
    target.replaceChildren(el("h2", {}, `Records (${kept.length} accepted, ${rejected.length} rejected)`), ...cards);
  } catch (e) {
    target.append(el("p", { class: "msg" }, `Cannot read the records: ${e.message}`));
  }
}

function record(r, i) {
  const msgs = r.messages || [];
  const question = msgs.find((m) => m.role === "user");
  const thoughts = msgs.filter((m) => m.role === "assistant" && m.weight === 0);
  const answer = msgs.filter((m) => m.role === "assistant" && m.weight !== 0).pop();
  return el("details", { class: "record", open: i < 2 },
    el("summary", {}, `${r.custom_id ?? `#${i + 1}`} · ${r.verdict}`),
    question ? [el("h3", {}, "Question"), el("pre", {}, question.content)] : null,
    thoughts.map((t, k) => [el("h3", {}, `Thought ${k + 1}`), el("pre", {}, t.content)]),
    answer ? [el("h3", {}, "Answer"), el("pre", {}, answer.content)] : null,
    r.scores ? [el("h3", {}, "Scores"), el("pre", {}, JSON.stringify(r.scores))] : null);
}

/// One point per step: the last metrics event of each step (a resumed run repeats steps).
export function lossPoints(events, key) {
  const at = new Map();
  for (const e of events) if (e.type === "metrics" && e.data && typeof e.data[key] === "number") at.set(e.data.step, e.data[key]);
  return [...at.entries()].sort((a, b) => a[0] - b[0]);
}

function drawFineTune(views, job, events) {
  const train = lossPoints(events, "train_loss");
  const valid = lossPoints(events, "valid_loss");
  const last = [...events].reverse().find((e) => e.type === "metrics" && e.data && e.data.total_steps);
  const model = job.fine_tuned_model;
  views.replaceChildren(
    section("ft-loss", "Loss",
      el("p", { class: "hint" }, last ? `step ${last.data.step} of ${last.data.total_steps} · ${(last.data.tokens_per_second || 0).toFixed(0)} tokens/s` : "waiting for the first step"),
      lineChart("Training loss per step", [
        { name: "train loss", points: train, cls: "train" },
        ...(valid.length ? [{ name: "validation loss", points: valid, cls: "valid" }] : []),
      ], { xLabel: "step" })),
    el("div", { class: "grid2" },
      section("ft-checkpoints", "Checkpoints", el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "step"), el("th", {}, "train loss"), el("th", {}, "model id"))),
        el("tbody", {}, (job.checkpoints || []).map((c) => el("tr", {},
          el("td", {}, c.step_number),
          el("td", {}, c.metrics && c.metrics.train_loss != null ? Number(c.metrics.train_loss).toFixed(4) : "—"),
          el("td", {}, el("code", {}, c.fine_tuned_model_checkpoint)))))))),
      section("ft-model", "Model", model
        ? [el("p", {}, el("code", { id: "ft-model-id" }, model)),
          el("div", { class: "toolbar" },
            el("button", { type: "button", id: "ft-load", onclick: (ev) => loadModel(ev.target, model) }, "Load this model"),
            el("a", { href: `#/playground/${encodeURIComponent(model)}` }, "Try it in the playground"))]
        : el("p", { class: "hint" }, "The tuned model appears when the job succeeds."))));
}

async function loadModel(button, id) {
  button.disabled = true;
  button.textContent = "Loading…";
  try {
    const m = await admin("POST", `/models/${encodeURIComponent(id)}/load`);
    button.textContent = `Model ${m.status}`;
  } catch (e) {
    button.textContent = `Load failed: ${e.message}`;
    button.disabled = false;
  }
}

function drawEval(views, job, events) {
  const tables = Array.isArray(job.summary) ? job.summary : [];
  const p = job.progress;
  const old = views.querySelector("#ev-items");
  views.replaceChildren(
    section("ev-progress", "Progress", el("p", {}, p ? `${p.done} of ${p.total} items` : "—")),
    tables.length ? section("ev-chart", "Accuracy per round", lineChart("Accuracy per round",
      tables.map((t, i) => ({ name: `${t.task} · ${t.system}`, points: t.rows.map((r) => [r.round, r.accuracy]), cls: i ? "valid" : "" })),
      { xLabel: "round", fmtY: (v) => `${(v * 100).toFixed(0)}%`, yRange: [0, 1] })) : null,
    ...tables.map((t) => section(`ev-table-${t.task}`, `${t.task} · ${t.system} (${t.items} of ${t.planned} items)`,
      el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["round", "correct", "accuracy", "95% CI", "Δ vs round 1", "flips (→right / →wrong)", "p vs round 1", "unparsed"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, t.rows.map((r) => el("tr", {},
          el("td", {}, r.round), el("td", {}, r.correct), el("td", {}, `${(r.accuracy * 100).toFixed(1)}%`),
          el("td", {}, r.ci95 ? `${(r.ci95[0] * 100).toFixed(0)}–${(r.ci95[1] * 100).toFixed(0)}%` : "—"),
          el("td", {}, `${(r.delta_vs_round1 * 100).toFixed(1)}`),
          el("td", {}, r.flips_from_previous ? `${r.flips_from_previous.wrong_to_right} / ${r.flips_from_previous.right_to_wrong}` : "—"),
          el("td", {}, r.p_vs_round1 != null ? r.p_vs_round1.toFixed(3) : "—"),
          el("td", {}, r.unparsed)))))))),
    old || section("ev-items", "Items", el("p", { class: "hint" }, "Shown when the job has written its files.")));
  const items = views.querySelector("#ev-items");
  const file = job.result_files && job.result_files["items.jsonl"];
  if (file && !items.dataset.loaded) {
    items.dataset.loaded = "yes";
    loadItems(items, file);
  }
}

async function loadItems(target, file) {
  try {
    const rows = (await fileText(file)).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const byItem = new Map();
    for (const r of rows) {
      const k = `${r.system} · ${r.task} · ${r.item}`;
      if (!byItem.has(k)) byItem.set(k, []);
      byItem.get(k).push(r);
    }
    target.replaceChildren(el("h2", {}, `Items (${byItem.size})`), ...[...byItem.entries()].map(([k, rs]) =>
      el("details", { class: "record item" }, el("summary", {}, `${k} · ${rs.sort((a, b) => a.round - b.round).map((r) => (r.correct ? "✓" : "✗")).join(" ")}`),
        rs.map((r) => [el("h3", {}, `Round ${r.round} · ${r.correct ? "right" : "wrong"} · extracted ${r.extracted ?? "—"} · gold ${r.gold}`), el("pre", {}, r.answer)]))));
  } catch (e) {
    target.append(el("p", { class: "msg" }, `Cannot read the items: ${e.message}`));
  }
}
