#!/usr/bin/env python3
"""Large bodies through gatewayd with bounded memory.

100 MiB up (Content-Length) and down (chunked), byte-exact by SHA-256, while
a thread samples the worker's resident set; and a client that stops reading
in the middle of a large download, so the gateway must hold the backend
back rather than buffer. The worker may grow by at most RSS_BUDGET_KB
whatever the size (the gateway's own bound per connection is 64 KiB queued
plus the core's 256 KiB output limit; the rest of the budget is allocator
slack and the sanitizer build).

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/http/test_http_stream.py
"""

import hashlib
import http.client
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_env import HttpWorld, basic, g, pattern_chunks, pattern_sha256, worker_rss_kb  # noqa: E402

MiB = 1024 * 1024
SIZE = 100 * MiB
RSS_BUDGET_KB = 24 * 1024


# error lines some tests provoke on purpose
ALLOW = [r"no backend for database", r"no backend reachable"]


def digest_of(read, size=None):
    """(bytes, SHA-256 hex) of what read(1 MiB) returns until it returns
    nothing or, with size, until size bytes are in."""
    h = hashlib.sha256()
    n = 0
    while size is None or n < size:
        piece = read(1 << 20)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    return n, h.hexdigest()


class RssSampler(threading.Thread):
    def __init__(self, gw):
        super().__init__(daemon=True)
        self.gw = gw
        self.base = worker_rss_kb(gw)
        self.peak = self.base
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.peak = max(self.peak, worker_rss_kb(self.gw))
            except OSError:
                pass
            time.sleep(0.02)

    def stop(self):
        self.stop_ev.set()
        self.join()
        return self.peak - self.base


class Streaming(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
        # default) and would count as growth: keep it small for this process.
        asan = os.environ.get("ASAN_OPTIONS", "")
        cls.w = HttpWorld.start(cls, origins=("mbx1", "mbx2"),
                                http_options={"body_timeout": "30s", "backend_timeout": "30s"},
                                env={"ASAN_OPTIONS": (asan + ":" if asan else "")
                                     + "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"})
        # warm up: credential cache, pool, allocator
        c = http.client.HTTPConnection("127.0.0.1", cls.w.ports["plain"], timeout=60)
        c.request("GET", "/bytes?size=1048576", headers={"Authorization": basic("alice")})
        c.getresponse().read()
        c.close()

    @classmethod
    def tearDownClass(cls):
        cls.w.stop_and_check(allow=ALLOW)

    def tearDown(self):
        self.w.gw.check_log(self)

    def test_upload_100mib_content_length(self):
        sampler = RssSampler(self.w.gw)
        sampler.start()
        c = http.client.HTTPConnection("127.0.0.1", self.w.ports["plain"], timeout=120)
        c.request("PUT", "/sha256", body=pattern_chunks(SIZE, seed=11, step=256 * 1024),
                  headers={"Authorization": basic("alice"), "Content-Length": str(SIZE)})
        d = json.loads(c.getresponse().read())
        c.close()
        grew = sampler.stop()
        print("worker RSS grew by %d KiB" % grew, file=sys.stderr)
        self.assertEqual(d["length"], SIZE)
        self.assertEqual(d["sha256"], pattern_sha256(SIZE, seed=11))
        self.assertLess(grew, RSS_BUDGET_KB, "worker grew by %d KiB" % grew)

    def test_upload_chunked(self):
        size = 32 * MiB + 5
        sampler = RssSampler(self.w.gw)
        sampler.start()
        c = http.client.HTTPConnection("127.0.0.1", self.w.ports["plain"], timeout=120)
        c.request("POST", "/sha256", body=pattern_chunks(size, seed=12, step=100000),
                  encode_chunked=True,
                  headers={"Authorization": basic("bob"), "Transfer-Encoding": "chunked"})
        d = json.loads(c.getresponse().read())
        c.close()
        grew = sampler.stop()
        print("worker RSS grew by %d KiB" % grew, file=sys.stderr)
        self.assertEqual((d["length"], d["sha256"]), (size, pattern_sha256(size, seed=12)))
        self.assertLess(grew, RSS_BUDGET_KB, "worker grew by %d KiB" % grew)

    def test_download_100mib_chunked(self):
        sampler = RssSampler(self.w.gw)
        sampler.start()
        c = http.client.HTTPConnection("127.0.0.1", self.w.ports["plain"], timeout=120)
        c.request("GET", "/chunked?size=%d&chunk=65536&seed=13" % SIZE,
                  headers={"Authorization": basic("alice")})
        r = c.getresponse()
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        got = digest_of(r.read)
        c.close()
        grew = sampler.stop()
        print("worker RSS grew by %d KiB" % grew, file=sys.stderr)
        self.assertEqual(got, (SIZE, pattern_sha256(SIZE, seed=13)))
        self.assertLess(grew, RSS_BUDGET_KB, "worker grew by %d KiB" % grew)

    def test_slow_reader_holds_the_backend_back(self):
        size = 64 * MiB
        sampler = RssSampler(self.w.gw)
        sampler.start()
        s = socket.create_connection(("127.0.0.1", self.w.ports["plain"]), timeout=60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(("GET /bytes?size=%d&seed=14 HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n\r\n"
                   % (size, basic("alice"))).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        time.sleep(2.0)   # read nothing: the gateway must not buffer the body
        stalled = sampler.peak - sampler.base
        got = digest_of(s.recv, size)
        s.close()
        grew = sampler.stop()
        print("worker RSS grew by %d KiB" % grew, file=sys.stderr)
        self.assertEqual(got, (size, pattern_sha256(size, seed=14)))
        self.assertLess(stalled, RSS_BUDGET_KB, "worker grew by %d KiB while stalled" % stalled)
        self.assertLess(grew, RSS_BUDGET_KB, "worker grew by %d KiB" % grew)


if __name__ == "__main__":
    g.main()
