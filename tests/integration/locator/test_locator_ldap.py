#!/usr/bin/env python3
"""The ldap locator source through gatewayd: slapd (syncprov) holds the
database entries, two real Dovecot copies serve POP3.

    cn=db1: gwDatabaseCopy "1 mbx1", "2 mbx2"; gwActiveServer mbx1  (alice, carol)
    cn=db2: gwDatabaseCopy "1 mbx2", "2 mbx1"; gwActiveServer mbx2  (bob)

gateway.yaml has servers but no databases: they come from the directory.
Users are static (the directory source is not under test here).

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/locator/test_locator_ldap.py [-k NAME]
"""

import os
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import gwtest as g  # noqa: E402
import slapd as sl  # noqa: E402

USERS = g.STANDARD_USERS
DBS = "ou=databases," + sl.BASE


def db_dn(name):
    return "cn=%s,%s" % (name, DBS)


def databases_ldif():
    return ("dn: %s\nchangetype: add\nobjectClass: organizationalUnit\nou: databases\n\n"
            "dn: %s\nchangetype: add\nobjectClass: gwDatabase\ncn: db1\n"
            "gwDatabaseCopy: 1 mbx1\ngwDatabaseCopy: 2 mbx2\ngwActiveServer: mbx1\n\n"
            "dn: %s\nchangetype: add\nobjectClass: gwDatabase\ncn: db2\n"
            "gwDatabaseCopy: 1 mbx2\ngwDatabaseCopy: 2 mbx1\ngwActiveServer: mbx2\n"
            % (DBS, db_dn("db1"), db_dn("db2")))


class LdapLocatorWorld(unittest.TestCase):
    """slapd with the database entries, two Dovecot copies, gatewayd on the
    ldap source; helpers. The tests are in the subclasses."""
    WORKERS = 2
    LDAP_OPTIONS = {}   # more locator.ldap keys, per class

    def setUp(self):
        self.tmp = g.TempDir(prefix="gwll-", test=self)
        acl = ('access to attrs=gwActiveServer\n    by dn.exact="%s" write\n    by * read\n'
               % sl.SERVICE_DN)
        self.slapd = sl.Slapd.start(test=self, extra_acl=acl)
        self.slapd.modify(databases_ldif())
        self.backends = g.start_backends(("mbx1", "mbx2"),
                                         users={u: pw for u, (pw, _) in USERS.items()},
                                         directory=self.tmp.path, test=self)
        config, info = g.standard_config(self.backends, self.tmp.path, users=USERS)
        loc = config["locator"]
        loc.pop("databases", None)
        loc["source"] = "ldap"
        loc["move_close_window"] = "200ms"
        loc["ldap"] = {
            "uris": [self.slapd.uri], "bind_dn": sl.SERVICE_DN,
            "bind_password_file": self.slapd.password_file(self.tmp.path),
            "base": DBS, "timeout": "2s", "connect_timeout": "1s",
            "backoff_min": "100ms", "backoff_max": "500ms", "retry": "200ms", "connections": 1,
        }
        loc["ldap"].update(self.LDAP_OPTIONS)
        config["workers"] = self.WORKERS
        config["admin"] = {"socket": self.tmp.join("admin")}
        self.port = info["ports"]["plain"]
        self.gw = g.Gateway.start(config, directory=self.tmp.subdir("gw"), env=sl.env())
        self.addCleanup(self._stop)
        self.assertTrue(g.wait_until(
            lambda: self.show().count("database db1 active mbx1") == self.WORKERS, 15, 0.02),
            "workers never loaded the map:\n%s" % self.show())

    def _stop(self):
        rc = self.gw.stop()
        self.gw.check_log(self, allow=(r"directory search failed", r"locator"))
        self.assertEqual(rc, 0)

    def ctl(self, *args):
        return subprocess.run([os.path.join(g.build_dir(), "gatewayctl"), "-c", self.gw.conf_path]
                              + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=20)

    def show(self):
        return self.ctl("show").stdout

    def reaches(self, user):
        with g.PopClient(self.port) as p:
            r = p.login(user)
            if not r.startswith(b"+OK"):
                return None
            be = p.backend()
            p.cmd("QUIT")
            return be

    def set_active(self, db, server):
        self.slapd.modify("dn: %s\nchangetype: modify\nreplace: gwActiveServer\n"
                          "gwActiveServer: %s\n" % (db_dn(db), server))

    def active_in_ldap(self, db):
        r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.slapd.uri, "-D", sl.ROOT_DN,
                            "-w", sl.ROOT_PASSWORD, "-b", db_dn(db), "-s", "base",
                            "gwActiveServer"], env=sl.env(), stdout=subprocess.PIPE, text=True,
                           timeout=10)
        m = re.search(r"^gwActiveServer: (\S+)", r.stdout, re.M)
        return m.group(1) if m else None

    def wait_all_workers(self, db, server, timeout):
        t0 = time.monotonic()
        ok = g.wait_until(lambda: self.show().count("database %s active %s " % (db, server))
                          == self.WORKERS, timeout, 0.01)
        return ok, time.monotonic() - t0


class LdapLocatorCase(LdapLocatorWorld):

    def test_initial_routing_from_ldap(self):
        self.assertEqual(self.reaches("alice"), "mbx1")
        self.assertEqual(self.reaches("bob"), "mbx2")
        self.assertIn("ldap: synced", self.show())

    def test_ldapmodify_switchover_propagates_and_closes_old_sessions(self):
        p = g.PopClient(self.port)
        self.addCleanup(p.close)
        self.assertTrue(p.login("alice").startswith(b"+OK"))
        self.assertEqual(p.backend(), "mbx1")
        t0 = time.monotonic()
        self.set_active("db1", "mbx2")
        ok, _ = self.wait_all_workers("db1", "mbx2", 5.0)
        took = time.monotonic() - t0
        self.assertTrue(ok, self.show())
        print("\nldapmodify -> every worker: %.0f ms" % (took * 1000), file=sys.stderr)
        self.assertLess(took, 1.0)
        self.assertEqual(self.reaches("alice"), "mbx2")
        self.assertEqual(self.reaches("bob"), "mbx2")
        p.wait_closed(5.0)   # the session on the old copy is closed

    def test_gatewayctl_switchover_writes_ldap(self):
        r = self.ctl("switchover", "db1", "mbx2")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("written to the directory", r.stdout)
        self.assertEqual(self.active_in_ldap("db1"), "mbx2")
        ok, _ = self.wait_all_workers("db1", "mbx2", 2.0)
        self.assertTrue(ok, self.show())
        self.assertEqual(self.reaches("alice"), "mbx2")
        r = self.ctl("switchover", "db1", "nosuch")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no copy", r.stdout)

    def test_slapd_down_keeps_map_and_resyncs(self):
        self.slapd.stop()
        self.assertTrue(g.wait_until(lambda: "ldap: unavailable" in self.show(), 5, 0.05),
                        self.show())
        for _ in range(3):
            self.assertEqual(self.reaches("alice"), "mbx1")
        self.slapd.start_again()
        self.set_active("db1", "mbx2")
        ok, took = self.wait_all_workers("db1", "mbx2", 5.0)
        self.assertTrue(ok, self.show())
        self.assertEqual(self.reaches("alice"), "mbx2")
        self.assertTrue(g.wait_until(lambda: self.show().count("ldap: synced") == self.WORKERS,
                                     5, 0.05), self.show())

    def test_planned_switchover_no_failed_logins(self):
        stop = threading.Event()
        results = []

        def attempt():
            """The backend reached; "cut" when a session that had logged in
            was closed by the gateway (a session still on the old copy when
            the move-close timer, at random within move_close_window, fires:
            by design, and logged); "error: ..." for anything else."""
            with g.PopClient(self.port) as p:
                r = p.login("alice")
                if not r.startswith(b"+OK"):
                    return "error: login refused: %r" % r
                try:
                    be = p.backend()
                    p.cmd("QUIT")
                except (EOFError, ConnectionResetError):
                    # a FIN, or a reset when the close found our next
                    # command unread: either way the move's cut
                    return "cut"
                return be

        def loop():
            while not stop.is_set():
                try:
                    results.append(attempt())
                except Exception as e:  # noqa: BLE001
                    results.append("error: %r" % e)
        threads = [threading.Thread(target=loop) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for server in ("mbx2", "mbx1", "mbx2", "mbx1", "mbx2", "mbx1"):
                time.sleep(0.4)
                self.set_active("db1", server)
            time.sleep(0.4)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        failed = [r for r in results if r not in ("mbx1", "mbx2", "cut")]
        cuts = results.count("cut")
        closed_by_move = len(re.findall(r"closing: the active copy of db1 moved",
                                        self.gw.log_text()))
        print("\n%d logins during 6 switchovers, %d failed, %d sessions closed by a move"
              % (len(results), len(failed), cuts), file=sys.stderr)
        self.assertGreater(len(results), 20)
        self.assertEqual(failed, [])
        # every session cut after its login is one the gateway closed because
        # its copy stopped being the active one
        self.assertLessEqual(cuts, closed_by_move)
        self.assertIn("mbx2", results)


class LdapLocatorKeepalive(LdapLocatorWorld):
    """A persistent search says nothing while nothing changes: without the
    keepalive probes a server that stops answering would never be noticed,
    and every later change missed."""
    WORKERS = 1
    LDAP_OPTIONS = {"keepalive": "500ms", "timeout": "1s"}

    def test_stopped_server_is_noticed_and_changes_followed_again(self):
        self.slapd.pause()
        self.addCleanup(self.slapd.resume)
        t0 = time.monotonic()
        self.assertTrue(g.wait_until(lambda: "ldap: unavailable" in self.show(), 5, 0.05),
                        "a stopped directory server went unnoticed:\n%s" % self.show())
        print("\nstopped slapd noticed after %.0f ms" % ((time.monotonic() - t0) * 1000),
              file=sys.stderr)
        self.assertEqual(self.reaches("alice"), "mbx1")   # the last known map routes
        self.slapd.resume()
        self.assertTrue(g.wait_until(lambda: "ldap: synced" in self.show(), 10, 0.05),
                        self.show())
        self.set_active("db1", "mbx2")
        ok, _ = self.wait_all_workers("db1", "mbx2", 5.0)
        self.assertTrue(ok, self.show())
        self.assertEqual(self.reaches("alice"), "mbx2")


if __name__ == "__main__":
    unittest.main()
