#!/usr/bin/env python3
"""An HTTP/1.1 origin server for gatewayd's tests (Python standard library only).

Every answer says which backend gave it (header X-Backend and, for JSON
answers, "backend"), so a test sees where the gateway sent a request.

    GET  /anything         JSON: backend, method, path, query, headers, http_version
    POST /echo             the request body back (Content-Length or chunked request)
    POST /sha256           JSON: length and SHA-256 of the body, streamed (any size)
    GET  /bytes?size=N&seed=S      N pattern bytes with Content-Length, streamed
    GET  /chunked?size=N&chunk=M&seed=S   the same, chunked, M bytes per chunk
    GET  /close?size=N&seed=S      the same, no length: ends with the connection
    GET  /status/NNN       an empty answer with that status
    GET  /slow?ms=N        sleeps, then answers like /anything
    GET  /drop             closes the connection without answering
    GET  /garbage          answers with something that is not HTTP
    GET  /ws               WebSocket (RFC 6455) echo of text and binary messages
    GET  /__stats          JSON: requests (every other path) and connections that
                           carried one, and the last 500 request targets
    *    /__reset          zero the counters

Expect: 100-continue is answered with 100 Continue by http.server itself.

As a program (one origin per process, so test clients never share its GIL):

    http_origin.py --name mbx1 --port 8080 [--tls CERT KEY] [--pidfile F]

From a test: Origin.start("mbx1", test=self) runs it as a child and waits
for its port; Origin.stats(), Origin.stop().
"""

import argparse
import base64
import collections
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PATTERN_BLOCK = 65536
MAX_BODY_IN_MEMORY = 64 * 1024 * 1024   # /echo keeps the body; /sha256 does not


# ---- deterministic bodies ----------------------------------------------------

def _block(seed):
    out = bytearray()
    h = hashlib.sha256(b"gwtest-%d" % seed).digest()
    while len(out) < PATTERN_BLOCK:
        out += h
        h = hashlib.sha256(h).digest()
    return bytes(out[:PATTERN_BLOCK])


_blocks = {}


def pattern_chunks(size, seed=0, step=PATTERN_BLOCK):
    """The bytes of pattern(size, seed) in pieces of at most `step`."""
    blk = _blocks.get(seed)
    if blk is None:
        blk = _blocks[seed] = _block(seed)
    sent = 0
    while sent < size:
        off = sent % PATTERN_BLOCK
        n = min(step, size - sent, PATTERN_BLOCK - off)
        yield blk[off:off + n]
        sent += n


def pattern(size, seed=0):
    """size deterministic bytes (the same on client and server)."""
    return b"".join(pattern_chunks(size, seed))


def pattern_sha256(size, seed=0):
    h = hashlib.sha256()
    for piece in pattern_chunks(size, seed):
        h.update(piece)
    return h.hexdigest()


# ---- the server --------------------------------------------------------------

class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.targets = collections.deque(maxlen=500)   # request targets, in order

    def add(self, what):
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gwtest-origin"
    timeout = 120   # an idle keep-alive connection is closed after this

    def setup(self):
        # TLS per connection, in this connection's thread (not in accept)
        if self.server.tls_ctx is not None:
            self.request.settimeout(10)
            self.request = self.server.tls_ctx.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()
        self.counted = False

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s: %s\n" % (self.server.name, fmt % args))

    # -- helpers --

    def _query(self):
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                           keep_blank_values=True))

    def _path(self):
        return urllib.parse.urlsplit(self.path).path

    def _send(self, status, body=b"", ctype="application/octet-stream", headers=()):
        self.send_response(status)
        self.send_header("X-Backend", self.server.name)
        self.send_header("Content-Type", ctype)
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj, status=200, headers=()):
        self._send(status, json.dumps(obj, sort_keys=True).encode() + b"\n",
                   "application/json", headers)

    def _body_chunks(self):
        """The request body in pieces: Content-Length or chunked."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise ValueError("unsupported Transfer-Encoding %r" % te)
            while True:
                line = self.rfile.readline(4096)
                if not line.endswith(b"\r\n"):
                    raise ValueError("bad chunk size line %r" % line)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:   # trailer section
                        t = self.rfile.readline(4096)
                        if t in (b"\r\n", b"\n", b""):
                            return
                left = size
                while left > 0:
                    data = self.rfile.read(min(left, 65536))
                    if not data:
                        raise ValueError("body ended early")
                    left -= len(data)
                    yield data
                if self.rfile.read(2) != b"\r\n":
                    raise ValueError("no CRLF after chunk data")
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            data = self.rfile.read(min(length, 65536))
            if not data:
                raise ValueError("body ended early")
            length -= len(data)
            yield data

    def _describe(self):
        q = self._query()
        return {
            "backend": self.server.name,
            "method": self.command,
            "path": self._path(),
            "target": self.path,
            "query": q,
            "http_version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "client": self.client_address[0],
        }

    # -- dispatch --

    def _handle(self):
        path = self._path()
        if path == "/__stats":
            c = self.server.counters
            with c.lock:
                self._json({"backend": self.server.name, "requests": c.requests,
                            "connections": c.connections, "targets": list(c.targets)})
            return
        if path == "/__reset":
            c = self.server.counters
            with c.lock:
                c.requests = c.connections = 0
                c.targets.clear()
            self._json({"backend": self.server.name, "reset": True})
            return
        self.server.counters.add("requests")
        if not self.counted:
            self.counted = True
            self.server.counters.add("connections")
        with self.server.counters.lock:
            self.server.counters.targets.append(self.path)
        q = self._query()
        seed = int(q.get("seed", "0"))
        if path == "/echo":
            body = b""
            for piece in self._body_chunks():
                body += piece
                if len(body) > MAX_BODY_IN_MEMORY:
                    self._send(413)
                    return
            self._send(200, body, self.headers.get("Content-Type", "application/octet-stream"),
                       [("X-Body-Length", str(len(body))),
                        ("X-Body-SHA256", hashlib.sha256(body).hexdigest())])
            return
        if path == "/sha256":
            h = hashlib.sha256()
            n = 0
            for piece in self._body_chunks():
                h.update(piece)
                n += len(piece)
            self._json({"backend": self.server.name, "length": n, "sha256": h.hexdigest(),
                        "chunked": "Transfer-Encoding" in self.headers})
            return
        if path == "/bytes":
            size = int(q.get("size", "0"))
            self.send_response(200)
            self.send_header("X-Backend", self.server.name)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command != "HEAD":
                for piece in pattern_chunks(size, seed):
                    self.wfile.write(piece)
            return
        if path == "/chunked":
            size = int(q.get("size", "0"))
            step = max(1, int(q.get("chunk", "65536")))
            self.send_response(200)
            self.send_header("X-Backend", self.server.name)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for piece in pattern_chunks(size, seed, step):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
            return
        if path == "/close":
            size = int(q.get("size", "0"))
            self.send_response(200)
            self.send_header("X-Backend", self.server.name)
            self.send_header("Connection", "close")
            self.end_headers()
            for piece in pattern_chunks(size, seed):
                self.wfile.write(piece)
            self.close_connection = True
            return
        if path.startswith("/status/"):
            self._send(int(path[8:11]))
            return
        if path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            self._json(self._describe())
            return
        if path == "/drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if path == "/garbage":
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            self.close_connection = True
            return
        if path == "/ws":
            self._websocket()
            return
        # anything else: describe the request (its body is read and counted)
        n = 0
        for piece in self._body_chunks():
            n += len(piece)
        d = self._describe()
        d["body_length"] = n
        self._json(d)

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key")
        if (self.headers.get("Upgrade", "").lower() != "websocket" or key is None):
            self._send(400)
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Backend", self.server.name)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = ws_read_frame(self.rfile)
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:
                self.wfile.write(ws_frame(0x8, payload[:2], mask=False))
                return
            if opcode == 0x9:
                self.wfile.write(ws_frame(0xA, payload, mask=False))
            elif opcode in (0x1, 0x2):
                self.wfile.write(ws_frame(opcode, payload, mask=False))
            self.wfile.flush()

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET


# ---- WebSocket frames (used by the server and by tests) ------------------------

def ws_frame(opcode, payload, mask=True):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def _read_exact(f, n):
    data = b""
    while len(data) < n:
        piece = f.read(n - len(data))
        if not piece:
            return None
        data += piece
    return data


def ws_read_frame(f):
    """(opcode, payload) of one frame from a file-like object, or None at EOF."""
    h = _read_exact(f, 2)
    if h is None:
        return None
    opcode = h[0] & 0x0F
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", _read_exact(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _read_exact(f, 8))[0]
    key = _read_exact(f, 4) if h[1] & 0x80 else None
    payload = _read_exact(f, n) if n else b""
    if payload is None:
        return None
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # clients that go away (the gateway's timeouts, probes) are normal here
        if self.verbose:
            super().handle_error(request, client_address)

    def __init__(self, addr, name, tls=None, verbose=False):
        self.name = name
        self.counters = Counters()
        self.verbose = verbose
        self.tls_ctx = None
        if tls:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(tls[0], tls[1])
        super().__init__(addr, Handler)


# ---- running it from a test ---------------------------------------------------

class Origin:
    """An origin in a child process (its own GIL), stopped by PID.

        o = Origin.start("mbx1", test=self)      # o.port
        Origin.start("mbx2", tls=(cert, key))
        o.stats() -> {"requests": n, "connections": m}
    """

    def __init__(self, name, port, proc):
        self.name = name
        self.port = port
        self.proc = proc
        self.tls = False

    @classmethod
    def start(cls, name, port=None, tls=None, test=None, timeout=10.0):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import gwtest  # noqa: E402 (same directory)
        if port is None:
            port = gwtest.free_port()
        args = [sys.executable, os.path.abspath(__file__), "--name", name, "--port", str(port)]
        if tls:
            args += ["--tls", tls[0], tls[1]]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self = cls(name, port, proc)
        self.tls = bool(tls)
        gwtest._register(self)
        if test is not None:
            gwtest._add_cleanup(test, self.stop)
        try:
            gwtest.wait_port("127.0.0.1", port, timeout, proc=proc, what="origin " + name)
        except Exception:
            self.stop()
            raise
        return self

    def url(self, path="/"):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.port, path)

    def _get(self, path):
        import http.client
        if self.tls:
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10,
                                            context=ssl._create_unverified_context())
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path)
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def stats(self):
        return self._get("/__stats")

    def reset(self):
        self._get("/__reset")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        try:
            import gwtest
            gwtest._unregister(self)
        except ImportError:
            pass

    def kill(self):
        """Die at once (a crashed backend): connections are reset."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self, timeout=10.0):
        o = Origin.start(self.name, port=self.port, timeout=timeout)
        self.proc = o.proc
        return self

    def _cleanup(self):
        self.stop()

    def __repr__(self):
        return "<Origin %s port=%d>" % (self.name, self.port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--pidfile")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    srv = OriginServer((a.address, a.port), a.name, tls=a.tls, verbose=a.verbose)
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        if a.pidfile:
            try:
                os.unlink(a.pidfile)
            except OSError:
                pass


if __name__ == "__main__":
    main()
