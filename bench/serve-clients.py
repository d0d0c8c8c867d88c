#!/usr/bin/env python3
"""Clients that load a web server the way hostile ones do, for bench/serve.sh.

    serve-clients.py idle PORT N PID...   N kept-alive connections, idle
    serve-clients.py burst PORT N         N connects at once
    serve-clients.py silent PORT N        N connections that send nothing,
                                          then one client asking for a file

idle: each connection asks for /small.txt once, reads the answer, and then
stays open without a word. Prints the resident memory of the server's
processes (the PIDs, summed: nginx's master and worker) before and with the
N connections, and the difference per connection, in KiB:
    idle N RSS_BEFORE_KIB RSS_WITH_KIB KIB_PER_CONNECTION

burst: N non-blocking connects started at once, then each asks for
/small.txt once the connects are all through. Prints the seconds until every
connect completed (SYNs dropped by a full accept queue are sent again by the
kernel after 1 s, 3 s, ...), until every answer arrived, and how many were
200 and 503:
    burst N CONNECT_S ANSWERED_S OK REFUSED OTHER

silent: N connections that send nothing (slowloris without the bytes), then
a new client asks for /small.txt, every second for up to 30 s, until it is
answered 200. Prints how many seconds that took and what the earlier
attempts got:
    silent N SERVED_AFTER_S ATTEMPTS STATUSES

    serve-clients.py swap PORT SECONDS DIR   a directory swapped with a link
                                              out of DIR while it is asked for
    serve-clients.py fifo PORT SECONDS DIR   a file swapped with a named pipe
                                              while it is asked for

swap: DIR/d is a directory holding f ("inside"), DIR/link a symbolic link
to a directory outside DIR holding f ("OUTSIDE"); a thread exchanges the two
names atomically (renameat2 RENAME_EXCHANGE) in a loop while two clients ask
for /d/f over kept-alive connections for SECONDS. Prints how many answers
served the outside file:
    swap REQUESTS OUTSIDE INSIDE NOT_FOUND OTHER

fifo: DIR/f is a regular file, DIR/pipe a named pipe nobody writes to; a
thread exchanges them in a loop while two clients ask for /f. A request
unanswered for 5 s counts as a worker blocked, one whose connection was
closed without an answer as closed (either way its client starts a new
connection). Prints, with 1 if a fresh request at the end was answered:
    fifo REQUESTS BLOCKED CLOSED ANSWERED_AFTER

Everything goes to 127.0.0.1. Needs RLIMIT_NOFILE above N (bench/serve.sh
raises it).
"""

import ctypes
import os
import select
import socket
import sys
import threading
import time

REQUEST = b"GET /small.txt HTTP/1.1\r\nHost: bench\r\n\r\n"


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def read_answer(sock):
    """Reads one response with a Content-Length; returns its status."""
    return read_whole(sock, b"")[0]


def idle(port, n, pids):
    before = rss_kib(pids)
    held = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(REQUEST)
        status = read_answer(sock)
        if status != 200:
            raise SystemExit(f"idle: got {status}")
        held.append(sock)
    time.sleep(1)
    with_idle = rss_kib(pids)
    print(f"idle {n} {before} {with_idle} {(with_idle - before) / n:.1f}")
    for sock in held:
        sock.close()


def burst(port, n):
    socks = []
    poller = select.epoll()
    start = time.monotonic()
    for _ in range(n):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        socks.append(sock)
        poller.register(sock.fileno(), select.EPOLLOUT)
    by_fd = {s.fileno(): s for s in socks}
    pending = set(by_fd)
    deadline = start + 60
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(1):
            if fd in pending:
                pending.discard(fd)
                poller.unregister(fd)
    connected = time.monotonic() - start
    failed = [by_fd[fd] for fd in pending]
    counts = {"ok": 0, "refused": 0, "other": len(failed)}
    live = [s for s in socks if s.fileno() not in pending]
    for sock in live:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            counts["other"] += 1
            continue
        sock.setblocking(True)
        sock.settimeout(60)
        try:
            sock.sendall(REQUEST)
        except OSError:
            counts["other"] += 1
    for sock in live:
        try:
            status = read_answer(sock)
        except (OSError, ValueError, IndexError):
            counts["other"] += 1
            continue
        if status == 200:
            counts["ok"] += 1
        elif status == 503:
            counts["refused"] += 1
        else:
            counts["other"] += 1
    answered = time.monotonic() - start
    print(f"burst {n} {connected:.3f} {answered:.3f} {counts['ok']} {counts['refused']} {counts['other']}")
    for sock in socks:
        sock.close()


def silent(port, n):
    held = []
    for _ in range(n):
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        held.append(sock)
    time.sleep(0.5)
    start = time.monotonic()
    statuses = []
    while time.monotonic() - start < 30:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(REQUEST)
                status = read_answer(sock)
        except (OSError, ValueError, IndexError):
            status = 0
        statuses.append(status)
        if status == 200:
            break
        time.sleep(1)
    served = time.monotonic() - start if statuses and statuses[-1] == 200 else float("nan")
    print(f"silent {len(held)} {served:.3f} {len(statuses)} {','.join(map(str, statuses))}")
    for sock in held:
        sock.close()


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def exchanger(a, b, stop):
    """Exchanges the names a and b atomically until stop is set."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = libc.renameat2
    a, b = os.fsencode(a), os.fsencode(b)
    while not stop.is_set():
        if renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
            raise OSError(ctypes.get_errno(), "renameat2")


def ask_for(port, target, seconds, timeout, tally):
    """Asks for target over a kept-alive connection until seconds pass;
    tally(status, body) for each answer, tally(None, None) for none."""
    request = f"GET {target} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    end = time.monotonic() + seconds
    sock = None
    while time.monotonic() < end:
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.settimeout(timeout)
            pending = b""
        try:
            sock.sendall(request)
            status, body, pending = read_whole(sock, pending)
            tally(status, body)
        except socket.timeout:
            tally("timeout", None)
            sock.close()
            sock = None
        except (OSError, ValueError, IndexError):
            tally("closed", None)
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


def read_whole(sock, data):
    """One response from data plus what arrives: (status, body, rest)."""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[:length], rest[length:]


def race(port, seconds, target, a, b, timeout, tally):
    stop = threading.Event()
    swapper = threading.Thread(target=exchanger, args=(a, b, stop))
    swapper.start()
    clients = [
        threading.Thread(target=ask_for, args=(port, target, seconds, timeout, tally))
        for _ in range(2)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    stop.set()
    swapper.join()


def swap(port, seconds, root):
    counts = {"requests": 0, "outside": 0, "inside": 0, "404": 0, "other": 0}
    lock = threading.Lock()

    def tally(status, body):
        with lock:
            counts["requests"] += 1
            if body is not None and b"OUTSIDE" in body:
                counts["outside"] += 1
            elif status == 200 and body == b"inside":
                counts["inside"] += 1
            elif status == 404:
                counts["404"] += 1
            else:
                counts["other"] += 1

    race(port, seconds, "/d/f", f"{root}/d", f"{root}/link", 5, tally)
    # Left as it was: d the directory, link the link.
    if os.path.islink(f"{root}/d"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.renameat2(AT_FDCWD, os.fsencode(f"{root}/d"), AT_FDCWD,
                       os.fsencode(f"{root}/link"), RENAME_EXCHANGE)
    print(f"swap {counts['requests']} {counts['outside']} {counts['inside']} {counts['404']} {counts['other']}")


def fifo(port, seconds, root):
    counts = {"requests": 0, "timeout": 0, "closed": 0}
    lock = threading.Lock()

    def tally(status, _body):
        with lock:
            counts["requests"] += 1
            if status in ("timeout", "closed"):
                counts[status] += 1

    race(port, seconds, "/f", f"{root}/f", f"{root}/pipe", 5, tally)
    # Left as it was: f the file, pipe the pipe.
    if not os.path.isfile(f"{root}/f"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.renameat2(AT_FDCWD, os.fsencode(f"{root}/f"), AT_FDCWD,
                       os.fsencode(f"{root}/pipe"), RENAME_EXCHANGE)
    answered = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /f HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            answered = 1 if read_answer(sock) else 0
    except OSError:
        pass
    print(f"fifo {counts['requests']} {counts['timeout']} {counts['closed']} {answered}")


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode == "idle":
        idle(port, n, [int(p) for p in sys.argv[4:]])
    elif mode == "burst":
        burst(port, n)
    elif mode == "silent":
        silent(port, n)
    elif mode == "swap":
        swap(port, n, sys.argv[4])
    elif mode == "fifo":
        fifo(port, n, sys.argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
