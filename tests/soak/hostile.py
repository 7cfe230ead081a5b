#!/usr/bin/env python3
"""Hostile traffic for the soak run: a loop of bad clients against one Herald, on loopback.

Each round opens a mix of misbehaving connections (garbage request lines, oversized heads and
bodies, conflicting framing, bad upgrades, unmasked / reserved-opcode / invalid-UTF-8 frames,
fragment storms, invalid JSON and forged signatures on the REST API, slowloris dribblers, idle
half-open sockets, websockets that never read) and checks that each gets an answer of the
right family or a close. Bounded by --seconds; prints a summary line at the end and exits 1 if
the server stopped answering.
"""
import argparse, os, random, socket, struct, sys, time

def conn(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s

def status_of(s):
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return None
        data += chunk
    try:
        return int(data.split(b" ", 2)[1])
    except Exception:
        return -1

def http_case(port, raw, want):
    try:
        s = conn(port)
        s.sendall(raw)
        st = status_of(s)
        s.close()
        return st in want
    except OSError:
        return False

def ws_open(port, path="/echo"):
    s = conn(port)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        c = s.recv(4096)
        if not c:
            raise OSError("closed during handshake")
        data += c
    return s

def frame(op, payload, fin=True, masked=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    m = 0x80 if masked else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not masked:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

def ws_case(port, data, want_code):
    try:
        s = ws_open(port)
        s.sendall(data)
        hdr = s.recv(2)
        if len(hdr) < 2 or hdr[0] & 0x0F != 8:
            return False
        body = s.recv(125)
        s.close()
        return len(body) >= 2 and struct.unpack("!H", body[:2])[0] == want_code
    except OSError:
        return False

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--slowloris", type=int, default=300)
    a = ap.parse_args()
    port = a.port
    http_cases = [
        (b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", {400}),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n", {431}),
        (b"POST /connect HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", {413}),
        (b"POST /connect HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", {400}),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", {400, 426}),
        (b"POST /message HTTP/1.1\r\nX-Channelstream-Secret: forged.AAAA.BBBB\r\nContent-Length: 2\r\n\r\n[]", {401}),
        (b"POST /connect HTTP/1.1\r\nContent-Length: 7\r\n\r\n{nope}!", {403, 500}),
        (b"GET /listen?conn_id=garbage HTTP/1.1\r\n\r\n", {422}),
        (b"GET /listen?conn_id=11111111-2222-3333-4444-555555555555 HTTP/1.1\r\n\r\n", {401}),
    ]
    ws_cases = [
        (frame(1, b"unmasked", masked=False), 1002),
        (frame(3, b""), 1002),
        (frame(1, b"x", rsv=4), 1002),
        (frame(1, b"\xff\xfe"), 1007),
        (frame(9, b"x" * 126), 1002),
        (b"".join(frame(0 if i else 1, b"f", fin=False) for i in range(2000)) + frame(1, b"new"), 1002),
    ]
    deadline = time.time() + a.seconds
    ok = bad = rounds = 0
    dribblers, idlers, sinks = [], [], []
    while time.time() < deadline:
        rounds += 1
        for raw, want in http_cases:
            if http_case(port, raw, want): ok += 1
            else: bad += 1
        for data, code in ws_cases:
            if ws_case(port, data, code): ok += 1
            else: bad += 1
        # Slowloris: keep up to N dribbling connections, one byte each per round.
        try:
            while len(dribblers) < a.slowloris:
                s = conn(port); s.sendall(b"GET / HTTP/1.1\r\n"); dribblers.append(s)
        except OSError:
            pass
        for s in list(dribblers):
            try:
                s.sendall(b"X")
            except OSError:
                dribblers.remove(s); s.close()
        # Idle half-open sockets and websockets that never read their echoes.
        try:
            if len(idlers) < 50:
                idlers.append(conn(port))
            if len(sinks) < 5:
                w = ws_open(port)
                w.setblocking(False)
                sinks.append(w)
            for w in sinks:
                try:
                    w.send(frame(2, os.urandom(8192)))
                except OSError:
                    pass
        except OSError:
            pass
        time.sleep(0.2)
    for s in dribblers + idlers + sinks:
        s.close()
    alive = http_case(port, b"OPTIONS / HTTP/1.1\r\n\r\n", {200})
    print("hostile: %d rounds, %d answered as expected, %d not, server alive: %s" % (rounds, ok, bad, alive))
    sys.exit(0 if alive and bad == 0 else 1)

if __name__ == "__main__":
    main()
