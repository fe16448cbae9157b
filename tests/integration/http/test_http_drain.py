#!/usr/bin/env python3
"""A stopping gateway (SIGTERM, as at a restart or a reload that replaces
the worker) lets go of idle keep-alive connections at once and answers the
request in flight, with Connection: close, instead of holding everything
open until shutdown_timeout.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/http/test_http_drain.py
"""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_env import HttpWorld, basic  # noqa: E402

SHUTDOWN_TIMEOUT = 30   # seconds: far longer than any wait below


class Drain(unittest.TestCase):

    def setUp(self):
        self.w = HttpWorld.start(self, top={"shutdown_timeout": "%ds" % SHUTDOWN_TIMEOUT})
        self.addCleanup(self.w.stop_and_check)

    def test_sigterm_closes_idle_and_finishes_in_flight(self):
        auth = [("Authorization", basic("alice"))]
        idle = self.w.raw()
        self.addCleanup(idle.close)
        r = idle.request("GET", "/owa/", auth)
        self.assertEqual(r.status, 200)
        self.assertNotEqual((r.header("Connection") or "").lower(), "close")

        busy = self.w.raw()
        self.addCleanup(busy.close)
        self.assertEqual(busy.request("GET", "/owa/", auth).status, 200)
        busy.send(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: gw.example\r\nAuthorization: " +
                  basic("alice").encode() + b"\r\n\r\n")
        time.sleep(0.5)   # the request has reached the origin (it sleeps 1.5 s)

        t0 = time.monotonic()
        os.kill(self.w.gw.pid, signal.SIGTERM)
        self.assertTrue(idle.closed(timeout=3.0),
                        "an idle keep-alive connection stays open while the worker drains")
        r = busy.response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["target"], "/slow?ms=1500")
        self.assertEqual((r.header("Connection") or "").lower(), "close")
        self.assertTrue(busy.closed(timeout=3.0))
        self.w.gw.proc.wait(timeout=SHUTDOWN_TIMEOUT)
        took = time.monotonic() - t0
        self.assertLess(took, 5.0, "gatewayd took %.1f s to stop with nothing left to serve" % took)
        self.assertEqual(self.w.gw.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
