#!/usr/bin/env python3
"""A file server for bench/nagle.sh: Python's http.server in HTTP/1.1 mode,
which writes each answer's head and body in two sends without TCP_NODELAY,
so that Nagle's algorithm holds the body until the client acknowledges the
head.

    nagle-server.py PORT DIR DELAY_MS [LOG]

Serves the files of DIR (read once, at start) with keep-alive, one thread
per connection; each answer waits DELAY_MS first, as from a server that
far away. Honours one `Range: bytes=A-B` (or `A-`) with a 206, or a 416
`bytes */LENGTH` when it starts past the end. With LOG, appends a line per
request to it: its path and Range. Only for benchmarks on 127.0.0.1: it
trusts its clients.
"""
import http.server
import os
import re
import sys
import threading
import time

PORT, ROOT, DELAY = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 1000
LOG = open(sys.argv[4], "a", buffering=1) if len(sys.argv) > 4 else None
LOG_LOCK = threading.Lock()
RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
FILES = {}
for folder, _, names in os.walk(ROOT):
    for name in names:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            FILES["/" + os.path.relpath(path, ROOT)] = f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        asked = self.headers.get("Range")
        if LOG:
            with LOG_LOCK:
                LOG.write(f"{self.path} {asked or '-'}\n")
        if DELAY:
            time.sleep(DELAY)
        body = FILES.get(self.path.split("?")[0])
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        found = RANGE.match(asked or "")
        if found and int(found[1]) >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if found:
            first = int(found[1])
            last = min(int(found[2] or len(body) - 1), len(body) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
            body = body[first : last + 1]
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()  # the head's send
        self.wfile.write(body)  # the body's send


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


Server(("127.0.0.1", PORT), Handler).serve_forever()
