#!/usr/bin/env python3
"""Slow HTTP clients for tests/integration/slowclients.sh and
bench/slowclients, all against kilnd on loopback.

  trickle  COUNT connections, spread over --addrs (source addresses), each
           sending one header line of a GET every --interval seconds and
           never the blank line that ends the headers.  Reports, as JSON,
           how many the server closed and how long they had lived.
           --reconnect opens a new one for each closed (an attacker's
           loop), for the benchmark.
  upload   An honest slow client: a POST whose headers and body arrive in
           --pieces parts --gap seconds apart; then, after --then-wait
           seconds, a second request on the same connection.  Prints each
           answer's status line.
  stall    Headers whole, then a body of 100 bytes one byte per --gap
           seconds: reports whether the server answered or closed.
  hold     COUNT connections from --addrs that send nothing, held until
           killed (or --seconds): for per-address limits.

Every run stops by itself (--seconds).
"""
import argparse
import json
import selectors
import signal
import socket
import sys
import time


def connect(host, port, src):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.settimeout(10)
    s.connect((host, port))
    return s


def ready(path, text):
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        import os
        os.rename(path + ".tmp", path)


def trickle(a):
    addrs = a.addrs.split(",") if a.addrs else [None]
    sel = selectors.DefaultSelector()
    conns = {}          # socket -> [opened at, source, lines sent]
    lives = []
    closed = 0
    failed = 0
    start = time.monotonic()
    stop = []
    # SIGTERM ends the run with its summary (the benchmark stops it so).
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def open_one(i):
        nonlocal failed
        src = addrs[i % len(addrs)]
        # Taken before connect(): the server accepts after it, so a life
        # measured from here is never shorter than the server's count.
        t = time.monotonic()
        try:
            s = connect(a.host, a.port, src)
            s.setblocking(False)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: kiln\r\n")
        except OSError:
            failed += 1
            return
        conns[s] = [t, src, 0]
        sel.register(s, selectors.EVENT_READ)

    for i in range(a.count):
        open_one(i)
    ready(a.ready, "opened %d" % len(conns))
    opened_total = len(conns)
    next_line = time.monotonic() + a.interval
    n = 0
    while conns and not stop and time.monotonic() - start < a.seconds:
        timeout = max(0.0, next_line - time.monotonic())
        gone = []
        for key, _ in sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except BlockingIOError:
                continue
            if not data:
                gone.append(s)
            # Anything else (an answer) is not expected; ignore it.
        if time.monotonic() >= next_line:
            next_line += a.interval
            for s, st in conns.items():
                if s in gone:
                    continue
                try:
                    s.send(b"X-Trickle-%d: %s\r\n" % (st[2], b"x" * 8))
                    st[2] += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    gone.append(s)
        for s in gone:
            st = conns.pop(s)
            sel.unregister(s)
            s.close()
            lives.append(time.monotonic() - st[0])
            closed += 1
            if (a.reconnect and not stop and
                    time.monotonic() - start < a.seconds):
                open_one(n)
                n += 1
                opened_total += 1
    for s in list(conns):
        s.close()
    lives.sort()
    out = {
        "opened": opened_total,
        "connect_failed": failed,
        "closed_by_server": closed,
        "still_open": len(conns),
        "min_life": round(lives[0], 3) if lives else None,
        "max_life": round(lives[-1], 3) if lives else None,
    }
    print(json.dumps(out))


def read_answer(s, deadline):
    """One HTTP answer's status line, or '' when the server closed."""
    buf = b""
    while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return ""
        except socket.timeout:
            continue
        if not d:
            return ""
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length and time.monotonic() < deadline:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status


def upload(a):
    body = a.body.encode()
    head = ("POST %s HTTP/1.1\r\nHost: kiln\r\nContent-Type: "
            "application/json\r\nContent-Length: %d\r\n" %
            (a.path, len(body))).encode()
    s = connect(a.host, a.port, a.addrs)
    end = time.monotonic() + a.seconds
    # Headers in two parts, then the blank line, then the body in parts.
    half = len(head) // 2
    parts = [head[:half], head[half:] + b"\r\n"]
    step = max(1, -(-len(body) // a.pieces))
    parts += [body[i:i + step] for i in range(0, len(body), step)]
    t0 = time.monotonic()
    for i, p in enumerate(parts):
        if i:
            time.sleep(a.gap)
        s.sendall(p)
    took = time.monotonic() - t0
    print("sent %d parts in %.2f s" % (len(parts), took), file=sys.stderr)
    print(read_answer(s, end) or "closed")
    if a.then_wait is not None:
        time.sleep(a.then_wait)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: kiln\r\n\r\n")
            print(read_answer(s, end) or "closed")
        except OSError:
            print("closed")
    s.close()


def stall(a):
    s = connect(a.host, a.port, a.addrs)
    s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: kiln\r\nContent-Type: "
              b"application/json\r\nContent-Length: 100\r\n\r\n{")
    s.setblocking(False)
    end = time.monotonic() + a.seconds
    sent = 1
    got = b""
    while time.monotonic() < end:
        time.sleep(a.gap)
        try:
            d = s.recv(4096)
            if not d:
                print("closed after %d of 100 bytes%s" %
                      (sent, ", answered" if got else ""))
                return
            got += d
        except BlockingIOError:
            pass
        except OSError:
            print("closed after %d of 100 bytes" % sent)
            return
        if sent < 99:
            try:
                s.send(b" ")
                sent += 1
            except BlockingIOError:
                pass
            except OSError:
                print("closed after %d of 100 bytes" % sent)
                return
    print("open after %d of 100 bytes" % sent)


def hold(a):
    addrs = a.addrs.split(",") if a.addrs else [None]
    held = [connect(a.host, a.port, addrs[i % len(addrs)])
            for i in range(a.count)]
    ready(a.ready, "held %d" % len(held))
    time.sleep(a.seconds)
    for s in held:
        s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["trickle", "upload", "stall", "hold"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--addrs", default="")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--ready", default="")
    p.add_argument("--reconnect", action="store_true")
    p.add_argument("--path", default="/v1/jobs")
    p.add_argument("--body", default="{}")
    p.add_argument("--pieces", type=int, default=3)
    p.add_argument("--gap", type=float, default=0.2)
    p.add_argument("--then-wait", type=float, default=None)
    a = p.parse_args()
    {"trickle": trickle, "upload": upload, "stall": stall,
     "hold": hold}[a.mode](a)


if __name__ == "__main__":
    main()
