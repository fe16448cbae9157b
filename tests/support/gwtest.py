"""Test fixtures for gatewayd's integration tests (Python 3 standard library only).

Everything a test needs to put real servers on loopback and gatewayd in front
of them:

  free_port(), wait_port()      ports that no other test run holds; readiness by
                                connecting, never by sleeping
  TempDir                       a short /tmp directory, mode 0755
  make_cert()                   a self-signed EC certificate for localhost/127.0.0.1
  hash_password()               crypt(3) $6$ hashes via `openssl passwd -6`
  Dovecot                       a private Dovecot (IMAP + POP3, plain and TLS)
  Gateway                       gatewayd on a generated gateway.yaml
  standard_config()             the two-backend configuration the tests share
  LineClient, PopClient         raw clients: lines (and POP3) on a socket, TLS and
                                STARTTLS, a timeout on every read
  main()                        unittest.main() that fails when no test ran

Every process started here is stopped by its own PID (never by name), whatever
way the test ends: by the caller (stop(), a context manager, unittest
addCleanup) or, as a last resort, at interpreter exit.

Environment:
  GW_BUILD_DIR   build tree with gatewayd and plugins/ (default <repo>/build)
  GW_GATEWAYD    path of the gatewayd binary (default $GW_BUILD_DIR/gatewayd)
  GW_KEEP_TMP=1  keep the temporary directories (their paths are printed)
"""

import atexit
import base64
import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Ports handed out by free_port() come from this range, below Linux's
# ephemeral range (32768-60999) so that outgoing connections never take them.
PORT_RANGE = (20000, 32000)
PORT_LOCK_DIR = "/tmp/gwtest-ports"

# Lines of a gatewayd log that fail a test unless expected: the core's
# "error" level and every sanitizer report.
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                     "ThreadSanitizer", "runtime error:", "MemorySanitizer")
ERROR_LINE = re.compile(r"^\S+\s+(error|ERROR)\b|\bERROR\b")


def build_dir():
    return os.path.abspath(os.environ.get("GW_BUILD_DIR") or os.path.join(REPO, "build"))


def gatewayd_path():
    return os.path.abspath(os.environ.get("GW_GATEWAYD") or os.path.join(build_dir(), "gatewayd"))


def plugin_dir():
    return os.path.join(build_dir(), "plugins")


# ---- cleanup registry ------------------------------------------------------

_live = []          # objects with a _cleanup() method, newest last


def _register(obj):
    _live.append(obj)


def _unregister(obj):
    try:
        _live.remove(obj)
    except ValueError:
        pass


@atexit.register
def _cleanup_all():
    # Stop servers first (Dovecot: signal all, then wait), then remove dirs.
    dovecots = [o for o in _live if isinstance(o, Dovecot)]
    if dovecots:
        Dovecot.stop_all(dovecots)
    for obj in reversed(list(_live)):
        try:
            obj._cleanup()
        except Exception as e:  # keep cleaning the rest
            print("gwtest: cleanup of %r failed: %s" % (obj, e), file=sys.stderr)


def _add_cleanup(test, func):
    """Register func with a TestCase (instance or class) if one is given."""
    if test is None:
        return
    if isinstance(test, type) and issubclass(test, unittest.TestCase):
        test.addClassCleanup(func)
    else:
        test.addCleanup(func)


# ---- ports -----------------------------------------------------------------

_port_locks = {}


def free_port(host="127.0.0.1"):
    """A TCP (and UDP) port free on host that no other gwtest process holds.

    Each port handed out is locked with flock() on /tmp/gwtest-ports/PORT for
    the life of this process, so test programs running in parallel never get
    the same port; a crashed process releases its locks with its death.
    """
    os.makedirs(PORT_LOCK_DIR, mode=0o1777, exist_ok=True)
    rnd = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(2000):
        port = rnd.randrange(*PORT_RANGE)
        if port in _port_locks:
            continue
        fd = os.open(os.path.join(PORT_LOCK_DIR, str(port)), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if _port_bindable(host, port):
            _port_locks[port] = fd
            return port
        os.close(fd)
    raise RuntimeError("no free port found in %d-%d" % PORT_RANGE)


def _port_bindable(host, port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def wait_port(host, port, timeout=10.0, proc=None, what=None):
    """Poll until host:port accepts a TCP connection.

    proc: a subprocess.Popen whose early exit aborts the wait.
    Raises RuntimeError on timeout or early exit.
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with status %s before listening on %s:%d"
                               % (what or "process", proc.returncode, host, port))
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError("%s: nothing accepts on %s:%d after %.1fs"
                               % (what or "wait_port", host, port, timeout))
        time.sleep(delay)   # poll interval, not a readiness guess
        delay = min(delay * 2, 0.05)


def wait_until(pred, timeout=10.0, interval=0.01):
    """Poll pred() until it returns a true value (returned) or timeout (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---- temporary directories -------------------------------------------------

class TempDir:
    """A short-pathed directory under /tmp, mode 0755 (Dovecot's auth process,
    running as user dovecot, must be able to read files in it). Removed on
    cleanup unless GW_KEEP_TMP=1."""

    def __init__(self, prefix="gw", test=None):
        self.path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.chmod(self.path, 0o755)
        _register(self)
        _add_cleanup(test, self.cleanup)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def subdir(self, name):
        p = self.join(name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, 0o755)
        return p

    def cleanup(self):
        _unregister(self)
        self._cleanup()

    def _cleanup(self):
        if os.environ.get("GW_KEEP_TMP") == "1":
            print("gwtest: keeping %s" % self.path, file=sys.stderr)
            return
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def __str__(self):
        return self.path


# ---- TLS and passwords -----------------------------------------------------

def make_cert(directory, name="server"):
    """Self-signed EC (P-256) certificate for DNS:localhost, IP:127.0.0.1.
    Returns (cert_path, key_path); both readable by other users (Dovecot)."""
    cert = os.path.join(str(directory), name + ".crt")
    key = os.path.join(str(directory), name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)
    return cert, key


def client_tls_context(cafile):
    """A client SSLContext that trusts exactly the given certificate(s) and
    checks the host name."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    return ctx


_hash_cache = {}


def hash_password(password):
    """A $6$ (sha512crypt) hash of password, from `openssl passwd -6`."""
    h = _hash_cache.get(password)
    if h is None:
        out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                             check=True, stdout=subprocess.PIPE).stdout
        h = out.decode().strip()
        _hash_cache[password] = h
    return h


# ---- processes -------------------------------------------------------------

def _pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    # state is the field after the parenthesised command name
    return stat[stat.rindex(")") + 2] not in "ZX"


def _children(pid):
    """Direct children of pid (from /proc)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] not in "ZX":
            kids.append(int(d))
    return sorted(kids)


def _die_with_parent():
    """A preexec_fn: the child gets SIGTERM when the test process dies, even
    by SIGKILL (a ctest timeout), so no server outlives its test."""
    parent = os.getpid()

    def preexec():
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)      # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:             # the parent died before prctl
            os._exit(1)
    return preexec


def _read_pidfile(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


# ---- Dovecot ---------------------------------------------------------------

def make_message(subject, body, sender="postmaster@example.test", to="user@example.test"):
    """A small RFC 5322 message with CRLF line ends (as POP3 will send it)."""
    lines = ["From: %s" % sender, "To: %s" % to, "Subject: %s" % subject,
             "Date: Mon, 01 Jan 2024 00:00:00 +0000",
             "Message-ID: <%s@gwtest>" % re.sub(r"[^A-Za-z0-9.-]", "-", subject),
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii", ""]
    return ("\r\n".join(lines) + "\r\n").encode() + body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_big_message(size, subject="big message", seed=1):
    """A message of about `size` bytes of random but valid text lines (76
    characters of base64 alphabet; every 50th line starts with '.', to test
    dot-stuffing). Deterministic for a given seed."""
    rnd = random.Random(seed)
    out = [make_message(subject, b"")]
    total = len(out[0])
    n = 0
    while total < size:
        raw = bytes(rnd.getrandbits(8) for _ in range(57))
        line = base64.b64encode(raw)
        if n % 50 == 0:
            line = b"." + line[1:]
        out.append(line + b"\r\n")
        total += len(line) + 2
        n += 1
    return b"".join(out)


class Dovecot:
    """A private Dovecot 2.3 instance: IMAP and POP3, plain and implicit TLS,
    on free loopback ports, with its own config, users and maildirs.

        d = Dovecot.start("mbx1", users={"alice": "secret-alice"},
                          messages={"alice": [make_message(...)]}, test=self)
        d.ports["pop3"], d.ports["pop3s"], d.ports["imap"], d.ports["imaps"]

    The greeting names the instance ("Dovecot mbx1 ready."). Messages are
    delivered as files into each user's Maildir/new, in order, so POP3
    message numbers follow the list.

    foreground=True (the default) runs the master as our child (dovecot -F);
    foreground=False lets it daemonize (for scripts that exit while the
    server runs on); either way it is stopped by the PID in its pidfile.
    """

    def __init__(self, name, directory, users, messages, tls, ports, foreground):
        self.name = name
        self.dir = directory
        self.users = dict(users)
        self.tls = tls
        self.ports = ports
        self.foreground = foreground
        self.proc = None
        self.pid = None
        self.base_dir = os.path.join(directory, "run")
        self.conf_path = os.path.join(directory, "dovecot.conf")
        self.log_path = os.path.join(directory, "dovecot.log")
        self.pidfile = os.path.join(self.base_dir, "master.pid")
        self.greeting = "Dovecot %s ready." % name
        self.cert = self.key = None
        self.delivered = {}   # user -> [bytes] in POP3 order
        self._msg_seq = 0
        self._messages = messages or {}

    # -- construction --

    @classmethod
    def start(cls, name, users=None, messages=None, tls=True, directory=None,
              ports=None, test=None, foreground=True, timeout=15.0):
        """Configure and start an instance; returns once its POP3 and IMAP
        listeners greet. directory: where to put it (default: a new TempDir).
        ports: fixed ports {'pop3':..,'imap':..,...} instead of free ones."""
        if users is None:
            users = {"alice": "secret-alice"}
        if directory is None:
            td = TempDir(prefix="dc-%s-" % name, test=test)
            directory = td.path
        else:
            os.makedirs(directory, exist_ok=True)
            os.chmod(directory, 0o755)
        if ports is None:
            ports = {"pop3": free_port(), "imap": free_port()}
            if tls:
                ports["pop3s"] = free_port()
                ports["imaps"] = free_port()
        self = cls(name, directory, users, messages, tls, dict(ports), foreground)
        self._setup()
        self._launch(timeout)
        _add_cleanup(test, self.stop)
        return self

    def _setup(self):
        d = self.dir
        for sub in ("run", "state", "mail"):
            p = os.path.join(d, sub)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o755)
        if self.tls:
            self.cert, self.key = make_cert(d, "dovecot")
        with open(os.path.join(d, "passwd"), "w") as f:
            for user, pw in self.users.items():
                f.write("%s:{PLAIN}%s::::::\n" % (user, pw))
        os.chmod(os.path.join(d, "passwd"), 0o644)
        for user in self.users:
            self._make_maildir(user)
            for msg in self._messages.get(user, []):
                self.deliver(user, msg)
        with open(self.conf_path, "w") as f:
            f.write(self._config())

    def _config(self):
        d = self.dir
        p = self.ports
        ssl_conf = ("ssl = yes\nssl_cert = <%s\nssl_key = <%s\n" % (self.cert, self.key)
                    if self.tls else "ssl = no\n")
        imaps = ("  inet_listener imaps {\n    port = %d\n    ssl = yes\n  }\n" % p["imaps"]
                 if self.tls and "imaps" in p else "")
        pop3s = ("  inet_listener pop3s {\n    port = %d\n    ssl = yes\n  }\n" % p["pop3s"]
                 if self.tls and "pop3s" in p else "")
        return """# generated by tests/support/gwtest.py
instance_name = gwtest-{name}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
debug_log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap pop3
login_greeting = {greeting}
login_trusted_networks = 127.0.0.0/8
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 100
first_valid_gid = 100
mail_uid = nobody
mail_gid = nogroup
mail_location = maildir:{d}/mail/%u
pop3_uidl_format = %08Xu%08Xv
{ssl_conf}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
# Room for every login process of this instance (silences a doveconf warning).
service auth {{
  client_limit = 4096
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# High-performance login mode: no fork per connection.
service imap-login {{
  service_count = 0
  inet_listener imap {{
    port = {imap}
  }}
{imaps}}}
service pop3-login {{
  service_count = 0
  inet_listener pop3 {{
    port = {pop3}
  }}
{pop3s}}}
service imap-urlauth-login {{
  inet_listener imap-urlauth {{
    port = 0
  }}
}}
# Reuse processes: tests log in hundreds of times.
service pop3 {{
  service_count = 0
  client_limit = 1
}}
service imap {{
  service_count = 0
  client_limit = 1
}}
""".format(name=self.name, d=d, greeting=self.greeting, ssl_conf=ssl_conf,
           imap=p["imap"], pop3=p["pop3"], imaps=imaps, pop3s=pop3s)

    def _make_maildir(self, user):
        md = os.path.join(self.dir, "mail", user)
        for sub in ("", "cur", "new", "tmp"):
            p = os.path.join(md, sub)
            os.makedirs(p, exist_ok=True)
            shutil.chown(p, "nobody", "nogroup")
        return md

    def deliver(self, user, message):
        """Drop message (bytes) into user's Maildir/new as the next message."""
        md = self._make_maildir(user)
        self._msg_seq += 1
        base = "%d.M%dP%dQ%d.gwtest" % (1700000000 + self._msg_seq, self._msg_seq,
                                        os.getpid(), self._msg_seq)
        tmp = os.path.join(md, "tmp", base)
        with open(tmp, "wb") as f:
            f.write(message)
        shutil.chown(tmp, "nobody", "nogroup")
        os.rename(tmp, os.path.join(md, "new", base))
        self.delivered.setdefault(user, []).append(message)

    # -- running --

    def _launch(self, timeout):
        cmd = ["dovecot", "-c", self.conf_path]
        if self.foreground:
            cmd.insert(1, "-F")
        errlog = open(os.path.join(self.dir, "dovecot.stderr"), "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errlog,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent() if self.foreground else None)
        finally:
            errlog.close()
        _register(self)
        try:
            if not self.foreground:
                rc = self.proc.wait(timeout)
                if rc != 0:
                    raise RuntimeError("dovecot %s failed to start (%d):\n%s"
                                       % (self.name, rc, self._stderr()))
            for key in ("pop3", "imap", "pop3s", "imaps"):
                if key in self.ports:
                    wait_port("127.0.0.1", self.ports[key], timeout,
                              proc=self.proc if self.foreground else None,
                              what="dovecot %s %s" % (self.name, key))
            self._check_greeting(timeout)
            self.pid = wait_until(lambda: _read_pidfile(self.pidfile), timeout)
            if self.pid is None:
                raise RuntimeError("dovecot %s wrote no pidfile %s" % (self.name, self.pidfile))
        except Exception as e:
            self._cleanup()
            raise RuntimeError("%s\n--- %s ---\n%s\n%s" % (e, self.log_path, _tail(self.log_path),
                                                          self._stderr())) from None

    def _stderr(self):
        return _tail(os.path.join(self.dir, "dovecot.stderr"))

    def _check_greeting(self, timeout):
        with socket.create_connection(("127.0.0.1", self.ports["pop3"]), timeout=timeout) as s:
            line = s.makefile("rb").readline()
        if self.greeting.encode() not in line:
            raise RuntimeError("dovecot %s greeted %r" % (self.name, line))

    def _signal(self, sig):
        pid = self.pid or _read_pidfile(self.pidfile) or (self.proc.pid if self.proc else None)
        if pid is None or not _pid_alive(pid):
            return None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return None
        return pid

    def _wait(self, pid, timeout):
        if self.proc is not None and self.foreground and self.proc.pid == pid:
            try:
                self.proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_until(lambda: not _pid_alive(pid), timeout) is not None

    def stop(self, timeout=15.0):
        """SIGTERM the master (by pidfile) and wait for it to exit."""
        Dovecot.stop_all([self], timeout)

    @staticmethod
    def stop_all(instances, timeout=15.0):
        """Signal every instance first, then wait (each master sleeps ~1 s on
        the way out)."""
        pending = []
        for d in instances:
            pid = d._signal(signal.SIGTERM)
            pending.append((d, pid))
        for d, pid in pending:
            if pid is not None and not d._wait(pid, timeout):
                d._kill_group()
            d._reap()
            _unregister(d)

    def kill(self):
        """Backend down, at once: SIGKILL the master and all its processes.
        Connections to its ports are refused from now on."""
        self._kill_group()
        self._reap()
        _unregister(self)
        # A killed master leaves its pidfile; remove it so a restart in this
        # directory is possible.
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass

    def _kill_group(self):
        pid = self.pid or (self.proc.pid if self.proc else None)
        if pid is None:
            return
        for sig_target in (lambda: os.killpg(pid, signal.SIGKILL),
                           lambda: os.kill(pid, signal.SIGKILL)):
            try:
                sig_target()
            except (ProcessLookupError, PermissionError):
                pass

    def _reap(self):
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def pause(self):
        """Hang: SIGSTOP every process of the instance (connections are still
        accepted by the kernel, but nothing answers)."""
        os.killpg(self.pid, signal.SIGSTOP)

    def resume(self):
        os.killpg(self.pid, signal.SIGCONT)

    def restart(self, timeout=15.0):
        """Start again in the same directory on the same ports (after stop or kill)."""
        self.proc = None
        self.pid = None
        self._launch(timeout)

    def _cleanup(self):
        if self.pid or self.proc:
            try:
                self.resume()
            except (OSError, TypeError):
                pass
            Dovecot.stop_all([self])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "<Dovecot %s ports=%s>" % (self.name, self.ports)


# ---- gatewayd --------------------------------------------------------------

def to_yaml(config):
    """gateway.yaml text for a config dict: JSON is YAML 1.2 flow style, which
    libyaml reads as it is."""
    return json.dumps(config, indent=1) + "\n"


class Gateway:
    """gatewayd on a generated gateway.yaml, its stderr captured as the log.

        gw = Gateway.start(config, test=self)
        ...
        gw.check_log()        # fails on unexpected errors or sanitizer reports
        gw.stop()
    """

    def __init__(self, directory):
        self.dir = directory
        self.conf_path = os.path.join(directory, "gateway.yaml")
        self.log_path = os.path.join(directory, "gatewayd.log")
        self.proc = None
        self.pid = None
        self.returncode = None

    @classmethod
    def start(cls, config, directory=None, test=None, wait=True, args=(), env=None,
              timeout=20.0):
        """Write config (a dict, emitted as JSON, or YAML text) and run
        `gatewayd -c FILE`. Returns once every TCP listen address accepts."""
        if directory is None:
            directory = TempDir(prefix="gw-", test=test).path
        self = cls(directory)
        with open(self.conf_path, "w") as f:
            f.write(config if isinstance(config, str) else to_yaml(config))
        binary = gatewayd_path()
        if not os.access(binary, os.X_OK):
            raise RuntimeError("gatewayd not built: %s (set GW_BUILD_DIR or GW_GATEWAYD)" % binary)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([binary, "-c", self.conf_path] + list(args),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent(),
                                         env=dict(os.environ, **(env or {})), cwd=directory)
        finally:
            log.close()
        self.pid = self.proc.pid
        _register(self)
        _add_cleanup(test, self.stop)
        if wait and isinstance(config, dict):
            try:
                for host, port in listen_addresses(config):
                    wait_port(host, port, timeout, proc=self.proc, what="gatewayd")
                # The master binds the sockets before forking, so they accept
                # (and queue datagrams) before any worker serves them: wait
                # for every worker's "serving" line as well.
                workers = config.get("workers", 1)
                if workers == "auto":
                    workers = os.cpu_count() or 1
                if config.get("log_level", "info") in ("info", "debug") and wait_until(
                        lambda: self.log_text().count(" serving ") >= int(workers),
                        timeout, 0.02) is None:
                    raise RuntimeError("gatewayd workers did not start serving in %.0f s" % timeout)
            except Exception as e:
                self.stop()
                raise RuntimeError("%s\n--- %s ---\n%s" % (e, self.log_path, _tail(self.log_path))) from None
        return self

    # -- state --

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The master and its live children (workers)."""
        if not self.running():
            return []
        return [self.pid] + _children(self.pid)

    def worker_pids(self):
        return _children(self.pid) if self.running() else []

    def open_fds(self, pids=None):
        """Open file descriptors of the given processes (default: master and
        workers), summed."""
        total = 0
        for pid in pids if pids is not None else self.pids():
            total += len(os.listdir("/proc/%d/fd" % pid))
        return total

    def rss_kb(self, pids=None):
        """Resident set size in KiB of the given processes (default: master
        and workers), summed."""
        total = 0
        for pid in pids if pids is not None else self.pids():
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def unexpected_log_lines(self, allow=(), since=0):
        """Log lines (from byte offset `since`) that are errors or sanitizer
        reports and match none of the regexes in allow. Sanitizer reports are
        never allowed."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        allow = [re.compile(a) for a in allow]
        bad = []
        report = 0      # lines left of a sanitizer report being copied whole
        for line in text.splitlines():
            if re.match(r"==\d+==(ERROR|WARNING): \w*Sanitizer", line) or "runtime error:" in line:
                report = 120
            if report > 0:
                bad.append(line)
                report = 0 if line.startswith("SUMMARY:") else report - 1
            elif any(m in line for m in SANITIZER_MARKERS):
                bad.append(line)
            elif ERROR_LINE.search(line) and not any(a.search(line) for a in allow):
                bad.append(line)
        return bad

    def check_log(self, test=None, allow=(), since=0):
        """Fail (test.fail or AssertionError) if the log holds unexpected
        error lines or any sanitizer report."""
        bad = self.unexpected_log_lines(allow, since)
        if bad:
            msg = "gatewayd log %s has unexpected errors:\n  %s" % (self.log_path, "\n  ".join(bad[:200]))
            if test is not None:
                test.fail(msg)
            raise AssertionError(msg)

    # -- control --

    def signal(self, sig):
        if self.running():
            os.kill(self.pid, sig)

    def stop(self, timeout=20.0):
        """SIGTERM the master, wait up to timeout, then SIGKILL its process
        group. Returns the exit status (negative: killed by that signal)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print("gwtest: gatewayd %d ignored SIGTERM for %.0fs; killing" % (self.pid, timeout),
                      file=sys.stderr)
        self._kill_group()
        self.returncode = self.proc.wait()
        self.proc = None
        _unregister(self)
        return self.returncode

    def kill(self):
        self._kill_group()
        if self.proc is not None:
            self.returncode = self.proc.wait()
            self.proc = None
        _unregister(self)

    def _kill_group(self):
        # Workers left behind by a dead master must not outlive the test.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, TypeError):
            pass

    def _cleanup(self):
        self.stop(timeout=10.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def check_config(path, timeout=30.0):
    """Run `gatewayd -t -c path`; returns the CompletedProcess (text output)."""
    return subprocess.run([gatewayd_path(), "-t", "-c", path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


Gateway.check_config = staticmethod(check_config)


def listen_addresses(config):
    """(host, port) of every TCP listener in a config dict."""
    out = []
    for proto in (config.get("protocols") or {}).values():
        for l in proto.get("listen") or []:
            if l.get("transport", "tcp") == "udp":
                continue
            addr = l["address"]
            host, _, port = addr.rpartition(":")
            host = host.strip("[]")
            if host in ("*", ""):
                host = "127.0.0.1"
            elif host == "::":
                host = "::1"
            out.append((host, int(port)))
    return out


# ---- the standard two-backend setup ----------------------------------------

# Users of the standard setup: password, database.
STANDARD_USERS = {
    "alice": ("secret-alice", "db1"),
    "bob": ("secret-bob", "db2"),
    "carol": ("secret-carol", "db1"),
}


def welcome_message(user, backend):
    """The message every user finds first on every backend: its subject names
    the backend, so a test sees which one it reached."""
    return make_message("welcome %s on %s" % (user, backend),
                        b"Hello %s, this mailbox lives on %s.\n" % (user.encode(), backend.encode()),
                        to="%s@example.test" % user)


def start_backends(names=("mbx1", "mbx2"), users=None, extra_messages=None, tls=True, test=None,
                   directory=None, ports=None, foreground=True):
    """Start one Dovecot per name, every user on every backend, each mailbox
    holding welcome_message(user, backend) and then extra_messages[user].
    Returns {name: Dovecot}. ports: {name: {...}} for fixed ports."""
    users = users if users is not None else {u: pw for u, (pw, _) in STANDARD_USERS.items()}
    extra_messages = extra_messages or {}
    out = {}
    try:
        for name in names:
            msgs = {u: [welcome_message(u, name)] + list(extra_messages.get(u, [])) for u in users}
            out[name] = Dovecot.start(
                name, users=users, messages=msgs, tls=tls, test=test, foreground=foreground,
                directory=os.path.join(directory, name) if directory else None,
                ports=(ports or {}).get(name))
    except Exception:
        Dovecot.stop_all(list(out.values()))
        raise
    return out


def listener(port, tls="none", cert=None, allow_plaintext=None, **extra):
    """One protocols.<p>.listen entry."""
    l = {"address": "127.0.0.1:%d" % port, "tls": tls}
    if cert is not None:
        l["certificates"] = [{"cert": cert[0], "key": cert[1]}]
    if allow_plaintext is not None:
        l["allow_plaintext"] = allow_plaintext
    l.update(extra)
    return l


def standard_config(backends, directory, users=None, databases=None, pop=True,
                    pop_options=None, extra_servers=None, backend_tls="none", **top):
    """The configuration the integration tests share.

    backends: {name: Dovecot}; users: {user: (password, database)} (default
    STANDARD_USERS); databases: {db: [copies]} (default db1 [mbx1, mbx2],
    db2 [mbx2, mbx1]). With pop=True a POP3 protocol with three listeners:
      plain     tls none, allow_plaintext
      starttls  tls starttls (plaintext login only after STLS)
      tls       implicit TLS
    Returns (config dict, info) where info has 'ports' {'plain','starttls',
    'tls'}, 'cert' and 'key' (the gateway's certificate, also its CA file).
    """
    users = users if users is not None else STANDARD_USERS
    if databases is None:
        databases = {"db1": ["mbx1", "mbx2"], "db2": ["mbx2", "mbx1"]}
    directory = str(directory)
    cert = make_cert(directory, "gateway")
    servers = {}
    for name, d in backends.items():
        if backend_tls == "implicit":
            pop_svc = {"port": d.ports["pop3s"], "tls": "implicit"}
            imap_svc = {"port": d.ports["imaps"], "tls": "implicit"}
        else:
            pop_svc = {"port": d.ports["pop3"], "tls": backend_tls}
            imap_svc = {"port": d.ports["imap"], "tls": backend_tls}
        servers[name] = {"address": "127.0.0.1", "site": "site-a",
                         "services": {"pop": pop_svc, "imap": imap_svc}}
    servers.update(extra_servers or {})
    config = {
        "workers": 1,
        "plugin_dir": plugin_dir(),
        "log_level": "info",
        "shutdown_timeout": "5s",
        "auth": {"failure_delay": "0s", "cache_ttl": "5m", "negative_ttl": "30s",
                 "cache_size": 1000},
        "upstream": {"connect_timeout": "2s", "retries": 1, "verify": True},
        "directory": {"source": "static", "users": {
            u: {"password": hash_password(pw), "database": db, "version": 15}
            for u, (pw, db) in users.items()}},
        "locator": {"source": "static", "servers": servers,
                    "databases": {db: {"copies": list(c)} for db, c in databases.items()}},
        "sites": {"site-a": {}},
        "protocols": {},
    }
    # Backend certificates: trust every backend's self-signed certificate.
    cas = [d.cert for d in backends.values() if getattr(d, "cert", None)]
    if cas:
        bundle = os.path.join(directory, "backend-ca.pem")
        with open(bundle, "w") as out:
            for c in cas:
                with open(c) as f:
                    out.write(f.read())
        config["upstream"]["ca_file"] = bundle
    info = {"cert": cert[0], "key": cert[1], "ports": {}}
    if pop:
        ports = {"plain": free_port(), "starttls": free_port(), "tls": free_port()}
        info["ports"] = ports
        pop_conf = {
            "listen": [
                listener(ports["plain"], "none", allow_plaintext=True),
                listener(ports["starttls"], "starttls", cert=cert),
                listener(ports["tls"], "implicit", cert=cert),
            ],
            "login_timeout": "10s",
            "backend_timeout": "2s",
            "idle_timeout": "60s",
            "xclient": True,
        }
        pop_conf.update(pop_options or {})
        config["protocols"]["pop"] = pop_conf
    config.update(top)
    return config, info


# ---- raw clients -------------------------------------------------------------

class LineClient:
    """Bytes on a TCP connection to the gateway, for what the standard
    library's clients will not send (pipelining, literals of our choice,
    abuse, exact bytes) in any line-based protocol: POP3, IMAP, HTTP, SIP.

        with LineClient(port, tls=ctx) as c:   # connected; greeting line read
            c.cmd("NOOP")                        # -> b"+OK ..."

    Every read is bounded by the socket timeout (timeout, default TIMEOUT)
    and raises EOFError when the gateway closes the connection; close() or
    leaving the with block closes it. tls: an SSLContext or a CA file, for
    implicit TLS; starttls() wraps the connection later. greeting=False for
    protocols where the client speaks first. Subclasses add the protocol.
    """

    TIMEOUT = 10.0
    RECV_SIZE = 262144

    def __init__(self, port, tls=None, timeout=None, source=None, greeting=True,
                 host="127.0.0.1", server_hostname="localhost"):
        self.sock = socket.create_connection(
            (host, port), timeout=self.TIMEOUT if timeout is None else timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.greeting = None
        try:
            if tls is not None:
                self.starttls(tls, server_hostname)
            if greeting:
                self.greeting = self.line()
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def starttls(self, tls, server_hostname="localhost"):
        """Wrap the connection in TLS (tls: an SSLContext or a CA file). No
        byte may be waiting unread: it would have come before TLS."""
        if self.buf:
            raise AssertionError("bytes received before TLS: %r" % self.buf[:200])
        ctx = client_tls_context(tls) if isinstance(tls, str) else tls
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self):
        data = self.sock.recv(self.RECV_SIZE)
        if not data:
            raise EOFError("connection closed by the gateway")
        self.buf += data

    def read_until(self, marker):
        """Bytes up to and including marker."""
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                break
            start = max(0, len(self.buf) - len(marker) + 1)
            self._fill()
        i += len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        """One line without its line end."""
        return self.read_until(b"\n")[:-1].rstrip(b"\r")

    def cmd(self, line):
        """Send one line (str or bytes, CRLF added); return the next line."""
        self.send(line + ("\r\n" if isinstance(line, str) else b"\r\n"))
        return self.line()

    def _read_to_close(self, timeout):
        """Read into buf until the gateway closes the connection: "eof",
        "reset" (connection reset), "tls" (a TLS error), or None when it is
        still open after timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(self.RECV_SIZE)
                if not data:
                    return "eof"
                self.buf += data
        except ConnectionResetError:
            return "reset"
        except ssl.SSLError:
            return "tls"
        except socket.timeout:
            return None

    def closed(self, timeout=5.0, reset=True):
        """True when the gateway closes the connection (EOF, or a reset if
        reset is true) within timeout; what it sent before stays in buf."""
        how = self._read_to_close(timeout)
        return how == "eof" or (reset and how == "reset")

    def wait_closed(self, timeout=5.0):
        """The bytes received until the gateway closed the connection (EOF,
        reset or TLS error); AssertionError if it is still open after timeout."""
        how = self._read_to_close(timeout)
        got, self.buf = self.buf, b""
        if how is None:
            raise AssertionError("connection still open after %.1fs (received %r)"
                                 % (timeout, got[:200]))
        return got


class PopClient(LineClient):
    """A raw POP3 client: LineClient plus multi-line answers and logins."""

    def login(self, user, password=None):
        """USER/PASS; the answer to PASS (or to USER if refused). password
        defaults to the user's in STANDARD_USERS."""
        r = self.cmd("USER " + user)
        if not r.startswith(b"+OK"):
            return r
        return self.cmd("PASS " + (STANDARD_USERS[user][0] if password is None else password))

    def multiline(self):
        """The body of a multi-line response, dot-unstuffed, lines joined with
        CRLF and ending in CRLF (exactly as the message was delivered)."""
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return b""
        body = self.read_until(b"\r\n.\r\n")[:-3]
        return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in body.split(b"\r\n"))

    def capa(self):
        """CAPA as {NAME: [args]}."""
        st = self.cmd("CAPA")
        if not st.startswith(b"+OK"):
            raise AssertionError("CAPA answered %r" % st)
        caps = {}
        for l in self.multiline().split(b"\r\n"):
            if l:
                words = l.decode().split()
                caps[words[0].upper()] = words[1:]
        return caps

    def backend(self):
        """The backend this logged-in session reached, from the Subject of
        message 1 (welcome_message: "welcome USER on BACKEND")."""
        st = self.cmd("TOP 1 0")
        if not st.startswith(b"+OK"):
            raise AssertionError("TOP 1 0 answered %r" % st)
        m = re.search(rb"^Subject: welcome \S+ on (\S+)\r?$", self.multiline(), re.M)
        if not m:
            raise AssertionError("message 1 has no welcome subject")
        return m.group(1).decode()


# ---- running tests ---------------------------------------------------------

def main():
    """unittest.main() that also fails when no test ran. Test classes print
    the servers' logs themselves when a test fails (see test_pop.py)."""
    # SIGTERM (timeout(1), a CI runner) ends the run through atexit cleanup.
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    prog = unittest.main(exit=False, verbosity=2)
    ok = prog.result.wasSuccessful()
    if prog.result.testsRun == 0:
        print("gwtest: no test ran", file=sys.stderr)
        ok = False
    sys.exit(0 if ok else 1)
