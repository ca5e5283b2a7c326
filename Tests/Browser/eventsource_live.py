#!/usr/bin/env python3
"""Headless Chromium against a real minkd: a page served from another origin opens
`new EventSource(api + '/v1/subscriptions/all?access_token=...')`, this script appends an event
with the writer token, and the page must receive it live within the time limit.

Run by Tests/MinkServerTests/BrowserEventSourceTests.swift (which starts minkd with auth on and
CORS allowing the page's origin); needs what scripts/browser-deps installs.
Usage: eventsource_live.py --api URL --page-port N --reader TOKEN --writer TOKEN [--timeout S]
Exit 0 on success; otherwise 1 with the reason and the page's log on stderr.
"""
import argparse
import http.server
import json
import sys
import threading
import time
import urllib.request

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>minkd EventSource</title></head>
<body><pre id="log"></pre>
<script>
// The documented browser example (docs/http-api.md): EventSource cannot send headers, so the
// token goes in the URL as access_token.
const params = new URLSearchParams(location.search);
const api = params.get('api'), token = params.get('token');
window.received = []; window.caughtUp = false; window.errors = []; window.headStatus = null;
const log = (m) => { document.getElementById('log').textContent += m + '\\n'; };
const source = new EventSource(api + '/v1/subscriptions/all?access_token=' + encodeURIComponent(token));
source.onmessage = (e) => { const ev = JSON.parse(e.data); window.received.push(ev.type); log('event ' + ev.type); };
source.addEventListener('caught-up', (e) => { window.caughtUp = true; log('caught-up ' + e.data); });
source.onerror = () => { window.errors.push('error readyState=' + source.readyState); log('error ' + source.readyState); };
// A cross-origin fetch with the token in the URL too (a GET: no preflight).
fetch(api + '/v1/events/head?access_token=' + encodeURIComponent(token))
  .then((r) => { window.headStatus = r.status; window.headTrace = r.headers.get('traceparent'); })
  .catch((e) => { window.headStatus = 'failed: ' + e; });
</script></body></html>
"""


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def fail(message, driver=None):
    print("browser test failed: " + message, file=sys.stderr)
    if driver is not None:
        try:
            print("page: " + driver.find_element("id", "log").text, file=sys.stderr)
            for entry in driver.get_log("browser"):
                print("console: %s" % entry, file=sys.stderr)
        except Exception as e:  # the diagnosis is best effort; the failure stands
            print("(no page log: %s)" % e, file=sys.stderr)
    sys.exit(1)


def wait(driver, what, script, deadline):
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what, driver)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--page-port", type=int, required=True)
    p.add_argument("--reader", required=True)
    p.add_argument("--writer", required=True)
    p.add_argument("--timeout", type=float, default=30)
    a = p.parse_args()
    deadline = time.monotonic() + a.timeout

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.page_port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_page_load_timeout(max(1, deadline - time.monotonic()))
        from urllib.parse import urlencode
        page = "http://127.0.0.1:%d/?%s" % (a.page_port, urlencode({"api": a.api, "token": a.reader}))
        driver.get(page)
        wait(driver, "the event stream to catch up", "return window.caughtUp === true", deadline)
        wait(driver, "the cross-origin fetch", "return window.headStatus !== null", deadline)
        status = driver.execute_script("return window.headStatus")
        if status != 200:
            fail("GET /v1/events/head?access_token= answered %r" % status, driver)
        if not driver.execute_script("return window.headTrace"):
            fail("traceparent is not exposed to the page", driver)

        body = json.dumps({"events": [{"type": "SeenByBrowser", "data": {"n": 1}}]}).encode()
        req = urllib.request.Request(
            a.api + "/v1/streams/browser-1", data=body, method="POST",
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + a.writer},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 201:
                fail("append answered %d" % r.status)
        appended = time.monotonic()
        wait(driver, "the live event", "return window.received.includes('SeenByBrowser')", min(deadline, appended + 10))
        errors = driver.execute_script("return window.errors")
        if errors:
            fail("the event stream reported errors: %s" % errors, driver)
        print("ok: live event received %.0f ms after the append" % ((time.monotonic() - appended) * 1000))
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
