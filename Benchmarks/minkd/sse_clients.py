"""Opens N server-sent-event subscriptions to minkd and keeps them open (reading) until stdin closes.

Usage: python3 sse_clients.py PORT N
Prints "ready N" once every subscription received its `caught-up` message.
"""
import selectors, socket, sys

port, n = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
pending = set()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/subscriptions/all HTTP/1.1\r\nHost: bench\r\n\r\n")
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
sys.stdin.read()
