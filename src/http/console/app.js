// The console's shell: the keys form, the admin check, and a hash router over the pages
// (#/playground, #/jobs, #/jobs/new/<kind>, #/jobs/<id>, #/models). Each page module exports
// `show(main, params)` returning an optional cleanup that the router calls when leaving.

import { auth, admin, el } from "./api.js";
import * as playground from "./playground.js";
import * as jobs from "./jobs.js";
import * as models from "./models.js";

const main = document.getElementById("main");
let leave = null;
/// Whether the admin token was accepted by the server.
let isAdmin = false;

async function checkAdmin() {
  const msg = document.getElementById("keys-msg");
  isAdmin = false;
  if (auth.adminToken) {
    try {
      await admin("GET", "/models");
      isAdmin = true;
      msg.textContent = "Admin token accepted.";
    } catch (e) {
      msg.textContent = e.status === 404
        ? "This server has no admin API (it was started without --admin-token)."
        : `Admin token refused: ${e.message}`;
    }
  } else {
    msg.textContent = "";
  }
  for (const a of document.querySelectorAll("nav [data-admin]")) a.hidden = !isAdmin;
  document.body.dataset.admin = isAdmin ? "yes" : "no";
}

function route() {
  if (leave) { leave(); leave = null; }
  const parts = (location.hash.replace(/^#\/?/, "") || "playground").split("/").map(decodeURIComponent);
  const page = parts[0];
  for (const a of document.querySelectorAll("[data-nav]"))
    a.setAttribute("aria-current", a.dataset.nav === page ? "page" : "false");
  main.replaceChildren();
  if ((page === "jobs" || page === "models") && !isAdmin) {
    main.append(el("section", { class: "panel" },
      el("h1", {}, "Admin token needed"),
      el("p", {}, "Jobs and models are part of the admin API. Enter the admin token under Keys.")));
    return;
  }
  const module = { playground, jobs, models }[page] || playground;
  leave = module.show(main, parts.slice(1)) || null;
  document.title = `ptr-server · ${page}`;
}

function setupKeys() {
  const form = document.getElementById("keys-form");
  form.apiKey.value = auth.apiKey;
  form.adminToken.value = auth.adminToken;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    auth.apiKey = form.apiKey.value.trim();
    auth.adminToken = form.adminToken.value.trim();
    await checkAdmin();
    route();
  });
  document.getElementById("keys-clear").addEventListener("click", async () => {
    form.reset();
    auth.apiKey = "";
    auth.adminToken = "";
    await checkAdmin();
    route();
  });
}

setupKeys();
window.addEventListener("hashchange", route);
checkAdmin().then(() => {
  if (!isAdmin && !auth.adminToken && !auth.apiKey) document.getElementById("keys").open = false;
  route();
  document.body.dataset.ready = "yes";
});
