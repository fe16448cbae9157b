"""A private OpenLDAP slapd for the integration tests (standard library only).

    s = Slapd.start(users={"alice": {"password": "secret-alice", "database": "db1"}},
                    tls=True, test=self)
    s.uri            ldap://127.0.0.1:PORT
    s.ldaps_uri      ldaps://127.0.0.1:TLSPORT (tls=True; certificate for IP:127.0.0.1)
    s.ca             the certificate to trust (self-signed)
    s.count("SRCH")  operations of a kind in slapd's stats log so far
    s.pause() / s.resume()    SIGSTOP / SIGCONT: accepts (kernel), answers nothing
    s.stop() / s.start_again()  down and back on the same ports and data

Each instance: its own short temp directory, mdb database loaded with
slapadd before start, the core, cosine, inetorgperson and gatewayd schemas
(docs/ldap/gateway.schema), syncprov loaded and on the database, loopback
only, in the foreground (`-d stats`) as our child so that its stats log
(one line per operation: BIND, SRCH, ...) goes to a file we can count.
Stopped by its own PID, also when a test fails (unittest cleanups, and at
interpreter exit through gwtest's registry).

LDAPNOINIT=1 is set for every OpenLDAP tool run here, so /etc/ldap/ldap.conf
and ~/.ldaprc never change what a test does; pass env() to gatewayd too.
"""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest as g  # noqa: E402

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"
GATEWAY_SCHEMA = os.path.join(g.REPO, "docs", "ldap", "gateway.schema")

BASE = "dc=example,dc=test"
PEOPLE = "ou=people," + BASE
SERVICE_DN = "cn=gateway,ou=services," + BASE
SERVICE_PASSWORD = "gateway-service-secret"
ROOT_DN = "cn=admin," + BASE
ROOT_PASSWORD = "admin-secret"


def env():
    """Environment for OpenLDAP tools and gatewayd: no system ldap.conf."""
    return dict(os.environ, LDAPNOINIT="1")


def user_entry(name, u):
    """LDIF of one user. u: password, database, and optionally version,
    site, sip_uri, extension, disabled, extra (list of 'attr: value')."""
    # without a database the entry is a plain inetOrgPerson (gwMailUser
    # requires gwMailboxDatabase)
    lines = ["dn: uid=%s,%s" % (name, PEOPLE), "objectClass: inetOrgPerson"]
    if u.get("database") is not None:
        lines.append("objectClass: gwMailUser")
    lines += [
             "uid: %s" % name, "cn: %s" % name, "sn: %s" % name]
    if u.get("password") is not None:
        lines.append("userPassword: %s" % u["password"])
    if u.get("database") is not None:
        lines.append("gwMailboxDatabase: %s" % u["database"])
    if u.get("version") is not None:
        lines.append("gwMailboxVersion: %d" % u["version"])
    if u.get("site"):
        lines.append("gwSite: %s" % u["site"])
    if u.get("sip_uri"):
        lines.append("gwSipUri: %s" % u["sip_uri"])
    if u.get("extension"):
        lines.append("gwExtension: %s" % u["extension"])
    if u.get("disabled") is not None:
        lines.append("gwAccountDisabled: %s" % ("TRUE" if u["disabled"] else "FALSE"))
    lines.extend(u.get("extra", []))
    return "\n".join(lines) + "\n"


def base_ldif(users):
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n"
           % BASE,
           "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n" % BASE,
           "dn: ou=services,%s\nobjectClass: organizationalUnit\nou: services\n" % BASE,
           "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
           "cn: gateway\nuserPassword: %s\n" % (SERVICE_DN, SERVICE_PASSWORD)]
    for name, u in users.items():
        if u is None:
            continue
        out.append(user_entry(name, u))
    return "\n".join(out)


class Slapd:
    """One slapd instance; see the module docstring."""

    def __init__(self, directory, users, tls, port, tls_port):
        self.dir = directory
        self.users = users
        self.tls = tls
        self.port = port
        self.tls_port = tls_port
        self.proc = None
        self.conf_path = os.path.join(directory, "slapd.conf")
        self.log_path = os.path.join(directory, "slapd.log")
        self.pidfile = os.path.join(directory, "slapd.pid")
        self.uri = "ldap://127.0.0.1:%d" % port
        self.ldaps_uri = "ldaps://127.0.0.1:%d" % tls_port if tls else None
        self.ca = self.cert = self.key = None
        self.base = BASE
        self.people = PEOPLE
        self.bind_dn = SERVICE_DN
        self.bind_password = SERVICE_PASSWORD

    @classmethod
    def start(cls, users=None, tls=False, test=None, timeout=15.0, extra_conf="", stats=True,
              extra_acl=""):
        """Set up and start an instance; returns once it accepts on every port.
        stats=False: no stats log (benchmarks; count() then sees nothing).
        extra_acl: access rules placed before the default ones (first match wins)."""
        td = g.TempDir(prefix="ld", test=test)
        self = cls(td.path, dict(users or {}), tls, g.free_port(),
                   g.free_port() if tls else None)
        self.extra_conf = extra_conf
        self.extra_acl = extra_acl
        self.stats = stats
        self._setup()
        self._launch(timeout)
        g._register(self)
        g._add_cleanup(test, self.stop)
        return self

    def _setup(self):
        d = self.dir
        os.makedirs(os.path.join(d, "db"), exist_ok=True)
        if self.tls:
            self.cert, self.key = g.make_cert(d, "slapd")
            self.ca = self.cert
        tls_conf = ("TLSCertificateFile %s\nTLSCertificateKeyFile %s\n" % (self.cert, self.key)
                    if self.tls else "")
        conf = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {gateway}
modulepath {modules}
moduleload back_mdb
moduleload syncprov
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
loglevel {loglevel}
{tls}
{acl}
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by dn.exact="{service}" read
    by self read
    by * none
{extra}
database mdb
maxsize 67108864
suffix "{base}"
rootdn "{root}"
rootpw {rootpw}
directory {d}/db
index objectClass eq
index uid eq
index gwSipUri,gwExtension eq
index entryCSN,entryUUID eq
overlay syncprov
syncprov-checkpoint 100 10
""".format(schema=SCHEMA_DIR, gateway=GATEWAY_SCHEMA, modules=MODULE_DIR, d=d, tls=tls_conf,
           service=SERVICE_DN, base=BASE, root=ROOT_DN, rootpw=ROOT_PASSWORD,
           extra=self.extra_conf, acl=getattr(self, "extra_acl", ""), loglevel="stats" if self.stats else "none")
        with open(self.conf_path, "w") as f:
            f.write(conf)
        ldif = os.path.join(d, "data.ldif")
        with open(ldif, "w") as f:
            f.write(base_ldif(self.users))
        r = subprocess.run([SLAPADD, "-q", "-f", self.conf_path, "-l", ldif], env=env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("slapadd failed (%d):\n%s" % (r.returncode, r.stdout))

    def _listen_urls(self):
        urls = "ldap://127.0.0.1:%d/" % self.port
        if self.tls:
            urls += " ldaps://127.0.0.1:%d/" % self.tls_port
        return urls

    def _launch(self, timeout):
        log = open(self.log_path, "ab")
        try:
            # -d stats: foreground, our child, the stats log on stderr.
            self.proc = subprocess.Popen(
                [SLAPD, "-f", self.conf_path, "-h", self._listen_urls(), "-d",
                 "stats" if self.stats else "0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env(), start_new_session=True)
        finally:
            log.close()
        try:
            g.wait_port("127.0.0.1", self.port, timeout, proc=self.proc, what="slapd")
            if self.tls:
                g.wait_port("127.0.0.1", self.tls_port, timeout, proc=self.proc, what="slapd")
        except Exception as e:
            self.stop()
            raise RuntimeError("%s\n--- %s ---\n%s" % (e, self.log_path,
                                                       g._tail(self.log_path))) from None

    # -- state and control --

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pause(self):
        """SIGSTOP: the kernel still accepts connections, nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self, timeout=10.0):
        """SIGTERM (after SIGCONT, in case it was paused) and wait."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass

    def start_again(self, timeout=15.0):
        """Start in the same directory on the same ports (after stop())."""
        if self.running():
            return
        self._launch(timeout)

    def _cleanup(self):
        self.stop()

    # -- the stats log --

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ops(self, kind, pattern=None):
        """Stats lines of operations of `kind` (BIND, SRCH, EXT, UNBIND...),
        optionally matching regex `pattern`."""
        rx = re.compile(r"\bconn=\d+ op=\d+ %s\b" % re.escape(kind))
        out = []
        for line in self.log_text().splitlines():
            if rx.search(line) and (pattern is None or re.search(pattern, line)):
                out.append(line)
        return out

    def count(self, kind, pattern=None):
        return len(self.ops(kind, pattern))

    def user_binds(self, user):
        return self.count("BIND", r'dn="uid=%s,%s" method=' % (re.escape(user), re.escape(PEOPLE)))

    def user_searches(self, user):
        return self.count("SRCH", r"filter=\"[^\"]*\(uid=%s\)" % re.escape(user))

    # -- changes --

    def modify(self, ldif):
        """Apply an LDIF change record as the rootdn (ldapmodify)."""
        r = subprocess.run(["ldapmodify", "-x", "-H", self.uri, "-D", ROOT_DN, "-w",
                            ROOT_PASSWORD], input=ldif, text=True, env=env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("ldapmodify failed (%d): %s" % (r.returncode, r.stdout))

    def set_password(self, user, password):
        self.modify("dn: uid=%s,%s\nchangetype: modify\nreplace: userPassword\n"
                    "userPassword: %s\n" % (user, PEOPLE, password))

    def password_file(self, directory=None):
        """A file holding the service password, for bind_password_file."""
        path = os.path.join(directory or self.dir, "bind-password")
        with open(path, "w") as f:
            f.write(SERVICE_PASSWORD + "\n")
        os.chmod(path, 0o600)
        return path

    def __repr__(self):
        return "<Slapd %s>" % self.uri


def directory_config(uris, password_file, ca_file=None, **extra):
    """The directory: section of gateway.yaml for these slapd URIs."""
    ldap = {
        "uris": list(uris),
        "bind_dn": SERVICE_DN,
        "bind_password_file": password_file,
        "base": PEOPLE,
        "timeout": "2s",
        "connect_timeout": "1s",
        "backoff_min": "200ms",
        "backoff_max": "1s",
        "connections": 2,
        "bind_connections": 2,
    }
    if ca_file is not None:
        ldap["ca_file"] = ca_file
    ldap.update(extra)
    return {"source": "ldap", "ldap": ldap}
