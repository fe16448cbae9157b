#!/usr/bin/env python3
"""Request smuggling and server-side request forgery through gatewayd.

Smuggling: every ambiguous framing (CL.TE, TE.CL, TE.TE, duplicate or
differing Content-Length, obs-fold, NUL, bare CR/LF, whitespace before the
colon, bad chunk sizes) is refused with 400 (501 for an unknown transfer
coding) and the connection closed, and nothing smuggled behind it ever
reaches a backend: the origins keep the list of request targets they served.

Forgery (the ProxyLogon/ProxyShell class): whatever a client puts in a
header, cookie, query or target, the gateway only ever connects to the
locator's own servers, and never without authentication except under the
configured anonymous prefixes. A "canary" origin runs on loopback, not in the
locator; every attack names it in every way we know, and it must see nothing
-- not a request, not a connection.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/http/test_http_smuggling.py
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_env import HttpWorld, basic, g  # noqa: E402


SMUGGLING = [
    # (name, raw request, expected status)
    ("CL.TE", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
     400),
    ("TE.CL", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Length: 4\r\n\r\n2a\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX: \r\n0\r\n\r\n",
     400),
    ("TE.TE duplicate", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                        b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
     400),
    ("TE.TE obfuscated value", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n"
                               b"Content-Length: 3\r\n\r\nabc", 400),
    ("TE unknown coding", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n"
                          b"\r\n0\r\n\r\n", 501),
    ("TE space before colon", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n"
                              b"Content-Length: 3\r\n\r\nabc", 400),
    ("TE in obs-fold", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX: y\r\n"
                       b" Transfer-Encoding: chunked\r\n\r\nabc", 400),
    ("TE leading space", b"POST /echo HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n"
                         b"\r\n0\r\n\r\n", 400),
    ("duplicate CL", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
                     b"\r\nabc", 400),
    ("differing CL", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 44\r\n"
                     b"\r\nabcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("CL list", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 44\r\n\r\nabc", 400),
    ("CL with space", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\nabc", 400),
    ("CL negative", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nabc", 400),
    ("obs-fold", b"GET /owa/ HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("NUL in a value", b"GET /owa/ HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    ("bare CR in a value", b"GET /owa/ HTTP/1.1\r\nHost: a\r\nX-A: b\rGET /smuggled\r\n\r\n", 400),
    ("bare LF", b"GET /owa/ HTTP/1.1\nHost: a\n\n", 400),
    ("bare LF in the head", b"GET /owa/ HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
    ("control in the target", b"GET /owa/\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("two spaces", b"GET  /owa/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("two Hosts", b"GET /owa/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
]

BAD_CHUNKS = [
    b"5\rhello\r\n0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"-5\r\nhello\r\n0\r\n\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX\r\n0\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
]


# error lines some tests provoke on purpose
ALLOW = [r"no backend for database", r"no backend reachable"]


class Smuggling(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.w = HttpWorld.start(cls, origins=("mbx1", "mbx2"))

    @classmethod
    def tearDownClass(cls):
        cls.w.stop_and_check(allow=ALLOW)

    def tearDown(self):
        self.w.gw.check_log(self)

    def targets(self):
        return self.w.origins["mbx1"].stats()["targets"] + self.w.origins["mbx2"].stats()["targets"]

    def test_ambiguous_framing_refused(self):
        auth = ("Authorization: %s\r\n" % basic("alice")).encode()
        for name, raw, status in SMUGGLING:
            before = len(self.targets())
            with self.w.raw() as r:
                # authenticated, so only framing can stop it
                head, sep, rest = raw.partition(b"\r\n")
                r.send(head + sep + auth + rest)
                resp = r.response()
                self.assertEqual(resp.status, status, name)
                self.assertEqual(resp.header("Connection"), "close", name)
                self.assertTrue(r.closed(), name)
            self.assertEqual(len(self.targets()), before, name)
        self.assertFalse([t for t in self.targets() if "smuggled" in t])

    def test_bad_chunk_sizes(self):
        for body in BAD_CHUNKS:
            with self.w.raw() as r:
                r.send(("POST /sha256 HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n" % basic("alice")).encode() + body
                       + b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
                resp = r.response()
                self.assertEqual(resp.status, 400, body)
                self.assertTrue(r.closed(), body)
        time.sleep(0.2)
        self.assertFalse([t for t in self.targets() if "smuggled" in t])

    def test_requests_in_bodies_stay_bodies(self):
        inner = b"GET /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        with self.w.raw() as r:
            resp = r.request("POST", "/echo", [("Authorization", basic("alice"))], inner)
            self.assertEqual(resp.body, inner)
            r.send(("POST /echo HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (basic("alice"), len(inner)))
                   .encode() + inner + b"\r\n0\r\n\r\n")
            resp = r.response()
            self.assertEqual(resp.body, inner)
        self.assertFalse([t for t in self.targets() if "smuggled" in t])

    def test_pipelined_request_after_a_body_needs_its_own_credentials(self):
        with self.w.raw() as r:
            r.send(("POST /echo HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                    "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n" % basic("alice")).encode())
            self.assertEqual(r.response().body, b"abc")
            self.assertEqual(r.response().status, 401)
        self.assertFalse([t for t in self.targets() if "smuggled" in t])


class Forgery(unittest.TestCase):
    """Nothing a client sends can make the gateway connect to a server the
    locator does not list, or skip authentication outside anonymous paths."""

    @classmethod
    def setUpClass(cls):
        cls.w = HttpWorld.start(cls, origins=("mbx1", "mbx2", "canary"))
        cls.canary = "127.0.0.1:%d" % cls.w.origins["canary"].port

    @classmethod
    def tearDownClass(cls):
        cls.w.stop_and_check(allow=ALLOW)

    def tearDown(self):
        self.w.gw.check_log(self)

    def assert_canary_untouched(self):
        st = self.w.origins["canary"].stats()
        self.assertEqual((st["requests"], st["connections"]), (0, 0), st)

    def attacks(self):
        c = self.canary
        return [
            [("X-AnchorMailbox", c)],
            [("X-AnchorMailbox", "SMTP:canary@" + c)],
            [("X-AnchorMailbox", "http://" + c + "/")],
            [("Cookie", "X-BEResource=%s/EWS/Exchange.asmx?a=~1942062522" % c)],
            [("Cookie", "X-AnonResource=true; X-AnonResource-Backend=%s/ecp/default.flt?~3" % c)],
            [("X-Forwarded-Host", c)],
            [("X-Original-URL", "http://%s/" % c)],
            [("X-Rewrite-URL", "http://%s/" % c)],
            [("Forwarded", "host=%s" % c)],
            [("X-BackEndOverrideCookie", c)],
            [("msExchTargetMailbox", c)],
        ]

    def test_unauthenticated_attacks_get_401(self):
        for hdrs in self.attacks():
            with self.w.raw() as r:
                resp = r.request("GET", "/ecp/x.js", hdrs, host=self.canary)
                self.assertEqual(resp.status, 401, hdrs)
        for target in ("http://%s/ecp/" % self.canary, "/owa/?User=" + self.canary,
                       "/Microsoft-Server-ActiveSync?User=%s&Cmd=Sync" % self.canary):
            with self.w.raw() as r:
                self.assertEqual(r.request("GET", target).status, 401, target)
        self.assert_canary_untouched()

    def test_authenticated_attacks_stay_on_the_users_server(self):
        for hdrs in self.attacks():
            with self.w.raw() as r:
                resp = r.request("GET", "/ecp/x.js", hdrs + [("Authorization", basic("alice"))],
                                 host=self.canary)
                self.assertEqual(resp.status, 200, hdrs)
                self.assertEqual(resp.header("X-Backend"), "mbx1", hdrs)
        for target in ("http://%s/ecp/" % self.canary, "/owa/?User=" + self.canary,
                       "/Microsoft-Server-ActiveSync?User=%s&Cmd=Sync" % self.canary,
                       "/owa/?User=canary@" + self.canary):
            with self.w.raw() as r:
                resp = r.request("GET", target, [("Authorization", basic("alice"))])
                self.assertEqual(resp.header("X-Backend"), "mbx1", target)
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "http://u@%s/" % self.canary,
                                       [("Authorization", basic("alice"))]).status, 400)
        self.assert_canary_untouched()

    def test_proxyshell_paths(self):
        # explicit-logon confusion: anonymous prefix, then a path that a
        # backend might rewrite; it is only ever forwarded, verbatim, to a
        # locator server
        paths = [
            "/autodiscover/autodiscover.json?@evil.example/mapi/nspi/?&Email=autodiscover/"
            "autodiscover.json%3F@evil.example",
            "/autodiscover/autodiscover.json?@%s/owa/?&Email=x" % self.canary,
        ]
        for p in paths:
            with self.w.raw() as r:
                resp = r.request("GET", p)
                self.assertEqual(resp.status, 200, p)
                self.assertIn(resp.header("X-Backend"), ("mbx1", "mbx2"))
                self.assertEqual(resp.json()["target"], p)
        # and one that leaves the prefix is not anonymous
        for p in ("/autodiscover/../ecp/", "/autodiscover/..%2Fecp/", "/autodiscover%2F..%2Fecp/"):
            with self.w.raw() as r:
                self.assertEqual(r.request("GET", p).status, 401, p)
        self.assert_canary_untouched()


if __name__ == "__main__":
    g.main()
