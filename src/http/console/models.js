// Models: every model the server knows (models.toml and the tuned ones) with its status, load /
// unload, and lineage — the parent model and the job that created it.

import { admin, el } from "./api.js";
import { badge } from "./jobs.js";

export function show(main) {
  const body = el("tbody", { id: "models-body" });
  const msg = el("p", { class: "msg", role: "status", "aria-live": "polite" });
  main.append(el("section", { class: "panel" },
    el("h1", {}, "Models"),
    el("div", { class: "table-wrap" }, el("table", { class: "stack" },
      el("thead", {}, el("tr", {}, ["Model", "Status", "Parent", "Created by job", ""].map((h) => el("th", { scope: "col" }, h)))),
      body)),
    msg));
  const act = async (id, what) => {
    msg.textContent = `${what === "load" ? "Loading" : "Unloading"} ${id}…`;
    try {
      const m = await admin("POST", `/models/${encodeURIComponent(id)}/${what}`);
      msg.textContent = `${id} is ${m.status}.`;
    } catch (e) {
      msg.textContent = `Could not ${what} ${id}: ${e.message}`;
    }
    load();
  };
  const load = async () => {
    try {
      const list = await admin("GET", "/models");
      body.replaceChildren(...list.data.map((m) => el("tr", { "data-model": m.id, "data-status": m.status },
        el("td", { "data-label": "Model" }, el("code", {}, m.id)),
        el("td", { "data-label": "Status" }, badge(m.status)),
        el("td", { "data-label": "Parent" }, m.parent ? el("code", {}, m.parent) : "—"),
        el("td", { "data-label": "Created by job" }, m.created_by_job ? el("a", { href: `#/jobs/${encodeURIComponent(m.created_by_job)}` }, m.created_by_job) : "—"),
        el("td", { "data-label": "" }, el("div", { class: "row" },
          m.status === "loaded"
            ? [el("button", { type: "button", "data-action": "unload", onclick: () => act(m.id, "unload") }, "Unload"),
              el("a", { href: `#/playground/${encodeURIComponent(m.id)}` }, "Playground")]
            : el("button", { type: "button", "data-action": "load", disabled: m.status === "loading", onclick: () => act(m.id, "load") }, "Load"))))));
    } catch (e) {
      msg.textContent = `Cannot list the models: ${e.message}`;
    }
  };
  load();
  const timer = setInterval(load, 3000);
  return () => clearInterval(timer);
}
