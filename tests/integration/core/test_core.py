#!/usr/bin/env python3
"""What the core does for every protocol, seen through POP3 clients: IPv6
listeners, SNI certificate selection, max_connections, configuration reload
(SIGHUP) without dropping a session, and `gatewayd -t` on certificates.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/core/test_core.py [-k NAME]
"""

import os
import poplib
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import gwtest as g  # noqa: E402

TIMEOUT = 10.0


def make_named_cert(directory, name, dns):
    """A self-signed certificate for one DNS name (for SNI tests)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=" + dns,
         "-addext", "subjectAltName=DNS:" + dns],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


def first_subject(port, user, password, host="127.0.0.1", ctx=None, server_hostname=None):
    if ctx is not None:
        p = poplib.POP3_SSL(host, port, context=ctx, timeout=TIMEOUT)
    else:
        p = poplib.POP3(host, port, timeout=TIMEOUT)
    try:
        p.user(user)
        p.pass_(password)
        for line in p.retr(1)[1]:
            if line.startswith(b"Subject: "):
                return line[9:].decode()
        return None
    finally:
        p.quit()


class CoreCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = g.TempDir(prefix="gwcore-")
        cls.backends = g.start_backends(("mbx1", "mbx2"), tls=False, directory=cls.tmp.path)

    @classmethod
    def tearDownClass(cls):
        g.Dovecot.stop_all(list(cls.backends.values()))
        cls.tmp.cleanup()

    def config(self, **pop_options):
        d = g.TempDir(prefix="gwc-", test=self)
        conf, info = g.standard_config(self.backends, d.path, pop_options=pop_options)
        return conf, info, d

    def start(self, conf, allow=()):
        gw = g.Gateway.start(conf, test=self)
        self.addCleanup(gw.check_log, self, allow)
        return gw


class Listeners(CoreCase):
    def test_ipv6_listener(self):
        conf, info, _ = self.config()
        port = g.free_port()  # free on 127.0.0.1; the test binds it on ::1
        conf["protocols"]["pop"]["listen"].append(
            {"address": "[::1]:%d" % port, "tls": "none", "allow_plaintext": True})
        self.start(conf)
        self.assertEqual(first_subject(port, "alice", "secret-alice", host="::1"),
                         "welcome alice on mbx1")
        # and the IPv4 listener of the same protocol still serves
        self.assertEqual(first_subject(info["ports"]["plain"], "bob", "secret-bob"),
                         "welcome bob on mbx2")

    def test_sni_selects_the_certificate(self):
        conf, info, d = self.config()
        a = make_named_cert(d.path, "a", "pop.a.test")
        b = make_named_cert(d.path, "b", "pop.b.test")
        port = g.free_port()
        conf["protocols"]["pop"]["listen"].append(
            {"address": "127.0.0.1:%d" % port, "tls": "implicit",
             "certificates": [{"cert": a[0], "key": a[1]}, {"cert": b[0], "key": b[1]}]})
        self.start(conf)

        def cert_cn(server_name):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            # (the client reads the greeting: the session works after the handshake)
            with g.LineClient(port, tls=ctx, server_hostname=server_name) as c:
                der = c.sock.getpeercert(binary_form=True)
            pem = ssl.DER_cert_to_PEM_cert(der)
            out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                                 stdout=subprocess.PIPE, check=True).stdout.decode()
            return out.strip()

        self.assertIn("pop.b.test", cert_cn("pop.b.test"))
        self.assertIn("pop.a.test", cert_cn("pop.a.test"))
        self.assertIn("pop.a.test", cert_cn("unknown.test"))   # the first is the default
        # and a client that checks the name it asked for gets a verified session
        with g.LineClient(port, tls=b[0], server_hostname="pop.b.test") as c:
            self.assertTrue(c.greeting.startswith(b"+OK"))

    def test_max_connections(self):
        conf, info, _ = self.config()
        port = g.free_port()
        conf["protocols"]["pop"]["listen"].append(
            {"address": "127.0.0.1:%d" % port, "tls": "none", "allow_plaintext": True,
             "max_connections": 2})
        gw = self.start(conf)
        held = [poplib.POP3("127.0.0.1", port, timeout=TIMEOUT) for _ in range(2)]
        # The third is accepted by the kernel but not served until one closes.
        third = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        third.settimeout(0.7)
        with self.assertRaises(socket.timeout):
            third.recv(100)
        held[0].quit()
        third.settimeout(TIMEOUT)
        self.assertTrue(third.recv(100).startswith(b"+OK"))
        third.close()
        held[1].quit()
        self.assertIn("max_connections (2) reached", gw.log_text())


class Reload(CoreCase):
    def test_reload_keeps_sessions_and_applies_changes(self):
        conf, info, _ = self.config()
        port = info["ports"]["plain"]
        gw = self.start(conf, allow=(r"reload refused", r"unknown top-level key 'bogus_key'"))
        old = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
        old.user("alice")
        old.pass_("secret-alice")
        self.assertEqual(old.stat()[0], 1)

        # A broken file: refused, the running configuration keeps serving.
        with open(gw.conf_path) as f:
            good = f.read()
        with open(gw.conf_path, "w") as f:
            f.write(good.replace('"workers": 1', '"workers": 1, "bogus_key": 1'))
        mark = gw.log_size()
        gw.signal(signal.SIGHUP)
        self.assertTrue(g.wait_until(lambda: "reload refused" in gw.log_text()[mark:], TIMEOUT))
        self.assertIn("unknown top-level key 'bogus_key'", gw.log_text()[mark:])
        self.assertEqual(first_subject(port, "bob", "secret-bob"), "welcome bob on mbx2")
        self.assertEqual(old.stat()[0], 1)

        # A good change: move db2 to mbx1, and take carol out of the directory.
        self.assertEqual(first_subject(port, "carol", "secret-carol"), "welcome carol on mbx1")
        conf["locator"]["databases"]["db2"]["copies"] = ["mbx1", "mbx2"]
        del conf["directory"]["users"]["carol"]
        with open(gw.conf_path, "w") as f:
            f.write(g.to_yaml(conf))
        mark = gw.log_size()
        gw.signal(signal.SIGHUP)
        self.assertTrue(g.wait_until(lambda: "reloaded:" in gw.log_text()[mark:], TIMEOUT))
        self.assertTrue(g.wait_until(lambda: " serving " in gw.log_text()[mark:], TIMEOUT))
        self.assertEqual(first_subject(port, "bob", "secret-bob"), "welcome bob on mbx1")
        with self.assertRaises(poplib.error_proto) as cm:
            first_subject(port, "carol", "secret-carol")
        self.assertIn(b"[AUTH]", cm.exception.args[0])
        # The session from before both reloads was never dropped.
        self.assertEqual(old.stat()[0], 1)
        self.assertTrue(old.retr(1)[1][0])
        old.quit()


class ConfigCheck(CoreCase):
    def refused(self, d, name, conf):
        """Write conf to d/name and run `gatewayd -t` on it: it must exit 1.
        Returns what it wrote to stderr."""
        path = os.path.join(d.path, name)
        with open(path, "w") as f:
            f.write(g.to_yaml(conf))
        r = g.check_config(path)
        self.assertEqual(r.returncode, 1)
        return r.stderr

    def test_unreadable_certificate_is_reported_with_position(self):
        conf, info, d = self.config()
        conf["protocols"]["pop"]["listen"][2]["certificates"][0]["cert"] = "/nonexistent/x.crt"
        err = self.refused(d, "bad.yaml", conf)
        self.assertRegex(err, r"bad\.yaml:\d+:\d+: .*certificate")

    def test_mismatched_key_is_refused(self):
        conf, info, d = self.config()
        other = make_named_cert(d.path, "other", "other.test")
        conf["protocols"]["pop"]["listen"][2]["certificates"][0]["key"] = other[1]
        err = self.refused(d, "mismatch.yaml", conf)
        self.assertRegex(err, r"mismatch\.yaml:\d+:\d+: .*key.*(mismatch|does not match)")


if __name__ == "__main__":
    g.main()
