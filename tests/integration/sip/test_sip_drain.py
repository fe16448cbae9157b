#!/usr/bin/env python3
"""A stopping gateway (SIGTERM, or a reload that replaces the worker) closes
SIP TCP connections that have nothing in progress at once -- their clients
reconnect to a worker that is not stopping -- instead of keeping the old
worker alive until shutdown_timeout.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/sip/test_sip_drain.py
"""

import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
sys.path.insert(0, HERE)
import test_sip as T  # noqa: E402

SHUTDOWN_TIMEOUT = 30   # seconds: far longer than any wait below


class SipDrain(T.SipCase):

    @classmethod
    def edit_config(cls, conf):
        conf["shutdown_timeout"] = "%ds" % SHUTDOWN_TIMEOUT

    def test_sigterm_closes_idle_tcp_connections(self):
        s = T.Stream(self.tcp_port)
        self.addCleanup(s.close)
        s.send(T.request("OPTIONS", "sip:gw.example", s.port, transport="TCP"))
        self.assertEqual(s.recv().status, 200)
        t0 = time.monotonic()
        os.kill(self.gw.pid, signal.SIGTERM)
        self.assertTrue(s.closed(timeout=3.0),
                        "an idle SIP TCP connection stays open while the worker drains")
        self.gw.proc.wait(timeout=SHUTDOWN_TIMEOUT)
        took = time.monotonic() - t0
        self.assertLess(took, 5.0, "gatewayd took %.1f s to stop with nothing left to serve" % took)
        self.assertEqual(self.gw.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
