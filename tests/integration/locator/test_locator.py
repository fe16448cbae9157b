#!/usr/bin/env python3
"""The active-copy locator through gatewayd, with two real Dovecot copies.

Every test runs gatewayd (static locator source, POP3 plugin) in front of two
private Dovecot instances, mbx1 and mbx2, that both hold every mailbox:

    db1: copies [mbx1, mbx2], active mbx1     (alice, carol)
    db2: copies [mbx2, mbx1], active mbx2     (bob)

Each mailbox's first message names the backend it lives on, so a test sees
where a login landed. Tests kill, stop, pause (SIGSTOP) and restart backends
and drive the gateway with gatewayctl ($GW_BUILD_DIR/gatewayctl), asserting
what a user (POP3 answers, timings) or an operator (gatewayctl output and
exit status, gatewayd's log) sees. Every test has its own backends and
gatewayd, torn down also when it fails; every wait polls with a bound.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/locator/test_locator.py [-k NAME]
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import gwtest as g  # noqa: E402

TIMEOUT = 10.0              # socket operations unless a test says otherwise
USERS = g.STANDARD_USERS    # alice, carol: db1; bob: db2

# Fast health checks for the tests that do not measure the defaults.
FAST_HEALTH = {"interval": "500ms", "timeout": "250ms", "rise": 2, "fall": 2}
FAST_INTERVAL, FAST_TIMEOUT, FAST_RISE, FAST_FALL = 0.5, 0.25, 2, 2


def gatewayctl_path():
    return os.path.join(g.build_dir(), "gatewayctl")


# ---- shared setup -----------------------------------------------------------

class LocatorCase(unittest.TestCase):
    """Fresh backends and gatewayd for every test (they kill things).
    Subclasses adjust the configuration in configure()."""

    WORKERS = 1
    LOG_ALLOW = ()          # regexes of error-level log lines a class expects

    def configure(self, config):
        """Adjust the config dict before gatewayd starts."""

    def setUp(self):
        if not os.access(gatewayctl_path(), os.X_OK):
            self.fail("gatewayctl not built: %s (build target gatewayctl)" % gatewayctl_path())
        self.tmp = g.TempDir(prefix="gwloc-", test=self)
        # The Dovecot directories go inside this test's own directory.
        self.backends = g.start_backends(("mbx1", "mbx2"),
                                         users={u: pw for u, (pw, _) in USERS.items()},
                                         directory=self.tmp.path, test=self)
        config, info = g.standard_config(self.backends, self.tmp.path, users=USERS)
        # The product's defaults, not the POP tests' shortened timeouts.
        config["upstream"].pop("connect_timeout", None)
        config["upstream"].pop("retries", None)
        for k in ("backend_timeout", "login_timeout"):
            config["protocols"]["pop"].pop(k, None)
        config["workers"] = self.WORKERS
        config["admin"] = {"socket": self.tmp.join("admin")}
        self.configure(config)
        self.config = config
        self.port = info["ports"]["plain"]
        self.gw = g.Gateway.start(config, directory=self.tmp.subdir("gw"))
        self.addCleanup(self._stop_gateway)
        self.addCleanup(self._report_failure)
        self.wait_admin()

    def _stop_gateway(self):
        rc = self.gw.stop()
        self.gw.check_log(self, allow=self.LOG_ALLOW)
        self.assertEqual(rc, 0, "gatewayd exited with status %s on SIGTERM" % rc)

    def _report_failure(self):
        # (_outcome.success stays True during cleanups on Python 3.11: ask
        # the result whether this test has failed.)
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None or not any(t is self for t, _ in result.failures + result.errors):
            return
        print("\n===== %s: gatewayd log =====\n%s" % (self.id(), g._tail(self.gw.log_path, 80)),
              file=sys.stderr)
        for name, d in self.backends.items():
            print("===== dovecot %s (tail) =====\n%s" % (name, g._tail(d.log_path, 10)),
                  file=sys.stderr)

    # -- gatewayctl --

    def ctl(self, *args, timeout=20.0):
        """Run gatewayctl -c gateway.yaml ARGS; returns CompletedProcess (text)."""
        return subprocess.run([gatewayctl_path(), "-c", self.gw.conf_path] + list(args),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)

    def ctl_ok(self, *args):
        r = self.ctl(*args)
        self.assertEqual(r.returncode, 0, "gatewayctl %s exited %d:\n%s%s"
                         % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def wait_admin(self):
        """Every worker's admin socket answers (workers start after the
        listeners that Gateway.start waited for)."""
        paths = [self.tmp.join("admin.%d" % i) for i in range(self.WORKERS)]

        def ready():
            if not all(os.path.exists(p) for p in paths):
                return False
            r = self.ctl("show")
            return r.returncode == 0 and r.stdout.count("database db1 ") == self.WORKERS
        self.assertTrue(g.wait_until(ready, 15.0, 0.02),
                        "admin sockets %s never all answered" % paths)

    def show(self):
        return self.ctl_ok("show")

    @staticmethod
    def health_of(show_text, server, protocol="pop"):
        """Per worker, the health word of server's protocol in `show`."""
        return re.findall(r"server %s \S+[^\n]* %s:\d+=([^\n]*?)(?: \w+:\d+=|$)"
                          % (server, protocol), show_text, re.M)

    def wait_health(self, server, want_up, timeout):
        """Poll `gatewayctl show` until every worker reports server's POP3
        service up (want_up) or not up. Returns the seconds waited, or fails."""
        t0 = time.monotonic()

        def check():
            words = self.health_of(self.show(), server)
            if len(words) != self.WORKERS:
                return False
            # "up", "up (failing)" (a probe failed, fewer than fall in a
            # row), or why it is down ("connect failed", "timed out", ...)
            return all((w == "up") if want_up else not w.startswith("up") for w in words)
        if not g.wait_until(check, timeout, 0.05):
            self.fail("gatewayctl show: %s pop not %s after %.1fs:\n%s"
                      % (server, "up" if want_up else "down", timeout, self.show()))
        return time.monotonic() - t0

    # -- POP3 --

    def session(self, user, timeout=TIMEOUT):
        """A logged-in session, closed at cleanup."""
        p = g.PopClient(self.port, timeout=timeout)
        self.addCleanup(p.close)
        r = p.login(user)
        self.assertTrue(r.startswith(b"+OK"), "login of %s: %r" % (user, r))
        return p

    def reaches(self, user, timeout=TIMEOUT):
        """Log in, return the backend reached (or None and the answer when
        the login is refused)."""
        with g.PopClient(self.port, timeout=timeout) as p:
            r = p.login(user)
            if not r.startswith(b"+OK"):
                return None, r
            be = p.backend()
            p.cmd("QUIT")
            return be, r

    def assert_reaches(self, user, backend, n=1):
        for i in range(n):
            be, answer = self.reaches(user)
            self.assertEqual(be, backend, "login %d of %s: expected %s, answer %r"
                             % (i + 1, user, backend, answer))

    def timed_login(self, user, timeout):
        """(answer to PASS or the exception's repr, seconds)."""
        t0 = time.monotonic()
        try:
            with g.PopClient(self.port, timeout=timeout) as p:
                answer = p.login(user)
        except (OSError, EOFError) as e:
            answer = repr(e)
        return answer, time.monotonic() - t0

    def login_in_background(self, user, timeout):
        """Start a login of user in a daemon thread; returns (thread, result),
        result getting 'answer' (to PASS, or the exception's repr), 'backend'
        (after +OK) and 'secs'."""
        result = {}

        def login():
            t0 = time.monotonic()
            try:
                with g.PopClient(self.port, timeout=timeout) as p:
                    result["answer"] = p.login(user)
                    if result["answer"].startswith(b"+OK"):
                        result["backend"] = p.backend()
            except (OSError, EOFError, AssertionError) as e:
                result["answer"] = repr(e)
            result["secs"] = time.monotonic() - t0

        th = threading.Thread(target=login, daemon=True)
        th.start()
        return th, result

    def log_since(self, mark):
        with open(self.gw.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")


# ---- failover, recovery, hold-down ------------------------------------------

class FailoverDefaultsTest(LocatorCase):
    """The measured failover, with every locator setting at its default."""

    def test_kill_active_next_login_on_other_copy_within_2s(self):
        self.assert_reaches("alice", "mbx1")
        self.assert_reaches("bob", "mbx2")
        mark = self.gw.log_size()
        t0 = time.monotonic()
        self.backends["mbx1"].kill()
        attempts = []
        while time.monotonic() - t0 < 10.0:
            try:
                be, answer = self.reaches("alice")
            except (OSError, EOFError) as e:
                be, answer = None, repr(e)
            attempts.append((round(time.monotonic() - t0, 3), be, answer))
            if be == "mbx2":
                break
        elapsed = time.monotonic() - t0
        self.assertEqual(attempts[-1][1], "mbx2", "alice never reached mbx2: %r" % attempts)
        self.assertLess(elapsed, 2.0, "first login on mbx2 %.2fs after the kill: %r"
                        % (elapsed, attempts))
        print("\n  failover: first login on mbx2 %.0f ms after kill (%d attempt(s))"
              % (elapsed * 1000, len(attempts)), file=sys.stderr)
        # Failover is not a flap: alice and carol stay on mbx2, bob is served.
        self.assert_reaches("alice", "mbx2", n=3)
        self.assert_reaches("carol", "mbx2")
        self.assert_reaches("bob", "mbx2")
        # What the operator sees: the refused connect, then the health checks
        # (default interval 2s, fall 2, timeout 1s) take mbx1 down.
        self.wait_health("mbx1", want_up=False, timeout=2 * 2.0 + 1.0 + 2.0 + 1.0)
        log = self.log_since(mark)
        # (refused, or accepted by a login process that died with the master)
        self.assertRegex(log, r"backend mbx1 failed: 127\.0\.0\.1:\d+: "
                              r"(Connection refused|closed before greeting)")
        self.assertRegex(log, r"health: mbx1 pop is down: connect failed")
        self.assertRegex(self.show(), r"server mbx1 127\.0\.0\.1 .*pop:\d+=connect failed")


class HoldDownCase(LocatorCase):
    """Fast health checks and a hold-down of HOLD_DOWN seconds."""

    HOLD_DOWN = 2.0

    def configure(self, config):
        config["locator"]["health"] = dict(FAST_HEALTH)
        config["locator"]["hold_down"] = "%dms" % (self.HOLD_DOWN * 1000)


class FailureTest(HoldDownCase):
    """Backends die, hang and come back; fast health checks."""

    HOLD_DOWN = 2.0

    def test_active_comes_back_logins_return_once_healthy(self):
        mbx1 = self.backends["mbx1"]
        self.assert_reaches("alice", "mbx1")
        mbx1.kill()
        self.assert_reaches("alice", "mbx2")
        self.wait_health("mbx1", want_up=False, timeout=FAST_INTERVAL * (FAST_FALL + 1) + 2)
        # No flapping while it is down.
        self.assert_reaches("alice", "mbx2", n=5)
        mark = self.gw.log_size()
        t_restart = time.monotonic()
        mbx1.restart()
        # Static source: the configured active copy takes new logins again
        # once the probes see it healthy (rise 2) and the suspect mark from
        # the refused connect (10 s) has run out.
        back = g.wait_until(lambda: self.reaches("alice")[0] == "mbx1", 20.0, 0.1)
        self.assertTrue(back, "alice still not back on mbx1 20s after it restarted:\n"
                        + self.show())
        print("\n  return to active: %.1f s after restart"
              % (time.monotonic() - t_restart), file=sys.stderr)
        self.assert_reaches("alice", "mbx1", n=5)
        self.assert_reaches("carol", "mbx1")
        self.assert_reaches("bob", "mbx2")
        log = self.log_since(mark)
        up = re.search(r"health: mbx1 pop is up", log)
        first = re.search(r"user=alice backend=mbx1: login ok", log)
        self.assertIsNotNone(up, "no 'health: mbx1 pop is up' in the log")
        self.assertIsNotNone(first, "no login of alice on mbx1 in the log")
        self.assertLess(up.start(), first.start(), "a login reached mbx1 before it was up")
        self.assertEqual(self.health_of(self.show(), "mbx1"), ["up"] * self.WORKERS)

    def test_all_copies_down_temp_failure_after_hold_down(self):
        self.assert_reaches("alice", "mbx1")
        self.backends["mbx1"].kill()
        self.backends["mbx2"].kill()
        self.wait_health("mbx1", want_up=False, timeout=FAST_INTERVAL * (FAST_FALL + 1) + 2)
        self.wait_health("mbx2", want_up=False, timeout=FAST_INTERVAL * (FAST_FALL + 1) + 2)
        mark = self.gw.log_size()
        answer, secs = self.timed_login("alice", timeout=40.0)
        self.assertIsInstance(answer, bytes, "no answer: %s after %.1fs" % (answer, secs))
        self.assertTrue(answer.startswith(b"-ERR [SYS/TEMP]"), "answer %r" % answer)
        self.assertGreaterEqual(secs, self.HOLD_DOWN - 0.05,
                                "-ERR after %.2fs, before the %.1fs hold-down" % (secs, self.HOLD_DOWN))
        self.assertLess(secs, self.HOLD_DOWN + 1.0,
                        "-ERR only after %.2fs with a %.1fs hold-down" % (secs, self.HOLD_DOWN))
        log = self.log_since(mark)
        self.assertRegex(log, r"no copy of db1 can serve now; holding the login up to 2000 ms")
        self.assertRegex(log, r"no copy of database db1 can serve pop \(mbx1: down, mbx2: down\)")
        # The operator's view says the same.
        out = self.ctl_ok("explain", "alice", "pop")
        self.assertIn("route: refuse: no copy of database db1 can serve pop "
                      "(mbx1: down, mbx2: down)", out)

    def test_all_copies_just_died_login_is_held(self):
        # Both copies die and a login arrives before the health checks have
        # noticed: the connects are refused, and the login must still wait
        # the hold-down before it hears of a failure.
        self.assert_reaches("alice", "mbx1")
        self.backends["mbx1"].kill()
        self.backends["mbx2"].kill()
        answer, secs = self.timed_login("alice", timeout=40.0)
        self.assertIsInstance(answer, bytes, "no answer: %s after %.1fs" % (answer, secs))
        self.assertTrue(answer.startswith(b"-ERR [SYS/TEMP]"), "answer %r" % answer)
        self.assertGreaterEqual(secs, self.HOLD_DOWN - 0.05,
                                "-ERR after %.2fs, before the %.1fs hold-down" % (secs, self.HOLD_DOWN))
        self.assertLess(secs, self.HOLD_DOWN + 1.5)

    def test_sigstopped_backend_timed_out_by_health_no_stall(self):
        mbx1 = self.backends["mbx1"]
        self.assert_reaches("alice", "mbx1")
        self.assert_reaches("bob", "mbx2")
        mark = self.gw.log_size()
        mbx1.pause()
        self.addCleanup(mbx1.resume)
        t0 = time.monotonic()
        # A login started right away: mbx1 accepts (the kernel does) but
        # never greets; after upstream.connect_timeout (default 5s) the
        # gateway tries mbx2.
        th, result = self.login_in_background("carol", timeout=30.0)
        # The probes time out: down within about interval*fall + timeout
        # (plus up to one interval of phase).
        bound = FAST_INTERVAL * (FAST_FALL + 1) + FAST_TIMEOUT + 0.5
        self.wait_health("mbx1", want_up=False, timeout=bound)
        print("\n  SIGSTOPped mbx1 reported down after %.2f s" % (time.monotonic() - t0),
              file=sys.stderr)
        self.assertRegex(self.show(), r"server mbx1 .*pop:\d+=timed out")
        # New logins of db1 go to mbx2 at once; others' logins stay fast
        # while carol's login waits on the hung backend.
        slow = []
        for user, backend in (("alice", "mbx2"), ("bob", "mbx2"), ("alice", "mbx2"),
                              ("bob", "mbx2"), ("carol", "mbx2")):
            t = time.monotonic()
            self.assert_reaches(user, backend)
            dt = time.monotonic() - t
            if dt > 0.5:
                slow.append((user, round(dt, 2)))
        self.assertEqual(slow, [], "logins held up while a backend hangs")
        th.join(20.0)
        self.assertFalse(th.is_alive(), "carol's login, sent to the hung mbx1, still unanswered "
                         "after %.0fs; the gateway's log %s 'no greeting in time'"
                         % (time.monotonic() - t0, "has" if "no greeting in time" in
                            self.gw.log_text() else "never says"))
        self.assertTrue(isinstance(result.get("answer"), bytes) and result["answer"].startswith(b"+OK"),
                        "carol's login during the hang: %r after %.1fs"
                        % (result.get("answer"), result.get("secs", -1)))
        self.assertEqual(result.get("backend"), "mbx2")
        self.assertLess(result["secs"], 5.0 + 1.5, "carol waited %.1fs" % result["secs"])
        log = self.log_since(mark)
        self.assertRegex(log, r"health: mbx1 pop is down: timed out")
        self.assertRegex(log, r"backend mbx1 failed: 127\.0\.0\.1:\d+: no greeting in time")


class HoldDownRecoveryTest(HoldDownCase):
    """A long enough hold-down for a copy to restart inside it."""

    HOLD_DOWN = 6.0

    def test_held_login_succeeds_when_a_copy_returns(self):
        hold = self.HOLD_DOWN
        mbx2 = self.backends["mbx2"]
        self.backends["mbx1"].kill()
        mbx2.kill()
        self.wait_health("mbx1", want_up=False, timeout=FAST_INTERVAL * (FAST_FALL + 1) + 2)
        self.wait_health("mbx2", want_up=False, timeout=FAST_INTERVAL * (FAST_FALL + 1) + 2)
        t0 = time.monotonic()
        t, result = self.login_in_background("alice", timeout=40.0)
        # The login is being held (the log says so) when mbx2 comes back.
        self.assertTrue(g.wait_until(lambda: "holding the login" in self.gw.log_text(), 5.0),
                        "the login was not held")
        mbx2.restart()
        restarted = time.monotonic() - t0
        self.assertLess(restarted, hold - FAST_INTERVAL * (FAST_RISE + 1),
                        "mbx2 took %.1fs to restart: the hold-down window is too short to test"
                        % restarted)
        t.join(45.0)
        self.assertFalse(t.is_alive(), "the held login never finished")
        self.assertTrue(isinstance(result.get("answer"), bytes) and result["answer"].startswith(b"+OK"),
                        "held login answered %r after %.2fs (mbx2 back %.2fs after it started)"
                        % (result.get("answer"), result.get("secs", -1), restarted))
        self.assertEqual(result.get("backend"), "mbx2")
        # Probes need rise (2) successes, up to one interval apart from the
        # restart; the held login asks again every 100 ms.
        bound = restarted + FAST_INTERVAL * (FAST_RISE + 1) + 1.0
        self.assertLess(result["secs"], min(bound, hold),
                        "the held login took %.2fs (hold-down %.1fs, mbx2 back after %.2fs)"
                        % (result["secs"], hold, restarted))
        print("\n  held login: +OK %.2f s after it started, mbx2 back after %.2f s"
              % (result["secs"], restarted), file=sys.stderr)


class ConnectTimeoutTest(LocatorCase):
    """mbx1's POP3 address is a black hole (a listener whose accept queue is
    full: the kernel drops the SYNs, so a connect neither succeeds nor
    fails). Health checks are off, so only upstream.connect_timeout (1s here)
    gets the login to the next copy."""

    CONNECT_TIMEOUT = 1.0

    def configure(self, config):
        hole = socket.socket()
        self.addCleanup(hole.close)
        hole.bind(("127.0.0.1", g.free_port()))
        hole.listen(0)
        self.hole_port = hole.getsockname()[1]
        for _ in range(3):      # fill the accept queue (and one more)
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.hole_port))
        with socket.socket() as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(("127.0.0.1", self.hole_port))
                self.skipTest("cannot make a black hole here: a connect to a full queue succeeded")
            except socket.timeout:
                pass
        config["locator"]["health"] = {"enabled": False}
        config["upstream"]["connect_timeout"] = "%dms" % (self.CONNECT_TIMEOUT * 1000)
        config["locator"]["servers"]["mbx1"]["services"]["pop"]["port"] = self.hole_port

    def test_connect_timeout_moves_login_to_next_copy(self):
        th, result = self.login_in_background("alice", timeout=40.0)
        # The worker serves others while alice's connect hangs.
        t0 = time.monotonic()
        self.assert_reaches("bob", "mbx2")
        self.assertLess(time.monotonic() - t0, 0.5)
        th.join(45.0)
        self.assertFalse(th.is_alive())
        self.assertEqual(result.get("backend"), "mbx2", "alice: %r" % result)
        self.assertGreaterEqual(result["secs"], self.CONNECT_TIMEOUT - 0.05)
        self.assertLess(result["secs"], self.CONNECT_TIMEOUT + 1.0,
                        "alice's login took %.2fs with upstream.connect_timeout %.1fs"
                        % (result["secs"], self.CONNECT_TIMEOUT))
        self.assertRegex(self.gw.log_text(),
                         r"backend mbx1 failed: 127\.0\.0\.1:%d: connect timed out" % self.hole_port)
        # mbx1 is now suspect: the next logins go straight to mbx2.
        t0 = time.monotonic()
        self.assert_reaches("alice", "mbx2", n=3)
        self.assertLess(time.monotonic() - t0, 1.0)
        out = self.show()
        self.assertRegex(out, r"server mbx1 127\.0\.0\.1 suspect pop:%d=not checked" % self.hole_port)


# ---- operations: drain, switchover, explain, errors -------------------------

class OperationsTest(LocatorCase):
    """gatewayctl against two workers: every command reaches both views."""

    WORKERS = 2
    MOVE_WINDOW = 2.0

    def configure(self, config):
        config["locator"]["health"] = dict(FAST_HEALTH)
        config["locator"]["move_close_window"] = "%dms" % (self.MOVE_WINDOW * 1000)

    def test_drain_and_undrain(self):
        old = self.session("alice")
        self.assertEqual(old.backend(), "mbx1")
        mark = self.gw.log_size()
        out = self.ctl_ok("drain", "mbx1")
        self.assertEqual(out.splitlines(), ["worker %d: ok: mbx1 drained" % i
                                            for i in range(self.WORKERS)])
        self.assertRegex(self.show(), r"(?m)^worker 0: server mbx1 127\.0\.0\.1 draining ")
        self.assertRegex(self.show(), r"(?m)^worker 1: server mbx1 127\.0\.0\.1 draining ")
        # New sessions go to the next copy, on whichever worker takes them.
        self.assert_reaches("alice", "mbx2", n=6)
        self.assert_reaches("carol", "mbx2", n=2)
        self.assert_reaches("bob", "mbx2")
        self.assertIn("route: proxy to mbx2", self.ctl_ok("explain", "alice", "pop"))
        # The established session carries on, on mbx1.
        self.assertTrue(old.cmd("NOOP").startswith(b"+OK"))
        self.assertEqual(old.backend(), "mbx1")
        st = old.cmd("RETR 1")
        self.assertTrue(st.startswith(b"+OK"), st)
        self.assertIn(b"Subject: welcome alice on mbx1", old.multiline())
        self.assertIn("server mbx1 drained by operator", self.log_since(mark))
        # Draining twice is not an error.
        self.ctl_ok("drain", "mbx1")
        out = self.ctl_ok("undrain", "mbx1")
        self.assertEqual(out.splitlines(), ["worker %d: ok: mbx1 undrained" % i
                                            for i in range(self.WORKERS)])
        self.assertNotIn("draining", self.show())
        self.assert_reaches("alice", "mbx1", n=6)
        self.assertTrue(old.cmd("QUIT").startswith(b"+OK"))
        self.assertIn("server mbx1 undrained by operator", self.log_since(mark))

    def test_switchover_moves_new_sessions_and_closes_old_ones_over_window(self):
        # A db1 session already on mbx2 (made while mbx1 was drained) must
        # survive the move to mbx2; db2 sessions are not touched at all.
        self.ctl_ok("drain", "mbx1")
        on_new = self.session("alice")
        self.assertEqual(on_new.backend(), "mbx2")
        self.ctl_ok("undrain", "mbx1")
        bob = self.session("bob")
        self.assertEqual(bob.backend(), "mbx2")
        old = []
        for i in range(10):
            p = self.session("alice" if i % 2 else "carol")
            self.assertEqual(p.backend(), "mbx1")
            old.append(p)
        mark = self.gw.log_size()
        closed = [None] * len(old)

        def watch(i):
            t = time.monotonic()
            try:
                old[i].wait_closed(self.MOVE_WINDOW + 3.0)
            except AssertionError:
                return
            closed[i] = time.monotonic() - t
        watchers = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(len(old))]
        t0 = time.monotonic()
        for w in watchers:
            w.start()
        out = self.ctl_ok("switchover", "db1", "mbx2")
        self.assertEqual(out.splitlines(), ["worker %d: ok: db1 active on mbx2" % i
                                            for i in range(self.WORKERS)])
        self.assertRegex(self.show(), r"(?m)^worker 0: database db1 active mbx2 copies mbx1 mbx2$")
        self.assertRegex(self.show(), r"(?m)^worker 1: database db1 active mbx2 copies mbx1 mbx2$")
        # New sessions go to the new active copy at once.
        self.assert_reaches("alice", "mbx2", n=4)
        self.assert_reaches("carol", "mbx2")
        for w in watchers:
            w.join(self.MOVE_WINDOW + 5.0)
        elapsed = time.monotonic() - t0
        self.assertNotIn(None, closed, "sessions on the old copy still open %.1fs after the "
                         "switchover (window %.1fs): %r" % (elapsed, self.MOVE_WINDOW, closed))
        # Closed within the window, and spread over it (not all at once).
        self.assertLess(max(closed), self.MOVE_WINDOW + 1.0, "close times %r" % closed)
        self.assertGreater(max(closed) - min(closed), self.MOVE_WINDOW / 5,
                           "all closed at once: %r" % closed)
        # Sessions on the new copy and of the other database carry on.
        self.assertEqual(on_new.backend(), "mbx2")
        self.assertEqual(bob.backend(), "mbx2")
        # A client that was cut reconnects and lands on the new copy.
        self.assert_reaches("carol", "mbx2")
        log = self.log_since(mark)
        self.assertIn("database db1: active copy moved from mbx1 to mbx2", log)
        self.assertEqual(len(re.findall(r"closing: the active copy of db1 moved", log)), len(old))
        n = sum(int(x) for x in re.findall(
            r"database db1: closing (\d+) session\(s\) on the old copy over 2000 ms", log))
        self.assertEqual(n, len(old))
        # And back: now the sessions on mbx2 are the old ones.
        self.ctl_ok("switchover", "db1", "mbx1")
        self.assert_reaches("alice", "mbx1", n=4)
        on_new.wait_closed(self.MOVE_WINDOW + 3.0)
        self.assertEqual(bob.backend(), "mbx2")
        # Switching to the copy that is already active changes nothing.
        mark = self.gw.log_size()
        self.ctl_ok("switchover", "db1", "mbx1")
        self.assertNotIn("active copy moved", self.log_since(mark))

    def test_explain(self):
        out = self.ctl_ok("explain", "alice", "pop")
        port1 = self.backends["mbx1"].ports["pop3"]
        port2 = self.backends["mbx2"].ports["pop3"]
        for i in range(self.WORKERS):
            self.assertIn("worker %d: directory: user alice database db1 version 15 site site-a" % i,
                          out)
            self.assertIn("worker %d: database: db1 active mbx1" % i, out)
            self.assertIn("worker %d: route: proxy to mbx1 (127.0.0.1:%d, tls none)" % (i, port1),
                          out)
        out = self.ctl_ok("explain", "bob", "pop")
        self.assertIn("route: proxy to mbx2 (127.0.0.1:%d, tls none)" % port2, out)
        self.ctl_ok("drain", "mbx1")
        self.assertIn("route: proxy to mbx2 (127.0.0.1:%d, tls none)" % port2,
                      self.ctl_ok("explain", "alice", "pop"))
        self.ctl_ok("drain", "mbx2")
        out = self.ctl_ok("explain", "alice", "pop")
        self.assertIn("route: refuse: no copy of database db1 can serve pop "
                      "(mbx1: draining, mbx2: draining)", out)
        out = self.ctl_ok("explain", "nobody", "pop")
        self.assertIn("directory: unknown user", out)

    def test_bad_names_and_commands(self):
        before = self.show()
        cases = [
            (("drain", "mbx9"), "error: no such server"),
            (("undrain", "mbx9"), "error: no such server"),
            (("switchover", "db9", "mbx2"), "error: no such database"),
            (("switchover", "db1", "mbx9"), "error: server holds no copy of that database"),
            (("drain",), "error: usage:"),
            (("switchover", "db1"), "error: usage:"),
            (("frobnicate",), "error: usage:"),
        ]
        for args, want in cases:
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 1, "gatewayctl %s exited %d: %s%s"
                             % (" ".join(args), r.returncode, r.stdout, r.stderr))
            for i in range(self.WORKERS):
                self.assertIn("worker %d: %s" % (i, want), r.stdout, "gatewayctl %s" % " ".join(args))
        self.assertEqual(self.show(), before, "a refused command changed the state")
        # No command at all: a usage error.
        r = subprocess.run([gatewayctl_path(), "-c", self.gw.conf_path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)
        # Nobody listening there.
        r = subprocess.run([gatewayctl_path(), "-s", self.tmp.join("nothing"), "show"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no gatewayd answers", r.stderr)
        # -s with the socket prefix works like -c.
        r = subprocess.run([gatewayctl_path(), "-s", self.tmp.join("admin"), "show"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertEqual((r.returncode, r.stdout), (0, before))
        # Users are served on.
        self.assert_reaches("alice", "mbx1")


if __name__ == "__main__":
    g.main()
