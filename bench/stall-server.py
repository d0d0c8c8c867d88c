#!/usr/bin/env python3
"""A file server for bench/stall.sh: HTTP/1.1 with keep-alive and single
byte ranges, serving one file, where one answer stalls.

    stall-server.py PORT FILE STALL_FROM STALL_SECONDS RATE

Each answer is sent at RATE bytes per second at most (a connection of a
capped link: a fast one would be read as one stream, with no ranges to
stall). The first request for a range that starts at byte STALL_FROM or later gets
its head and 1000 bytes, then nothing for STALL_SECONDS, then the
connection is closed. Every other request is served at once. GET /reset
arms the stall again (one stall per download). Only for benchmarks on
127.0.0.1: it trusts its clients.
"""
import http.server
import os
import sys
import threading
import time

PORT, PATH = int(sys.argv[1]), sys.argv[2]
STALL_FROM, STALL_SECONDS = int(sys.argv[3]), float(sys.argv[4])
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
        if not body:
            return
        with lock:
            stall = ranged and start >= STALL_FROM and armed.is_set()
            if stall:
                armed.clear()
        with open(PATH, "rb") as f:
            if stall:
                f.seek(start)
                self.wfile.write(f.read(1000))
                self.wfile.flush()
                time.sleep(STALL_SECONDS)
                self.close_connection = True
                return
            self.wfile.flush()
            offset, left = start, end + 1 - start
            began = time.monotonic()
            while left:
                sent = os.sendfile(self.connection.fileno(), f.fileno(), offset, min(left, CHUNK))
                if sent == 0:
                    return
                offset += sent
                left -= sent
                ahead = (offset - start) / RATE - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
