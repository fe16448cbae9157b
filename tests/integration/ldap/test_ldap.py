#!/usr/bin/env python3
"""The LDAP directory through gatewayd: real slapd, real Dovecot backends,
POP3 clients.

Every test gets its own slapd(s) and gatewayd (they stop, pause and kill
them); the Dovecot backends are shared by the class. What the directory
did is read from slapd's own stats log (tests/support/slapd.py), so cache
TTLs are observed from the server's side.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/ldap/test_ldap.py [-k NAME]
"""

import os
import re
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
import gwtest as g  # noqa: E402
import slapd as S  # noqa: E402


# Users in the directory: password, database, and more.
LDAP_USERS = {
    "alice": {"password": "secret-alice", "database": "db1", "version": 15},
    "bob": {"password": "secret-bob", "database": "db2"},
    "carol": {"password": "secret-carol", "database": "db1", "disabled": True},
    "dave": {"password": "secret-dave", "database": "db2", "sip_uri": "dave.sip",
             "extension": "1234", "disabled": False},
    "erin": {"password": "secret-erin", "database": "db1"},
    "frank": {"password": "secret-frank", "database": "db2"},
    "nodb": {"password": "secret-nodb", "database": None},
}
# Users of the backends (Dovecot knows nothing of LDAP).
BACKEND_USERS = {u: v["password"] for u, v in LDAP_USERS.items()}


class LdapCase(unittest.TestCase):
    """Backends per class; slapd(s) and gatewayd per test."""

    SLAPDS = 1
    TLS = False
    AUTH = {"failure_delay": "0s", "cache_ttl": "5m", "negative_ttl": "30s", "cache_size": 1000,
            "penalty": {"after": 0, "lockout_user": 0, "lockout_ip": 0}}
    LOG_ALLOW = ()

    @classmethod
    def setUpClass(cls):
        cls.backends = g.start_backends(("mbx1", "mbx2"), users=BACKEND_USERS, test=cls)

    def ldap_options(self):
        """directory.ldap keys on top of slapd.directory_config()."""
        return {}

    def uris(self):
        return [s.uri for s in self.slapds]

    def setUp(self):
        self.tmp = g.TempDir(prefix="gwl-", test=self)
        self.slapds = [S.Slapd.start(users=LDAP_USERS, tls=self.TLS, test=self)
                       for _ in range(self.SLAPDS)]
        self.start_gateway()

    def start_gateway(self, auth=None, ldap=None):
        users = {u: (v["password"], v["database"] or "db1") for u, v in LDAP_USERS.items()}
        config, info = g.standard_config(self.backends, self.tmp.path, users=users)
        config["auth"] = dict(self.AUTH, **(auth or {}))
        opts = self.ldap_options()
        opts.update(ldap or {})
        config["directory"] = S.directory_config(
            opts.pop("uris", self.uris()), self.slapds[0].password_file(self.tmp.path), **opts)
        self.config = config
        self.port = info["ports"]["plain"]
        self.gw = g.Gateway.start(config, directory=self.tmp.subdir("gw"), env=S.env())
        self.log_mark = 0
        self.addCleanup(self._stop_gateway)
        self.addCleanup(self._report_failure)

    def _stop_gateway(self):
        rc = self.gw.stop()
        self.gw.check_log(self, allow=self.LOG_ALLOW)
        self.assertEqual(rc, 0, "gatewayd exited with %s; log:\n%s" % (rc, g._tail(self.gw.log_path)))

    def _report_failure(self):
        if getattr(getattr(self, "_outcome", None), "success", True):
            return
        print("\n===== %s: gatewayd log =====\n%s" % (self.id(), g._tail(self.gw.log_path, 60)),
              file=sys.stderr)
        for s in self.slapds:
            print("===== slapd %s (tail) =====\n%s" % (s.uri, g._tail(s.log_path, 15)),
                  file=sys.stderr)

    # -- helpers --

    def login(self, user, password=None, source=None):
        """The gateway's answer to USER/PASS (bytes)."""
        if password is None:
            password = LDAP_USERS[user]["password"]
        with g.PopClient(self.port, source=source) as p:
            return p.login(user, password)

    def assertOk(self, r, what=""):
        self.assertTrue(r.startswith(b"+OK"), "%s: expected +OK, got %r" % (what, r))

    def assertAuthFailed(self, r, what=""):
        self.assertTrue(r.startswith(b"-ERR [AUTH]"), "%s: expected -ERR [AUTH], got %r" % (what, r))

    def assertTemp(self, r, what=""):
        self.assertTrue(r.startswith(b"-ERR [SYS/TEMP]"),
                        "%s: expected -ERR [SYS/TEMP], got %r" % (what, r))

    def assert_reaches(self, user, backend):
        with g.PopClient(self.port) as p:
            self.assertOk(p.login(user, LDAP_USERS[user]["password"]), "login of " + user)
            self.assertOk(p.cmd("RETR 1"))
            self.assertIn(("welcome %s on %s" % (user, backend)).encode(), p.multiline())

    def wait_count(self, slapd, fn, expect, timeout=5.0):
        """slapd's log is written as it goes: poll until fn() == expect."""
        got = g.wait_until(lambda: fn() == expect, timeout)
        self.assertTrue(got, "expected %d, slapd log says %d" % (expect, fn()))


# ---- lookups and binds -------------------------------------------------------

class LookupTest(LdapCase):

    def test_login_reaches_the_users_backend(self):
        self.assert_reaches("alice", "mbx1")
        self.assert_reaches("bob", "mbx2")
        s = self.slapds[0]
        # one search and one bind as the user's entry, each
        self.wait_count(s, lambda: s.user_binds("alice"), 1)
        self.wait_count(s, lambda: s.user_searches("alice"), 1)

    def test_searches_run_as_the_service_account(self):
        self.assertOk(self.login("alice"))
        s = self.slapds[0]
        self.assertGreaterEqual(s.count("BIND", r'dn="%s"' % re.escape(S.SERVICE_DN)), 1)
        self.assertEqual(s.count("BIND", r'dn="%s"' % re.escape(S.SERVICE_DN) + r".*\n.*err=49"), 0)

    def test_wrong_password(self):
        self.assertAuthFailed(self.login("alice", "not-alices"))
        self.assertAuthFailed(self.login("alice", "secret-alicE"))
        # ... and the right one still works (the failed bind cached nothing)
        self.assertOk(self.login("alice"))

    def test_unknown_user(self):
        self.assertAuthFailed(self.login("nosuchuser", "whatever"))
        self.assertIn("unknown user", self.gw.log_text())

    def test_disabled_account(self):
        self.assertAuthFailed(self.login("carol"))
        self.assertAuthFailed(self.login("carol", "wrong"))
        self.assertRegex(self.gw.log_text(), r"user=carol .*account disabled")
        # an explicit FALSE is not disabled
        self.assert_reaches("dave", "mbx2")

    def test_entry_without_the_object_class(self):
        # nodb is an inetOrgPerson with a password but no gwMailUser
        self.assertAuthFailed(self.login("nodb"))
        self.assertEqual(self.slapds[0].user_binds("nodb"), 0)

    def test_mapped_attributes(self):
        # Existing attributes instead of the shipped schema: the database in
        # description (absent for alice: no mailbox, refused), the
        # disabled flag in employeeType.
        self.gw.stop()
        self.start_gateway(ldap={"user_filter": "(uid=%u)",
                                 "attributes": {"database": "description",
                                                "disabled": "employeeType"}})
        self.assertAuthFailed(self.login("alice"))
        self.assertRegex(self.gw.log_text(), r"has no description")

    def test_empty_password_never_binds(self):
        with g.PopClient(self.port) as p:
            p.cmd("USER alice")
            r = p.cmd("PASS ")
        self.assertTrue(r.startswith(b"-ERR"), r)
        self.assertEqual(self.slapds[0].user_binds("alice"), 0)

    def test_injection_in_the_login_name(self):
        s = self.slapds[0]
        names = ["*", "a*", "alice*", "*)(uid=*", "alice)(|(uid=*", "*)(objectClass=*",
                 "al\\2aice", "alice\\", "(uid=alice)", "alice)(gwAccountDisabled=FALSE"]
        for n in names:
            self.assertAuthFailed(self.login(n, "secret-alice"), "login as %r" % n)
        # Every metacharacter reached slapd escaped: no search had a wildcard
        # or an extra component from the name.
        for line in s.ops("SRCH"):
            m = re.search(r'filter="([^"]*)"', line)
            if not m:
                continue
            f = m.group(1)
            self.assertNotIn("=*)", f, line)
            self.assertEqual(f.count("(uid="), 1, line)
            self.assertNotIn("(gwAccountDisabled=FALSE)", f, line)
        self.assertEqual(s.user_binds("alice"), 0)

    def test_very_long_names(self):
        s = self.slapds[0]
        before = s.count("SRCH")
        # POP3 refuses lines this long before any lookup (the directory
        # source refuses names over 256 bytes itself: unit-tested)
        r = self.login("b" * 400, "x")
        self.assertTrue(r.startswith(b"-ERR"), r)
        self.assertEqual(s.count("SRCH"), before)
        # the longest name POP3 takes is searched escaped, and found nowhere
        self.assertAuthFailed(self.login("*" * 200, "x"))
        self.assertTrue(g.wait_until(lambda: s.count("SRCH", r"(\\2[aA]){200}") == 1, 5.0))
        self.assertOk(self.login("alice"))


# ---- caches as slapd sees them -------------------------------------------------

class CacheTest(LdapCase):
    AUTH = dict(LdapCase.AUTH, cache_ttl="2s", negative_ttl="2s")

    def test_credential_cache_ttl(self):
        s = self.slapds[0]
        self.assertOk(self.login("alice"))
        self.assertOk(self.login("alice"))
        self.assertOk(self.login("alice"))
        self.wait_count(s, lambda: s.user_binds("alice"), 1)
        self.assertEqual(s.user_searches("alice"), 1)
        time.sleep(2.3)
        self.assertOk(self.login("alice"))
        self.wait_count(s, lambda: s.user_binds("alice"), 2)

    def test_wrong_password_is_not_served_from_the_cache(self):
        s = self.slapds[0]
        self.assertOk(self.login("alice"))
        self.assertAuthFailed(self.login("alice", "guess"))
        self.wait_count(s, lambda: s.user_binds("alice"), 2)
        # the failed bind dropped the entry: the next login asks again
        self.assertOk(self.login("alice"))
        self.wait_count(s, lambda: s.user_binds("alice"), 3)

    def test_password_change_takes_effect_after_ttl(self):
        s = self.slapds[0]
        self.assertOk(self.login("erin"))
        s.set_password("erin", "changed-erin")
        # within cache_ttl the verified credential still counts ...
        self.assertOk(self.login("erin"))
        self.assertEqual(s.user_binds("erin"), 1)
        time.sleep(2.3)
        # ... after it, the directory decides
        self.assertAuthFailed(self.login("erin"))
        self.wait_count(s, lambda: s.user_binds("erin"), 2)

    def test_negative_ttl(self):
        s = self.slapds[0]
        for _ in range(3):
            self.assertAuthFailed(self.login("ghost", "x"))
        self.wait_count(s, lambda: s.user_searches("ghost"), 1)
        time.sleep(2.3)
        self.assertAuthFailed(self.login("ghost", "x"))
        self.wait_count(s, lambda: s.user_searches("ghost"), 2)


# ---- slapd down, slow, failing over ----------------------------------------------

class OutageTest(LdapCase):
    AUTH = dict(LdapCase.AUTH, cache_ttl="1s", stale_if_error="1h")

    def test_stopped_then_back(self):
        s = self.slapds[0]
        self.assertOk(self.login("bob"))
        s.stop()
        t0 = time.monotonic()
        self.assertTemp(self.login("alice"), "alice with slapd stopped")
        self.assertLess(time.monotonic() - t0, 3.0, "a down directory must fail fast")
        s.start_again()
        ok = g.wait_until(lambda: self.login("alice").startswith(b"+OK"), 15.0, 0.2)
        self.assertTrue(ok, "no recovery 15 s after slapd came back")
        self.assertIn(b"+OK", self.login("erin"))

    def test_stale_if_error(self):
        s = self.slapds[0]
        self.assertOk(self.login("alice"))
        time.sleep(1.3)           # past cache_ttl
        s.stop()
        self.assertOk(self.login("alice"), "a cached user while slapd is down")
        self.assertRegex(self.gw.log_text(), r"directory unavailable: serving alice from the cache")
        # nobody else, and not with another password
        self.assertTemp(self.login("alice", "guess"), "alice with a guessed password")
        self.assertTemp(self.login("bob"), "bob, never cached")
        s.start_again()
        ok = g.wait_until(lambda: self.login("bob").startswith(b"+OK"), 15.0, 0.2)
        self.assertTrue(ok)

    def test_stale_window_ends(self):
        self.gw.stop()
        self.start_gateway(auth={"cache_ttl": "1s", "stale_if_error": "1s"})
        s = self.slapds[0]
        self.assertOk(self.login("alice"))
        time.sleep(2.3)           # past cache_ttl + stale_if_error
        s.stop()
        self.assertTemp(self.login("alice"))

    def test_paused_slapd_times_out_without_stalling_the_worker(self):
        s = self.slapds[0]
        self.assertOk(self.login("alice"))       # cached from now on (1 s)
        session = g.PopClient(self.port)
        self.addCleanup(session.close)
        self.assertOk(session.login("dave", "secret-dave"))
        s.pause()
        self.addCleanup(s.resume)
        result = {}

        def slow_login():
            t = time.monotonic()
            result["answer"] = self.login("bob")
            result["took"] = time.monotonic() - t

        th = threading.Thread(target=slow_login)
        th.start()
        time.sleep(0.2)
        # Meanwhile the only worker serves everyone else at once.
        t = time.monotonic()
        self.assertOk(session.cmd("STAT"), "an open session")
        self.assertOk(session.cmd("NOOP"))
        self.assertOk(self.login("alice"), "a cached user")
        self.assertLess(time.monotonic() - t, 1.0, "the worker stalled")
        th.join(15)
        self.assertTemp(result["answer"], "bob while slapd hangs")
        self.assertGreater(result["took"], 1.5)    # the 2 s request timeout
        self.assertLess(result["took"], 6.0)
        s.resume()
        ok = g.wait_until(lambda: self.login("bob").startswith(b"+OK"), 15.0, 0.2)
        self.assertTrue(ok, "no recovery after SIGCONT")


class FailoverTest(LdapCase):
    SLAPDS = 2
    AUTH = dict(LdapCase.AUTH, cache_ttl="0s")

    def test_second_uri_takes_over_and_first_is_used_again(self):
        a, b = self.slapds
        self.assertOk(self.login("alice"))
        self.wait_count(a, lambda: a.user_binds("alice"), 1)
        self.assertEqual(b.user_binds("alice"), 0)
        a.stop()
        self.assertOk(self.login("bob"), "bob with the first slapd down")
        self.assertGreaterEqual(b.user_binds("bob"), 1)
        for u in ("erin", "frank", "alice"):
            self.assertOk(self.login(u), u)
        a.start_again()

        def back_on_a():
            self.assertOk(self.login("dave"))
            return a.user_binds("dave") > 0
        self.assertTrue(g.wait_until(back_on_a, 15.0, 0.3),
                        "the first URI is not used again after it came back")

    def test_hung_first_uri_fails_over(self):
        a, b = self.slapds
        self.assertOk(self.login("alice"))
        a.pause()
        self.addCleanup(a.resume)
        answers = [self.login("bob") for _ in range(3)]
        # The request that found the hang may fail; the next go elsewhere,
        # binds included (the bind pool shares what the search pool learnt).
        self.assertOk(answers[1], "after a timeout on the first URI: %r" % answers)
        self.assertOk(answers[2], "after a timeout on the first URI: %r" % answers)
        self.assertTrue(g.wait_until(lambda: b.user_binds("bob") >= 1, 5.0))


# ---- penalties -------------------------------------------------------------------

class PenaltyTest(LdapCase):
    AUTH = dict(LdapCase.AUTH, penalty={"after": 2, "delay": "300ms", "max_delay": "600ms",
                                        "lockout_user": 4, "lockout_ip": 0,
                                        "lockout_time": "2s", "window": "1m"})

    def timed_login(self, *args, **kw):
        t = time.monotonic()
        r = self.login(*args, **kw)
        return r, time.monotonic() - t

    def test_growing_delay_then_user_lockout(self):
        r, t1 = self.timed_login("alice", "guess1")
        self.assertAuthFailed(r)
        r, t2 = self.timed_login("alice", "guess2")
        self.assertAuthFailed(r)
        r, t3 = self.timed_login("alice", "guess3")
        self.assertAuthFailed(r)
        self.assertLess(t1, 0.25)
        self.assertGreaterEqual(t2, 0.28)
        self.assertGreaterEqual(t3, 0.58)
        r, _ = self.timed_login("alice", "guess4")      # the 4th: locked from now on
        self.assertAuthFailed(r)
        self.assertTemp(self.login("alice"), "the right password during the lockout")
        self.assertRegex(self.gw.log_text(), r"user alice locked out")
        self.assertOk(self.login("bob"), "another user is not locked")
        time.sleep(2.1)
        self.assertOk(self.login("alice"), "after the lockout")

    def test_address_lockout(self):
        self.gw.stop()
        self.start_gateway(auth={"penalty": {"after": 0, "lockout_user": 0, "lockout_ip": 3,
                                             "lockout_time": "2s"}})
        for n in ("x1", "x2", "x3"):
            self.assertAuthFailed(self.login(n, "guess"))
        self.assertTemp(self.login("alice"), "alice from the locked address")
        self.assertOk(self.login("alice", source="127.0.0.2"), "alice from another address")


# ---- TLS ------------------------------------------------------------------------

class TlsTest(LdapCase):
    TLS = True
    LOG_ALLOW = (r"ldap",)

    def ldap_options(self):
        return {"ca_file": self.slapds[0].ca}

    def uris(self):
        return [self.slapds[0].ldaps_uri]

    def test_ldaps(self):
        self.assert_reaches("alice", "mbx1")

    def test_starttls(self):
        self.gw.stop()
        self.start_gateway(ldap={"uris": [self.slapds[0].uri], "starttls": True})
        self.assert_reaches("bob", "mbx2")
        s = self.slapds[0]
        self.assertGreaterEqual(s.count("EXT", r"oid=1\.3\.6\.1\.4\.1\.1466\.20037"), 1)

    def test_untrusted_certificate(self):
        other, _ = g.make_cert(self.tmp.path, "other")
        self.gw.stop()
        self.start_gateway(ldap={"ca_file": other})
        self.assertTemp(self.login("alice"))
        self.assertRegex(self.gw.log_text(), r"certificate not trusted")


# ---- configuration mistakes --------------------------------------------------------

class MisconfigTest(LdapCase):
    LOG_ALLOW = (r"service bind", r"No such object")

    def test_wrong_service_password(self):
        self.gw.stop()
        bad = os.path.join(self.tmp.path, "bad-password")
        with open(bad, "w") as f:
            f.write("not-the-password\n")
        self.start_gateway(ldap={"bind_password_file": bad})
        self.assertTemp(self.login("alice"))
        self.assertRegex(self.gw.log_text(), r"service bind as .* failed: Invalid credentials")
        self.assertNotIn("not-the-password", self.gw.log_text())

    def test_missing_base(self):
        self.gw.stop()
        self.start_gateway(ldap={"base": "ou=nowhere,dc=example,dc=test"})
        self.assertTemp(self.login("alice"))

    def test_config_check(self):
        self.assertEqual(g.check_config(self.gw.conf_path).returncode, 0)
        path = os.path.join(self.tmp.path, "bad.yaml")
        with open(self.gw.conf_path) as f:
            text = f.read()
        text = text.replace('"base": "%s"' % S.PEOPLE,
                            '"base": "%s", "user_filter": "(uid=%%s)"' % S.PEOPLE)
        with open(path, "w") as f:
            f.write(text)
        r = g.check_config(path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("directory.ldap.user_filter: unknown % sequence", r.stderr)


if __name__ == "__main__":
    g.main()
