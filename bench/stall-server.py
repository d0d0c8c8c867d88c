#!/usr/bin/env python3
"""A file server for bench/stall.sh: HTTP/1.1 with keep-alive and single
byte ranges, serving one file, where one answer stalls.

    stall-server.py PORT FILE STALL_AT STALL_SECONDS RATE

The first answer to reach byte STALL_AT of the file sends the bytes before
it, then nothing for STALL_SECONDS, then closes its connection: whichever
tool asks, and however it splits the file, the connection that carries
that byte stalls there. Each answer is sent at RATE bytes per second at
most (0: as fast as it goes). GET /reset arms the stall again (one stall
per download). Only for benchmarks on 127.0.0.1: it trusts its clients.
"""
import http.server
import os
import sys
import threading
import time

PORT, PATH = int(sys.argv[1]), sys.argv[2]
STALL_AT, STALL_SECONDS = int(sys.argv[3]), float(sys.argv[4])
RATE = int(sys.argv[5])
CHUNK = 256 * 1024
SIZE = os.path.getsize(PATH)
ETAG = '"%x-%x"' % (SIZE, int(os.path.getmtime(PATH)))
armed = threading.Event()
armed.set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        if self.path == "/reset":
            armed.set()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.answer(body=True)

    def answer(self, body):
        start, end = 0, SIZE - 1
        ranged = self.headers.get("Range", "").startswith("bytes=")
        if ranged:
            first, _, last = self.headers["Range"][6:].partition("-")
            start = int(first)
            end = min(int(last), SIZE - 1) if last else SIZE - 1
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, SIZE))
        self.send_header("Content-Length", str(end + 1 - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", ETAG)
        self.end_headers()
        self.wfile.flush()
        if body:
            self.send_body(start, end)

    def send_body(self, start, end):
        out = self.connection.fileno()
        offset, began = start, time.monotonic()
        with open(PATH, "rb") as f:
            while offset <= end:
                stop = min(end + 1, offset + CHUNK)
                if offset <= STALL_AT < stop:
                    with lock:
                        stall = armed.is_set()
                        armed.clear()
                    if stall:
                        while offset < STALL_AT:
                            offset += os.sendfile(out, f.fileno(), offset, STALL_AT - offset)
                        time.sleep(STALL_SECONDS)
                        self.close_connection = True
                        return
                sent = os.sendfile(out, f.fileno(), offset, stop - offset)
                if sent == 0:
                    return
                offset += sent
                ahead = (offset - start) / RATE - (time.monotonic() - began) if RATE else 0
                if ahead > 0:
                    time.sleep(ahead)


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
