// The playground: one request to /v1/refinements, every round streaming into its own column;
// a finished round shows its words added and removed against the previous round, its tokens,
// time to first token and finish reason. Stop aborts the fetch: the server sees the client go
// and cancels the rounds.

import { call, refine, el } from "./api.js";
import { renderDiff } from "./diff.js";

let running = null;

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

export function show(main, params) {
  const preset = params[0] || "";
  const model = el("select", { name: "model", id: "pg-model" });
  const message = el("textarea", { name: "message", id: "pg-message", rows: 3, required: true },
    "Name three primary colors.");
  const rounds = el("input", { type: "number", name: "rounds", id: "pg-rounds", min: 1, max: 8, value: 3 });
  const temperature = el("input", { type: "number", name: "temperature", id: "pg-temperature", min: 0, max: 2, step: 0.1, value: 0 });
  const maxTokens = el("input", { type: "number", name: "max_tokens", id: "pg-max-tokens", min: 1, value: 64 });
  const earlyStop = el("input", { type: "checkbox", name: "early_stop", id: "pg-early-stop" });
  const send = el("button", { type: "submit", id: "pg-send" }, "Send");
  const stop = el("button", { type: "button", id: "pg-stop", disabled: true }, "Stop");
  const status = el("p", { class: "msg", id: "pg-status", role: "status", "aria-live": "polite" }, "");
  const summary = el("p", { class: "summary", id: "pg-summary" }, "\u00a0");
  const columns = el("div", { class: "rounds", id: "pg-rounds-out" });
  const form = el("form", { class: "panel pg-form", id: "pg-form" },
    el("h1", {}, "Playground"),
    field("Model", model),
    field("Message", message),
    el("div", { class: "row wrap" },
      field("Rounds", rounds), field("Temperature", temperature), field("Max tokens per round", maxTokens),
      el("label", { class: "check" }, earlyStop, "Early stop when converged")),
    el("div", { class: "row" }, send, stop),
    status);
  main.append(form, summary, columns);

  call("GET", "/v1/models").then((list) => {
    for (const m of list.data) model.append(el("option", { value: m.id, selected: m.id === preset }, m.id));
    if (!list.data.length) status.textContent = "No model is loaded.";
  }).catch((e) => { status.textContent = `Cannot list the models: ${e.message}`; });

  stop.addEventListener("click", () => {
    if (running) running.abort();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (running) return;
    const n = Number(rounds.value);
    const body = {
      model: model.value,
      messages: [{ role: "user", content: message.value }],
      temperature: Number(temperature.value),
      max_tokens: Number(maxTokens.value),
      refinement: { rounds: n, early_stop: earlyStop.checked },
    };
    const cols = makeColumns(columns, n);
    summary.textContent = "\u00a0";
    delete summary.dataset.stopReason;
    status.textContent = "Generating…";
    running = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    const contents = [];
    try {
      await refine(body, (name, data) => onEvent(name, data, cols, contents, summary), running.signal);
      status.textContent = summary.dataset.stopReason ? "Done." : "The stream ended early.";
    } catch (e) {
      status.textContent = e.name === "AbortError"
        ? "Stopped: the request was closed and the server cancelled the generation."
        : `Error: ${e.message}${e.param ? ` (field ${e.param})` : ""}`;
      for (const c of cols) if (c.dataset.state === "streaming") c.dataset.state = "stopped";
    } finally {
      running = null;
      send.disabled = false;
      stop.disabled = true;
    }
  });
  return () => { if (running) running.abort(); };
}

function makeColumns(container, n) {
  const cols = [];
  for (let r = 1; r <= n; r++) {
    cols.push(el("section", { class: "round", "data-round": r, "data-state": "waiting", "aria-label": `Round ${r}` },
      el("h2", {}, `Round ${r}`),
      el("p", { class: "round-stats" }, "waiting"),
      el("div", { class: "round-text", tabindex: 0 })));
  }
  container.replaceChildren(...cols);
  return cols;
}

function onEvent(name, data, cols, contents, summary) {
  const col = data.round ? cols[data.round - 1] : null;
  if (name === "round.started" && col) {
    col.dataset.state = "streaming";
    col.querySelector(".round-stats").textContent = "streaming…";
  } else if (name === "round.delta" && col) {
    col.querySelector(".round-text").append(data.text);
  } else if (name === "round.completed" && col) {
    contents[data.round - 1] = data.content;
    const text = col.querySelector(".round-text");
    const previous = contents[data.round - 2];
    text.replaceChildren(previous === undefined ? data.content : renderDiff(previous, data.content));
    col.dataset.state = "done";
    col.dataset.finishReason = data.finish_reason;
    const ttft = data.ttft_ms == null ? "—" : `${data.ttft_ms} ms`;
    col.querySelector(".round-stats").textContent =
      `${data.usage.completion_tokens} tokens · TTFT ${ttft} · ${data.elapsed_ms} ms · ${data.finish_reason}` +
      (data.round > 1 ? (data.changed ? " · changed" : " · unchanged") : "");
  } else if (name === "refinement.completed") {
    summary.dataset.stopReason = data.stop_reason;
    summary.textContent = `${data.rounds} round(s) · stop reason: ${data.stop_reason} · ` +
      `${data.usage.completion_tokens} completion tokens in all`;
    for (const c of cols) if (c.dataset.state === "waiting") {
      c.dataset.state = "skipped";
      c.querySelector(".round-stats").textContent = `not run (${data.stop_reason})`;
    }
  } else if (name === "error") {
    const e = data.error || {};
    summary.textContent = `Error: ${e.message || "unknown"}`;
    summary.dataset.stopReason = "error";
  }
}
