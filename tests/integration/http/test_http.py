#!/usr/bin/env python3
"""HTTP through gatewayd to real origins: routing, authentication, keep-alive,
bodies, 100-continue, WebSocket, redirects, the legacy pool, health pages,
error statuses, failover.

The origins (tests/support/http_origin.py) say which backend answered, so
every test knows where the gateway sent it. See http_env.py for the world.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/http/test_http.py [-k NAME]
"""

import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_env import (HttpWorld, Raw, basic, g, log_count, password, pattern,  # noqa: E402
                      pattern_sha256, ws_frame)
from http_origin import ws_read_frame  # noqa: E402


# error lines some tests provoke on purpose
ALLOW = [r"no backend for database", r"no backend reachable"]


class RawFile:
    """read(n) over a Raw connection (its buffer first), for ws_read_frame."""

    def __init__(self, raw):
        self.raw = raw

    def read(self, n):
        try:
            return self.raw.read_exact(n)
        except EOFError:
            return b""


class Routing(unittest.TestCase):
    """One world for the read-only tests."""

    @classmethod
    def setUpClass(cls):
        cls.w = HttpWorld.start(cls, log_level="debug")

    @classmethod
    def tearDownClass(cls):
        cls.w.stop_and_check(allow=ALLOW)

    def tearDown(self):
        self.w.gw.check_log(self, allow=[r"no backend for database nosuch"])

    def get(self, user, path="/owa/", kind="plain", headers=()):
        with self.w.raw(kind) as r:
            return r.request("GET", path, [("Authorization", basic(user))] + list(headers))

    # -- routing --

    def test_routing_per_user(self):
        self.assertEqual(self.get("alice").header("X-Backend"), "mbx1")
        self.assertEqual(self.get("bob").header("X-Backend"), "mbx2")
        self.assertEqual(self.get("carol").header("X-Backend"), "mbx1")

    def test_routing_with_curl_and_http_client(self):
        st, h, body, err = self.w.curl("-u", "bob:" + password("bob"),
                                       self.w.url("/ews/exchange.asmx?x=1"))
        self.assertEqual(st, 200, err)
        self.assertEqual(h["x-backend"], "mbx2")
        d = json.loads(body)
        self.assertEqual(d["target"], "/ews/exchange.asmx?x=1")
        c = http.client.HTTPConnection("127.0.0.1", self.w.ports["plain"], timeout=10)
        c.request("GET", "/owa/", headers={"Authorization": basic("alice")})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("X-Backend"), "mbx1")
        r.read()
        c.close()

    def test_tls_listener(self):
        st, h, body, err = self.w.curl("-u", "alice:" + password("alice"),
                                       self.w.url("/owa/", "tls"), kind="tls")
        self.assertEqual(st, 200, err)
        self.assertEqual(h["x-backend"], "mbx1")
        d = json.loads(body)
        self.assertIn(["X-Forwarded-Proto", "https"], d["headers"])

    def test_tls_listener_alpn(self):
        """A browser offers h2 and http/1.1 and must be told http/1.1; a
        client that offers only protocols the gateway does not speak gets
        no_application_protocol (RFC 7301 3.2); no ALPN at all still works."""
        def connect(protos):
            ctx = g.client_tls_context(self.w.cert[0])
            if protos is not None:
                ctx.set_alpn_protocols(protos)
            s = socket.create_connection(("127.0.0.1", self.w.ports["tls"]), timeout=10)
            return ctx.wrap_socket(s, server_hostname="localhost")

        with connect(["h2", "http/1.1"]) as s:
            self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
            s.sendall(b"GET /owa/ HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                      basic("alice").encode() + b"\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        with connect(None) as s:
            self.assertIsNone(s.selected_alpn_protocol())
        with self.assertRaises(ssl.SSLError) as cm:
            connect(["h2"]).close()
        self.assertIn("NO APPLICATION PROTOCOL", str(cm.exception).upper())

    def test_tls_backend_with_verification_and_sni(self):
        r = self.get("frank")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Backend"), "mbx4")

    def test_legacy_pool(self):
        r = self.get("eve")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Backend"), "legacy1")

    def test_anonymous_never_reaches_legacy_or_canary(self):
        seen = set()
        for _ in range(8):
            with self.w.raw() as r:
                resp = r.request("GET", "/autodiscover/autodiscover.xml")
                self.assertEqual(resp.status, 200)
                seen.add(resp.header("X-Backend"))
        self.assertTrue(seen <= {"mbx1", "mbx2", "mbx3", "mbx4"}, seen)
        self.assertGreater(len(seen), 1, "anonymous requests are spread")

    def test_anonymous_path_must_be_unambiguous(self):
        for path in ("/autodiscover/../owa/", "/autodiscover/%2e%2e/owa/", "/autodiscover;/x",
                     "/autodiscover//x", "/Autodiscover/..%2fowa", "/autodiscoverx"):
            with self.w.raw() as r:
                self.assertEqual(r.request("GET", path).status, 401, path)
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "/AutoDiscover/x.xml").status, 200)

    def test_cross_site_redirect(self):
        r = self.get("dave", "/owa/x/y?a=1&b=2")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"), "https://mail.site-b.example/owa/x/y?a=1&b=2")
        # not GET: proxied to the other site's server
        with self.w.raw() as raw:
            r = raw.request("POST", "/ews/x", [("Authorization", basic("dave"))], b"abc")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Backend"), "mbx3")

    # -- authentication --

    def test_401_paths(self):
        cases = [
            [],
            [("Authorization", basic("alice", "wrong"))],
            [("Authorization", basic("nosuchuser", "x"))],
            [("Authorization", "Bearer abc")],
            [("Authorization", "Basic !!!")],
            [("Authorization", "Basic " + "YWxpY2U=")],   # no colon
        ]
        for hdrs in cases:
            with self.w.raw() as r:
                resp = r.request("GET", "/owa/", hdrs)
                self.assertEqual(resp.status, 401, hdrs)
                self.assertEqual(resp.header("WWW-Authenticate"),
                                 'Basic realm="gatewayd", charset="UTF-8"')
                # the connection survives a 401
                resp = r.request("GET", "/owa/", [("Authorization", basic("alice"))])
                self.assertEqual(resp.status, 200)

    def test_plaintext_refused_without_allow_plaintext(self):
        with self.w.raw("strict") as r:
            resp = r.request("GET", "/owa/", [("Authorization", basic("alice"))])
            self.assertEqual(resp.status, 403)
            self.assertIsNone(resp.header("WWW-Authenticate"))
            resp = r.request("GET", "/autodiscover/a.xml")
            self.assertEqual(resp.status, 200)

    def test_keepalive_reuse_without_a_new_directory_lookup(self):
        since = self.w.gw.log_size()
        conns = self.w.origins["mbx2"].stats()["connections"]
        with self.w.raw() as r:
            for i in range(5):
                resp = r.request("GET", "/owa/%d" % i, [("Authorization", basic("bob"))])
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.header("X-Backend"), "mbx2")
        verified = log_count(self.w.gw, r"user=bob: credentials verified by the directory", since)
        remembered = log_count(self.w.gw, r"user=bob: GET /owa/\d: credentials remembered", since)
        self.assertEqual((verified, remembered), (1, 4))
        # and the backend connection was reused from the pool
        self.assertLessEqual(self.w.origins["mbx2"].stats()["connections"] - conns, 1)

    def test_changed_credentials_on_one_connection(self):
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "/", [("Authorization", basic("alice"))])
                             .header("X-Backend"), "mbx1")
            self.assertEqual(r.request("GET", "/", [("Authorization", basic("bob"))])
                             .header("X-Backend"), "mbx2")
            self.assertEqual(r.request("GET", "/", [("Authorization", basic("bob", "x"))])
                             .status, 401)
            self.assertEqual(r.request("GET", "/").status, 401)

    def test_routing_hint_picks_among_locator_servers(self):
        # alice asks for bob's mailbox (delegate access): bob's server
        r = self.get("alice", headers=[("X-AnchorMailbox", "SMTP:bob")])
        self.assertEqual(r.header("X-Backend"), "mbx2")
        r = self.get("alice", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=bob&DeviceId=x")
        self.assertEqual(r.header("X-Backend"), "mbx2")
        # an unknown hint changes nothing
        r = self.get("alice", headers=[("X-AnchorMailbox", "nobody@example.test")])
        self.assertEqual(r.header("X-Backend"), "mbx1")

    # -- what the backend and the client see --

    def test_forwarded_headers_and_hop_by_hop(self):
        with self.w.raw() as r:
            resp = r.request("GET", "/owa/h", [
                ("Authorization", basic("alice")),
                ("Connection", "keep-alive, X-Secret"),
                ("X-Secret", "hop"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Proxy-Authorization", "Basic eDp5"),
                ("X-Forwarded-For", "6.6.6.6"),
                ("X-Forwarded-Proto", "https"),
                ("Via", "1.0 client-proxy"),
                ("X-Kept", "yes")])
        d = resp.json()
        names = {k.lower(): v for k, v in d["headers"]}
        for hop in ("connection", "x-secret", "keep-alive", "te", "proxy-authorization"):
            self.assertNotIn(hop, names)
        self.assertEqual(names["x-forwarded-for"], "127.0.0.1")   # not trusted
        self.assertEqual(names["x-forwarded-proto"], "http")
        self.assertEqual(names["via"], "1.0 client-proxy, 1.1 gatewayd")
        self.assertEqual(names["x-kept"], "yes")
        self.assertEqual(names["host"], "gw.example")
        self.assertEqual(d["http_version"], "HTTP/1.1")

    def test_absolute_form_target(self):
        with self.w.raw() as r:
            resp = r.request("GET", "http://other.example:81/owa/abs?q=1",
                             [("Authorization", basic("alice"))])
        d = resp.json()
        self.assertEqual(d["target"], "/owa/abs?q=1")
        self.assertIn(["Host", "other.example:81"], d["headers"])

    def test_http10_client(self):
        with self.w.raw() as r:
            resp = r.request("GET", "/owa/", [("Authorization", basic("alice")),
                                              ("Connection", "keep-alive")], version="1.0")
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("Connection"), "keep-alive")
            # a chunked answer to a 1.0 client: raw bytes, then close
            resp = r.request("GET", "/chunked?size=5000&chunk=100",
                             [("Authorization", basic("alice"))], version="1.0")
            self.assertEqual(resp.status, 200)
            self.assertIsNone(resp.header("Transfer-Encoding"))
            self.assertEqual(resp.body, pattern(5000))
            self.assertTrue(r.closed())

    def test_pipelining(self):
        auth = "Authorization: %s\r\n" % basic("alice")
        req = ("GET /owa/p1 HTTP/1.1\r\nHost: a\r\n%s\r\n"
               "POST /echo HTTP/1.1\r\nHost: a\r\n%sContent-Length: 5\r\n\r\nhello"
               "GET /owa/p3 HTTP/1.1\r\nHost: a\r\n%s\r\n") % (auth, auth, auth)
        with self.w.raw() as r:
            r.send(req)
            a, b, c = r.response(), r.response(), r.response()
        self.assertEqual(a.json()["path"], "/owa/p1")
        self.assertEqual(b.body, b"hello")
        self.assertEqual(c.json()["path"], "/owa/p3")

    def test_head_and_204_304(self):
        with self.w.raw() as r:
            resp = r.request("HEAD", "/bytes?size=12345", [("Authorization", basic("alice"))])
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("Content-Length"), "12345")
            resp = r.request("GET", "/status/204", [("Authorization", basic("alice"))])
            self.assertEqual(resp.status, 204)
            resp = r.request("GET", "/status/304", [("Authorization", basic("alice"))])
            self.assertEqual(resp.status, 304)
            resp = r.request("GET", "/owa/after", [("Authorization", basic("alice"))])
            self.assertEqual(resp.json()["path"], "/owa/after")

    # -- bodies --

    def test_chunked_upload_and_download_byte_exact(self):
        size = 3 * 1024 * 1024 + 17
        data = pattern(size, seed=5)
        c = http.client.HTTPConnection("127.0.0.1", self.w.ports["plain"], timeout=30)

        def gen():
            for i in range(0, size, 70000):
                yield data[i:i + 70000]
        c.request("POST", "/sha256", body=gen(), encode_chunked=True,
                  headers={"Authorization": basic("alice"), "Transfer-Encoding": "chunked"})
        d = json.loads(c.getresponse().read())
        self.assertEqual((d["length"], d["sha256"]), (size, hashlib.sha256(data).hexdigest()))
        self.assertTrue(d["chunked"])
        for path in ("/chunked?size=%d&chunk=1000&seed=5" % size,
                     "/chunked?size=%d&chunk=65536&seed=5" % size,
                     "/bytes?size=%d&seed=5" % size,
                     "/close?size=%d&seed=5" % size):
            c.request("GET", path, headers={"Authorization": basic("alice")})
            resp = c.getresponse()
            body = resp.read()
            self.assertEqual(len(body), size, path)
            self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest(),
                             path)
            if path.startswith("/close"):
                # close-delimited from the backend: chunked to a 1.1 client,
                # and the client connection stays
                self.assertEqual(resp.getheader("Transfer-Encoding"), "chunked")
        c.request("GET", "/owa/still", headers={"Authorization": basic("alice")})
        self.assertEqual(json.loads(c.getresponse().read())["path"], "/owa/still")
        c.close()

    def test_echo_small_bodies(self):
        with self.w.raw() as r:
            for body in (b"", b"x", b"\0\r\n\r\n" * 100, bytes(range(256)) * 40):
                resp = r.request("POST", "/echo", [("Authorization", basic("alice"))], body)
                self.assertEqual(resp.body, body)

    def test_100_continue(self):
        body = b"continued body" * 1000
        with self.w.raw() as r:
            r.send("PUT /echo HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n"
                   "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (basic("alice"),
                                                                            len(body)))
            interim = r.response()
            self.assertEqual(interim.status, 100)
            r.send(body)
            resp = r.response()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, body)
        # refused before the body: no 100, and the connection closes
        with self.w.raw() as r:
            r.send("PUT /echo HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n"
                   "Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
                   % basic("alice", "wrong"))
            resp = r.response()
            self.assertEqual(resp.status, 401)
            self.assertEqual(resp.header("Connection"), "close")
            self.assertTrue(r.closed())
        # curl's own 100-continue handling (it waits for the 100)
        data = os.path.join(self.w.dir, "upload.bin")
        with open(data, "wb") as f:
            f.write(pattern(2 * 1024 * 1024, seed=3))
        st, h, out, err = self.w.curl("-u", "alice:" + password("alice"), "-H",
                                      "Expect: 100-continue", "--expect100-timeout", "10",
                                      "--data-binary", "@" + data, self.w.url("/sha256"))
        self.assertEqual(st, 200, err)
        self.assertEqual(json.loads(out)["sha256"], pattern_sha256(2 * 1024 * 1024, seed=3))

    def test_401_with_a_body_keeps_the_connection(self):
        with self.w.raw() as r:
            resp = r.request("POST", "/echo", [("Authorization", basic("alice", "no"))],
                             b"z" * 50000)
            self.assertEqual(resp.status, 401)
            resp = r.request("POST", "/echo", [("Authorization", basic("alice"))], b"ok")
            self.assertEqual(resp.body, b"ok")

    # -- WebSocket --

    def test_websocket_echo(self):
        with self.w.raw() as r:
            r.send(("GET /ws HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n" % basic("bob")).encode()
                   + ws_frame(0x1, b"first"))   # pipelined behind the handshake
            resp = r.response(head_request=True)
            self.assertEqual(resp.status, 101)
            self.assertEqual(resp.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            self.assertEqual(resp.header("X-Backend"), "mbx2")
            f = RawFile(r)
            self.assertEqual(ws_read_frame(f), (0x1, b"first"))
            big = pattern(70000, seed=9)
            r.send(ws_frame(0x2, big))
            self.assertEqual(ws_read_frame(f), (0x2, big))
            r.send(ws_frame(0x8, b"\x03\xe8"))
            self.assertEqual(ws_read_frame(f)[0], 0x8)
            self.assertTrue(r.closed())

    # -- health pages --

    def test_health_pages(self):
        for path in ("/owa/healthcheck.htm", "/OWA/HealthCheck.htm", "/autodiscover/healthcheck.htm"):
            with self.w.raw() as r:
                resp = r.request("GET", path)
                self.assertEqual(resp.status, 200, path)
                self.assertTrue(resp.body.startswith(b"200 OK"))
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "/ews/healthcheck.htm").status, 401)

    # -- errors --

    def test_error_statuses(self):
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "/" + "a" * 9000).status, 414)
            self.assertTrue(r.closed())
        with self.w.raw() as r:
            resp = r.request("GET", "/", [("X-H%d" % i, "v") for i in range(101)])
            self.assertEqual(resp.status, 431)
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "/", [("Cookie", "c" * 33000)]).status, 431)
        with self.w.raw() as r:
            self.assertEqual(r.request("TRACE", "/").status, 405)
        with self.w.raw() as r:
            self.assertEqual(r.request("CONNECT", "a.example:443").status, 501)
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "/", host=None).status, 400)
        for path, status in (("/garbage", 502), ("/drop", 502), ("/slow?ms=5000", 504)):
            with self.w.raw() as r:
                resp = r.request("GET", path, [("Authorization", basic("alice"))])
                self.assertEqual(resp.status, status, path)
                self.assertNotIn(b"127.0.0.1", resp.body)
                self.assertNotIn(b"mbx", resp.body)
                # the client connection is still good
                resp = r.request("GET", "/owa/", [("Authorization", basic("alice"))])
                self.assertEqual(resp.status, 200)

    def test_header_timeout_408(self):
        with self.w.raw() as r:
            r.send("GET / HTTP/1.1\r\nHost: a\r\n")
            t0 = time.monotonic()
            resp = r.response()
            self.assertEqual(resp.status, 408)
            self.assertLess(time.monotonic() - t0, 8)


class Limits(unittest.TestCase):
    """Keys that change behaviour: max_body_size, path_prefixes, user_header,
    trust_forwarded, forwarded, redirect_cross_site off."""

    @classmethod
    def setUpClass(cls):
        cls.w = HttpWorld.start(cls, http_options={
            "max_body_size": "1k", "path_prefixes": "/owa, /autodiscover, /echo",
            "user_header": "X-Remote-User", "trust_forwarded": True, "forwarded": True,
            "redirect_cross_site": False,
        }, origins=("mbx1", "mbx2", "mbx3"))

    @classmethod
    def tearDownClass(cls):
        cls.w.stop_and_check(allow=ALLOW)

    def tearDown(self):
        self.w.gw.check_log(self)

    def test_413_and_404(self):
        with self.w.raw() as r:
            self.assertEqual(r.request("POST", "/echo", [("Authorization", basic("alice"))],
                                       b"x" * 2000).status, 413)
        with self.w.raw() as r:
            r.send("POST /echo HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n800\r\n%s\r\n0\r\n\r\n"
                   % (basic("alice"), "y" * 2048))
            self.assertEqual(r.response().status, 413)
        with self.w.raw() as r:
            self.assertEqual(r.request("GET", "/ews/x", [("Authorization", basic("alice"))])
                             .status, 404)

    def test_user_and_forwarded_headers(self):
        with self.w.raw() as r:
            resp = r.request("GET", "/owa/u", [("Authorization", basic("alice")),
                                               ("X-Remote-User", "admin"),
                                               ("X-Forwarded-For", "10.1.1.1"),
                                               ("Forwarded", "for=10.1.1.1")])
        names = {}
        for k, v in resp.json()["headers"]:
            names.setdefault(k.lower(), []).append(v)
        self.assertEqual(names["x-remote-user"], ["alice"])
        self.assertEqual(names["x-forwarded-for"], ["10.1.1.1, 127.0.0.1"])
        self.assertEqual(names["forwarded"], ['for=10.1.1.1, for="127.0.0.1";proto=http;host="gw.example"'])

    def test_no_redirect_when_disabled(self):
        with self.w.raw() as r:
            resp = r.request("GET", "/owa/", [("Authorization", basic("dave"))])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("X-Backend"), "mbx3")


class Failover(unittest.TestCase):
    """Backends going down: the next copy, then 503 with Retry-After."""

    def test_backend_down(self):
        # hold_down 0: a request with no copy left is answered at once
        # (with hold-down the core parks it up to that long first)
        w = HttpWorld.start(self, origins=("mbx1", "mbx2"), health=True,
                            locator={"hold_down": "0s"})
        with w.raw() as r:
            self.assertEqual(r.request("GET", "/", [("Authorization", basic("alice"))])
                             .header("X-Backend"), "mbx1")
        w.origins["mbx1"].kill()
        # the pooled connection to mbx1 is dead, and mbx1 refuses: mbx2 answers
        for _ in range(3):
            with w.raw() as r:
                resp = r.request("GET", "/", [("Authorization", basic("alice"))])
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.header("X-Backend"), "mbx2")
        w.origins["mbx2"].kill()
        with w.raw() as r:
            resp = r.request("GET", "/", [("Authorization", basic("alice"))])
            self.assertEqual(resp.status, 503)
            self.assertEqual(resp.header("Retry-After"), "7")
            self.assertNotIn(b"mbx", resp.body)
        # health pages follow
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with w.raw() as r:
                if r.request("GET", "/owa/healthcheck.htm").status == 503:
                    break
            time.sleep(0.2)
        else:
            self.fail("health page still 200 with every backend down")
        w.origins["mbx1"].restart()
        # back once its health probe passes and the core's suspicion of it
        # (after the refused connect: 10 s) has expired
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with w.raw() as r:
                resp = r.request("GET", "/", [("Authorization", basic("alice"))])
                if resp.status == 200:
                    self.assertEqual(resp.header("X-Backend"), "mbx1")
                    break
            time.sleep(0.2)
        else:
            self.fail("no recovery after mbx1 came back")
        w.stop_and_check(allow=[r"health: ", r"no backend", r"backend \S+ failed",
                                r"connect to 127\.0\.0\.1"])


if __name__ == "__main__":
    g.main()
