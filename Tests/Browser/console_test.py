"""The web console under /ui/, used the way a person uses it, in headless Chromium.

Starts a real minkd (SQLite, auth on with an admin token; the live tail's EventSource passes it
as `access_token`), then: loads the
console, enters the token, sees a stream the test appended, sees a live event in the tail
within 2 s of its append, presses rebuild and sees the status change, and finds no error in
the browser's console (CSP violations are reported there too). Run by scripts/console-browser-test.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

# The console re-renders its tables while they are polled: an element found in one step can be
# gone in the next. Every wait retries on that instead of failing (a CI run did).
STALE = (StaleElementReferenceException,)

MINKD = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/minkd"
TOKEN = "console-test-token"
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS") or tempfile.mkdtemp(prefix="console-shots-")


def config(auth):
    text = ""
    if auth:
        text += f"""auth:
  enabled: true
  tokens:
    - name: "console"
      sha256: "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
      tenant: "*"
      roles: [read, write, admin]
"""
    text += """projections:
  - name: orders
    mode: async
    handlers:
      - event: OrderCreated
        id: "$.data.orderId"
        set:
          orderId: "$.data.orderId"
          status: "$.data.status"
          total: "$.data.total"
"""
    return text


class Minkd:
    def __init__(self, auth):
        self.dir = tempfile.mkdtemp(prefix="console-minkd-")
        path = os.path.join(self.dir, "minkd.yaml")
        with open(path, "w") as f:
            f.write(config(auth))
        self.log = open(os.path.join(self.dir, "minkd.log"), "w+")
        self.proc = subprocess.Popen(
            [MINKD, "serve", "--config", path, "--storage", "sqlite", "--data-dir", os.path.join(self.dir, "data"),
             "--listen", "127.0.0.1:0", "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline and self.port is None:
            self.log.seek(0)
            m = re.search(r'"address":"127\.0\.0\.1:(\d+)', self.log.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.1)
        if self.port is None:
            self.stop()
            raise SystemExit("minkd did not start")
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None):
        req = urllib.request.Request(self.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def accepts_access_token(server):
    try:
        urllib.request.urlopen(f"{server.base}/v1/events/head?access_token={TOKEN}", timeout=5).read()
        return True
    except urllib.error.HTTPError:
        return False


def lists_streams(server):
    try:
        server.request("GET", "/v1/streams")
        return True
    except urllib.error.HTTPError:
        return False


def append(server, stream, events):
    return server.request("POST", f"/v1/streams/{stream}", {"events": events})


def main():
    server = Minkd(auth=True)
    if not accepts_access_token(server):
        # The live tail is an EventSource, which can only authenticate with `access_token`
        # (HTTP-API.md section 2): without it the console cannot work with auth on.
        server.stop()
        print("console-test: FAILED: minkd refuses ?access_token= on a GET")
        sys.exit(1)
    failures = []
    driver = None
    try:
        # A stream to find, and enough events that a rebuild is observable.
        append(server, "order-1", [{"type": "OrderCreated", "data": {"orderId": "o-1", "status": "pending", "total": 120}}])
        for batch in range(6):
            append(server, f"bulk-{batch}", [{"type": "OrderCreated", "data": {"orderId": f"b-{batch}-{i}", "status": "open", "total": i}}
                                            for i in range(500)])

        options = webdriver.ChromeOptions()
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-gpu"]:
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        chromium = shutil.which("chromium")
        if chromium:
            options.binary_location = chromium
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        wait = WebDriverWait(driver, 10, poll_frequency=0.05, ignored_exceptions=STALE)

        driver.get(server.base + "/ui/")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "connect").click()
        wait.until(lambda d: d.find_element(By.ID, "fact-head-position").text not in ("", "0"))
        wait.until(lambda d: d.find_element(By.ID, "fact-storage").text == "sqlite")
        time.sleep(2.2)  # one refresh, so appends/s has a value
        driver.save_screenshot(os.path.join(SHOTS, "overview.png"))

        # Streams: the stream the test appended, and its events.
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=streams]").click()
        def open_stream(d):
            link = next((a for a in d.find_elements(By.CSS_SELECTOR, "a.stream-link") if a.text == "order-1"), None)
            if link is None:
                return False
            link.click()  # a stale link raises, and the wait finds it again
            return True
        wait.until(open_stream)
        wait.until(lambda d: "pending" in d.find_element(By.ID, "stream-events").text)
        driver.save_screenshot(os.path.join(SHOTS, "streams.png"))

        # The live tail: an event appended now shows within 2 s.
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=log]").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log-table tbody tr")) > 0)
        driver.find_element(By.ID, "tail-toggle").click()
        wait.until(lambda d: d.find_element(By.ID, "tail-state").text.startswith("live"))
        started = time.time()
        result = append(server, "order-2", [{"type": "OrderCreated", "data": {"orderId": "o-2", "status": "pending", "total": 7}}])
        position = result["toPosition"]
        WebDriverWait(driver, 2, poll_frequency=0.02, ignored_exceptions=STALE).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f'#log-table tr[data-position="{position}"]'))
        elapsed = time.time() - started
        print(f"console-test: live event shown {elapsed * 1000:.0f} ms after its append")
        # Pause, append, resume: nothing lost, nothing twice.
        driver.find_element(By.ID, "tail-toggle").click()
        paused = append(server, "order-3", [{"type": "OrderCreated", "data": {"orderId": "o-3", "status": "pending", "total": 8}}])
        driver.find_element(By.ID, "tail-toggle").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#log-table tr[data-position="{paused["toPosition"]}"]'))
        rows = driver.execute_script(
            'return Array.from(document.querySelectorAll("#log-table tbody tr"), r => r.getAttribute("data-position"));')
        if len(rows) != len(set(rows)):
            failures.append(f"the tail shows an event twice: {rows[:10]}")
        driver.save_screenshot(os.path.join(SHOTS, "log.png"))
        driver.find_element(By.ID, "tail-toggle").click()

        # Projections: rebuild, and the status changes (rebuilding, then running again).
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=projections]").click()
        # The table re-renders while it is polled: read and click in one script, so no element
        # found here goes stale before it is used (a CI run failed on exactly that).
        status = lambda d: d.execute_script(
            'const e = document.querySelector(\'tr[data-projection="orders"] .status\');'
            ' return e ? e.textContent.trim() : null;')
        wait.until(lambda d: status(d) == "running")
        seen = set()
        clicked = driver.execute_script(
            'const b = document.querySelector(\'tr[data-projection="orders"] .action-rebuild\');'
            ' if (!b) return false; b.click(); return true;')
        if not clicked:
            raise RuntimeError("no rebuild button for the orders projection")
        WebDriverWait(driver, 20, poll_frequency=0.02, ignored_exceptions=STALE).until(lambda d: seen.add(status(d)) or "rebuilding" in seen)
        driver.save_screenshot(os.path.join(SHOTS, "projections.png"))
        WebDriverWait(driver, 30, poll_frequency=0.1, ignored_exceptions=STALE).until(lambda d: status(d) == "running")

        # Read models: one filter, the result table.
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=readmodels]").click()
        driver.find_element(By.ID, "query-model").send_keys("orders")
        driver.find_element(By.CSS_SELECTOR, "#query-groups .f-field").send_keys("status")
        driver.find_element(By.CSS_SELECTOR, "#query-groups .f-value").send_keys("pending")
        driver.find_element(By.CSS_SELECTOR, "#query-form button[type=submit]").click()
        wait.until(lambda d: d.find_element(By.ID, "query-total").text.endswith("of 3"))
        driver.save_screenshot(os.path.join(SHOTS, "readmodels.png"))

        # The browser's console: no error of any kind (a CSP violation is one).
        if not lists_streams(server):
            failures.append("GET /v1/streams is not served: the console's stream list cannot work")
        for entry in driver.get_log("browser"):
            message = entry["message"]
            if entry["level"] in ("SEVERE", "ERROR") or "Content Security Policy" in message:
                failures.append(f"browser console: {message}")
    except Exception as e:  # a timeout or a missing element: one failure with the page's state
        failures.append(f"{type(e).__name__}: {e}")
        if driver is not None:
            driver.save_screenshot(os.path.join(SHOTS, "failure.png"))
            failures.append("page text: " + driver.find_element(By.TAG_NAME, "body").text[:1500])
            for entry in driver.get_log("browser"):
                failures.append(f"browser console: {entry['message']}")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
    print(f"console-test: screenshots in {SHOTS}")
    for f in failures:
        print("FAIL", f)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
