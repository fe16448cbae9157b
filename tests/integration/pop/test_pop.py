#!/usr/bin/env python3
"""POP3 through gatewayd in front of real Dovecot backends.

Every test speaks to the gateway as a user's mail client would (poplib,
curl, or raw lines on a socket) and asserts what that user sees. The
backends are two (or three) private Dovecot instances; every mailbox's first
message names the backend it lives on, so a test knows where it landed.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/pop/test_pop.py [-k NAME]
"""

import base64
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import poplib

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import gwtest as g  # noqa: E402

TIMEOUT = 10.0            # every socket operation
MAX_BAD_COMMANDS = 3      # protocols.pop.max_bad_commands in these tests
BIG_SIZE = 5 * 1024 * 1024


def sasl_plain(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def subject_of(message):
    m = re.search(rb"^Subject: (.*?)\r?$", message, re.M)
    return m.group(1).decode() if m else None


# ---- shared setup -----------------------------------------------------------

class GatewayCase(unittest.TestCase):
    """A test class with its own backends and gatewayd. Subclasses set
    BACKENDS, DATABASES, USERS and may override configure()."""

    BACKENDS = ("mbx1", "mbx2")
    DATABASES = None          # standard: db1 [mbx1, mbx2], db2 [mbx2, mbx1]
    USERS = g.STANDARD_USERS
    LOG_ALLOW = ()            # regexes of error lines the class expects
    PER_TEST_ENV = False      # fresh backends and gateway for every test

    @classmethod
    def configure(cls, config, info, backends):
        """Adjust the config dict before gatewayd starts."""

    @classmethod
    def extra_messages(cls):
        return {}

    @classmethod
    def start_env(cls, owner):
        env = {}
        tmp = g.TempDir(prefix="gwpop-", test=owner)
        env["tmp"] = tmp
        users = {u: pw for u, (pw, _) in cls.USERS.items()}
        env["backends"] = g.start_backends(cls.BACKENDS, users=users,
                                           extra_messages=cls.extra_messages(), test=owner)
        config, info = g.standard_config(
            env["backends"], tmp.path, users=cls.USERS, databases=cls.DATABASES,
            pop_options={"max_bad_commands": MAX_BAD_COMMANDS})
        cls.configure(config, info, env["backends"])
        env["config"] = config
        env["ports"] = info["ports"]
        env["cert"] = info["cert"]
        env["ctx"] = g.client_tls_context(info["cert"])
        env["gw"] = g.Gateway.start(config, directory=tmp.subdir("gw"))
        g._add_cleanup(owner, lambda: cls._stop_gateway(env["gw"], cls.LOG_ALLOW))
        return env

    @staticmethod
    def _stop_gateway(gw, allow):
        rc = gw.stop()
        gw.check_log(allow=allow)
        if rc != 0:
            raise AssertionError("gatewayd exited with status %s on SIGTERM; log:\n%s"
                                 % (rc, g._tail(gw.log_path)))

    @classmethod
    def setUpClass(cls):
        if not cls.PER_TEST_ENV:
            cls.env = cls.start_env(cls)

    def setUp(self):
        if self.PER_TEST_ENV:
            self.env = self.start_env(self)
        self.gw = self.env["gw"]
        self.backends = self.env["backends"]
        self.ports = self.env["ports"]
        self.ctx = self.env["ctx"]
        self.log_mark = self.gw.log_size()
        self.addCleanup(self._check_log)
        self.addCleanup(self._report_failure)

    def _check_log(self):
        self.gw.check_log(self, allow=self.LOG_ALLOW, since=self.log_mark)

    def _report_failure(self):
        """When the test failed, show what the servers logged meanwhile
        (before the per-test directories are removed)."""
        if getattr(getattr(self, "_outcome", None), "success", True):
            return
        with open(self.gw.log_path, "rb") as f:
            f.seek(self.log_mark)
            text = f.read().decode("utf-8", "replace").splitlines()
        print("\n===== %s: gatewayd log during the test =====\n%s"
              % (self.id(), "\n".join(text[-80:])), file=sys.stderr)
        for name, d in self.backends.items():
            print("===== dovecot %s (tail) =====\n%s" % (name, g._tail(d.log_path, 15)),
                  file=sys.stderr)

    # -- helpers --

    def pop(self, kind="plain", **kw):
        tls = self.ctx if kind == "tls" else None
        p = g.PopClient(self.ports[kind], tls=tls, **kw)
        self.addCleanup(p.close)
        return p

    def poplib(self, kind="plain"):
        if kind == "tls":
            c = poplib.POP3_SSL("127.0.0.1", self.ports["tls"], context=self.ctx, timeout=TIMEOUT)
        else:
            c = poplib.POP3("127.0.0.1", self.ports[kind], timeout=TIMEOUT)
        self.addCleanup(c.close)
        return c

    def assertOk(self, line, what=""):
        self.assertTrue(line.startswith(b"+OK"), "%s: expected +OK, got %r" % (what, line))

    def assertErr(self, line, what="", code=None):
        self.assertTrue(line.startswith(b"-ERR"), "%s: expected -ERR, got %r" % (what, line))
        if code is not None:
            self.assertTrue(line.startswith(b"-ERR [%s]" % code.encode()),
                            "%s: expected -ERR [%s], got %r" % (what, code, line))

    def first_subject(self, user, password, kind="plain"):
        """Log in with poplib, return the Subject of message 1."""
        c = self.poplib(kind)
        c.user(user)
        c.pass_(password)
        _, lines, _ = c.retr(1)
        c.quit()
        return subject_of(b"\r\n".join(lines))

    def assert_reaches(self, user, backend, kind="plain"):
        pw = self.USERS[user][0]
        self.assertEqual(self.first_subject(user, pw, kind), "welcome %s on %s" % (user, backend))

    def assert_temp_failure(self, user, kind="plain"):
        """The user's login is answered -ERR [SYS/TEMP] (try again later)."""
        with g.PopClient(self.ports[kind], tls=self.ctx if kind == "tls" else None) as p:
            self.assertOk(p.cmd("USER " + user), "USER")
            r = p.cmd("PASS " + self.USERS[user][0])
            self.assertErr(r, "login of %s with its backend down" % user, code="SYS/TEMP")


# ---- the standard setup: two backends, three listeners ---------------------

class PopTest(GatewayCase):

    @classmethod
    def extra_messages(cls):
        cls.big = g.make_big_message(BIG_SIZE, subject="big for carol", seed=42)
        return {"carol": [cls.big]}

    # -- routing --

    def test_users_reach_their_own_backend(self):
        self.assert_reaches("alice", "mbx1")
        self.assert_reaches("bob", "mbx2")
        self.assert_reaches("carol", "mbx1")

    def test_poplib_session(self):
        c = self.poplib()
        self.assertTrue(c.getwelcome().startswith(b"+OK"))
        c.user("bob")
        c.pass_("secret-bob")
        count, size = c.stat()
        self.assertEqual(count, 1)
        self.assertEqual(size, len(self.backends["mbx2"].delivered["bob"][0]))
        _, listing, _ = c.list()
        self.assertEqual(listing, [b"1 %d" % size])
        _, lines, _ = c.top(1, 0)
        self.assertIn(b"Subject: welcome bob on mbx2", lines)
        self.assertTrue(c.uidl()[0].startswith(b"+OK"))
        self.assertTrue(c.noop().startswith(b"+OK"))
        self.assertTrue(c.quit().startswith(b"+OK"))

    def test_curl_retrieves_message_exactly(self):
        port = self.ports["plain"]
        out = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", "alice:secret-alice",
                              "pop3://127.0.0.1:%d/1" % port],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(out.stdout, self.backends["mbx1"].delivered["alice"][0])

    def test_curl_over_implicit_tls(self):
        out = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "--cacert", self.env["cert"],
                              "-u", "bob:secret-bob", "pop3s://localhost:%d/1" % self.ports["tls"]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(out.stdout, self.backends["mbx2"].delivered["bob"][0])

    # -- authentication failures --

    def test_bad_password(self):
        with self.pop() as p:
            self.assertOk(p.cmd("USER alice"))
            self.assertErr(p.cmd("PASS not-her-password"), "bad password", code="AUTH")

    def test_unknown_user_looks_like_bad_password(self):
        answers = []
        for user in ("alice", "nosuchuser"):
            with self.pop() as p:
                u = p.cmd("USER " + user)
                r = p.cmd("PASS wrong-password")
                answers.append((u, r))
        self.assertErr(answers[1][1], "unknown user", code="AUTH")
        self.assertEqual(answers[0], answers[1],
                         "a bad password and an unknown user must read the same")

    def test_retry_after_failed_login(self):
        with self.pop() as p:
            self.assertErr(p.login("alice", "wrong"), "bad password", code="AUTH")
            self.assertOk(p.login("alice", "secret-alice"), "second try")
            self.assertOk(p.cmd("STAT"))
            self.assertOk(p.cmd("QUIT"))

    def test_commands_before_login_refused(self):
        # One connection each: every refused command counts towards
        # max_bad_commands.
        for c in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0", "NOOP",
                  "PASS secret-alice"):
            with self.pop() as p:
                self.assertErr(p.cmd(c), c + " before login")
                self.assertOk(p.login("alice", "secret-alice"), "login after " + c)
                self.assertOk(p.cmd("QUIT"))

    def test_quit_before_login(self):
        with self.pop() as p:
            self.assertOk(p.cmd("QUIT"))
            self.assertEqual(p.wait_closed(), b"")

    # -- TLS --

    def test_stls(self):
        c = self.poplib("starttls")
        self.assertIn("STLS", c.capa())
        c.stls(self.ctx)
        c.user("alice")
        c.pass_("secret-alice")
        _, lines, _ = c.retr(1)
        self.assertIn(b"Subject: welcome alice on mbx1", lines)
        c.quit()

    def test_implicit_tls(self):
        self.assert_reaches("bob", "mbx2", kind="tls")
        with self.pop("tls") as p:
            caps = p.capa()
            self.assertIn("USER", caps)
            self.assertIn("PLAIN", caps.get("SASL", []))
            self.assertNotIn("STLS", caps)

    def test_no_stls_on_plain_listener(self):
        with self.pop("plain") as p:
            caps = p.capa()
            self.assertNotIn("STLS", caps)
            self.assertIn("USER", caps)
            self.assertErr(p.cmd("STLS"), "STLS on a listener without TLS")
            self.assertOk(p.login("alice", "secret-alice"), "session goes on after refused STLS")

    def test_plaintext_refused_before_stls(self):
        with self.pop("starttls") as p:
            caps = p.capa()
            self.assertIn("STLS", caps)
            self.assertNotIn("USER", caps)
            self.assertNotIn("PLAIN", caps.get("SASL", []))
            u = p.cmd("USER alice")
            if u.startswith(b"+OK"):
                self.assertErr(p.cmd("PASS secret-alice"), "PASS without TLS")
            else:
                self.assertErr(u, "USER without TLS")
            self.assertErr(p.cmd("AUTH PLAIN " + sasl_plain("alice", "secret-alice")),
                           "AUTH PLAIN without TLS")
            # After STLS the same connection may log in.
            self.assertOk(p.cmd("STLS"))
            p.starttls(self.ctx)
            caps = p.capa()
            self.assertNotIn("STLS", caps)
            self.assertIn("USER", caps)
            self.assertIn("PLAIN", caps.get("SASL", []))
            self.assertOk(p.login("alice", "secret-alice"))
            self.assertOk(p.cmd("RETR 1"))
            self.assertEqual(subject_of(p.multiline()), "welcome alice on mbx1")

    def test_stls_discards_pipelined_plaintext(self):
        # A command pipelined after STLS must not be executed inside TLS
        # (the CVE-2011-0411 class of injection).
        with self.pop("starttls") as p:
            p.send(b"STLS\r\nUSER alice\r\n")
            self.assertOk(p.line(), "STLS")
            p.starttls(self.ctx)
            r = p.cmd("PASS secret-alice")
            self.assertErr(r, "PASS after STLS with USER only sent before TLS")

    # -- what the backend sees --

    def test_xclient_tells_backend_the_client_address(self):
        # xclient: true, and Dovecot trusts 127.0.0.0/8: the backend's login
        # line shows the real client (127.0.0.2), not the gateway.
        with g.PopClient(self.ports["plain"], source="127.0.0.2") as p:
            self.assertOk(p.login("bob", "secret-bob"))
            self.assertOk(p.cmd("QUIT"))
        log = self.backends["mbx2"].log_path

        def logged():
            with open(log) as f:
                return re.search(r"Login: user=<bob>.*rip=127\.0\.0\.2\b", f.read())
        self.assertTrue(g.wait_until(logged, 5.0), "mbx2 did not log rip=127.0.0.2 for bob")

    # -- SASL --

    def test_auth_plain_initial_response(self):
        with self.pop() as p:
            self.assertOk(p.cmd("AUTH PLAIN " + sasl_plain("bob", "secret-bob")))
            self.assertOk(p.cmd("RETR 1"))
            self.assertEqual(subject_of(p.multiline()), "welcome bob on mbx2")
            self.assertOk(p.cmd("QUIT"))

    def test_auth_plain_continuation(self):
        with self.pop() as p:
            r = p.cmd("AUTH PLAIN")
            self.assertTrue(r == b"+" or r.startswith(b"+ "), "continuation expected, got %r" % r)
            self.assertOk(p.cmd(sasl_plain("alice", "secret-alice")))
            self.assertOk(p.cmd("RETR 1"))
            self.assertEqual(subject_of(p.multiline()), "welcome alice on mbx1")

    def test_auth_plain_bad_password(self):
        with self.pop() as p:
            self.assertErr(p.cmd("AUTH PLAIN " + sasl_plain("alice", "wrong")), code="AUTH")
            self.assertOk(p.cmd("AUTH PLAIN " + sasl_plain("alice", "secret-alice")))

    def test_auth_cancel(self):
        with self.pop() as p:
            r = p.cmd("AUTH PLAIN")
            self.assertTrue(r.startswith(b"+"), r)
            self.assertErr(p.cmd("*"), "cancelled AUTH")
            self.assertOk(p.login("carol", "secret-carol"), "session goes on after cancel")

    def test_auth_unknown_mechanism(self):
        with self.pop() as p:
            self.assertErr(p.cmd("AUTH CRAM-MD5"))
            self.assertOk(p.login("alice", "secret-alice"))

    def test_auth_plain_garbage(self):
        with self.pop() as p:
            self.assertErr(p.cmd("AUTH PLAIN !!!notbase64!!!"))
            self.assertErr(p.cmd("AUTH PLAIN " + base64.b64encode(b"no-nul-bytes").decode()))
            self.assertOk(p.login("alice", "secret-alice"))

    def test_apop_refused(self):
        with self.pop() as p:
            self.assertIsNone(re.search(rb"<[^>]*@[^>]*>", p.greeting),
                              "greeting offers an APOP timestamp: %r" % p.greeting)
            self.assertErr(p.cmd("APOP alice c4c9334bac560ecc979e58001b3e22fb"), "APOP")
            self.assertOk(p.login("alice", "secret-alice"), "session goes on after APOP")

    # -- abuse --

    def test_oversized_line(self):
        with self.pop() as p:
            r = p.cmd(b"USER " + b"A" * 20000)
            self.assertErr(r, "oversized line")
            # One answer for the one line, and the session is still there.
            self.assertIn("USER", p.capa())
            self.assertOk(p.login("alice", "secret-alice"))

    def test_oversized_lines_count_as_bad_commands(self):
        with self.pop() as p:
            for i in range(MAX_BAD_COMMANDS):
                p.send(b"X" * 20000 + b"\r\n")
            got = p.wait_closed()
            lines = got.split(b"\r\n")
            self.assertTrue(all(l.startswith(b"-ERR") for l in lines if l), got)
            self.assertGreaterEqual(len([l for l in lines if l]), 1, got)

    def test_bad_commands_below_limit(self):
        with self.pop() as p:
            for i in range(MAX_BAD_COMMANDS - 1):
                self.assertErr(p.cmd("XYZZY %d" % i))
            self.assertOk(p.login("alice", "secret-alice"))

    def test_too_many_bad_commands_disconnects(self):
        with self.pop() as p:
            for i in range(MAX_BAD_COMMANDS - 1):
                self.assertErr(p.cmd("XYZZY %d" % i))
            p.send(b"XYZZY last\r\n")
            got = p.wait_closed()
            self.assertTrue(got == b"" or got.startswith(b"-ERR"),
                            "last bad command answered %r" % got)
            self.assertEqual(got.count(b"\r\n"), 1 if got else 0, got)

    def test_nul_and_control_bytes(self):
        with self.pop() as p:
            self.assertErr(p.cmd(b"USER al\x00ice"))
            self.assertOk(p.login("alice", "secret-alice"))

    def test_client_closes_mid_login(self):
        # Half a session, then gone: the gateway must carry on for others.
        p = g.PopClient(self.ports["plain"])
        p.send(b"USER alice\r\nPASS secret-alice\r\n")
        p.close()
        p = g.PopClient(self.ports["plain"])
        p.send(b"USER alice\r\nPA")
        p.close()
        self.assert_reaches("alice", "mbx1")

    def test_pipelined_login(self):
        with self.pop() as p:
            p.send(b"USER carol\r\nPASS secret-carol\r\nSTAT\r\nQUIT\r\n")
            self.assertOk(p.line(), "USER")
            self.assertOk(p.line(), "PASS")
            self.assertTrue(p.line().startswith(b"+OK 2 "), "STAT: carol has 2 messages")
            self.assertOk(p.line(), "QUIT")

    # -- big message --

    def test_big_message_byte_exact(self):
        c = self.poplib()
        c.user("carol")
        c.pass_("secret-carol")
        count, _ = c.stat()
        self.assertEqual(count, 2)
        _, lines, _ = c.retr(2)
        got = b"\r\n".join(lines) + b"\r\n"
        self.assertEqual(len(got), len(self.big))
        self.assertTrue(got == self.big, "5 MiB message differs after the gateway")
        c.quit()

    def test_big_message_byte_exact_over_tls(self):
        with self.pop("tls") as p:
            self.assertOk(p.login("carol", "secret-carol"))
            self.assertOk(p.cmd("RETR 2"))
            got = p.multiline()
            self.assertEqual(len(got), len(self.big))
            self.assertTrue(got == self.big, "5 MiB message differs after the gateway (TLS)")
            self.assertOk(p.cmd("QUIT"))

    def test_concurrent_sessions(self):
        # Eight clients at once, each fetching the big message: the worker
        # must interleave them.
        errors = []

        def fetch():
            try:
                with g.PopClient(self.ports["plain"]) as p:
                    if not p.login("carol", "secret-carol").startswith(b"+OK"):
                        raise AssertionError("login failed")
                    p.cmd("RETR 2")
                    if p.multiline() != self.big:
                        raise AssertionError("message differs")
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    # -- resources --

    def test_zz_many_logins_no_leak(self):
        gw = self.gw
        workers = gw.worker_pids()
        self.assertTrue(workers, "gatewayd has no worker process")

        def session():
            with g.PopClient(self.ports["plain"]) as p:
                r = p.login("alice", "secret-alice")
                if not r.startswith(b"+OK"):
                    raise AssertionError("login failed: %r" % r)
                p.cmd("STAT")
                p.cmd("QUIT")
                p.wait_closed()

        def steady_fds():
            last = [None]

            def stable():
                n = gw.open_fds()
                same = n == last[0]
                last[0] = n
                return same
            g.wait_until(stable, 5.0, 0.1)
            return last[0]

        for _ in range(100):           # warm-up: caches, allocator arenas
            session()
        fds0 = steady_fds()
        rss0 = gw.rss_kb()
        for _ in range(900):
            session()
        g.wait_until(lambda: gw.open_fds() == fds0, 5.0, 0.05)
        fds1 = gw.open_fds()
        rss1 = gw.rss_kb()
        self.assertEqual(gw.worker_pids(), workers, "a worker died or was replaced")
        if fds1 != fds0:
            listing = {pid: sorted(os.readlink("/proc/%d/fd/%s" % (pid, fd))
                                   for fd in os.listdir("/proc/%d/fd" % pid))
                       for pid in gw.pids()}
            self.fail("open fds %d after 100 logins, %d after 1000: %r" % (fds0, fds1, listing))
        if not sanitized():
            self.assertLess(rss1 - rss0, 2048,
                            "RSS grew from %d KiB to %d KiB over 900 logins" % (rss0, rss1))


def sanitized():
    """Whether gatewayd is an ASan build (its RSS is then no measure of leaks)."""
    try:
        with open(g.gatewayd_path(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ---- backends down, failing over, hanging ----------------------------------

class PopBackendFailureTest(GatewayCase):
    """Every test gets fresh backends and gatewayd: they kill things."""

    PER_TEST_ENV = True
    BACKENDS = ("mbx1", "mbx2", "mbx3")
    DATABASES = {"db1": ["mbx1", "mbx2"], "db2": ["mbx2", "mbx1"], "db3": ["mbx3"]}
    USERS = dict(g.STANDARD_USERS, dave=("secret-dave", "db3"))
    # The gateway must log which server failed and why; at error level is fine.
    LOG_ALLOW = (r"mbx[123]", r"connect", r"backend")

    def assert_log_names(self, server):
        text = self.gw.log_text()
        self.assertRegex(text, r"\b%s\b" % server,
                         "the gateway's log never names the failed server %s" % server)

    def test_only_copy_down(self):
        self.backends["mbx3"].kill()
        self.assert_temp_failure("dave")
        self.assert_temp_failure("dave", kind="tls")
        # Everyone else is served on.
        self.assert_reaches("alice", "mbx1")
        self.assert_reaches("bob", "mbx2")
        self.assert_log_names("mbx3")

    def test_only_copy_down_sasl(self):
        self.backends["mbx3"].kill()
        with g.PopClient(self.ports["plain"]) as p:
            r = p.cmd("AUTH PLAIN " + sasl_plain("dave", "secret-dave"))
            self.assertErr(r, "AUTH with the backend down", code="SYS/TEMP")
        self.assert_reaches("alice", "mbx1")

    def test_failover_to_next_copy(self):
        self.backends["mbx1"].kill()
        # db1's active copy is gone: alice and carol land on mbx2.
        self.assert_reaches("alice", "mbx2")
        self.assert_reaches("carol", "mbx2")
        self.assert_reaches("bob", "mbx2")
        self.assert_reaches("alice", "mbx2")

    def test_all_copies_down(self):
        g.Dovecot.stop_all([self.backends["mbx1"]])
        self.backends["mbx2"].kill()
        self.assert_temp_failure("alice")
        self.assert_temp_failure("bob")
        self.assert_reaches("dave", "mbx3")
        self.assert_temp_failure("carol")
        self.assert_reaches("dave", "mbx3")

    def test_backend_comes_back(self):
        mbx3 = self.backends["mbx3"]
        mbx3.kill()
        self.assert_temp_failure("dave")
        mbx3.restart()
        # Within a bounded time the gateway routes to it again.
        ok = g.wait_until(lambda: self._login_ok("dave"), 30.0, 0.5)
        self.assertTrue(ok, "dave still refused 30 s after mbx3 came back")
        self.assert_reaches("dave", "mbx3")

    def _login_ok(self, user):
        with g.PopClient(self.ports["plain"]) as p:
            return p.login(user, self.USERS[user][0]).startswith(b"+OK")

    def test_backend_hangs(self):
        # mbx3 accepts connections (kernel) but never answers.
        self.backends["mbx3"].pause()
        self.addCleanup(self.backends["mbx3"].resume)
        result = {}

        def dave():
            t0 = time.monotonic()
            try:
                with g.PopClient(self.ports["plain"], timeout=30.0) as p:
                    p.cmd("USER dave")
                    result["answer"] = p.cmd("PASS secret-dave")
            except Exception as e:
                result["answer"] = repr(e)
            result["secs"] = time.monotonic() - t0

        t = threading.Thread(target=dave)
        t.start()
        # While dave waits on the hung backend, the worker serves others.
        t0 = time.monotonic()
        self.assert_reaches("alice", "mbx1")
        self.assert_reaches("bob", "mbx2")
        self.assertLess(time.monotonic() - t0, 5.0, "others were held up by the hung backend")
        t.join(40)
        answer = result.get("answer")
        self.assertIsInstance(answer, bytes, "no answer for dave: %r" % answer)
        self.assertErr(answer, "login to a hung backend", code="SYS/TEMP")
        # connect_timeout is 2s and login_timeout 10s in this config.
        self.assertLess(result["secs"], 15.0)


def established_to(port):
    """Number of ESTABLISHED TCP connections to 127.0.0.1:port (any process)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[2] == "0100007F:%04X" % port and fields[3] == "01":
                n += 1
    return n


class PopShutdownTest(GatewayCase):
    """SIGTERM while things are in flight towards a hung backend: gatewayd
    answers or closes every client and exits cleanly (status 0, no sanitizer
    report) within its shutdown timeout."""

    PER_TEST_ENV = True
    BACKENDS = ("mbx1", "mbx2", "mbx3")
    DATABASES = PopBackendFailureTest.DATABASES
    USERS = PopBackendFailureTest.USERS
    LOG_ALLOW = PopBackendFailureTest.LOG_ALLOW

    @classmethod
    def configure(cls, config, info, backends):
        # Slow probes: one towards the hung backend is in flight for 9 s of
        # every 10, so the stop below surely finds it.
        config["locator"]["health"] = {"interval": "10s", "timeout": "9s"}
        config["shutdown_timeout"] = "3s"
        config["protocols"]["pop"]["backend_timeout"] = "30s"
        config["upstream"]["connect_timeout"] = "20s"

    def test_stop_with_login_and_probe_on_hung_backend(self):
        mbx3 = self.backends["mbx3"]
        mbx3.pause()
        self.addCleanup(mbx3.resume)
        result = {}

        def dave():
            try:
                with g.PopClient(self.ports["plain"], timeout=20.0) as p:
                    p.cmd("USER dave")
                    p.send(b"PASS secret-dave\r\n")
                    result["answer"] = p.wait_closed(20.0)
            except Exception as e:
                result["answer"] = repr(e)

        t = threading.Thread(target=dave)
        t.start()
        # Dave's backend connection and the health probe are both open.
        self.assertTrue(g.wait_until(lambda: established_to(mbx3.ports["pop3"]) >= 2, 10.0),
                        "gatewayd never connected to the hung backend")
        t0 = time.monotonic()
        rc = self.gw.stop()
        secs = time.monotonic() - t0
        t.join(25)
        self.assertFalse(t.is_alive(), "the client was left hanging after gatewayd stopped")
        answer = result.get("answer")
        self.assertIsInstance(answer, bytes, "client saw %r" % answer)
        self.assertTrue(answer == b"" or answer.startswith(b"-ERR"), answer)
        self.assertEqual(rc, 0, "gatewayd exited with status %s" % rc)
        self.assertLess(secs, 10.0, "stop took %.1f s with shutdown_timeout 3s" % secs)
        self.gw.check_log(self, allow=self.LOG_ALLOW)


# ---- TLS to the backends ----------------------------------------------------

class PopBackendTlsTest(GatewayCase):
    """The gateway speaks implicit TLS to the backends and verifies their
    certificates against upstream.ca_file."""

    @classmethod
    def configure(cls, config, info, backends):
        for name, srv in config["locator"]["servers"].items():
            srv["services"]["pop"] = {"port": backends[name].ports["pop3s"], "tls": "implicit"}

    def test_login_over_backend_tls(self):
        self.assert_reaches("alice", "mbx1")
        self.assert_reaches("bob", "mbx2", kind="tls")
        # Dovecot logs "TLS" for a login over TLS.
        with open(self.backends["mbx1"].log_path) as f:
            log = f.read()
        self.assertRegex(log, r"pop3-login: Info: Login: user=<alice>.*\bTLS\b")


class PopBackendStarttlsTest(PopBackendTlsTest):
    """STLS to the backends."""

    @classmethod
    def configure(cls, config, info, backends):
        for name, srv in config["locator"]["servers"].items():
            srv["services"]["pop"] = {"port": backends[name].ports["pop3"], "tls": "starttls"}


class PopBackendUntrustedTest(PopBackendTlsTest):
    """A backend certificate the gateway does not trust: refused, and the
    user is told to try later."""

    LOG_ALLOW = (r"mbx[12]", r"certificate", r"verify", r"TLS", r"backend")

    @classmethod
    def configure(cls, config, info, backends):
        super().configure(config, info, backends)
        other = g.make_cert(os.path.dirname(info["cert"]), "unrelated-ca")
        config["upstream"]["ca_file"] = other[0]

    def test_login_over_backend_tls(self):
        self.assert_temp_failure("alice")


# ---- gatewayd -t -------------------------------------------------------------

class _StubBackend:
    def __init__(self, base):
        self.ports = {"pop3": base, "pop3s": base + 1, "imap": base + 2, "imaps": base + 3}
        self.cert = None


class ConfigCheckTest(unittest.TestCase):
    """`gatewayd -t -c FILE`: 0 for a valid file; 1 and FILE:LINE:COL lines
    for a broken one."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = g.TempDir(prefix="gwconf-", test=cls)
        cls.config, _ = g.standard_config({"mbx1": _StubBackend(20110), "mbx2": _StubBackend(20210)},
                                          cls.tmp.path,
                                          pop_options={"max_bad_commands": MAX_BAD_COMMANDS})
        cls.text = g.to_yaml(cls.config)

    def write(self, name, text):
        path = self.tmp.join(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, path):
        r = g.check_config(path)
        return r.returncode, r.stdout + r.stderr

    def assert_broken(self, name, text, line):
        """The file is refused with exit status 1 and a FILE:LINE:COL:
        message on the expected line."""
        path = self.write(name, text)
        rc, out = self.check(path)
        self.assertEqual(rc, 1, "gatewayd -t on %s exited %d:\n%s" % (name, rc, out))
        pat = re.compile(r"^%s:(\d+):(\d+): \S.*$" % re.escape(path), re.M)
        found = [(int(m.group(1)), m.group(0)) for m in pat.finditer(out)]
        self.assertTrue(found, "no FILE:LINE:COL: message in:\n%s" % out)
        self.assertIn(line, [l for l, _ in found],
                      "no message about line %d in:\n%s" % (line, out))
        return out

    def line_of(self, text, needle, nth=1):
        """1-based line number of the nth line containing needle."""
        n = 0
        for i, l in enumerate(text.splitlines(), 1):
            if needle in l:
                n += 1
                if n == nth:
                    return i
        raise AssertionError("%r not in config" % needle)

    def test_valid_config(self):
        path = self.write("valid.yaml", self.text)
        rc, out = self.check(path)
        self.assertEqual(rc, 0, out)

    def test_example_config(self):
        # examples/gateway.yaml, with plugin_dir pointing at this build.
        with open(os.path.join(g.REPO, "examples", "gateway.yaml")) as f:
            text = f.read()
        text = re.sub(r"(?m)^plugin_dir:.*$", "plugin_dir: %s" % g.plugin_dir(), text)
        rc, out = self.check(self.write("example.yaml", text))
        self.assertEqual(rc, 0, out)

    def test_yaml_syntax_error(self):
        text = "workers: 1\nplugin_dir: %s\nlog_level: [info\nauth: {}\n" % g.plugin_dir()
        path = self.write("syntax.yaml", text)
        rc, out = self.check(path)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"(?m)^%s:\d+:\d+: \S" % re.escape(path))

    def test_unknown_database(self):
        text = self.text.replace('"database": "db2"', '"database": "nosuchdb"', 1)
        self.assert_broken("unknown-db.yaml", text, self.line_of(text, "nosuchdb"))

    def test_unknown_key(self):
        text = self.text.replace('"workers": 1', '"wrokers": 1', 1)
        self.assert_broken("unknown-key.yaml", text, self.line_of(text, "wrokers"))

    def test_bad_value(self):
        text = self.text.replace('"workers": 1', '"workers": "banana"', 1)
        self.assert_broken("bad-value.yaml", text, self.line_of(text, "banana"))

    def test_plugin_key_out_of_range(self):
        text = self.text.replace('"max_bad_commands": %d' % MAX_BAD_COMMANDS,
                                 '"max_bad_commands": 0', 1)
        self.assert_broken("range.yaml", text, self.line_of(text, '"max_bad_commands"'))

    def test_bad_duration(self):
        text = self.text.replace('"connect_timeout": "2s"', '"connect_timeout": "soon"', 1)
        self.assert_broken("duration.yaml", text, self.line_of(text, "soon"))

    def test_bad_listen_address(self):
        port = self.config["protocols"]["pop"]["listen"][0]["address"]
        text = self.text.replace(port, "127.0.0.1:99999", 1)
        self.assert_broken("address.yaml", text, self.line_of(text, "127.0.0.1:99999"))

    def test_database_copy_unknown_server(self):
        text = self.text.replace('"mbx2"\n', '"mbx7"\n', 1)
        self.assert_broken("copy.yaml", text, self.line_of(text, '"mbx7"'))

    def test_missing_file(self):
        rc, out = self.check(self.tmp.join("does-not-exist.yaml"))
        self.assertEqual(rc, 1, out)
        self.assertIn("does-not-exist.yaml", out)

    def test_several_errors_reported(self):
        text = self.text.replace('"database": "db2"', '"database": "nosuchdb"', 1)
        text = text.replace('"connect_timeout": "2s"', '"connect_timeout": "soon"', 1)
        out = self.assert_broken("two.yaml", text, self.line_of(text, "nosuchdb"))
        self.assertRegex(out, r":%d:\d+: " % self.line_of(text, "soon"))


if __name__ == "__main__":
    g.main()
