// The create forms. Each field's name is its path in the API body (`weak.model`,
// `filter.threshold`, `tasks[0].file`), so a form maps 1:1 to the request — the body is shown
// as it will be sent — and a 400's `error.param` names the field its message is shown next to.
// A file field can upload a file from disk (with the purpose the job needs) and use its id.

import { admin, upload, el } from "./api.js";

const INPUT_FORMATS = ["auto", "question", "gsm8k", "wizardlm", "ptr_sample"];
const TASKS = ["gsm8k", "arc", "commonsenseqa", "mmlu", "winogrande"];

/// Number fields under `prefix` that start empty, so that the server's default applies:
/// `{name: label}` → [[prefix + name, label, "number", ""], …].
function optionalNumbers(prefix, labels) {
  return Object.entries(labels).map(([name, label]) => [prefix + name, label, "number", ""]);
}

/// A dataset job's model role (`weak` or `strong`): a model served here, or one at an
/// OpenAI-compatible endpoint, and how it samples.
function role(name, label, maxTokens) {
  return [
    [`${name}.model`, `${label} model`, "model", ""],
    [`${name}.base_url`, `${label} base URL (remote, optional)`, "text", ""],
    [`${name}.api_key_env`, `${label} API key env var`, "text", ""],
    [`${name}.temperature`, `${label} temperature`, "number", "0.7"],
    [`${name}.max_tokens`, `${label} max tokens`, "number", maxTokens],
  ];
}

/// The fields of each kind's create form: [name, label, type, default, extra].
export const FORMS = {
  dataset: {
    title: "New dataset job",
    route: "/datasets/jobs",
    fields: [
      ["input_file", "Query file", "file", "", { purpose: "user_data" }],
      ["input_format", "Input format", "select", "auto", { options: INPUT_FORMATS }],
      ["limit", "Limit (records)", "number", ""],
      ["import", "Import (a PTR sample: no generation)", "checkbox", false],
      ...role("weak", "Weak", "128"),
      ...role("strong", "Strong", "256"),
      ["strong.icl_examples", "In-context examples", "number", ""],
      ["n_thoughts", "Thoughts per record", "number", "2"],
      ["filter.k", "Answer samples (k)", "number", "3"],
      ["filter.threshold", "Similarity threshold", "number", "0.8"],
      ["filter.gold_check", "Gold check (GSM8K)", "checkbox", true],
      ["concurrency", "Concurrency", "number", "2"],
      ["suffix", "Suffix", "text", ""],
    ],
  },
  fine_tune: {
    title: "New fine-tuning job",
    route: "/fine_tuning/jobs",
    fields: [
      ["model", "Base model", "model", ""],
      ["training_file", "Training file", "file", "", { purpose: "fine-tune" }],
      ["validation_file", "Validation file", "file", "", { purpose: "fine-tune" }],
      ["suffix", "Suffix", "text", ""],
      ["seed", "Seed", "number", ""],
      ...optionalNumbers("hyperparameters.", {
        n_epochs: "Epochs",
        batch_size: "Batch size",
        learning_rate_multiplier: "Learning-rate multiplier",
      }),
      ...optionalNumbers("ptr.", {
        max_steps: "Max steps",
        max_seq_len: "Max sequence length",
        checkpoint_every: "Checkpoint every (steps)",
        answer_weight: "Answer weight",
        thought_weight: "Thought weight",
        learning_rate: "Learning rate",
        warmup_steps: "Warm-up steps",
        rounds: "Default rounds of the tuned model",
      }),
      ["ptr.load_on_success", "Load on success", "checkbox", false],
    ],
  },
  eval: {
    title: "New evaluation job",
    route: "/evals/jobs",
    fields: [
      ["model", "Model", "model", ""],
      ["tasks[0].task", "Task", "select", "gsm8k", { options: TASKS }],
      ["tasks[0].file", "Task file", "file", "", { purpose: "evals" }],
      ["rounds", "Rounds", "number", "3"],
      ["limit", "Limit (items)", "number", ""],
      ["max_tokens", "Max tokens", "number", ""],
      ["temperature", "Temperature", "number", ""],
      ["rounds_mode", "Rounds mode", "select", "server", { options: ["server", "client"] }],
      ["compare.model", "Compare with model (optional)", "model-optional", ""],
    ],
  },
};

/// `tasks[0].file` → ["tasks", 0, "file"].
function pathOf(name) {
  return name.split(".").flatMap((p) => {
    const m = p.match(/^(\w+)\[(\d+)\]$/);
    return m ? [m[1], Number(m[2])] : [p];
  });
}

function setPath(body, name, value) {
  const path = pathOf(name);
  let at = body;
  path.forEach((key, i) => {
    if (i === path.length - 1) at[key] = value;
    else at = at[key] ??= typeof path[i + 1] === "number" ? [] : {};
  });
}

/// The request body from the form's fields; empty fields are left out (the API's default).
export function bodyOf(form) {
  const body = {};
  for (const input of form.querySelectorAll("[data-field]")) {
    const name = input.name;
    let value;
    if (input.type === "checkbox") value = input.checked;
    else if (input.value.trim() === "") continue;
    else if (input.dataset.kind === "number") value = Number(input.value);
    else value = input.value.trim();
    setPath(body, name, value);
  }
  return body;
}

function control(name, type, value, extra, models, files) {
  const id = `f-${name.replace(/[^\w]/g, "-")}`;
  const common = { name, id, "data-field": true, "aria-describedby": `${id}-err` };
  if (type === "checkbox") return el("input", { ...common, type: "checkbox", checked: value });
  if (type === "select")
    return el("select", common, extra.options.map((o) => el("option", { value: o, selected: o === value }, o)));
  if (type === "model" || type === "model-optional")
    return el("select", common, type === "model-optional" ? el("option", { value: "" }, "—") : null,
      models.map((m) => el("option", { value: m.id }, `${m.id} (${m.status})`)));
  if (type === "file")
    return el("select", common, el("option", { value: "" }, "—"),
      files.filter((f) => extra.purpose !== "fine-tune" || ["fine-tune", "ptr-dataset"].includes(f.purpose))
        .map((f) => el("option", { value: f.id }, `${f.filename} · ${f.id}`)));
  // Numbers as text with a numeric keyboard: the server, not the browser, says what is wrong.
  return el("input", { ...common, type: "text", inputmode: type === "number" ? "decimal" : null, "data-kind": type, value });
}

/// Renders the create form of `kind`; `onCreated(job)` after a 2xx.
export async function createForm(kind, onCreated) {
  const spec = FORMS[kind];
  const [models, files] = await Promise.all([admin("GET", "/models"), admin("GET", "/files?limit=100")]);
  const form = el("form", { class: "panel", id: `form-${kind}`, novalidate: true });
  const preview = el("pre", { class: "events", id: "form-preview", "aria-label": "Request body" });
  const formMsg = el("p", { class: "msg", id: "form-msg", role: "alert" });
  const grid = el("div", { class: "form-grid" });
  for (const [name, label, type, value, extra = {}] of spec.fields) {
    const input = control(name, type, value, extra, models.data, files.data);
    const err = el("p", { class: "field-error", id: `${input.id}-err`, "data-error-for": name });
    const wrap = type === "checkbox"
      ? el("div", { class: "field" }, el("label", { class: "check" }, input, label), err)
      : el("div", { class: "field" }, el("label", { for: input.id }, el("span", {}, label)), input, err);
    if (type === "file") {
      const picker = el("input", { type: "file", "aria-label": `Upload a file for ${label}`, "data-upload-for": name });
      picker.addEventListener("change", async () => {
        if (!picker.files.length) return;
        err.textContent = "Uploading…";
        try {
          const f = await upload(picker.files[0], extra.purpose);
          input.append(el("option", { value: f.id }, `${f.filename} · ${f.id}`));
          input.value = f.id;
          err.textContent = f.status === "error" ? `The file is not valid: ${f.status_details}` : "";
          input.dispatchEvent(new Event("input", { bubbles: true }));
        } catch (e) {
          err.textContent = `Upload failed: ${e.message}`;
        }
      });
      wrap.append(picker);
    }
    grid.append(wrap);
  }
  const submit = el("button", { type: "submit", id: "form-submit" }, "Create job");
  form.append(el("h1", {}, spec.title), grid, el("h3", {}, `POST /admin/v1${spec.route}`), preview,
    el("div", { class: "row" }, submit), formMsg);
  const refresh = () => { preview.textContent = JSON.stringify(bodyOf(form), null, 2); };
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  refresh();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const e of form.querySelectorAll("[data-error-for]")) e.textContent = "";
    formMsg.textContent = "";
    submit.disabled = true;
    try {
      onCreated(await admin("POST", spec.route, bodyOf(form)));
    } catch (e) {
      const target = e.param && [...form.querySelectorAll("[data-error-for]")].find((x) => x.dataset.errorFor === e.param);
      if (target) {
        target.textContent = e.message;
        form.querySelector(`[name="${CSS.escape(e.param)}"]`)?.focus();
      }
      formMsg.textContent = `The server refused the job (${e.status}): ${e.message}${e.param ? ` — field ${e.param}` : ""}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
