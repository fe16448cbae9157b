#!/usr/bin/env python3
"""The POP3 integration tests (tests/integration/pop/test_pop.py) again,
with the users in a real slapd instead of gateway.yaml.

The classes here subclass the POP3 ones and only swap the directory:
configure() starts a slapd holding the same users (password, database)
and points directory: at it. Every POP3 behaviour — routing, bad
passwords, unknown users, SASL, TLS, failover between backends, leaks —
must be the same with either source.

Run: GW_BUILD_DIR=build /usr/bin/python3 tests/integration/ldap/test_ldap_pop.py [-k NAME]
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
sys.path.insert(0, os.path.join(HERE, "..", "pop"))
import gwtest as g  # noqa: E402
import slapd as S  # noqa: E402
import test_pop as tp  # noqa: E402


def use_ldap(cls, config):
    """Replace the static users of config with a slapd holding them."""
    users = {u: {"password": pw, "database": db, "version": 15}
             for u, (pw, db) in cls.USERS.items()}
    s = S.Slapd.start(users=users)
    cls.slapd = s
    config["directory"] = S.directory_config([s.uri], s.password_file())
    # the POP3 tests count on immediate answers to failed logins
    config["auth"]["penalty"] = {"after": 0, "lockout_user": 0, "lockout_ip": 0}


class LdapPopTest(tp.PopTest):

    @classmethod
    def configure(cls, config, info, backends):
        super().configure(config, info, backends)
        use_ldap(cls, config)

    def test_zz_directory_was_asked(self):
        """These logins really went through slapd."""
        self.assertGreaterEqual(self.slapd.user_binds("alice"), 1)
        self.assertGreaterEqual(self.slapd.user_searches("nosuchuser"), 1)


class LdapPopBackendFailureTest(tp.PopBackendFailureTest):

    @classmethod
    def configure(cls, config, info, backends):
        super().configure(config, info, backends)
        use_ldap(cls, config)


class LdapPopBackendTlsTest(tp.PopBackendTlsTest):

    @classmethod
    def configure(cls, config, info, backends):
        super().configure(config, info, backends)
        use_ldap(cls, config)


if __name__ == "__main__":
    g.main()
