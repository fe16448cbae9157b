"""What the benchmark drivers in bench/ share: prerequisites (Debian
packages, a gatewayd build, the C load generators), servers run in the
foreground and stopped by PID, CPU accounting from /proc, the interleaved
rounds of a side-by-side measurement and the report of their medians.

The drivers are scripts in directories that are not packages, run from any
working directory, so each loads this file by its path:

    spec = importlib.util.spec_from_file_location("benchlib", <bench>/benchlib.py)

It puts tests/support on sys.path: gwtest (and slapd) import after it.
"""

import argparse
import atexit
import base64
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import gwtest  # noqa: E402  (the integration tests' Dovecot/gatewayd fixtures)

NGINX_MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on; the driver says why and exits 2."""


# ---- prerequisites ---------------------------------------------------------

def apt_install(need, allow_install):
    """Installs the Debian packages need with apt-get (as root only; once
    more after an apt-get update when the package lists are stale)."""
    if not need:
        return
    if not allow_install:
        raise BenchError("missing packages: %s (run without --no-install as root)" % " ".join(need))
    if os.geteuid() != 0:
        raise BenchError("missing packages: %s; install them as root: apt-get install %s"
                         % (" ".join(need), " ".join(need)))
    log("installing %s" % " ".join(need))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + need
    if subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdin=subprocess.DEVNULL,
                       timeout=600, check=True)
        subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, timeout=900, check=True)


def mail_packages(dovecot_service, nginx, haproxy=False):
    """The Debian packages a mail benchmark misses: Dovecot with
    dovecot_service ("pop3", "imap"), nginx's mail proxy when nginx, HAProxy
    when haproxy, and openssl (gatewayd's static directory takes its password
    hashes)."""
    need = []
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/" + dovecot_service):
        need += ["dovecot-core", "dovecot-%sd" % dovecot_service]
    if nginx:
        if not shutil.which("nginx"):
            need.append("nginx")
        if not os.path.exists(NGINX_MAIL_MODULE):
            need.append("libnginx-mod-mail")
    if not shutil.which("openssl"):
        need.append("openssl")
    if haproxy and not shutil.which("haproxy"):
        need.append("haproxy")
    return need


def cmake_cache(build_dir, key):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def ensure_gatewayd(plugin, targets=("gatewayd",)):
    """gatewayd and its plugin <plugin>.so from $GW_BUILD_DIR (gwtest's
    build/ by default), built there (Release; the cmake targets given, all
    when none) when missing. Warns about builds whose numbers mean little.
    Returns (binary, CMAKE_BUILD_TYPE)."""
    binary = gwtest.gatewayd_path()
    plugin_path = os.path.join(gwtest.plugin_dir(), plugin + ".so")
    build = gwtest.build_dir()
    if not (os.access(binary, os.X_OK) and os.path.exists(plugin_path)):
        log("gatewayd or the %s plugin missing; building %s (Release)" % (plugin, build))
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       timeout=600)
        only = [a for t in targets for a in ("--target", t)]
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)] + only,
                       check=True, stdin=subprocess.DEVNULL, timeout=1800)
    if not (os.access(binary, os.X_OK) and os.path.exists(plugin_path)):
        raise BenchError("no gatewayd at %s with %s" % (binary, plugin_path))
    btype = cmake_cache(build, "CMAKE_BUILD_TYPE") or "?"
    if cmake_cache(build, "GW_SANITIZE") in ("ON", "TRUE", "1"):
        log("WARNING: %s is a sanitizer build (GW_SANITIZE=ON): numbers are meaningless" % build)
    elif btype not in ("Release", "RelWithDebInfo"):
        log("WARNING: %s is a %s build; use -DCMAKE_BUILD_TYPE=Release" % (build, btype))
    return binary, btype


def gatewayd_version(binary, btype):
    """"<first line of gatewayd -V> (<build type> build)", for the report."""
    r = subprocess.run([binary, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    first = r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
    return "%s (%s build)" % (first, btype)


def ensure_loadgen(src, tmp):
    """The load generator built from src (bench/<dir>/<name>.c with
    bench/loadgen.c): $<NAME> or <build>/bench/<name> (the bench/ cmake
    target) when not older than its sources, else compiled into tmp."""
    name = os.path.splitext(os.path.basename(src))[0]
    sources = [src, os.path.join(BENCH, "loadgen.c")]
    newest = max(os.path.getmtime(p) for p in sources + [os.path.join(BENCH, "loadgen.h")])
    for cand in (os.environ.get(name.upper()),
                 os.path.join(gwtest.build_dir(), "bench", name)):
        if cand and os.access(cand, os.X_OK) and os.path.getmtime(cand) >= newest:
            return cand
    out = os.path.join(tmp, name)
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-I", BENCH,
                    "-o", out] + sources, check=True, stdin=subprocess.DEVNULL, timeout=120)
    return out


def prepare(stack, prefix, loadgen_src, plugin, with_gatewayd, build_targets=("gatewayd",)):
    """What a mail benchmark needs before it starts servers: a temporary
    directory (removed when stack closes), the load generator built from
    loadgen_src and, with_gatewayd, gatewayd with plugin (ensure_gatewayd).
    Returns (TempDir, load generator, gatewayd binary, build type), the last
    two None without gatewayd."""
    td = gwtest.TempDir(prefix=prefix)
    stack.callback(td.cleanup)
    tool = ensure_loadgen(loadgen_src, td.path)
    gw_binary = gw_btype = None
    if with_gatewayd:
        gw_binary, gw_btype = ensure_gatewayd(plugin, build_targets)
    return td, tool, gw_binary, gw_btype


def parse_size(s):
    """argparse type: "10MiB", "64k", "4096" -> bytes."""
    m = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("bad size: %s" % s)
    mult = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[(m.group(2) or " ")[0].upper().strip()]
    return int(m.group(1)) * mult


def mail_arg_parser(doc, targets, tests, rounds_help, users_help):
    """The argument parser of a mail driver (doc: its __doc__), with the
    options every one has first: --targets, --tests, --rounds, --seconds,
    --warmup, --conns, --users. The driver adds its own after them, then
    add_round_options(), its checks, and add_output_options() last."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=doc.split("\n", 2)[2])
    ap.add_argument("--targets", default=",".join(targets),
                    help="comma-separated subset of %s (default: all)" % ",".join(targets))
    ap.add_argument("--tests", default=",".join(tests),
                    help="comma-separated subset of %s (default: all)" % ",".join(tests))
    ap.add_argument("--rounds", type=int, default=5, help=rounds_help)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of one measurement (5)")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up per target, seconds (2)")
    ap.add_argument("--conns", type=int, default=50, help="login: concurrent clients (50)")
    ap.add_argument("--users", type=int, default=50, help=users_help)
    return ap


def add_round_options(ap, retries, quiet_wait=False):
    """How Rounds deals with other work on the machine (--max-other-cpu,
    --quiet-wait when the driver waits for quiet, --retries), and
    --gw-log-level."""
    ap.add_argument("--max-other-cpu", type=float, default=0.3,
                    help="a round during which other processes used more cores than this "
                         "is repeated (0.3)")
    if quiet_wait:
        ap.add_argument("--quiet-wait", type=float, default=20.0,
                        help="before each round wait up to this long for other work to stop (20)")
    ap.add_argument("--retries", type=int, default=retries,
                    help="repeats of a disturbed round before it is kept anyway (%d)" % retries)
    ap.add_argument("--gw-log-level", default="warn", help="gatewayd log_level (warn)")


def add_output_options(ap):
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")


def choices(ap, option, value, allowed):
    """The comma-separated list value of option, each one of allowed (in
    the order given); a usage error otherwise."""
    picked = [v for v in value.split(",") if v]
    if not picked or any(v not in allowed for v in picked):
        ap.error("%s: choose from %s" % (option, ",".join(allowed)))
    return picked


def cpu_model(default="?"):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def machine_info():
    """The machine and Dovecot of a mail benchmark, for its report."""
    dv = subprocess.run(["dovecot", "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": os.uname().release,
            "dovecot": dv, "loadavg_before": os.getloadavg()}


def warn_if_busy(info):
    if info["loadavg_before"][0] > 0.5 * (info["nproc"] or 1):
        log("WARNING: load average %.2f before the run: the machine is busy, numbers will be noisy"
            % info["loadavg_before"][0])


# ---- running a driver ------------------------------------------------------

def guarded(budget, body):
    """Runs body(stack) under a hard time limit of budget seconds and
    returns its exit status; 2 when it raises BenchError (or runs over), 130
    on Ctrl-C or SIGTERM. Whatever body registers on stack (contextlib's
    ExitStack: a server's stop, a directory's cleanup) runs afterwards, last
    registered first, also on failure."""

    def on_alarm(signum, frame):
        raise BenchError("the benchmark ran over its time budget (%ds)" % budget)

    def on_term(signum, frame):
        raise KeyboardInterrupt()   # unwinds like Ctrl-C: every server stopped

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(budget))
    stack = contextlib.ExitStack()
    try:
        return body(stack)
    except BenchError as e:
        print("bench: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        stack.close()


def write_json(path, data):
    """The results as JSON in path, when one was asked for."""
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)


# ---- servers ---------------------------------------------------------------

class Server:
    """A server in the foreground, in a process group of its own, with its
    working directory and its output (the file output, <name>.stderr by
    default) in directory, waited for on its TCP ports ({port: what}),
    stopped by PID: SIGTERM, then SIGKILL for what is left of its group,
    never anything else."""

    def __init__(self, name, argv, directory, ports=None, output=None, preexec_fn=None):
        self.name = name
        self.argv = argv
        self.dir = directory
        self.ports = ports or {}
        self.output = output or name + ".stderr"
        self.preexec_fn = preexec_fn
        self.proc = None

    def start(self, timeout=15.0):
        out = open(os.path.join(self.dir, self.output), "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=self.dir, preexec_fn=self.preexec_fn)
        finally:
            out.close()
        atexit.register(self.stop)
        for port, what in self.ports.items():
            gwtest.wait_port("127.0.0.1", port, timeout, proc=self.proc, what=what)
        return self

    def pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid] + gwtest._children(self.proc.pid)

    def stop(self, timeout=10.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)   # nginx: fast shutdown
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)     # leftovers of this group only
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.proc = None


def nginx_conf_head(d, name, module=None, connections=4096, nofile=None):
    """An nginx.conf up to the inside of its http block: one worker in the
    foreground, its pid file, error log and temporary files in d (named
    after name), no access log."""
    top = "# generated by bench/benchlib.py\n"
    if module:
        top += "load_module %s;\n" % module
    top += "daemon off;\nmaster_process on;\nworker_processes 1;\n"
    if nofile:
        top += "worker_rlimit_nofile %d;\n" % nofile
    return top + """pid {d}/{name}.pid;
error_log {d}/{name}.error.log warn;
events {{
    worker_connections {conns};
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/{name}-body;
    proxy_temp_path {d}/tmp/{name}-proxy;
    fastcgi_temp_path {d}/tmp/{name}-fastcgi;
    uwsgi_temp_path {d}/tmp/{name}-uwsgi;
    scgi_temp_path {d}/tmp/{name}-scgi;
""".format(d=d, name=name, conns=connections)


def nginx_server(d, name, conf_text, ports):
    """An nginx (not started) with the configuration conf_text written to
    d/<name>.conf."""
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    conf = os.path.join(d, name + ".conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    return Server(name, ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, name + ".error.log")],
                  d, ports)


def nginx_version():
    r = subprocess.run(["nginx", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    return r.stdout.strip().replace("nginx version: ", "")


def nginx_mail(directory, protocol, backend_port, proxy_buffer=None, connections=4096,
               nofile=None):
    """nginx (Debian's, with its dynamic mail module) as a POP3 or IMAP
    proxy in front of one Dovecot, not started yet; auth_http asks a
    location of the same nginx, which sends every user to that Dovecot.
    Its .port is the proxy's."""
    port = gwtest.free_port()
    auth_port = gwtest.free_port()
    pb = "    proxy_buffer %s;\n" % proxy_buffer if proxy_buffer else ""
    conf = nginx_conf_head(directory, "nginx", NGINX_MAIL_MODULE, connections, nofile) + """\
    server {{
        listen 127.0.0.1:{auth_port};
        location = /auth {{
            add_header Auth-Status OK;
            add_header Auth-Server 127.0.0.1;
            add_header Auth-Port {backend};
            return 204;
        }}
    }}
}}
mail {{
    server_name bench.test;
    auth_http 127.0.0.1:{auth_port}/auth;
    {protocol}_auth plain;
{pb}    server {{
        listen 127.0.0.1:{port};
        protocol {protocol};
        proxy on;
    }}
}}
""".format(auth_port=auth_port, backend=backend_port, protocol=protocol, pb=pb, port=port)
    server = nginx_server(directory, "nginx", conf, {port: "nginx", auth_port: "nginx auth"})
    server.port = port
    return server


def haproxy_tcp(directory, backend_port):
    """HAProxy in mode tcp in front of backend_port, not started yet: it
    speaks no protocol, authenticates nobody and chooses no backend, it only
    copies bytes between two sockets -- the least any proxy hop can cost, as
    a reference for what the mail floors ask. One thread, no splice (HAProxy's
    default). Its .port is the proxy's."""
    port = gwtest.free_port()
    cfg = os.path.join(directory, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("# generated by bench/benchlib.py\n"
                "global\n    nbthread 1\n    maxconn 5000\n"
                "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n"
                "    timeout server 60s\n"
                "frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\n"
                "backend be\n    server backend 127.0.0.1:%d\n" % (port, backend_port))
    server = Server("haproxy", ["haproxy", "-f", cfg, "-db"], directory, {port: "haproxy"})
    server.port = port
    return server


def haproxy_version():
    r = subprocess.run(["haproxy", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"


# ---- gatewayd and Dovecot --------------------------------------------------

MAIL_AUTH = {"failure_delay": "0s", "cache_ttl": "30m", "negative_ttl": "30s",
             "cache_size": 10000}
MAIL_UPSTREAM = {"connect_timeout": "5s", "retries": 0, "verify": False}


def gateway_config(protocol, port, backend_port, users, log_level="warn", server="mbx1",
                   auth=MAIL_AUTH, upstream=MAIL_UPSTREAM, locator=None, **protocol_options):
    """gatewayd for one benchmark: one worker, a static directory of users
    ({name: password}, all in database db1, on the one server) and one
    plaintext listener on 127.0.0.1:port for protocol, whose backend is
    127.0.0.1:backend_port."""
    listen = [{"address": "127.0.0.1:%d" % port, "tls": "none", "allow_plaintext": True}]
    return {
        "workers": 1,
        "plugin_dir": gwtest.plugin_dir(),
        "log_level": log_level,
        "shutdown_timeout": "2s",
        "auth": dict(auth),
        "upstream": dict(upstream),
        "directory": {"source": "static", "users": {
            u: {"password": gwtest.hash_password(pw), "database": "db1", "version": 15}
            for u, pw in users.items()}},
        "locator": dict({"source": "static",
                         "servers": {server: {"address": "127.0.0.1", "site": "site-a",
                                              "services": {protocol: {"port": backend_port,
                                                                      "tls": "none"}}}},
                         "databases": {"db1": {"copies": [server]}}}, **(locator or {})),
        "sites": {"site-a": {}},
        "protocols": {protocol: dict({"listen": listen}, **protocol_options)},
    }


def big_message(size):
    """A text message of about size bytes: 76-character base64 lines, every
    64th line starting with '.' (dot-stuffed on the wire)."""
    head = gwtest.make_message("big message for the RETR benchmark", b"")
    raw = os.urandom(size * 3 // 4 + 64)
    b64 = base64.b64encode(raw)
    lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    for i in range(0, len(lines), 64):
        lines[i] = b"." + lines[i][1:]
    body = b"\r\n".join(lines)[: max(0, size - len(head) - 2)]
    body = body[: body.rfind(b"\r\n")] if b"\r\n" in body else body
    return head + body + b"\r\n"


def mailboxes(nusers, nbig, big):
    """Users and messages of a mail benchmark: user0.. (password pw<N>, one
    small message each) and big0.. (bigpw<N>, the message big each; none
    when big is None). Returns (users {name: password}, messages)."""
    users = {"user%d" % i: "pw%d" % i for i in range(nusers)}
    users.update({"big%d" % i: "bigpw%d" % i for i in range(nbig)})
    small = gwtest.make_message("small message", b"Hello.\n")
    messages = {"user%d" % i: [small] for i in range(nusers)}
    if big is not None:
        messages.update({"big%d" % i: [big] for i in range(nbig)})
    return users, messages


class PooledDovecot(gwtest.Dovecot):
    """gwtest's Dovecot with the bench tuning: the login service in
    Dovecot 2.3's high-performance mode as documented (service_count = 0,
    process_min_avail = cores, a larger vsz_limit), and the process pool of
    the mail service shaped for the test at hand: pool_for() in a subclass
    gives its settings, reshape() restarts Dovecot (same directory, same
    ports) with them."""

    service = None          # "pop3", "imap"
    login_extra = ""        # more settings of the login service
    conf_tail = ""          # appended to dovecot.conf
    pool = {}               # the mail service's settings, in dovecot.conf's order

    @classmethod
    def pool_for(cls, test, clients):
        raise NotImplementedError

    def _config(self):
        conf = super()._config()
        cores = os.cpu_count() or 2
        conf, n1 = re.subn(r"(service %s-login \{\n  service_count = 0\n)" % self.service,
                           r"\g<1>  process_min_avail = %d\n  vsz_limit = 1G\n" % cores
                           + self.login_extra, conf)
        pool = "".join("  %s = %s\n" % kv for kv in self.pool.items())
        conf, n2 = re.subn(r"(service %s \{\n  service_count = 0\n)  client_limit = 1\n"
                           % self.service, lambda m: m.group(1) + pool, conf)
        if n1 != 1 or n2 != 1:
            raise BenchError("gwtest's dovecot.conf changed shape; update PooledDovecot")
        return conf + self.conf_tail

    @classmethod
    def shape_for(cls, test, clients):
        """The pool of the next start."""
        cls.pool = cls.pool_for(test, clients)

    def reshape(self, test, clients):
        """Restart (same directory, same ports) with the pool for test."""
        old = self.pool
        self.shape_for(test, clients)
        self.pool = type(self).pool
        if self.pool == old:
            return
        self.stop()
        with open(self.conf_path, "w") as f:
            f.write(self._config())
        self.restart()

    def pgid(self):
        """The process group of the master and its children (it changes
        with every restart)."""
        return self.pid or self.proc.pid

    @classmethod
    def start_with(cls, directory, users, messages):
        log("starting Dovecot (%d users)" % len(users))
        return cls.start("bench", users=users, messages=messages, tls=False,
                         directory=directory, foreground=True)


# ---- CPU accounting --------------------------------------------------------

def _stat_fields(pid):
    """/proc/PID/stat after the command name: fields[0] is the state."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu(pids):
    """utime+stime in seconds of the given processes."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def proc_cpu_reaped(pid):
    """utime+stime+cutime+cstime in seconds of one process: its own CPU and
    that of the children it has waited for."""
    try:
        return sum(int(x) for x in _stat_fields(pid)[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def busy_cores_counter():
    """Busy CPU time of the whole machine so far, in seconds (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
    return busy / os.sysconf("SC_CLK_TCK")


def group_pids(pgid):
    """Live processes of a process group (Dovecot: master and its children)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = _stat_fields(int(d))
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            out.append(int(d))
    return out


# ---- rounds ----------------------------------------------------------------

class Rounds:
    """A side-by-side measurement with a load generator (popload, imapload)
    against the targets added with add_target(), to one Dovecot (through
    their proxies, or directly): a warm-up per target, then --rounds
    rounds of --seconds, the targets interleaved and their order rotated
    every round; a round during which other work used more than
    --max-other-cpu cores is repeated up to --retries times.

    A subclass names its tool and throughput test (tool_name, bulk) and may
    refine targets(), verify_args(), check_warmup(), before_attempt(),
    after_discard(), proxy_cpu_meter() and after_load()."""

    tool_name = "load generator"
    name_width = 8          # of the target column in the log
    bulk = None             # "retr", "fetch": the load generator's throughput option
    rate_labels = {}        # rate test -> the label of its line in the report

    def __init__(self, args, tool, dovecot_pgid):
        self.args = args
        self.tool = tool
        self.ports = {}                   # target -> port, in the report's order
        self.proxy_pids = {}              # target -> callable returning pids
        self.dovecot_pgid = dovecot_pgid  # callable: Dovecot restarts between tests
        self.results = {}                 # test -> target -> [once()]
        self.noisy = 0            # rounds kept although other work ran meanwhile
        self.waited = 0.0         # seconds spent waiting for a quiet machine

    def add_target(self, name, port, pids=None):
        """Measure target name on port; pids, a callable, gives the
        processes of its proxy (none: the load goes to Dovecot directly)."""
        self.ports[name] = port
        if pids is not None:
            self.proxy_pids[name] = pids

    def targets(self, test):
        return list(self.ports)

    def cmd(self, target, test, seconds, verify=False):
        """The load generator's command line for one run: login cycles of
        --conns clients as user<N>/pw<N>, or the throughput test (--retr or
        --fetch of message 1, after self.bulk) by --<bulk>-conns clients
        logged in as big<N>/bigpw<N> (the users of mailboxes())."""
        a = self.args
        cmd = [self.tool, "--port", str(self.ports[target]), "--duration", "%g" % seconds,
               "--timeout", "10"]
        if test == "login":
            return cmd + ["--conns", str(a.conns), "--user-prefix", "user", "--pass-prefix", "pw",
                          "--nusers", str(a.users)]
        n = str(getattr(a, self.bulk + "_conns"))
        return cmd + ["--conns", n, "--user-prefix", "big", "--pass-prefix", "bigpw",
                      "--nusers", n, "--" + self.bulk, "1"] + self.verify_args(verify)

    def verify_args(self, verify):
        """More options of the throughput test when verify: the load
        generator checks what it receives."""
        return []

    @staticmethod
    def value(test, res):
        return res["per_sec"] if test == "login" else res["mb_per_sec"]

    def loadgen_preexec(self):
        """Run in the load generator's child before exec (None: nothing)."""
        return None

    def proxy_cpu_meter(self, target, proxy):
        """A callable: CPU seconds the target's proxy has used so far."""
        pids = proxy() if proxy else []
        return lambda: proc_cpu(pids)

    def after_load(self, target, proxy):
        """After the load generator exited, before the CPU is read."""

    def once(self, target, test, seconds, verify=False):
        """One run of the load generator: its output's key=value pairs,
        plus the cores (CPU seconds per second) used meanwhile by the load
        generator, the proxy, Dovecot and anything else on the machine."""
        cmd = self.cmd(target, test, seconds, verify)
        proxy = self.proxy_pids.get(target)
        proxy_cpu_now = self.proxy_cpu_meter(target, proxy)
        pgid = self.dovecot_pgid()
        dpids = group_pids(pgid)
        p0, d0 = proxy_cpu_now(), proc_cpu(dpids)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0 = busy_cores_counter()
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=seconds + 60,
                               preexec_fn=self.loadgen_preexec())
        except subprocess.TimeoutExpired:
            raise BenchError("%s against %s hung (%s)" % (self.tool_name, target, " ".join(cmd)))
        self.after_load(target, proxy)
        wall = time.monotonic() - t0
        b1 = busy_cores_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p1 = proxy_cpu_now()
        d1 = proc_cpu(group_pids(pgid) or dpids)
        vals = dict(kv.split("=", 1) for kv in r.stdout.split())
        if not vals:
            raise BenchError("%s against %s printed nothing (status %d):\n%s"
                             % (self.tool_name, target, r.returncode, r.stderr))
        res = {}
        for k, v in vals.items():
            try:
                res[k] = float(v)
            except ValueError:
                res[k] = v          # imapload's literal_hash
        res["proxy_cpu"] = (p1 - p0) / wall if proxy else 0.0
        res["dovecot_cpu"] = (d1 - d0) / wall
        res["load_cpu"] = ((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) / wall
        # CPU used by anything else on the machine (other proxies are idle;
        # softirq time of the loopback traffic lands here too).
        res["other_cpu"] = max(0.0, (b1 - b0) / wall - res["load_cpu"] - res["proxy_cpu"]
                               - res["dovecot_cpu"])
        res["stderr"] = r.stderr.strip()
        return res

    def wait_quiet(self):
        """Before a measurement: wait (up to --quiet-wait seconds) for a
        second in which the machine is idle but for other work below
        --max-other-cpu (our servers are idle between measurements)."""
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            b0 = busy_cores_counter()
            time.sleep(0.5)
            busy = (busy_cores_counter() - b0) / 0.5
            if busy <= self.args.max_other_cpu or time.monotonic() >= deadline:
                return busy
            self.waited += 0.5

    def check_warmup(self, test, target, res):
        """Raises BenchError when the warm-up's answer was wrong; returns
        what to add to its log line."""
        return ""

    def warmup(self, test):
        for t in self.targets(test):
            res = self.once(t, test, self.args.warmup, verify=True)
            if res["errors"] or self.value(test, res) <= 0:
                raise BenchError("warm-up %s against %s failed: %s\n%s"
                                 % (test, t, res, res["stderr"]))
            note = self.check_warmup(test, t, res)
            log("warm-up %-5s %-*s %8.1f%s" % (test, self.name_width, t, self.value(test, res),
                                                note))

    def before_attempt(self):
        """Before each measurement of a round."""

    def after_discard(self):
        """After a measurement discarded as disturbed."""

    def rounds(self, test):
        targets = self.targets(test)
        per = self.results.setdefault(test, {})
        for t in targets:
            per.setdefault(t, [])
        for rnd in range(self.args.rounds):
            k = rnd % len(targets)
            for t in targets[k:] + targets[:k]:
                res = self.attempts(rnd, test, t)
                per[t].append(res)
                err = " errors=%d" % res["errors"] if res["errors"] else ""
                extra = ("p99 %.1f ms" % res["p99_ms"]) if test == "login" else ""
                log("round %d/%d %-5s %-*s %8.1f  cpu: load %.2f proxy %.2f dovecot %.2f other %.2f %s%s"
                    % (rnd + 1, self.args.rounds, test, self.name_width, t, self.value(test, res),
                       res["load_cpu"], res["proxy_cpu"], res["dovecot_cpu"], res["other_cpu"],
                       extra, err))
                if res["errors"] and res["stderr"]:
                    log("  " + res["stderr"].replace("\n", "\n  "))

    def attempts(self, rnd, test, t):
        """One measurement of a round, repeated while other work disturbs it."""
        for attempt in range(self.args.retries + 1):
            self.before_attempt()
            res = self.once(t, test, self.args.seconds)
            if res["other_cpu"] <= self.args.max_other_cpu:
                return res
            if attempt < self.args.retries:
                log("round %d/%d %-5s %-*s %8.1f  discarded: %.2f cores busy with other work"
                    % (rnd + 1, self.args.rounds, test, self.name_width, t,
                       self.value(test, res), res["other_cpu"]))
                self.after_discard()
        self.noisy += 1
        return res

    def summary(self):
        """The report's lines and the JSON results of the rate tests (those
        in rate_labels that ran): rate_table(), then rate_details()."""
        lines = []
        table = {}
        for test, label in self.rate_labels.items():
            line, per = self.rate_table(test, label)
            if per is None:
                continue
            table[test] = per
            lines.append(line)
            lines += self.rate_details(test, per)
        return lines, table

    def rate_details(self, test, per):
        """What a driver adds about a rate test: more to each target's
        entry in per, and lines for the report after the rates (returned)."""
        return []

    def rate_table(self, test, label):
        """The medians of a rate test: the line "<label> direct 1333  gatewayd
        966 (0.72x) ..." (logins/s whole, MB/s to 0.1) and per target its
        entry of the JSON results (median, ratio to direct, rounds, errors,
        medians of the CPU used). (None, None) when the test did not run."""
        fmt = "%.0f" if test == "login" else "%.1f"
        per = self.results.get(test, {})
        if not any(per.values()):
            return None, None
        med = {t: statistics.median(self.value(test, r) for r in rs)
               for t, rs in per.items() if rs}
        base = med.get("direct")
        parts = [label]
        table = {}
        for t in self.targets(test):
            if t not in med:
                continue
            s = "%s %s" % (t, fmt % med[t])
            ratio = med[t] / base if base and t != "direct" else None
            if ratio is not None:
                s += " (%.2fx)" % ratio
            parts.append(s)
            rs = per[t]
            table[t] = {
                "median": med[t], "ratio": ratio,
                "rounds": [self.value(test, r) for r in rs],
                "errors": sum(int(r["errors"]) for r in rs),
                "proxy_cpu": statistics.median(r["proxy_cpu"] for r in rs),
                "dovecot_cpu": statistics.median(r["dovecot_cpu"] for r in rs),
                "load_cpu": statistics.median(r["load_cpu"] for r in rs),
                "other_cpu": statistics.median(r["other_cpu"] for r in rs),
            }
        return "  ".join(parts), table


def latency_medians(rs):
    """The medians of a login test's p50 and p99 over its rounds."""
    return {"p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs)}


# ---- report ----------------------------------------------------------------

def print_round_errors(table):
    for test, per in table.items():
        for t, v in per.items():
            if v["errors"]:
                print("  %s %s: %d errors during the rounds" % (test, t, v["errors"]))


def finish_report(args, run, gw, data):
    """The end of a mail benchmark's report: how noisy the run was, what
    gatewayd logged that it should not have, and the JSON file."""
    if run.waited:
        log("waited %.0f s in all for other work to calm down" % run.waited)
    if run.noisy:
        print("WARNING: %d rounds ran while other work used more than %.2f cores; "
              "the numbers are noisy" % (run.noisy, args.max_other_cpu))
    if gw is not None:
        bad = gw.unexpected_log_lines()
        if bad:
            print("gatewayd logged errors:\n  " + "\n  ".join(bad[:10]))
    write_json(args.json, data)
