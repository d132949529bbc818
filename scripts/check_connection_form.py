"""Open the ``mls`` connection form of the Airflow 3 UI in headless Chromium, fill it, save it, screenshot it.

    .venv/bin/python scripts/check_connection_form.py [--out build/connection-form] [--keep-home]

What it does, all on loopback, nothing left running:

1. Chromium: ``/usr/bin/chromium`` (or ``chromium-browser``, ``google-chrome``); if there is none and
   this runs as root, ``apt-get install chromium`` (Debian); otherwise it stops, saying so.
2. Playwright (pinned) in a throw-away venv of its own (``~/.cache/airflow-provider-mls/``), driving
   that Chromium (no browser download).
3. ``airflow db migrate`` and ``airflow api-server`` (this venv's Airflow, 3.x) in a temporary
   ``AIRFLOW_HOME`` (SQLite, every user an admin, test_connection enabled).
4. In the browser: Add Connection, type MLS; checks the form (a one-line host label, dropdowns of
   real values only, typed number fields); fills every field, saves, screenshots each step, and
   presses the list's Test button (on Airflow 3.3.2 it answers "Bad Request": apache/airflow#73298).
5. Reads the connection back with ``airflow connections get`` and checks what was saved.

Screenshots and ``result.json`` go to ``--out``. Exits non-zero when a check fails. Not part of
``make test`` (it needs a browser, and a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PLAYWRIGHT = "playwright==1.55.0"
REPO = Path(__file__).resolve().parent.parent
AIRFLOW = Path(sys.executable).parent / "airflow"
CONN_ID = "mls_form_check"

# The browser part, run by the throw-away venv's Python: argv[1] = JSON settings; prints JSON.
BROWSER_SCRIPT = r"""
import json, sys
from playwright.sync_api import sync_playwright

cfg = json.loads(sys.argv[1])
out = cfg["out"]
result = {"checks": {}, "screenshots": []}

def shot(page, name):
    path = f"{out}/{name}.png"
    page.screenshot(path=path, full_page=True)
    result["screenshots"].append(path)

def open_menu(page, dialog, field):
    for _ in range(5):
        dialog.locator(f"#element_{field} input").first.click(force=True)
        try:
            page.get_by_role("option").first.wait_for(timeout=3000)
            return
        except Exception:
            page.wait_for_timeout(500)
    raise RuntimeError(f"the {field} dropdown did not open")

def options_of(page, dialog, field):
    open_menu(page, dialog, field)
    texts = page.get_by_role("option").all_inner_texts()
    dialog.get_by_text("Add Connection", exact=True).first.click()  # blur: Escape would close the dialog
    page.get_by_role("option").first.wait_for(state="detached")
    return [t.strip() for t in texts]

def choose(page, dialog, field, value):
    open_menu(page, dialog, field)
    page.get_by_role("option", name=value, exact=True).click()
    page.get_by_role("option").first.wait_for(state="detached")

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=cfg["chromium"], args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(cfg["url"] + "/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(cfg["conn_id"])
    dialog.get_by_role("combobox").first.click(force=True)
    page.keyboard.type("MLS")
    page.get_by_role("option", name="MLS", exact=True).click()
    dialog.locator("input[name=host]").wait_for()
    shot(page, "1-standard-fields")

    host_label = dialog.locator("label", has_text="Base URL").first
    box = host_label.bounding_box()
    line = float(host_label.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 24"))
    result["checks"]["host_label"] = host_label.inner_text().strip()
    result["checks"]["host_label_one_line"] = bool(box and box["height"] < 1.8 * line)
    result["checks"]["host_placeholder"] = dialog.locator("input[name=host]").get_attribute("placeholder")

    dialog.locator("input[name=host]").fill(cfg["values"]["host"])
    dialog.locator("input[name=login]").fill(cfg["values"]["login"])
    dialog.locator("input[name=password]").fill(cfg["values"]["password"])

    dialog.get_by_text("Extra Fields", exact=True).click()
    dialog.locator("input[name=element_registry_bucket]").wait_for()
    result["checks"]["env_options"] = options_of(page, dialog, "env")
    result["checks"]["runtime_env_options"] = options_of(page, dialog, "runtime_env")
    result["checks"]["number_inputs"] = {
        name: dialog.locator(f"input[name=element_{name}]").get_attribute("inputmode")
        or dialog.locator(f"input[name=element_{name}]").get_attribute("type")
        for name in ("timeout", "connect_timeout", "read_timeout", "max_retries")
    }
    bucket = dialog.locator("input[name=element_registry_bucket]")
    result["checks"]["bucket_suggestions"] = bucket.evaluate(
        "e => e.list ? Array.from(e.list.options).map(o => o.value) : []"
    )
    result["checks"]["bucket_placeholder"] = bucket.get_attribute("placeholder")
    shot(page, "2-extra-fields-empty")

    choose(page, dialog, "env", cfg["values"]["env"])
    choose(page, dialog, "runtime_env", cfg["values"]["runtime_env"])
    bucket.fill(cfg["values"]["registry_bucket"])
    dialog.locator("input[name=element_console_url]").fill(cfg["values"]["console_url"])
    for name in ("connect_timeout", "read_timeout", "max_retries"):
        dialog.locator(f"input[name=element_{name}]").fill(str(cfg["values"][name]))
    shot(page, "3-filled")

    dialog.get_by_role("button", name="Save").click()
    page.get_by_text(cfg["conn_id"], exact=True).first.wait_for()
    page.wait_for_timeout(500)
    shot(page, "4-saved-list")

    row = page.get_by_role("row").filter(has_text=cfg["conn_id"])
    test = row.get_by_role("button", name="Test")
    if test.count() == 0:
        test = row.locator("button[aria-label*='Test' i], button[title*='Test' i]")
    if test.count():
        test.first.click()
        page.wait_for_timeout(2500)
        toast = page.locator("[role=status], [role=alert], [data-scope=toast]")
        said = [" ".join(t.split()) for t in toast.all_inner_texts() if t.strip()]
        result["checks"]["test_button"] = " | ".join(dict.fromkeys(said))
        shot(page, "5-test-button")
    else:
        result["checks"]["test_button"] = None

    # The REST API's test of the same connection: the workaround docs/connection.md gives.
    token = next((c["value"] for c in page.context.cookies() if c["name"] == "_token"), None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn = page.request.get(cfg["url"] + "/api/v2/connections/" + cfg["conn_id"], headers=headers).json()
    body = {k: conn.get(k) for k in ("connection_id", "conn_type", "host", "login", "extra")}
    body["password"] = cfg["values"]["password"]
    answer = page.request.post(cfg["url"] + "/api/v2/connections/test", data=body, headers=headers)
    result["checks"]["api_test"] = {"status": answer.status, "body": answer.text()[:600]}
    browser.close()
print(json.dumps(result))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("No Chromium found; install it (Debian: apt-get install chromium) and run again.")
    print("Installing Chromium (apt-get install chromium) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    path = shutil.which("chromium")
    if path is None:
        sys.exit("apt-get installed chromium, but it is not on PATH")
    return path


def playwright_python() -> Path:
    """A venv of its own with the pinned Playwright (no browser download: the system Chromium is used)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "airflow-provider-mls"
    venv = cache / PLAYWRIGHT.replace("==", "-")
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        print(f"Installing {PLAYWRIGHT} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PLAYWRIGHT],
            check=True,
        )
        (venv / ".ready").write_text(PLAYWRIGHT)
    return python


def airflow_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"airflow api-server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"airflow api-server did not answer at {url} within {seconds:.0f}s")


def check(result: dict[str, object], saved: dict[str, object], values: dict[str, object]) -> list[str]:
    """What must hold; each failure as a sentence."""
    from airflow_provider_mls.constants import MLSEnv, MLSRuntimeEnv

    checks: dict[str, object] = result["checks"]  # type: ignore[assignment]
    failures = []
    if checks["host_label"] != "Base URL" or not checks["host_label_one_line"]:
        failures.append(f"host label {checks['host_label']!r} is not the one-line 'Base URL'")
    if "127.0.0.1" in str(checks["host_placeholder"]):
        failures.append(f"host placeholder is a loopback URL: {checks['host_placeholder']!r}")
    for field, enum in (("env", MLSEnv), ("runtime_env", MLSRuntimeEnv)):
        options = checks[f"{field}_options"]
        if options != [e.value for e in enum]:
            failures.append(f"{field} offers {options!r}, expected exactly the {enum.__name__} values")
    numbers = checks["number_inputs"]
    if not isinstance(numbers, dict) or not all(
        v in ("number", "decimal", "numeric") for v in numbers.values()
    ):
        failures.append(f"timeout/retry fields are not number inputs: {numbers!r}")
    if not checks["bucket_suggestions"] and not checks["bucket_placeholder"]:
        failures.append("the registry_bucket field has neither a placeholder nor suggestions")
    extra = saved.get("extra_dejson") or json.loads(str(saved.get("extra") or "{}"))
    if not isinstance(extra, dict):
        return [*failures, f"no extras saved: {saved!r}"]
    for key in ("env", "runtime_env", "registry_bucket", "console_url"):
        if extra.get(key) != values[key]:
            failures.append(f"saved extra {key} = {extra.get(key)!r}, expected {values[key]!r}")
    # The UI may keep a number field's text; what counts is what the hook makes of it.
    from airflow_provider_mls.hooks._config import parse_max_retries, resolve_timeout

    try:
        timeout = resolve_timeout(None, extra)
        retries = parse_max_retries(extra.get("max_retries"))
    except ValueError as exc:
        failures.append(f"the hook refuses the saved timeouts/retries: {exc}")
    else:
        if timeout != (values["connect_timeout"], values["read_timeout"]) or retries != values["max_retries"]:
            failures.append(f"the hook reads timeout {timeout}, max_retries {retries} from {extra!r}")
    if saved.get("host") != values["host"] or saved.get("login") != values["login"]:
        failures.append(f"saved host/login {saved.get('host')!r}/{saved.get('login')!r}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "connection-form")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    chromium = find_chromium()
    python = playwright_python()
    home = Path(tempfile.mkdtemp(prefix="mls-form-check-"))
    env = airflow_env(home)
    values: dict[str, object] = {
        "host": "https://mls.example.com",
        "login": "mls_account",
        "password": "not-a-secret",
        "env": "prd",
        "runtime_env": "YE",
        "registry_bucket": "mls-model-registry-prd",
        "console_url": "https://mls.example.com/models/{model_id}",
        "connect_timeout": 2.5,
        "read_timeout": 30,
        "max_retries": 2,
    }
    server = None
    try:
        subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
        port = _free_port()
        log = (home / "api-server.log").open("wb")
        server = subprocess.Popen(
            [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/api/v2/monitor/health", server)
        cfg = {"url": url, "chromium": chromium, "out": str(out), "conn_id": CONN_ID, "values": values}
        browser = subprocess.run(
            [str(python), "-c", BROWSER_SCRIPT, json.dumps(cfg)], capture_output=True, text=True, timeout=600
        )
        if browser.returncode != 0:
            print(browser.stdout[-3000:], browser.stderr[-5000:], sep="\n")
            return 1
        result = json.loads(browser.stdout.strip().splitlines()[-1])
        got = subprocess.run(
            [str(AIRFLOW), "connections", "get", CONN_ID, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        saved_list = json.loads(got.stdout[got.stdout.index("[") :]) if "[" in got.stdout else []
        saved = saved_list[0] if saved_list else {}
        failures = check(result, saved, values)
        # The workaround of the UI's Test button on 3.3.2: the CLI (or POST /api/v2/connections/test).
        cli_test = subprocess.run(
            [str(AIRFLOW), "connections", "test", CONN_ID],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        said = " ".join(cli_test.stdout.split())
        result["checks"]["cli_test"] = said[said.find("Connection") :][:600]
        result["saved"] = {k: saved.get(k) for k in ("conn_type", "host", "login", "extra_dejson")}
        result["failures"] = failures
        (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        for path in result["screenshots"]:
            print("screenshot:", path)
        print("Test button said:", result["checks"].get("test_button"))
        print("airflow connections test said:", result["checks"].get("cli_test"))
        print("POST /api/v2/connections/test said:", result["checks"].get("api_test"))
        for failure in failures:
            print("FAILED:", failure)
        print("connection form: " + ("OK" if not failures else f"{len(failures)} check(s) failed"))
        return 1 if failures else 0
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if args.keep_home:
            print("AIRFLOW_HOME kept:", home)
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
