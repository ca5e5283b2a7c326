"""Drives one minkd for Benchmarks/compare/projections.sh (black box, over HTTP).
  projections.py PORT load N        appends N events: orders of 1 OrderCreated + 9 ItemAdded,
                                    one stream per order, 8 connections
  projections.py PORT catchup T0    waits until `orders` has caught up with the head; events/s
                                    since T0 (the process's launch, Unix time)
  projections.py PORT rebuild       POST .../rebuild, waits until reads switched; events/s, and
                                    how many reads answered (all from a complete copy) meanwhile
  projections.py PORT probe S        the live probe below without the background appenders
                                    (projections.sh paces those with wrk: Python cannot reach
                                    1,000 appends/s on this machine)
  projections.py PORT delay         the server's own measure, from /metrics: each projection's
                                    mink_projection_delay_seconds (event appended -> its batch
                                    committed, every event the projection applied): count,
                                    median, p99 (interpolated in the histogram's buckets) and
                                    the share within 5 ms
  projections.py PORT live RATE S   appends ItemAdded events at about RATE/s for S seconds (4
                                    threads) while a fifth appends one at a time and polls
                                    GET /v1/readmodels/orders/{id} until it shows it: append 201 ->
                                    visible, median and p99
"""
import http.client, json, sys, time, threading

port, phase = int(sys.argv[1]), sys.argv[2]


def client():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=120)


def req(c, method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"null")


def status(c):
    s, b = req(c, "GET", "/v1/projections/orders")
    assert s == 200, (s, b)
    if b["status"] == "faulted":
        sys.exit(f"faulted: {b}")
    return b


if phase == "load":
    n = int(sys.argv[3]); per = 10; orders = n // per; workers = 8

    def work(k):
        c = client()
        for o in range(k, orders, workers):
            oid = f"o{o}"
            evs = [{"type": "OrderCreated", "data": {"orderId": oid, "total": 0}}] + [
                {"type": "ItemAdded", "data": {"orderId": oid, "sku": f"s{i}", "price": 1.5}} for i in range(per - 1)]
            s, b = req(c, "POST", f"/v1/streams/order-{o}", {"expectedVersion": "no_stream", "events": evs})
            assert s == 201, (s, b)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(req(client(), "GET", "/v1/events/head")[1])
elif phase == "catchup":
    # From the launch of the process (argv[3], Unix time): the projection starts with the server,
    # so a fast catch-up is mostly over by the first poll; the figure includes the start-up.
    launched = float(sys.argv[3])
    c = client()
    while True:
        b = status(c)
        if b["checkpoint"] >= b["head"] > 0: break
        time.sleep(0.002)
    dt = time.time() - launched
    d = req(c, "GET", "/v1/readmodels/orders/o7")[1]
    ok = d and d.get("itemCount") == 9 and d.get("total") == 13.5
    print(f"catch-up of {b['head']} events in {dt:.2f} s from the process's launch = {b['head'] / dt:,.0f} events/s (document {'ok' if ok else 'WRONG ' + str(d)})")
elif phase == "rebuild":
    c = client(); r = client()
    head = status(c)["head"]
    t0 = time.perf_counter()
    s, b = req(c, "POST", "/v1/projections/orders/rebuild")
    assert s == 202, (s, b)
    reads = bad = 0
    while True:
        b = status(c)
        if b["status"] == "running" and b.get("rebuildCheckpoint") is None: break
        d = req(r, "GET", "/v1/readmodels/orders/o7")[1]
        reads += 1
        if not (d and d.get("itemCount") == 9): bad += 1
        time.sleep(0.005)
    dt = time.perf_counter() - t0
    print(f"rebuild of {head} events in {dt:.2f} s = {head / dt:,.0f} events/s; {reads} reads meanwhile, {bad} not from a complete copy")
elif phase == "probe":
    # The live probe alone (projections.sh runs the background load with wrk, paced).
    seconds = float(sys.argv[3]); stop = time.perf_counter() + seconds
    c = client(); lat = []; n = 0; t0 = time.perf_counter()
    while time.perf_counter() < stop:
        oid = f"live{n % 20}"
        s, b = req(c, "POST", f"/v1/streams/live-{n % 20}", {"events": [
            {"type": "ItemAdded", "data": {"orderId": oid, "sku": "y", "price": 1}}]})
        assert s == 201, (s, b)
        t = time.perf_counter(); want = n // 20 + 1
        while True:
            s, d = req(c, "GET", f"/v1/readmodels/orders/{oid}")
            if s == 200 and d.get("itemCount", 0) >= want: break
            if time.perf_counter() - t > 5: sys.exit(f"not visible after 5 s: {oid}")
        lat.append((time.perf_counter() - t) * 1000); n += 1
        time.sleep(0.005)
    dt = time.perf_counter() - t0
    lat.sort()
    print(f"probe: {n / dt:,.0f} appends/s, append 201 -> visible over {n} samples: "
          f"median {lat[len(lat) // 2]:.2f} ms, p99 {lat[int(len(lat) * 0.99)]:.2f} ms, max {lat[-1]:.2f} ms")
elif phase == "delay":
    import re
    c = client(); c.request("GET", "/metrics"); text = c.getresponse().read().decode()
    buckets = {}
    for m in re.finditer(r'^mink_projection_delay_seconds_bucket\{([^}]*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        buckets.setdefault(labels["projection"], []).append((le, float(m.group(2))))

    def quantile(bs, q):
        total = bs[-1][1]; want = q * total; lo, below = 0.0, 0.0
        for le, n in bs:
            if n >= want:
                if le == float("inf"): return lo
                return lo + (le - lo) * ((want - below) / (n - below) if n > below else 1)
            lo, below = le, n
        return lo

    parts = []
    for name in sorted(buckets):
        bs = sorted(buckets[name]); total = bs[-1][1]
        if total == 0: continue
        within5 = next((n for le, n in bs if abs(le - 0.005) < 1e-9), 0) / total
        parts.append(f"{name} {int(total)} events: median {quantile(bs, 0.5) * 1000:.2f} ms, "
                     f"p99 {quantile(bs, 0.99) * 1000:.2f} ms, {within5 * 100:.2f} % within 5 ms")
    print("server-side delay (append -> batch committed): " + "; ".join(parts))
elif phase == "live":
    rate, seconds = int(sys.argv[3]), float(sys.argv[4])
    stop = time.perf_counter() + seconds
    sent = [0]

    def background(k):
        c = client(); interval = 4.0 / rate; nxt = time.perf_counter(); i = 0
        while time.perf_counter() < stop:
            s, b = req(c, "POST", f"/v1/streams/bg-{k}-{i % 50}", {"events": [
                {"type": "ItemAdded", "data": {"orderId": f"bg{k}-{i % 50}", "sku": "x", "price": 1}}]})
            assert s == 201, (s, b)
            sent[0] += 1; i += 1; nxt += interval
            time.sleep(max(0.0, nxt - time.perf_counter()))

    ts = [threading.Thread(target=background, args=(k,)) for k in range(4)]
    [t.start() for t in ts]
    c = client(); lat = []; n = 0; t0 = time.perf_counter()
    while time.perf_counter() < stop:
        oid = f"live{n % 20}"
        s, b = req(c, "POST", f"/v1/streams/live-{n % 20}", {"events": [
            {"type": "ItemAdded", "data": {"orderId": oid, "sku": "y", "price": 1}}]})
        assert s == 201, (s, b)
        t = time.perf_counter(); want = n // 20 + 1
        while True:
            s, d = req(c, "GET", f"/v1/readmodels/orders/{oid}")
            if s == 200 and d.get("itemCount", 0) >= want: break
            if time.perf_counter() - t > 5: sys.exit(f"not visible after 5 s: {oid}")
        lat.append((time.perf_counter() - t) * 1000); n += 1
        time.sleep(0.005)
    [t.join() for t in ts]
    dt = time.perf_counter() - t0
    lat.sort()
    print(f"live: {(sent[0] + n) / dt:,.0f} appends/s, append 201 -> visible over {n} samples: "
          f"median {lat[len(lat) // 2]:.2f} ms, p99 {lat[int(len(lat) * 0.99)]:.2f} ms")
