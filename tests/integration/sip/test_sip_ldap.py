#!/usr/bin/env python3
"""SIP redirects with the users in a real slapd instead of gateway.yaml: the
called user is found by login name, SIP URI user part or extension through
the LDAP directory's resolve filter, and the 302's Contact is the active
copy's SIP service.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/sip/test_sip_ldap.py
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
sys.path.insert(0, HERE)
import gwtest as g  # noqa: E402
import slapd as S  # noqa: E402
import test_sip as T  # noqa: E402


class SipLdap(T.SipCase):
    """The SIP suite's gateway, with directory: {source: ldap} on a real slapd."""

    @classmethod
    def setUpClass(cls):
        users = {}
        for name, (db, uri, ext) in T.USERS.items():
            users[name] = {"password": "secret-" + name, "database": db, "version": 15,
                           "sip_uri": uri, "extension": ext}
        # dave is in the directory but has no mailbox: not a SIP target
        users["dave"] = {"password": "secret-dave", "database": None}
        cls.slapd = S.Slapd.start(users=users)
        cls.addClassCleanup(cls.slapd.stop)
        super().setUpClass()

    @classmethod
    def edit_config(cls, conf):
        conf["directory"] = S.directory_config([cls.slapd.uri], cls.slapd.password_file())

    def test_redirect_per_user_name_uri_and_extension(self):
        for user, server, canonical in (("alice", "mbx1", "alice"), ("bob", "mbx2", "bob"),
                                        ("4001", "mbx1", "alice"), ("4002", "mbx2", "bob"),
                                        ("carol", "mbx1", "carol")):
            contacts = self.sipp_contacts("uac_redirect", user)
            self.assertEqual(len(contacts), 1, (user, contacts))
            u, port, tp = T.contact_target(contacts[1])
            self.assertEqual(port, self.sip_ports[server], (user, contacts))
            self.assertEqual(tp, "udp")
            self.assertEqual(u, canonical)

    def test_unknown_and_mailboxless_users_get_404(self):
        for user in ("nobody", "dave", "*)(uid=*"):
            c = T.Udp(self.udp_port)
            self.addCleanup(c.close)
            c.send(T.request("INVITE", "sip:%s@gw.example" % user, c.port))
            m = c.recv()
            while m.status == 100:
                m = c.recv()
            self.assertEqual(m.status, 404, user)


if __name__ == "__main__":
    g.main()
