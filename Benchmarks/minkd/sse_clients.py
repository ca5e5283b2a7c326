"""Opens N server-sent-event subscriptions to minkd and keeps them open (reading) until stdin closes.

Usage: python3 sse_clients.py PORT N HOLD_SECONDS [AFTER]
Prints "ready N" once every subscription received its `caught-up` message, then keeps reading
for HOLD_SECONDS.
"""
import selectors, socket, sys

port, n = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
pending = set()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    after = sys.argv[4] if len(sys.argv) > 4 else "0"
    s.sendall(b"GET /v1/subscriptions/all?after=" + after.encode() + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, data=i)
    pending.add(i)
buffers = {}
while pending:
    for key, _ in sel.select(timeout=10):
        chunk = key.fileobj.recv(65536)
        buffers[key.data] = buffers.get(key.data, b"") + chunk
        if b"caught-up" in buffers[key.data]:
            pending.discard(key.data)
print("ready", n, flush=True)
import time
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    for key, _ in sel.select(timeout=0.5):
        key.fileobj.recv(65536)
