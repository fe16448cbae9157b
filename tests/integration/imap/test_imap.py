#!/usr/bin/env python3
"""IMAP through gatewayd in front of real Dovecot backends.

Every test speaks to the gateway as a user's mail client would (imaplib,
curl, or raw lines on a socket) and asserts what that user -- or the backend
behind the gateway -- sees. Two Dovecot instances serve every user; each
mailbox's first message names the backend it lives on, so a test knows
where it landed.

Two gateways share the backends:
  main     listeners: plain (plaintext allowed), strict (plain, plaintext
           refused), starttls, implicit TLS; backends: mbx1 over STARTTLS,
           mbx2 over implicit TLS; client address forwarded with IMAP ID;
           login referrals on (one user lives in another site)
  proxied  one plain listener; backends over plain TCP to Dovecot listeners
           that require the PROXY protocol; logins as a master user; short
           login timeout and bad-command limit

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/imap/test_imap.py [-k NAME]
"""

import base64
import os
import random
import re
import socket
import subprocess
import sys
import time
import unittest
import imaplib

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import gwtest as g  # noqa: E402

TIMEOUT = 15.0                  # every socket operation
BIG_SIZE = 10 * 1024 * 1024     # the FETCHed message
PROXIED_BAD_COMMANDS = 3        # protocols.imap.max_bad_commands of the proxied gateway
PROXIED_LOGIN_TIMEOUT = 2       # seconds, protocols.imap.login_timeout of the proxied gateway

MASTER_USER = "gwmaster"
MASTER_PASSWORD = "master-secret"
# user: (directory password, database, backend password if different)
USERS = {
    "alice": ("secret-alice", "db1", None),
    "bob": ("secret-bob", "db2", None),
    "carol": ("secret-carol", "db1", None),     # holds the big message
    "dave": ('p "w\\ d', "db1", None),          # a password that needs quoting
    "ida": ("secret-ida", "db2", None),         # IDLE and ID forwarding
    "pete": ("secret-pete", "db1", None),       # PROXY protocol
    "mia": ("secret-mia", "db2", "not-the-directory-password"),   # master user only
    "erin": ("secret-erin", "dbdead", None),    # its only server is down
    "frank": ("secret-frank", "db1", None),     # lives in site-b: referral
}
REFERRAL_URL = "https://mail.site-b.example/owa"


def big_message(size, seed=7):
    """A text message of about `size` bytes (76-column base64 lines)."""
    body = base64.encodebytes(random.Random(seed).randbytes(size * 3 // 4))
    return g.make_message("big message", body)


class ImapDovecot(g.Dovecot):
    """gwtest's Dovecot plus what these tests check on the backend side: the
    client ID in the log, a PROXY-protocol listener, a master user."""

    extra_config = ""

    def _config(self):
        text = super()._config()
        marker = "service imap-login {\n"
        if marker not in text:
            raise RuntimeError("gwtest's Dovecot config changed shape: no %r" % marker)
        text = text.replace(marker, marker + (
            "  inet_listener imap_haproxy {\n    port = %d\n    haproxy = yes\n  }\n"
            % self.ports["imap_haproxy"]))
        with open(os.path.join(self.dir, "master-users"), "w") as f:
            f.write("%s:{PLAIN}%s::::::\n" % (MASTER_USER, MASTER_PASSWORD))
        os.chmod(os.path.join(self.dir, "master-users"), 0o644)
        return text + self.extra_config + """
imap_id_log = *
haproxy_trusted_networks = 127.0.0.0/8
auth_master_user_separator = *
passdb {
  driver = passwd-file
  args = %s/master-users
  master = yes
  pass = yes
}
""" % self.dir

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def start_backends(test, names=("mbx1", "mbx2"), cls=ImapDovecot):
    users = {u: (bpw or pw) for u, (pw, _, bpw) in USERS.items()}
    out = {}
    for name in names:
        msgs = {u: [g.welcome_message(u, name)] for u in users}
        msgs["carol"].append(big_message(BIG_SIZE))
        ports = {k: g.free_port() for k in ("pop3", "imap", "pop3s", "imaps", "imap_haproxy")}
        out[name] = cls.start(name, users=users, messages=msgs, tls=True, ports=ports,
                              test=test)
    return out


# ---- a raw IMAP client ------------------------------------------------------

class Imap(g.LineClient):
    """gwtest's raw line client plus IMAP's tagged responses and literals,
    for what imaplib cannot do: pipelining, literals of our choice, abuse."""

    TIMEOUT = TIMEOUT

    def response(self, tag):
        """Lines up to and including the tagged one: (untagged lines with
        their literals inline, tagged line)."""
        tag = tag.encode() if isinstance(tag, str) else tag
        lines = []
        while True:
            l = self.line()
            m = re.search(rb"\{(\d+)\}$", l)
            if m:
                l = l + b"\r\n" + self.read_exact(int(m.group(1))) + self.line()
            if l.startswith(tag + b" "):
                return lines, l
            lines.append(l)

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        return self.response(tag)

    def answered(self, tag, answer):
        """response(tag), whose tagged line must begin "TAG ANSWER"; returns
        the untagged lines."""
        lines, t = self.response(tag)
        if not t.startswith(("%s %s" % (tag, answer)).encode()):
            raise AssertionError(t)
        return lines

    def expect(self, tag, text, answer):
        """Send TAG TEXT; answered(tag, answer)."""
        self.send("%s %s\r\n" % (tag, text))
        return self.answered(tag, answer)

    def closed(self, timeout=TIMEOUT):
        """True when the gateway closes the connection (after what it sent;
        a reset, which may lose that, is no close here)."""
        return super().closed(timeout, reset=False)


def caps_of(line):
    m = re.search(rb"\[CAPABILITY ([^\]]*)\]", line)
    return m.group(1).decode().split() if m else None


def setUpModule():
    """The backends and both gateways, once for the whole file (class
    attributes of GatewayTest, so every test class sees them)."""
    T = GatewayTest
    T.dir = g.TempDir(prefix="gwimap-")
    unittest.addModuleCleanup(T.dir.cleanup)
    T.backends = start_backends(None)
    unittest.addModuleCleanup(g.Dovecot.stop_all, list(T.backends.values()))
    users = {u: (pw, db) for u, (pw, db, _) in USERS.items()}
    dead_port = g.free_port()   # nothing listens there
    dead = {"deadsrv": {"address": "127.0.0.1", "site": "site-a",
                        "services": {"imap": {"port": dead_port, "tls": "none"}}}}
    dbs = {"db1": ["mbx1", "mbx2"], "db2": ["mbx2", "mbx1"], "dbdead": ["deadsrv"]}

    # main: mbx1 over STARTTLS, mbx2 over implicit TLS, ID forwarding.
    # (Each gateway its own directory: standard_config makes a certificate.)
    gdir = T.dir.subdir("main")
    conf, info = g.standard_config(T.backends, gdir, users=users, databases=dbs,
                                   pop=False, extra_servers=dead)
    srv = conf["locator"]["servers"]
    srv["mbx1"]["services"]["imap"] = {"port": T.backends["mbx1"].ports["imap"],
                                       "tls": "starttls"}
    srv["mbx2"]["services"]["imap"] = {"port": T.backends["mbx2"].ports["imaps"],
                                       "tls": "implicit"}
    conf["directory"]["users"]["frank"]["site"] = "site-b"
    conf["sites"]["site-b"] = {"external_url": REFERRAL_URL}
    conf["local_site"] = "site-a"
    cert = (info["cert"], info["key"])
    T.cafile = info["cert"]
    T.ports = {k: g.free_port() for k in ("plain", "strict", "starttls", "tls")}
    conf["protocols"]["imap"] = {
        "listen": [
            g.listener(T.ports["plain"], "none", allow_plaintext=True),
            g.listener(T.ports["strict"], "none"),
            g.listener(T.ports["starttls"], "starttls", cert=cert),
            g.listener(T.ports["tls"], "implicit", cert=cert),
        ],
        "login_timeout": "20s",
        "referral": True,
        "forward": "id",
    }
    T.gw = g.Gateway.start(conf, directory=gdir)
    unittest.addModuleCleanup(T.gw.stop)

    # proxied: plain backends behind the PROXY protocol, master user.
    gdir = T.dir.subdir("proxied")
    conf2, _ = g.standard_config(T.backends, gdir, users=users, databases=dbs,
                                 pop=False, extra_servers=dead)
    for name, d in T.backends.items():
        conf2["locator"]["servers"][name]["services"]["imap"] = {
            "port": d.ports["imap_haproxy"], "tls": "none", "proxy_protocol": True}
    # Health probes of these ports send the header's LOCAL form (Dovecot
    # waits for a header before it greets): probed often, they must stay up.
    conf2["locator"]["health"] = {"interval": "1s", "timeout": "500ms", "fall": 2}
    T.pport = g.free_port()
    conf2["protocols"]["imap"] = {
        "listen": [g.listener(T.pport, "none", allow_plaintext=True)],
        "login_timeout": "%ds" % PROXIED_LOGIN_TIMEOUT,
        "max_bad_commands": PROXIED_BAD_COMMANDS,
        "forward": "none",
        "master_user": MASTER_USER,
        "master_password": MASTER_PASSWORD,
    }
    T.gw2 = g.Gateway.start(conf2, directory=gdir)
    T.gw2_started = time.monotonic()
    unittest.addModuleCleanup(T.gw2.stop)
    T.tls_ctx = g.client_tls_context(T.cafile)
    # Runs first of the cleanups: leak reports are written when the workers
    # exit, after the last test's own check.
    unittest.addModuleCleanup(check_logs_after_stop)


def check_logs_after_stop():
    for gw in (GatewayTest.gw, GatewayTest.gw2):
        gw.stop()
        bad = gw.unexpected_log_lines()
        if bad:
            raise AssertionError("%s: %s" % (gw.log_path, "\n".join(bad[:40])))


class GatewayTest(unittest.TestCase):
    """Base of the test classes: the servers are started by setUpModule."""

    def setUp(self):
        self.log_start = self.gw.log_size()
        self.log2_start = self.gw2.log_size()

    def tearDown(self):
        self.gw.check_log(self, since=self.log_start)
        self.gw2.check_log(self, since=self.log2_start)

    # -- helpers --

    def raw(self, which="plain", **kw):
        if which == "tls":
            kw.setdefault("tls", self.tls_ctx)
        c = Imap(self.ports[which] if which != "proxied" else self.pport, **kw)
        self.addCleanup(c.close)
        return c

    def imaplib_client(self, which="plain"):
        port = self.ports[which]
        if which == "tls":
            m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=self.tls_ctx, timeout=TIMEOUT)
        else:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
        self.addCleanup(self._shutdown, m)
        return m

    @staticmethod
    def _shutdown(m):
        try:
            m.shutdown()
        except OSError:
            pass

    def assert_on(self, m, user, backend):
        """imaplib client m is logged in as user on backend."""
        typ, _ = m.select("INBOX")
        self.assertEqual(typ, "OK")
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK")
        self.assertIn(("welcome %s on %s" % (user, backend)).encode(), data[0][1])

    def assert_login_on(self, user, password, backend):
        """An imaplib LOGIN as user lands on backend."""
        m = self.imaplib_client()
        m.login(user, password)
        self.assert_on(m, user, backend)

    def assert_raw_on(self, c, user, backend):
        c.expect("s1", "SELECT INBOX", "OK")
        lines = c.expect("s2", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "OK")
        self.assertIn(("welcome %s on %s" % (user, backend)).encode(), b"\n".join(lines))

    def backend_log_has(self, backend, pattern, timeout=5.0):
        rx = re.compile(pattern)
        return g.wait_until(lambda: rx.search(self.backends[backend].log()), timeout)


class TestPreLogin(GatewayTest):

    def test_greeting_and_capability(self):
        c = self.raw()
        self.assertTrue(c.greeting.startswith(b"* OK [CAPABILITY "), c.greeting)
        caps = caps_of(c.greeting)
        self.assertEqual(caps[0], "IMAP4rev1")
        for cap in ("SASL-IR", "ID", "LITERAL+", "AUTH=PLAIN", "LOGIN-REFERRALS"):
            self.assertIn(cap, caps)
        for cap in ("STARTTLS", "LOGINDISABLED", "AUTH=LOGIN"):
            self.assertNotIn(cap, caps)
        lines = c.expect("a", "CAPABILITY", "OK")
        self.assertEqual(lines, [b"* CAPABILITY " + " ".join(caps).encode()])
        self.assertEqual(c.cmd("b", "NOOP")[1], b"b OK NOOP completed.")
        lines, t = c.cmd("c", "LOGOUT")
        self.assertEqual(lines, [b"* BYE Logging out."])
        self.assertTrue(t.startswith(b"c OK"))
        self.assertTrue(c.closed())

    def test_capabilities_learned_from_backend(self):
        # Dovecot announces IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE
        # LITERAL+ before login: after a backend login the gateway's list is
        # that, filtered, plus its own per-connection words.
        m = self.imaplib_client()
        m.login("alice", "secret-alice")
        c = self.raw()
        caps = caps_of(c.greeting)
        self.assertEqual(caps, ["IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+",
                                "LOGIN-REFERRALS", "AUTH=PLAIN"])

    def test_logindisabled_without_tls(self):
        c = self.raw("strict")
        caps = caps_of(c.greeting)
        self.assertIn("LOGINDISABLED", caps)
        self.assertFalse([x for x in caps if x.startswith("AUTH=")], caps)
        c.expect("a", "LOGIN alice secret-alice", "NO [PRIVACYREQUIRED]")
        ir = base64.b64encode(b"\0alice\0secret-alice").decode()
        c.expect("b", "AUTHENTICATE PLAIN " + ir, "NO [PRIVACYREQUIRED]")
        # A password in a literal is refused before it is sent at all.
        c.send("c LOGIN alice {12}\r\n")
        self.assertTrue(c.line().startswith(b"c NO [PRIVACYREQUIRED]"))
        c.expect("d", "NOOP", "OK")

    def test_id(self):
        c = self.raw()
        lines, t = c.cmd("a", 'ID ("name" "gwtest" "version" "1")')
        self.assertEqual(lines, [b'* ID ("name" "gatewayd")'])
        self.assertTrue(t.startswith(b"a OK"), t)
        c.expect("b", "ID NIL", "OK")
        c.expect("c", 'ID ("name")', "BAD")

    def test_commands_before_login(self):
        c = self.raw()
        self.assertEqual(c.cmd("a", "SELECT INBOX")[1], b"a BAD Not logged in.")
        self.assertEqual(c.cmd("b", "XYZZY")[1], b"b BAD Unknown command.")
        c.send("\0\r\n")
        self.assertTrue(c.line().startswith(b"* BAD"))
        c.send("c NO\"OP\r\n")
        self.assertTrue(c.line().startswith(b"c BAD"))
        c.expect("d", "NOOP", "OK")

    def test_pipelined_before_login(self):
        c = self.raw()
        c.send("a CAPABILITY\r\nb NOOP\r\nc LOGIN bob secret-bob\r\nd SELECT INBOX\r\n"
               "e FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nf LOGOUT\r\n")
        c.answered("a", "OK")
        c.answered("b", "OK")
        c.answered("c", "OK [CAPABILITY IMAP4rev1")
        c.answered("d", "OK")
        lines, t = c.response("e")
        self.assertIn(b"welcome bob on mbx2", b"\n".join(lines))
        c.answered("f", "OK")


class TestLogin(GatewayTest):

    def test_login_atoms_imaplib(self):
        m = self.imaplib_client()
        typ, data = m.login("alice", "secret-alice")
        self.assertEqual(typ, "OK")
        # The answer carries the backend's post-login capabilities.
        self.assertIn(b"[CAPABILITY IMAP4rev1", data[0])
        self.assertIn(b"IDLE", data[0])
        self.assert_on(m, "alice", "mbx1")
        self.assert_login_on("bob", "secret-bob", "mbx2")

    def test_login_quoted_with_escapes(self):
        c = self.raw()
        c.expect("a", 'LOGIN "dave" "p \\"w\\\\ d"', "OK [CAPABILITY")
        self.assert_raw_on(c, "dave", "mbx1")
        # imaplib quotes the same way
        self.assert_login_on("dave", 'p "w\\ d', "mbx1")

    def test_login_synchronizing_literals(self):
        c = self.raw()
        c.send("a LOGIN {5}\r\n")
        self.assertTrue(c.line().startswith(b"+ "))
        c.send("alice {12}\r\n")
        self.assertTrue(c.line().startswith(b"+ "))
        c.send("secret-alice\r\n")
        c.answered("a", "OK [CAPABILITY")
        self.assert_raw_on(c, "alice", "mbx1")

    def test_login_literal_plus(self):
        c = self.raw()
        c.send("a LOGIN {3+}\r\nbob {10+}\r\nsecret-bob\r\n")
        c.answered("a", "OK [CAPABILITY")
        self.assert_raw_on(c, "bob", "mbx2")

    def test_authenticate_plain_sasl_ir(self):
        c = self.raw()
        ir = base64.b64encode(b"\0carol\0secret-carol").decode()
        c.expect("a", "AUTHENTICATE PLAIN " + ir, "OK [CAPABILITY")
        self.assert_raw_on(c, "carol", "mbx1")

    def test_authenticate_plain_continuation(self):
        m = self.imaplib_client()   # imaplib does not use SASL-IR
        typ, _ = m.authenticate("PLAIN", lambda _: b"\0bob\0secret-bob")
        self.assertEqual(typ, "OK")
        self.assert_on(m, "bob", "mbx2")

    def test_authenticate_cancel_and_errors(self):
        c = self.raw()
        c.send("a AUTHENTICATE PLAIN\r\n")
        self.assertEqual(c.line(), b"+ ")
        c.send("*\r\n")
        self.assertEqual(c.line(), b"a BAD Authentication cancelled.")
        c.expect("b", "AUTHENTICATE CRAM-MD5", "NO")
        c.expect("c", "AUTHENTICATE PLAIN !!notbase64", "BAD")
        bad = base64.b64encode(b"bob\0alice\0secret-alice").decode()   # act as another
        c.expect("d", "AUTHENTICATE PLAIN " + bad, "BAD")
        c.expect("e", "NOOP", "OK")

    def test_unknown_user_and_bad_password(self):
        c = self.raw()
        self.assertEqual(c.cmd("a", "LOGIN nobody-here whatever")[1],
                         b"a NO [AUTHENTICATIONFAILED] Authentication failed.")
        self.assertEqual(c.cmd("b", "LOGIN alice wrong-password")[1],
                         b"b NO [AUTHENTICATIONFAILED] Authentication failed.")
        # still usable: the right password now works
        c.expect("c", "LOGIN alice secret-alice", "OK")

    def test_backend_down(self):
        c = self.raw()
        c.expect("a", "LOGIN erin secret-erin", "NO [UNAVAILABLE]")
        c.expect("b", "NOOP", "OK")
        self.assertIn("deadsrv", self.gw.log_text()[self.log_start:])

    def test_pipelined_after_login(self):
        c = self.raw()
        c.send("a LOGIN alice secret-alice\r\nb SELECT INBOX\r\n"
               "c FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nd LOGOUT\r\n")
        c.answered("a", "OK [CAPABILITY")
        c.answered("b", "OK")
        lines, t = c.response("c")
        self.assertIn(b"welcome alice on mbx1", b"\n".join(lines))
        lines, t = c.response("d")
        self.assertIn(b"* BYE", lines[0])
        self.assertTrue(c.closed())

    def test_curl(self):
        url = "imap://127.0.0.1:%d/INBOX;UID=1" % self.ports["plain"]
        out = subprocess.run(["curl", "-sS", "--max-time", "20", "-u", "alice:secret-alice", url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"Subject: welcome alice on mbx1", out.stdout)
        url = "imaps://127.0.0.1:%d/INBOX;UID=1" % self.ports["tls"]
        out = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", self.cafile,
                              "-u", "bob:secret-bob", url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"Subject: welcome bob on mbx2", out.stdout)

    def test_referral(self):
        c = self.raw()
        _, t = c.cmd("a", "LOGIN frank secret-frank")
        self.assertEqual(t.split(b"]")[0],
                         b"a NO [REFERRAL imap://frank@mail.site-b.example/")
        # a wrong password is not referred anywhere
        c.expect("b", "LOGIN frank wrong", "NO [AUTHENTICATIONFAILED]")


class TestTLS(GatewayTest):

    def test_starttls(self):
        m = self.imaplib_client("starttls")
        self.assertIn(b"STARTTLS", m.welcome)
        self.assertIn(b"LOGINDISABLED", m.welcome)
        m.starttls(self.tls_ctx)
        typ, data = m.capability()
        caps = data[0].split()
        self.assertNotIn(b"STARTTLS", caps)
        self.assertIn(b"AUTH=PLAIN", caps)
        m.login("alice", "secret-alice")
        self.assert_on(m, "alice", "mbx1")

    def test_starttls_refused_where_unavailable(self):
        c = self.raw()
        c.expect("a", "STARTTLS", "BAD")
        c = self.raw("tls")
        c.expect("a", "STARTTLS", "BAD")

    def test_starttls_injection(self):
        # Commands pipelined behind STARTTLS in plaintext must be discarded,
        # never run as if they had come over TLS (CVE-2011-0411 class).
        c = self.raw("starttls")
        c.send("a STARTTLS\r\nb LOGIN alice secret-alice\r\nc SELECT INBOX\r\n")
        self.assertEqual(c.line(), b"a OK Begin TLS negotiation now.")
        c.buf = b""
        c.starttls(self.tls_ctx)
        lines, t = c.cmd("d", "SELECT INBOX")
        self.assertEqual(t, b"d BAD Not logged in.")
        self.assertEqual(lines, [])
        c.expect("e", "LOGIN alice secret-alice", "OK")

    def test_implicit_tls(self):
        m = self.imaplib_client("tls")
        self.assertNotIn(b"LOGINDISABLED", m.welcome)
        m.login("bob", "secret-bob")
        self.assert_on(m, "bob", "mbx2")


class TestRelay(GatewayTest):

    def test_idle_sees_new_mail(self):
        c = self.raw()
        c.expect("a", "LOGIN ida secret-ida", "OK")
        lines, t = c.cmd("b", "SELECT INBOX")
        exists = [l for l in lines if l.endswith(b" EXISTS")]
        n = int(exists[0].split()[1])
        c.send("c IDLE\r\n")
        self.assertTrue(c.line().startswith(b"+ "))
        self.backends["mbx2"].deliver("ida", g.make_message("while idling", b"ping\n"))
        deadline = time.monotonic() + 10
        seen = []
        while time.monotonic() < deadline:
            l = c.line()
            seen.append(l)
            if l == b"* %d EXISTS" % (n + 1):
                break
        self.assertIn(b"* %d EXISTS" % (n + 1), seen)
        c.send("DONE\r\n")
        c.answered("c", "OK")

    def _fetch_big(self, m):
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, '(HEADER Subject "big message")')
        num = data[0].split()[0]
        t0 = time.monotonic()
        typ, data = m.fetch(num, "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        body = data[0][1]
        want = self.backends["mbx1"].delivered["carol"][1]
        self.assertEqual(len(body), len(want))
        self.assertTrue(body == want, "10 MiB message differs")
        return time.monotonic() - t0

    def test_fetch_10mib_byte_exact(self):
        m = self.imaplib_client("tls")   # client TLS, backend STARTTLS
        m.login("carol", "secret-carol")
        self._fetch_big(m)

    def test_fetch_10mib_plain_and_proxy(self):
        m = imaplib.IMAP4("127.0.0.1", self.pport, timeout=TIMEOUT)
        self.addCleanup(self._shutdown, m)
        m.login("carol", "secret-carol")
        self._fetch_big(m)


class TestForwarding(GatewayTest):

    def test_id_forwarded_to_backend(self):
        c = self.raw(source="127.0.0.2")
        c.expect("a", 'ID ("name" "gwtest-client" "version" "4.2" "x-originating-ip" "6.6.6.6")',
                 "OK")
        c.expect("b", "LOGIN ida secret-ida", "OK")
        # Dovecot trusts the gateway (login_trusted_networks): the session's
        # remote IP is the client's, and the client's own ID is logged.
        self.assertTrue(self.backend_log_has(
            "mbx2", r"Login: user=<ida>, method=PLAIN, rip=127\.0\.0\.2,"),
            self.backends["mbx2"].log()[-2000:])
        self.assertTrue(self.backend_log_has("mbx2", r"ID sent: .*name=gwtest-client"),
                        self.backends["mbx2"].log()[-2000:])
        # The client cannot choose its own address.
        self.assertNotIn("6.6.6.6", self.backends["mbx2"].log())

    def test_proxy_protocol_and_master_user(self):
        c = self.raw("proxied", source="127.0.0.2")
        c.expect("a", "LOGIN pete secret-pete", "OK [CAPABILITY")
        self.assert_raw_on(c, "pete", "mbx1")
        self.assertTrue(self.backend_log_has(
            "mbx1", r"Login: user=<pete>, method=PLAIN, rip=127\.0\.0\.2,"),
            self.backends["mbx1"].log()[-2000:])

    def test_health_probes_send_proxy_header(self):
        # Without a header Dovecot never greets, a probe times out (0.5 s) and
        # two in a row (fall 2, every second) take a server down within ~2.5 s.
        time.sleep(max(0.0, self.gw2_started + 3.5 - time.monotonic()))
        log = self.gw2.log_text()
        for srv in ("mbx1", "mbx2"):
            self.assertNotIn("health: %s imap is down" % srv, log)
        self.raw("proxied").expect("a", "LOGIN pete secret-pete", "OK [CAPABILITY")

    def test_master_user(self):
        # mia's backend password is not her directory password: only the
        # master login gets her in.
        c = self.raw("proxied")
        c.expect("a", "LOGIN mia secret-mia", "OK [CAPABILITY")
        self.assert_raw_on(c, "mia", "mbx2")
        c2 = self.raw()   # the main gateway logs in as the user: refused by the backend
        c2.expect("a", "LOGIN mia secret-mia", "NO [AUTHENTICATIONFAILED]")


class TestLimits(GatewayTest):

    def test_oversized_synchronizing_literal(self):
        c = self.raw()
        c.send("a LOGIN alice {100000}\r\n")
        self.assertEqual(c.line(), b"a BAD [TOOBIG] Literal too big.")
        c.expect("b", "NOOP", "OK")

    def test_oversized_nonsynchronizing_literal(self):
        c = self.raw()
        c.send("a LOGIN alice {100000+}\r\n" + "x" * 1000)
        self.assertEqual(c.line(), b"a BAD [TOOBIG] Literal too big.")
        self.assertTrue(c.line().startswith(b"* BYE"))
        self.assertTrue(c.closed())

    def test_long_line(self):
        c = self.raw()
        c.send("a LOGIN " + "x" * 20000 + " y\r\n")
        self.assertTrue(c.line().startswith(b"* BAD"))
        c.expect("b", "NOOP", "OK")

    def test_nul_bytes(self):
        c = self.raw()
        c.send(b"a LOGIN al\0ice secret\r\n")
        self.assertTrue(c.line().startswith(b"a BAD"))
        c.send(b"b LOGIN {6+}\r\nal\0ice secret-alice\r\n")
        self.assertTrue(c.line().startswith(b"b BAD"))
        c.expect("c", "NOOP", "OK")

    def test_too_many_bad_commands(self):
        c = self.raw("proxied")
        for i in range(PROXIED_BAD_COMMANDS - 1):
            c.expect("x%d" % i, "BOGUS", "BAD")
        c.send("y BOGUS\r\n")
        self.assertTrue(c.line().startswith(b"y BAD"))
        self.assertTrue(c.line().startswith(b"* BYE"))
        self.assertTrue(c.closed())

    def test_login_timeout(self):
        c = self.raw("proxied")
        t0 = time.monotonic()
        self.assertEqual(c.line(), b"* BYE Disconnected for inactivity.")
        self.assertTrue(c.closed())
        self.assertLess(time.monotonic() - t0, PROXIED_LOGIN_TIMEOUT + 3)

    def _half_close(self, c, user, password):
        c.send("a LOGIN %s %s\r\nb LOGOUT\r\n" % (user, password))
        c.sock.shutdown(socket.SHUT_WR)
        c.answered("a", "OK")
        c.answered("b", "OK")

    # Over a plain backend only: Dovecot 2.3 closes a TLS connection whose
    # peer half-closed without running what it had pipelined (seen directly,
    # without the gateway), so the TLS variant would test Dovecot.
    def test_half_close_after_pipelined_login(self):
        c = self.raw("proxied")
        self._half_close(c, "alice", "secret-alice")

class LiteralMinusDovecot(ImapDovecot):
    """Announces LITERAL- instead of LITERAL+ (RFC 7888), before login too."""
    extra_config = "imap_literal_minus = yes\n"


class TestCapabilityLearning(unittest.TestCase):
    """A gateway of its own in front of a backend whose capabilities differ
    from the built-in default: the greeting follows the backend."""

    @classmethod
    def setUpClass(cls):
        d = g.TempDir(prefix="gwimapcaps-", test=cls)
        cls.backends = start_backends(cls, names=("mbx1",), cls=LiteralMinusDovecot)
        users = {u: (pw, db) for u, (pw, db, _) in USERS.items() if db == "db1"}
        conf, _ = g.standard_config(cls.backends, d.path, users=users,
                                    databases={"db1": ["mbx1"]}, pop=False)
        conf["locator"]["health"] = {"enabled": True, "interval": "1s", "timeout": "500ms"}
        cls.port = g.free_port()
        conf["protocols"]["imap"] = {
            "listen": [g.listener(cls.port, "none", allow_plaintext=True)]}
        cls.gw = g.Gateway.start(conf, directory=d.path, test=cls)

    def greeting_caps(self):
        with Imap(self.port) as c:
            return caps_of(c.greeting)

    def test_learned_from_health_checks_and_logins(self):
        # No login yet: only a health check can have taught the gateway.
        caps = g.wait_until(lambda: (lambda c: c if "LITERAL-" in c else None)(
            self.greeting_caps()), timeout=10)
        self.assertIsNotNone(caps, "greeting never showed LITERAL-: %s" % self.greeting_caps())
        self.assertNotIn("LITERAL+", caps)
        with Imap(self.port) as c:
            c.expect("a", "LOGIN alice secret-alice", "OK")
        self.assertIn("LITERAL-", self.greeting_caps())
        self.gw.check_log(self)


if __name__ == "__main__":
    g.main()
