#!/usr/bin/env python3
"""SIP through gatewayd: the redirect server, driven by sipp and raw sockets.

gatewayd never proxies a call: an INVITE is answered with 302 and a Contact
at the SIP service of the server that holds the called user's active mailbox
copy. The "backends" here are only addresses in the locator (nothing needs
to listen there), except in the failover tests, where small SIP responders
answer the gateway's health probes (OPTIONS over TCP) until one is stopped.

sipp (scenarios/ beside this file) plays the caller for the call flows;
a raw client checks what sipp cannot: exact bytes of retransmitted
responses, malformed and oversized requests, CANCEL races, TCP framing.

Users (static directory): alice (sip_uri alice, extension 4001, db1),
bob (sip_uri bob, extension 4002, db2), carol (db1, no SIP attributes).
Databases: db1 [mbx1, mbx2], db2 [mbx2, mbx1]. Pilot number 5000.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/sip/test_sip.py [-k NAME]
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
import gwtest as g  # noqa: E402

SCENARIOS = os.path.join(HERE, "scenarios")
SIPP = shutil.which("sipp")
TIMEOUT = 5.0
PILOT = "5000"
USERS = {
    # name: (database, sip_uri, extension)
    "alice": ("db1", "alice", "4001"),
    "bob": ("db2", "bob", "4002"),
    "carol": ("db1", None, None),
}


# ---- a raw SIP client ---------------------------------------------------------

class Msg:
    """A received SIP response: status, headers (lower-case name -> [values]), raw bytes."""

    def __init__(self, raw):
        self.raw = raw
        head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())

    def h(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def all(self, name):
        return self.headers.get(name.lower(), [])

    def __repr__(self):
        return "<SIP %d %s>" % (self.status, self.reason)


_seq = [0]
_left_open = []   # connections deliberately left open until the interpreter exits


def request(method, ruri, via_port, transport="UDP", branch=None, call_id=None, cseq=1,
            from_tag="ft1", to_tag=None, extra=(), body=b"", content_length=True, via_host="127.0.0.1"):
    """Bytes of one request. extra: header lines (without CRLF)."""
    _seq[0] += 1
    branch = branch or "z9hG4bK-t%d-%d" % (os.getpid(), _seq[0])
    call_id = call_id or "c%d-%d@test" % (os.getpid(), _seq[0])
    to = "<%s>" % ruri + (";tag=%s" % to_tag if to_tag else "")
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/%s %s:%d;branch=%s" % (transport, via_host, via_port, branch),
             "Max-Forwards: 70",
             "From: <sip:caller@test.example>;tag=%s" % from_tag,
             "To: %s" % to,
             "Call-ID: %s" % call_id,
             "CSeq: %d %s" % (cseq, method)]
    lines += list(extra)
    if content_length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Udp:
    """A UDP SIP endpoint on a free loopback port."""

    def __init__(self, gw_port, source="127.0.0.1"):
        self.gw = ("127.0.0.1", gw_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(TIMEOUT)

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendto(data, self.gw)

    def recv(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65536)
        return Msg(data)

    def recv_raw(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        return self.sock.recvfrom(65536)[0]

    def nothing(self, timeout=0.5):
        """True when no datagram arrives within timeout."""
        self.sock.settimeout(timeout)
        try:
            self.sock.recvfrom(65536)
            return False
        except socket.timeout:
            return True

    def final(self, timeout=TIMEOUT):
        """The next non-100 response."""
        while True:
            m = self.recv(timeout)
            if m.status >= 200:
                return m


class Stream(g.LineClient):
    """A TCP (or TLS) SIP connection on gwtest's raw line client; responses
    framed by Content-Length. port: the local port (for Via)."""

    def __init__(self, port, tls_ctx=None):
        super().__init__(port, tls=tls_ctx, timeout=TIMEOUT, greeting=False)
        self.port = self.sock.getsockname()[1]

    def recv(self):
        head = self.read_until(b"\r\n\r\n")
        m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        return Msg(head + self.read_exact(int(m.group(1)) if m else 0))


def contact_target(contact):
    """'<sip:alice@127.0.0.1:15061;transport=udp>;q=1.0' -> ('alice', port, 'udp')."""
    m = re.search(r"<sip:([^@>]+)@[^:>]+:(\d+);transport=(\w+)>", contact)
    assert m, "unexpected Contact %r" % contact
    return m.group(1), int(m.group(2)), m.group(3)


# ---- a SIP responder for the health probes ------------------------------------

class SipResponder:
    """Answers every request on a TCP port with 200 OK (the gateway's health
    probe is OPTIONS over TCP). stop() closes the port: probes are refused."""

    def __init__(self, port):
        self.port = port
        self.lsock = None
        self.thread = None
        self.start()

    def start(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(16)
        self.thread = threading.Thread(target=self._serve, args=(self.lsock,), daemon=True)
        self.thread.start()

    def _serve(self, lsock):
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(c,), daemon=True).start()

    @staticmethod
    def _answer(c):
        c.settimeout(5)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(4096)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                vias = [l for l in head.split(b"\r\n") if re.match(rb"(?i)(via|from|to|call-id|cseq)\s*:", l)]
                c.sendall(b"SIP/2.0 200 OK\r\n" + b"\r\n".join(vias) + b"\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            return
        finally:
            c.close()

    def stop(self):
        if self.lsock is not None:
            try:
                self.lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.lsock.close()
            self.lsock = None
        if self.thread is not None:
            self.thread.join(5)
            self.thread = None


# ---- configuration -------------------------------------------------------------

def sip_config(tmp, sip_ports, udp_port, tcp_port, tls_port=None, cert=None, health=False,
               sip_options=None, backend_tls=None):
    """gateway.yaml as a dict. sip_ports: {server: port} of the servers'
    SIP services; backend_tls: {server: 'implicit'}."""
    backend_tls = backend_tls or {}
    listen = [{"address": "127.0.0.1:%d" % udp_port, "transport": "udp"},
              {"address": "127.0.0.1:%d" % tcp_port}]
    if tls_port is not None:
        listen.append(g.listener(tls_port, "implicit", cert=cert))
    users = {}
    for name, (db, uri, ext) in USERS.items():
        u = {"password": g.hash_password("secret-" + name), "database": db, "version": 15}
        if uri:
            u["sip_uri"] = uri
        if ext:
            u["extension"] = ext
        users[name] = u
    sip = {"listen": listen, "pilot_numbers": PILOT}
    sip.update(sip_options or {})
    conf = {
        "workers": 1,
        "plugin_dir": g.plugin_dir(),
        "log_level": "info",
        "shutdown_timeout": "2s",
        "auth": {"failure_delay": "0s"},
        "directory": {"source": "static", "users": users},
        "locator": {
            "source": "static",
            "health": {"enabled": health, "interval": "200ms", "timeout": "100ms",
                       "rise": 1, "fall": 1},
            "servers": {name: {"address": "127.0.0.1", "site": "site-a",
                               "services": {"sip": {"port": port,
                                                    "tls": backend_tls.get(name, "none")}}}
                        for name, port in sip_ports.items()},
            "databases": {"db1": {"copies": ["mbx1", "mbx2"]},
                          "db2": {"copies": ["mbx2", "mbx1"]}},
        },
        "sites": {"site-a": {}},
        "admin": {"socket": os.path.join(str(tmp), "admin")},
        "protocols": {"sip": sip},
    }
    return conf


class SipCase(unittest.TestCase):
    """One gatewayd per class; subclasses set OPTIONS/HEALTH."""

    OPTIONS = None
    HEALTH = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = g.TempDir(prefix="gwsip-", test=cls)
        cls.cert = g.make_cert(cls.tmp.path, "gateway")
        cls.sip_ports = {"mbx1": g.free_port(), "mbx2": g.free_port()}
        cls.udp_port = g.free_port()
        cls.tcp_port = g.free_port()
        cls.tls_port = g.free_port()
        cls.responders = {}
        if cls.HEALTH:
            cls.responders = {n: SipResponder(p) for n, p in cls.sip_ports.items()}
            cls.addClassCleanup(lambda: [r.stop() for r in cls.responders.values()])
        cls.config = sip_config(cls.tmp, cls.sip_ports, cls.udp_port, cls.tcp_port, cls.tls_port,
                                cls.cert, health=cls.HEALTH, sip_options=cls.OPTIONS)
        cls.edit_config(cls.config)
        # runs after the gateway stopped (cleanups are LIFO): sanitizer
        # reports, leaks above all, are written when the workers exit
        cls.addClassCleanup(cls.final_log_check)
        cls.gw = g.Gateway.start(cls.config, directory=cls.tmp.path, test=cls)

    LOG_ALLOW = ()

    @classmethod
    def edit_config(cls, conf):
        """A subclass's changes to the gateway.yaml dict before the start."""

    @classmethod
    def final_log_check(cls):
        cls.gw.check_log(allow=cls.LOG_ALLOW)

    def tearDown(self):
        self.gw.check_log(self, allow=self.LOG_ALLOW)

    def tls_ctx(self):
        return g.client_tls_context(self.cert[0])

    # -- sipp --

    def sipp(self, scenario, service, transport="u1", calls=1, rate=None, keys=(), timeout=20,
             port=None):
        """Run one sipp scenario against the gateway; returns the lines it
        logged (<log> actions). Fails the test unless every call succeeded."""
        if SIPP is None:
            self.skipTest("sipp is not installed (apt-get install sip-tester)")
        port = port or (self.tcp_port if transport.startswith("t") else self.udp_port)
        d = self.tmp.subdir("sipp-%s-%d" % (scenario, g.free_port()))
        log = os.path.join(d, "actions.log")
        cmd = [SIPP, "127.0.0.1:%d" % port, "-sf", os.path.join(SCENARIOS, scenario + ".xml"),
               "-s", service, "-m", str(calls), "-t", transport,
               "-i", "127.0.0.1", "-p", str(g.free_port()),
               "-ci", "127.0.0.1", "-cp", str(g.free_port()),
               "-mi", "127.0.0.1", "-mp", str(g.free_port()),
               "-nostdin", "-timeout", "%ds" % timeout, "-timeout_error",
               "-trace_logs", "-log_file", log, "-trace_err", "-error_file",
               os.path.join(d, "errors.log"), "-default_behaviors", "-bye"]
        if rate:
            cmd += ["-r", str(rate)]
        for k, v in keys:
            cmd += ["-key", k, v]
        p = subprocess.run(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout + 30)
        if p.returncode != 0:
            errors = ""
            if os.path.exists(os.path.join(d, "errors.log")):
                with open(os.path.join(d, "errors.log"), errors="replace") as f:
                    errors = f.read()[-3000:]
            self.fail("sipp %s -s %s exited %d\n%s\n%s" % (scenario, service, p.returncode,
                                                          p.stdout.decode("utf-8", "replace")[-2000:],
                                                          errors))
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return [l.rstrip("\n") for l in f if l.strip()]

    def sipp_contacts(self, *args, **kw):
        """Contacts (call number -> Contact value) a redirect scenario logged."""
        out = {}
        for line in self.sipp(*args, **kw):
            m = re.match(r"CONTACT (\d+) (.*)$", line)
            if m:
                out[int(m.group(1))] = m.group(2).strip()
        return out

    # -- raw helpers --

    def invite_udp(self, user, **kw):
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        c.send(request("INVITE", "sip:%s@gw.example" % user, c.port, **kw))
        return c, c.final()

    def ack(self, c, resp, user, transport="UDP"):
        """ACK a non-2xx final response: same branch, the response's To."""
        branch = re.search(r"branch=([^;,\s]+)", resp.h("via")).group(1)
        c.send(request("ACK", "sip:%s@gw.example" % user, c.port, transport=transport,
                       branch=branch, call_id=resp.h("call-id"),
                       to_tag=re.search(r"tag=([^;\s]+)", resp.h("to")).group(1)))


# ---- the redirect ---------------------------------------------------------------

class Redirect(SipCase):

    def test_invite_redirects_to_active_copy_per_user(self):
        """INVITE -> 302 -> ACK with sipp: each user's Contact is their active copy's server."""
        for user, server in (("alice", "mbx1"), ("bob", "mbx2"), ("4001", "mbx1"),
                             ("4002", "mbx2"), ("carol", "mbx1")):
            contacts = self.sipp_contacts("uac_redirect", user)
            self.assertEqual(len(contacts), 1, contacts)
            u, port, tp = contact_target(contacts[1])
            self.assertEqual(port, self.sip_ports[server], (user, contacts))
            self.assertEqual(tp, "udp")
            # the Contact names the user as the directory knows them
            self.assertEqual(u, {"4001": "alice", "4002": "bob"}.get(user, user))

    def test_tcp_and_tls(self):
        contacts = self.sipp_contacts("uac_redirect", "bob", transport="t1", calls=3)
        self.assertEqual(len(contacts), 3)
        for c in contacts.values():
            self.assertEqual(contact_target(c), ("bob", self.sip_ports["mbx2"], "tcp"))
        # TLS with a raw client (sipp's TLS wants files of its own)
        s = Stream(self.tls_port, self.tls_ctx())
        self.addCleanup(s.close)
        s.send(request("INVITE", "sip:alice@gw.example", s.port, transport="TLS"))
        m = s.recv()
        while m.status == 100:
            m = s.recv()
        self.assertEqual(m.status, 302)
        self.assertEqual(contact_target(m.h("contact")), ("alice", self.sip_ports["mbx1"], "tcp"))

    def test_connection_open_at_shutdown(self):
        """A connection with an answered INVITE (no ACK) and half a message is
        still open when the gateway stops (class cleanup): the worker closes
        it after shutdown_timeout and the plugin frees its state without
        touching it (ASan checks, in the final log check)."""
        s = Stream(self.tcp_port)
        _left_open.append(s)
        s.send(request("INVITE", "sip:alice@gw.example", s.port, transport="TCP"))
        m = s.recv()
        while m.status == 100:
            m = s.recv()
        self.assertEqual(m.status, 302)
        s.send(request("OPTIONS", "sip:gw.example", s.port, transport="TCP")[:30])

    def test_diversion_names_the_user(self):
        """Call answering: the first Diversion's user, not the Request-URI, is looked up."""
        contacts = self.sipp_contacts("uac_diversion", PILOT, keys=[("divert", "bob")])
        self.assertEqual(contact_target(contacts[1]), ("bob", self.sip_ports["mbx2"], "udp"))
        contacts = self.sipp_contacts("uac_diversion", "bob", keys=[("divert", "4001")],
                                      transport="t1")
        self.assertEqual(contact_target(contacts[1]), ("alice", self.sip_ports["mbx1"], "tcp"))
        # the first Diversion header counts, even with two values in it
        c, m = self.invite_udp("bob", extra=["Diversion: <sip:alice@x>;reason=no-answer, <sip:bob@x>",
                                             "Diversion: <sip:bob@y>"])
        self.assertEqual(m.status, 302)
        self.assertEqual(contact_target(m.h("contact"))[1], self.sip_ports["mbx1"])
        self.ack(c, m, "bob")

    def test_pilot_number_round_robin(self):
        contacts = self.sipp_contacts("uac_redirect", PILOT, calls=6, rate=50)
        self.assertEqual(len(contacts), 6)
        ports = [contact_target(contacts[i])[1] for i in sorted(contacts)]
        self.assertEqual(set(ports), set(self.sip_ports.values()))
        for a, b in zip(ports, ports[1:]):
            self.assertNotEqual(a, b, "not round robin: %s" % ports)
        for c in contacts.values():
            self.assertEqual(contact_target(c)[0], PILOT)

    def test_unknown_user_404(self):
        self.sipp("uac_404", "nobody")
        self.sipp("uac_404", "nobody", transport="t1")
        c, m = self.invite_udp("9999")
        self.assertEqual(m.status, 404)
        self.assertRegex(m.h("to"), r";tag=[0-9a-f]{16}$")
        self.ack(c, m, "9999")

    def test_options(self):
        lines = self.sipp("uac_options", "gw")
        self.assertIn("ALLOW INVITE, ACK, CANCEL, OPTIONS", [" ".join(l.split()) for l in lines])
        self.sipp("uac_options", "gw", transport="t1")

    def test_other_methods_405(self):
        for method in ("BYE", "REGISTER", "SUBSCRIBE", "INFO"):
            c = Udp(self.udp_port)
            self.addCleanup(c.close)
            c.send(request(method, "sip:alice@gw.example", c.port))
            m = c.recv()
            self.assertEqual(m.status, 405, method)
            self.assertEqual(m.h("allow"), "INVITE, ACK, CANCEL, OPTIONS")

    def test_unsupported_scheme_and_require(self):
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        c.send(request("INVITE", "mailto:alice@gw.example", c.port))
        self.assertEqual(c.final().status, 416)
        c.send(request("INVITE", "sip:alice@gw.example", c.port, extra=["Require: 100rel"]))
        m = c.final()
        self.assertEqual(m.status, 420)
        self.assertEqual(m.h("unsupported"), "100rel")
        # tel: URIs find users by extension
        c.send(request("INVITE", "tel:4002", c.port))
        m = c.final()
        self.assertEqual(m.status, 302)
        self.assertEqual(contact_target(m.h("contact"))[:2], ("bob", self.sip_ports["mbx2"]))

    def test_response_copies_request_fields(self):
        """Via (all, received/rport on the top one), From, Call-ID, CSeq copied; a To-tag added."""
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        req = request("INVITE", "sip:alice@gw.example", c.port, branch="z9hG4bK-copy1",
                      via_host="client.invalid", cseq=42,
                      extra=["Via: SIP/2.0/UDP proxy.invalid:5070;branch=z9hG4bK-p1"])
        req = req.replace(b";branch=z9hG4bK-copy1", b";rport;branch=z9hG4bK-copy1")
        c.send(req)
        m = c.final()
        self.assertEqual(m.status, 302)
        vias = m.all("via")
        self.assertEqual(vias[0], "SIP/2.0/UDP client.invalid:%d;rport=%d;branch=z9hG4bK-copy1;"
                                  "received=127.0.0.1" % (c.port, c.port))
        self.assertEqual(vias[1], "SIP/2.0/UDP proxy.invalid:5070;branch=z9hG4bK-p1")
        self.assertEqual(m.h("from"), "<sip:caller@test.example>;tag=ft1")
        self.assertEqual(m.h("cseq"), "42 INVITE")
        self.assertRegex(m.h("to"), r"^<sip:alice@gw.example>;tag=[0-9a-f]{16}$")
        self.ack(c, m, "alice")


# ---- transactions -----------------------------------------------------------------

class Transactions(SipCase):

    def lookups(self):
        return len(re.findall(r"sip: INVITE from .*: (302|404)", self.gw.log_text()))

    def test_retransmission_answered_identically_without_lookup(self):
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        before = self.lookups()
        req = request("INVITE", "sip:alice@gw.example", c.port)
        c.send(req)
        first = c.recv_raw()
        c.send(req)
        again = c.recv_raw()
        self.assertEqual(first, again)
        self.assertTrue(first.startswith(b"SIP/2.0 302 "))
        time.sleep(0.1)
        self.assertEqual(self.lookups(), before + 1)

    def test_sipp_with_lost_responses(self):
        """sipp drops half of the 302s: its INVITE retransmissions are answered from
        the transaction (every call succeeds, one lookup per call)."""
        before = self.lookups()
        contacts = self.sipp_contacts("uac_lossy", "bob", calls=20, rate=40, timeout=40)
        self.assertEqual(len(contacts), 20)
        time.sleep(0.1)
        self.assertEqual(self.lookups(), before + 20)

    def test_302_retransmitted_until_ack(self):
        """Timer G over UDP: the 302 is resent after T1, 2*T1... until the ACK."""
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        c.send(request("INVITE", "sip:bob@gw.example", c.port))
        first = c.recv_raw()
        t0 = time.monotonic()   # from the first answer: a worker may still be starting
        second = c.recv_raw(2.0)
        t1 = time.monotonic()
        third = c.recv_raw(3.0)
        t2 = time.monotonic()
        self.assertEqual(first, second)
        self.assertEqual(first, third)
        self.assertGreater(t1 - t0, 0.35)
        self.assertLess(t1 - t0, 0.9)
        self.assertGreater(t2 - t1, 0.8)     # doubled: 1 s
        self.ack(c, Msg(first), "bob")
        self.assertTrue(c.nothing(2.5), "302 retransmitted after the ACK")

    def test_cancel_pending_invite_487(self):
        """INVITE and CANCEL in one TCP segment: the CANCEL arrives while the
        lookup runs: 200 for the CANCEL, 487 for the INVITE."""
        s = Stream(self.tcp_port)
        self.addCleanup(s.close)
        inv = request("INVITE", "sip:alice@gw.example", s.port, transport="TCP",
                      branch="z9hG4bK-cancel1", call_id="cancel1@test")
        can = request("CANCEL", "sip:alice@gw.example", s.port, transport="TCP",
                      branch="z9hG4bK-cancel1", call_id="cancel1@test")
        s.send(inv + can)
        got = {}
        for _ in range(2):
            m = s.recv()
            while m.status == 100:
                m = s.recv()
            got[m.h("cseq").split()[1]] = m
        self.assertEqual(got["CANCEL"].status, 200)
        self.assertEqual(got["INVITE"].status, 487)
        self.assertEqual(got["INVITE"].h("to"), got["CANCEL"].h("to"))
        self.ack(s, got["INVITE"], "alice", transport="TCP")

    def test_cancel_after_final_and_unknown(self):
        c, m = self.invite_udp("alice", branch="z9hG4bK-cancel2", call_id="cancel2@test")
        self.assertEqual(m.status, 302)
        c.send(request("CANCEL", "sip:alice@gw.example", c.port, branch="z9hG4bK-cancel2",
                       call_id="cancel2@test"))
        m2 = c.recv()
        self.assertEqual((m2.status, m2.h("cseq")), (200, "1 CANCEL"))
        # a retransmitted CANCEL: the same answer
        c.send(request("CANCEL", "sip:alice@gw.example", c.port, branch="z9hG4bK-cancel2",
                       call_id="cancel2@test"))
        self.assertEqual(c.recv().raw, m2.raw)
        self.ack(c, m, "alice")
        c.send(request("CANCEL", "sip:alice@gw.example", c.port, branch="z9hG4bK-nosuch"))
        self.assertEqual(c.recv().status, 481)

    def test_pipelined_tcp_messages_in_random_pieces(self):
        """Several requests on one connection, written in small random pieces."""
        import random
        s = Stream(self.tcp_port)
        self.addCleanup(s.close)
        msgs = [request("OPTIONS", "sip:gw.example", s.port, transport="TCP"),
                request("INVITE", "sip:4002@gw.example", s.port, transport="TCP",
                        body=b"v=0\r\n", extra=["Content-Type: application/sdp"]),
                request("OPTIONS", "sip:gw.example", s.port, transport="TCP")]
        data = b"".join(msgs)
        rnd = random.Random(7)
        i = 0
        while i < len(data):
            n = rnd.randint(1, 40)
            s.send(data[i:i + n])
            i += n
            time.sleep(0.001)
        statuses = []
        while len(statuses) < 3:
            m = s.recv()
            if m.status != 100:
                statuses.append(m.status)
        self.assertEqual(sorted(statuses), [200, 200, 302])
        # RFC 5626 keep-alive: CRLFCRLF gets a CRLF
        s.send(b"\r\n\r\n")
        while len(s.buf) < 2:
            s._fill()
        self.assertEqual(s.buf, b"\r\n")


# ---- bad input ---------------------------------------------------------------------

class BadInput(SipCase):

    def test_malformed_requests_400(self):
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        ok = request("INVITE", "sip:alice@gw.example", c.port)
        cases = [
            (ok.replace(b"Call-ID: ", b"X-Call-ID: "), "Missing Call-ID"),
            (ok.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"), "Bad CSeq"),
            (ok.replace(b"CSeq: 1 INVITE", b"CSeq: 1 OPTIONS"), "CSeq Method Mismatch"),
            (ok.replace(b"Content-Length: 0", b"Content-Length: 50"), "Content-Length Larger Than Body"),
            (ok.replace(b"Content-Length: 0", b"Content-Length: -3"), "Bad Content-Length"),
            (ok.replace(b";tag=ft1", b""), "Missing From Tag"),
            (ok.replace(b"Max-Forwards: 70", b"Max-Forwards: 7\x00"), "Bad Header"),
        ]
        for data, reason in cases:
            c.send(data)
            m = c.recv()
            self.assertEqual((m.status, m.reason), (400, reason))
        c.send(ok.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
        self.assertEqual(c.recv().status, 505)
        # garbage, a response, a request without Via: nothing to answer
        for junk in (b"\x00\x01\x02garbage", b"SIP/2.0 200 OK\r\n\r\n",
                     ok.replace(b"Via: ", b"X-Via: ")):
            c.send(junk)
        self.assertTrue(c.nothing(0.5))
        # and the gateway serves on
        c.send(request("OPTIONS", "sip:gw.example", c.port))
        self.assertEqual(c.recv().status, 200)

    def test_oversized_udp_513(self):
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        c.send(request("INVITE", "sip:alice@gw.example", c.port, body=b"v=0\r\n" * 2000))
        self.assertEqual(c.recv().status, 513)
        c.send(request("INVITE", "sip:alice@gw.example", c.port,
                       extra=["X-Pad: " + "a" * 9000]))
        self.assertEqual(c.recv().status, 513)

    def test_oversized_tcp_body_513_and_connection_goes_on(self):
        s = Stream(self.tcp_port)
        self.addCleanup(s.close)
        s.send(request("INVITE", "sip:alice@gw.example", s.port, transport="TCP",
                       body=b"x" * 20000))
        self.assertEqual(s.recv().status, 513)
        s.send(request("OPTIONS", "sip:gw.example", s.port, transport="TCP"))
        self.assertEqual(s.recv().status, 200)

    def test_oversized_tcp_header_513_and_close(self):
        s = Stream(self.tcp_port)
        self.addCleanup(s.close)
        s.send(request("INVITE", "sip:alice@gw.example", s.port, transport="TCP",
                       extra=["X-Pad-%d: %s" % (i, "b" * 100) for i in range(100)]))
        self.assertEqual(s.recv().status, 513)
        self.assertTrue(s.closed())

    def test_tcp_without_content_length_400_and_close(self):
        s = Stream(self.tcp_port)
        self.addCleanup(s.close)
        s.send(request("OPTIONS", "sip:gw.example", s.port, transport="TCP",
                       content_length=False))
        m = s.recv()
        self.assertEqual((m.status, m.reason), (400, "Missing Content-Length"))
        self.assertTrue(s.closed())

    def test_half_message_then_close_and_slow_client(self):
        s = Stream(self.tcp_port)
        s.send(request("OPTIONS", "sip:gw.example", s.port, transport="TCP")[:40])
        s.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(s.closed())
        s.close()
        # the gateway is fine
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        c.send(request("OPTIONS", "sip:gw.example", c.port))
        self.assertEqual(c.recv().status, 200)


# ---- options: alternative contacts, trusted peers, rate limit ----------------------

class AlternativeContacts(SipCase):
    OPTIONS = {"alternative_contacts": True}

    def test_lower_q_for_other_copies(self):
        c, m = self.invite_udp("bob")
        self.assertEqual(m.status, 302)
        contacts = m.all("contact")
        self.assertEqual(len(contacts), 2, contacts)
        self.assertEqual(contact_target(contacts[0])[1], self.sip_ports["mbx2"])
        self.assertTrue(contacts[0].endswith(";q=1.0"), contacts)
        self.assertEqual(contact_target(contacts[1])[1], self.sip_ports["mbx1"])
        self.assertTrue(contacts[1].endswith(";q=0.9"), contacts)
        self.ack(c, m, "bob")


class TrustedPeers(SipCase):
    OPTIONS = {"trusted_peers": "127.0.0.2/32, ::1"}
    LOG_ALLOW = (r"not in trusted_peers",)

    def test_only_trusted_sources(self):
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        c.send(request("OPTIONS", "sip:gw.example", c.port))
        self.assertTrue(c.nothing(0.5), "answered an untrusted peer")
        t = Udp(self.udp_port, source="127.0.0.2")
        self.addCleanup(t.close)
        t.send(request("OPTIONS", "sip:gw.example", t.port, via_host="127.0.0.2"))
        self.assertEqual(t.recv().status, 200)
        s = Stream(self.tcp_port)
        self.addCleanup(s.close)
        self.assertTrue(s.closed())
        self.assertIn("not in trusted_peers", self.gw.log_text())


class RateLimit(SipCase):
    OPTIONS = {"rate_limit": 5}
    LOG_ALLOW = (r"over rate_limit",)

    def test_requests_over_the_limit_dropped(self):
        c = Udp(self.udp_port)
        self.addCleanup(c.close)
        # align to the start of a second so that all 20 fall in one
        time.sleep(1.0 - (time.time() % 1.0) + 0.05)
        for _ in range(20):
            c.send(request("OPTIONS", "sip:gw.example", c.port))
        answered = 0
        while not c.nothing(0.3):
            answered += 1
        self.assertGreaterEqual(answered, 4)
        self.assertLessEqual(answered, 10)   # at most two seconds' worth
        time.sleep(1.1)
        c.send(request("OPTIONS", "sip:gw.example", c.port))
        self.assertEqual(c.recv().status, 200)


# ---- failover ------------------------------------------------------------------------

class Failover(SipCase):
    """Health checks on: the active copy's server stops answering its probes,
    the Contact moves to the next copy; an operator switchover moves it too."""

    HEALTH = True
    # the stopped responder's failed health probes are logged
    LOG_ALLOW = (r"mbx1", r"health")

    def contact_port(self, user):
        c, m = self.invite_udp(user)
        self.assertEqual(m.status, 302, m)
        self.ack(c, m, user)
        return contact_target(m.h("contact"))[1]

    def wait_contact(self, user, port, timeout=10.0):
        return g.wait_until(lambda: self.contact_port(user) == port, timeout, interval=0.1)

    def test_active_copy_fails_over_and_back(self):
        mbx1, mbx2 = self.sip_ports["mbx1"], self.sip_ports["mbx2"]
        self.assertEqual(self.contact_port("alice"), mbx1)
        self.responders["mbx1"].stop()
        self.assertTrue(self.wait_contact("alice", mbx2), "Contact did not move to mbx2")
        # sipp sees the same
        contacts = self.sipp_contacts("uac_redirect", "alice")
        self.assertEqual(contact_target(contacts[1])[1], mbx2)
        self.responders["mbx1"].start()
        self.assertTrue(self.wait_contact("alice", mbx1), "Contact did not come back to mbx1")

    def test_switchover_by_operator(self):
        ctl = os.path.join(g.build_dir(), "gatewayctl")
        if not os.access(ctl, os.X_OK):
            self.skipTest("gatewayctl not built")
        mbx1, mbx2 = self.sip_ports["mbx1"], self.sip_ports["mbx2"]
        self.assertTrue(self.wait_contact("carol", mbx1))
        run = lambda *a: subprocess.run([ctl, "-c", self.gw.conf_path] + list(a),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        timeout=20)
        p = run("switchover", "db1", "mbx2")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(self.contact_port("carol"), mbx2)
        p = run("switchover", "db1", "mbx1")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(self.contact_port("carol"), mbx1)


if __name__ == "__main__":
    g.main()
