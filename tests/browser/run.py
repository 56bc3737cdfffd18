"""The web console (/console) in a real headless browser: Debian's chromium and chromedriver,
driven by Selenium, against the real binary on the real default model, started from another
working directory (so the page must come from the binary itself).

Checks, in order:
  1. without the admin token: no admin panels, and the admin routes answer 401 (from the page's
     own origin and from outside), while the public page loads;
  2. the playground, driven by the keyboard, runs 3 greedy rounds into 3 columns whose text
     equals the API's rounds for the same request, without layout shift while streaming;
  3. the stop button ends the generation: the server's in-flight gauge returns to 0;
  4. with the admin token: a 400 shown next to the field its `param` names; a tiny dataset job
     and a tiny fine-tuning job created from the forms (files uploaded from the page) reach
     `succeeded`; the loss chart has one point per step of the job's metrics events;
  5. the tuned model is in Models with its lineage, loads from there, and answers in the
     playground; a one-item evaluation of it from the page shows its per-round table.
Screenshots of each page at 1280x800 and 390x844 go to --out. Prints `console browser test:
PASS|FAIL` last and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "console-admin-token"
MODEL = "smollm2-135m-instruct"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
GREEDY = {"message": "Name three primary colors.", "rounds": 3, "max_tokens": 24}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(base: str, method: str, path: str, body=None, token: str | None = None):
    """(status, JSON or text) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=300) as res:
            status, text = res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def in_flight(base: str) -> float:
    _, text = http(base, "GET", "/metrics")
    for line in text.splitlines():
        if line.startswith("ptr_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no ptr_requests_in_flight in /metrics")


class Run:
    def __init__(self, driver, base: str, out: Path):
        self.d, self.base, self.out = driver, base, out
        self.failures: list[str] = []
        self.loads = 0

    def check(self, ok: bool, what: str) -> bool:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def wait(self, cond, timeout: float, what: str):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.25).until(lambda d: cond())
        except Exception as e:  # noqa: BLE001 - a timeout, or the page answering oddly
            self.shot(f"failed-{what.replace(' ', '-')[:40]}", sizes=("desktop",))
            raise AssertionError(f"timed out after {timeout}s: {what} ({type(e).__name__})") from e

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def go(self, hash_: str):
        # A new query string each time: a full load, never a same-document hash change.
        self.loads += 1
        self.d.get(f"{self.base}/console?load={self.loads}#{hash_}")
        self.wait(lambda: self.js("return document.body.dataset.ready") == "yes", 30, "the console starts")

    def shot(self, name: str, sizes=("desktop", "phone")):
        for size in sizes:
            w, h = SIZES[size]
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": size == "phone"})
            time.sleep(0.3)
            self.d.save_screenshot(str(self.out / f"{name}-{w}x{h}.png"))
        self.size("desktop")

    def size(self, size: str):
        w, h = SIZES[size]
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": size == "phone"})

    def by(self, css: str):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def fill(self, name: str, value: str):
        field = self.by(f'[name="{name}"]')
        field.clear()
        field.send_keys(value)

    def playground(self, model: str, message: str, rounds: int, max_tokens: int, *, keyboard=False):
        """Fills the playground and sends; returns at once."""
        self.go(f"/playground/{model}")
        self.wait(lambda: self.js("return document.getElementById('pg-model').value") == model, 15, f"{model} is listed")
        self.fill("message", message)
        self.fill("rounds", str(rounds))
        self.fill("temperature", "0")
        self.fill("max_tokens", str(max_tokens))
        # Layout shifts from here on (typing above caused none that matter: the columns are new).
        self.js("""window.__cls = 0; new PerformanceObserver(l => { for (const e of l.getEntries())
            if (!e.hadRecentInput) window.__cls += e.value; }).observe({type: 'layout-shift'});""")
        send = self.by("#pg-send")
        if keyboard:
            self.js("arguments[0].focus()", send)
            send.send_keys(Keys.ENTER)
        else:
            send.click()

    def columns(self) -> list[str]:
        """Each round column's answer: its text without the removed words of the diff."""
        return self.js("""return [...document.querySelectorAll('.round')].map(c => {
            const t = c.querySelector('.round-text').cloneNode(true);
            t.querySelectorAll('del').forEach(d => d.remove());
            return t.textContent; });""")


def no_token(r: Run):
    print("without the admin token", flush=True)
    r.go("/playground")
    hidden = r.js("return [...document.querySelectorAll('nav [data-admin]')].every(a => !a.offsetParent)")
    r.check(hidden and r.js("return document.body.dataset.admin") == "no", "no admin panels in the navigation")
    r.go("/jobs")
    r.check("Admin token needed" in r.by("main").text, "the jobs page asks for the admin token")
    status = r.js("return fetch('/admin/v1/jobs').then(x => x.status)")
    r.check(status == 401, f"the admin routes answer 401 to the page (got {status})")
    for path in ("/admin/v1/jobs", "/admin/v1/models", "/admin/v1/files"):
        status, _ = http(r.base, "GET", path)
        r.check(status == 401, f"GET {path} without a token answers 401 (got {status})")
    status, _ = http(r.base, "GET", "/admin/v1/jobs", token="wrong-token")
    r.check(status == 401, "a wrong token answers 401")


def greedy_rounds(r: Run):
    print("the playground: 3 greedy rounds", flush=True)
    r.playground(MODEL, GREEDY["message"], GREEDY["rounds"], GREEDY["max_tokens"], keyboard=True)
    r.wait(lambda: r.js("return document.getElementById('pg-summary').dataset.stopReason"), 180, "the rounds finish")
    shown = r.columns()
    status, api = http(r.base, "POST", "/v1/chat/completions", {
        "model": MODEL, "temperature": 0, "max_tokens": GREEDY["max_tokens"],
        "messages": [{"role": "user", "content": GREEDY["message"]}],
        "refinement": {"rounds": GREEDY["rounds"], "early_stop": False},
    })
    rounds = [x["content"] for x in api["refinement"]["rounds"]] if status == 200 else []
    r.check(len(shown) == 3, f"3 round columns (got {len(shown)})")
    r.check(shown == rounds, f"the columns equal the API's rounds\n    page: {shown}\n    api:  {rounds}")
    stats = r.js("return [...document.querySelectorAll('.round-stats')].map(s => s.textContent)")
    r.check(all("tokens" in s and "TTFT" in s for s in stats), f"each round shows tokens and TTFT: {stats}")
    cls = r.js("return window.__cls")
    r.check(cls < 0.05, f"no layout shift while streaming (CLS {cls:.4f})")
    r.shot("playground")


def stop_button(r: Run):
    print("the playground: the stop button", flush=True)
    r.playground(MODEL, "Write a long story about a dragon and a knight.", 3, 400)
    r.wait(lambda: len(r.js("return document.querySelector('.round .round-text').textContent")) > 20, 120,
           "round 1 streams")
    r.check(in_flight(r.base) >= 1, "a generation is in flight while streaming")
    r.by("#pg-stop").click()
    deadline = time.time() + 10
    while time.time() < deadline and in_flight(r.base) != 0:
        time.sleep(0.2)
    r.check(in_flight(r.base) == 0, "the in-flight gauge returns to 0 after Stop")
    r.check("Stopped" in r.by("#pg-status").text, "the page says it stopped")


def enter_token(r: Run):
    print("with the admin token", flush=True)
    r.go("/playground")
    r.by("#keys summary").click()
    r.fill("adminToken", TOKEN)
    r.by("#keys-form button[type=submit]").click()
    r.wait(lambda: r.js("return document.body.dataset.admin") == "yes", 15, "the admin token is accepted")
    r.check(r.by('[data-nav="jobs"]').is_displayed(), "the Jobs panel is shown")
    r.by("#keys summary").click()


def wait_job(r: Run, timeout: float) -> str:
    r.wait(lambda: "/jobs/" in r.d.current_url and "/new/" not in r.d.current_url, 30, "the job page opens")
    job_id = r.d.current_url.rsplit("/", 1)[1]
    r.wait(lambda: r.js("return (document.getElementById('job-head') || {}).dataset?.status")
           in ("succeeded", "failed", "cancelled"), timeout, f"{job_id} ends")
    status = r.js("return document.getElementById('job-head').dataset.status")
    r.check(status == "succeeded", f"{job_id} succeeded (got {status})")
    return job_id


def upload(r: Run, field: str, path: Path):
    r.by(f'[data-upload-for="{field}"]').send_keys(str(path))
    r.wait(lambda: r.by(f'[name="{field}"]').get_attribute("value").startswith("file-"), 30, f"{field} uploads")


def dataset_job(r: Run, work: Path):
    print("a dataset job from the page", flush=True)
    queries = work / "queries.jsonl"
    lines = (ROOT / "tests/data/eval/gsm8k_train.jsonl").read_text().splitlines()[:2]
    queries.write_text("\n".join(lines) + "\n")
    r.go("/jobs")
    r.by("#new-dataset").click()
    r.wait(lambda: r.d.find_elements(By.ID, "form-dataset"), 15, "the dataset form opens")
    upload(r, "input_file", queries)
    for name, value in [("limit", "2"), ("weak.max_tokens", "12"), ("strong.max_tokens", "16"),
                        ("filter.k", "2"), ("concurrency", "1"), ("n_thoughts", "0")]:
        r.fill(name, value)
    gold = r.by('[name="filter.gold_check"]')
    if gold.is_selected():
        gold.click()
    r.shot("dataset-form")
    r.by("#form-submit").click()
    r.wait(lambda: r.by('[data-error-for="n_thoughts"]').text, 15, "the 400 is shown")
    r.check("n_thoughts" in r.by('[data-error-for="n_thoughts"]').text,
            f"the 400's message is next to its field: {r.by('[data-error-for=n_thoughts]').text!r}")
    r.fill("n_thoughts", "1")
    r.by("#form-submit").click()
    job = wait_job(r, 240)
    r.wait(lambda: r.js("return document.getElementById('ds-records').dataset.loaded") == "yes", 15, "records load")
    counts = r.js("return Object.fromEntries([...document.querySelectorAll('[data-count]')].map(d => [d.dataset.count, d.textContent]))")
    r.check(counts.get("completed") == "2", f"the progress counts 2 records: {counts}")
    r.check(len(r.d.find_elements(By.CSS_SELECTOR, "#ds-histogram rect.bar")) == 10, "the similarity histogram is drawn")
    r.check(len(r.d.find_elements(By.CSS_SELECTOR, "#ds-sweep tbody tr")) > 0, "the threshold sweep is shown")
    r.wait(lambda: len(r.d.find_elements(By.CSS_SELECTOR, "#ds-records details.record")) == 2, 15, "2 records in the browser")
    r.shot("dataset-job")
    return job


def finetune_job(r: Run, work: Path):
    print("a fine-tuning job from the page", flush=True)
    sample = json.loads((ROOT / "tests/data/ptr/ptr_sample_short.json").read_text())[:3]
    instruction = "Please further think about and give me a more precise and professional answer."
    train = work / "train.jsonl"
    train.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": s["question"]},
        {"role": "assistant", "content": s["output1"], "weight": 0},
        {"role": "user", "content": instruction},
        {"role": "assistant", "content": s["output2"], "weight": 1},
    ]}) + "\n" for s in sample))
    r.go("/jobs/new/fine_tune")
    r.wait(lambda: r.d.find_elements(By.ID, "form-fine_tune"), 15, "the fine-tuning form opens")
    Select(r.by('[name="model"]')).select_by_value(MODEL)
    upload(r, "training_file", train)
    for name, value in [("suffix", "console"), ("hyperparameters.n_epochs", "1"), ("hyperparameters.batch_size", "1"),
                        ("ptr.max_steps", "3"), ("ptr.max_seq_len", "128"), ("ptr.checkpoint_every", "3")]:
        r.fill(name, value)
    r.by("#form-submit").click()
    job = wait_job(r, 420)
    _, events = http(r.base, "GET", f"/admin/v1/fine_tuning/jobs/{job}/events?limit=100", token=TOKEN)
    steps = {e["data"]["step"] for e in events["data"]
             if e["type"] == "metrics" and e.get("data") and "train_loss" in e["data"]}
    r.wait(lambda: len(r.d.find_elements(By.CSS_SELECTOR, "#ft-loss circle.pt.train")) == len(steps), 15,
           "the chart catches up")
    points = r.d.find_elements(By.CSS_SELECTOR, "#ft-loss circle.pt.train")
    r.check(len(steps) == 3 and len(points) == 3, f"the loss chart has one point per step ({len(points)} points, steps {sorted(steps)})")
    r.check(len(r.d.find_elements(By.CSS_SELECTOR, "#ft-checkpoints tbody tr")) == 1, "the checkpoint is listed")
    model = r.by("#ft-model-id").text
    r.shot("fine-tuning-job")
    return job, model


def eval_job(r: Run, work: Path, model: str):
    print("an evaluation job from the page", flush=True)
    items = work / "gsm8k.jsonl"
    items.write_text((ROOT / "tests/data/eval/gsm8k_test.jsonl").read_text().splitlines()[0] + "\n")
    r.go("/jobs/new/eval")
    r.wait(lambda: r.d.find_elements(By.ID, "form-eval"), 15, "the evaluation form opens")
    Select(r.by('[name="model"]')).select_by_value(model)
    upload(r, "tasks[0].file", items)
    for name, value in [("rounds", "2"), ("limit", "1"), ("max_tokens", "16")]:
        r.fill(name, value)
    r.by("#form-submit").click()
    wait_job(r, 240)
    r.wait(lambda: r.js("return document.getElementById('ev-items').dataset.loaded") == "yes", 15, "items load")
    rows = r.d.find_elements(By.CSS_SELECTOR, "#ev-table-gsm8k tbody tr")
    r.check(len(rows) == 2, f"the per-round table has 2 rounds (got {len(rows)})")
    r.check(len(r.d.find_elements(By.CSS_SELECTOR, "#ev-chart circle.pt")) == 2, "the accuracy chart has 2 points")
    r.wait(lambda: r.d.find_elements(By.CSS_SELECTOR, "#ev-items details.item"), 15, "the item is listed")
    r.shot("eval-job")


def models_and_tuned_answer(r: Run, job: str, model: str):
    print("the tuned model in Models and the playground", flush=True)
    r.go("/models")
    row = f'tr[data-model="{model}"]'
    r.wait(lambda: r.d.find_elements(By.CSS_SELECTOR, row), 15, "the tuned model is listed")
    cells = [c.text for c in r.by(row).find_elements(By.TAG_NAME, "td")]
    r.check(cells[2] == MODEL and cells[3] == job, f"its lineage: parent {cells[2]}, created by {cells[3]}")
    r.by(f'{row} [data-action="load"]').click()
    # The table redraws every few seconds: read it by script, never through a held element.
    r.wait(lambda: r.js(f"return document.querySelector('{row}')?.dataset.status") == "loaded", 120,
           "the tuned model loads")
    r.shot("models")
    r.playground(model, "What is the capital of France?", 1, 16)
    r.wait(lambda: r.js("return document.getElementById('pg-summary').dataset.stopReason"), 120, "the tuned model answers")
    answer = r.columns()
    r.check(len(answer) == 1 and answer[0].strip() != "", f"the tuned model answers in the playground: {answer}")
    r.go("/jobs")
    r.wait(lambda: len(r.d.find_elements(By.CSS_SELECTOR, "#jobs-body tr[data-job]")) == 2, 15, "the index lists both jobs")
    r.shot("jobs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/ptr-server/target"))
    ap.add_argument("--bin", type=Path, default=target / "debug/ptr-server")
    ap.add_argument("--out", type=Path, default=target / "console-browser-test")
    args = ap.parse_args()
    started = time.time()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="ptr-console-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(args.out / "server.log", "w")
    # Another working directory: the console must come from the binary, not from the checkout.
    server = subprocess.Popen(
        [str(args.bin.resolve()), "serve", "--port", str(port), "--models", str(ROOT / "models.toml"),
         "--admin-token", TOKEN, "--data-dir", str(work / "data")],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    driver = None
    failures = ["did not finish"]
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise AssertionError(f"the server exited ({server.returncode}); see {args.out}/server.log")
            try:
                if http(base, "GET", "/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1280,800", "--disable-extensions", "--no-first-run"):
            opts.add_argument(a)
        driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
        r = Run(driver, base, args.out)
        r.size("desktop")
        no_token(r)
        greedy_rounds(r)
        stop_button(r)
        enter_token(r)
        dataset_job(r, work)
        job, model = finetune_job(r, work)
        models_and_tuned_answer(r, job, model)
        eval_job(r, work, model)
        failures = r.failures
    except AssertionError as e:
        print(f"  FAIL {e}", flush=True)
        failures = [str(e)]
    finally:
        if driver:
            driver.quit()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots and the server log: {args.out} ({len(list(args.out.glob('*.png')))} PNGs); "
          f"{time.time() - started:.0f} s")
    print(f"console browser test: {'PASS' if not failures else 'FAIL'}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
