#!/usr/bin/env python3
"""IMAP benchmark: direct Dovecot vs gatewayd vs nginx's mail proxy vs Perdition.

One Dovecot serves every target:
  direct     imapload -> Dovecot
  gatewayd   imapload -> gatewayd (workers: 1) -> Dovecot
  nginx      imapload -> nginx mail proxy (worker_processes 1, default
                         proxy_buffer) -> Dovecot (auth_http answered by a
                         location of the same nginx)
  nginx-64k  the same nginx configuration with `proxy_buffer 64k`
             (a second nginx; FETCH only)
  perdition  imapload -> perdition.imap4 (a process per session; its
                         regex popmap sends every user to the Dovecot)

Three measurements:
  login   IMAP login cycles per second (connect, LOGIN, SELECT INBOX, LOGOUT)
          at --conns concurrent clients (50), users user0..user49;
          direct, gatewayd, nginx, perdition
  fetch   FETCH BODY.PEEK[] throughput in MB/s (10^6 bytes) of one large
          message (--fetch-size, 10 MiB) fetched again and again by
          --fetch-conns clients (4), each logged in once, users big0..big3;
          direct, gatewayd, nginx, nginx-64k, perdition
  idle    proxy memory per idle logged-in session: --sessions (5000) clients
          log in, SELECT INBOX and stay; the proxy's PSS (all its processes,
          /proc/PID/smaps_rollup) after minus before, divided by the sessions;
          gatewayd, nginx (each round on a freshly started proxy)

login and fetch: --rounds (5) rounds of --seconds (5) each, targets
interleaved and their order rotated every round; idle: --idle-rounds (3).
Medians and the ratios to direct (idle: gatewayd / nginx) are printed.

Everything runs on 127.0.0.1 on free ports in a temporary directory and is
torn down at the end, also on failure, Ctrl-C or SIGTERM. Missing Debian
packages (dovecot-imapd, nginx, libnginx-mod-mail, perdition) are installed
with apt-get when running as root; a missing gatewayd is built (Release) in
$GW_BUILD_DIR.

  bench/imap/run.py                                   # everything, 10-15 minutes on 2 cores
  bench/imap/run.py --tests login --targets direct,gatewayd --rounds 3 --seconds 3

See bench/README.md and docs/performance.md.
"""

import argparse
import importlib.util
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import gwtest  # noqa: E402  (the shared Dovecot/gatewayd fixtures)


def _load_pop_bench():
    """bench/pop/run.py as a module: its nginx wrapper, CPU accounting and
    helpers are reused here."""
    spec = importlib.util.spec_from_file_location("bench_pop_run",
                                                  os.path.join(REPO, "bench", "pop", "run.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


popbench = _load_pop_bench()
log = popbench.log
BenchError = popbench.BenchError
proc_cpu = popbench.proc_cpu
busy_cores_counter = popbench.busy_cores_counter
group_pids = popbench.group_pids
cmake_cache = popbench.cmake_cache
parse_size = popbench.parse_size

NGINX_MAIL_MODULE = popbench.NGINX_MAIL_MODULE
PERDITION = "/usr/sbin/perdition.imap4"
PERDITION_REGEX_MAP = "/usr/lib/x86_64-linux-gnu/libperditiondb_posix_regex.so.0"
TARGETS = ("direct", "gatewayd", "nginx", "nginx-64k", "perdition")
TESTS = ("login", "fetch", "idle")
TEST_TARGETS = {
    "login": ("direct", "gatewayd", "nginx", "perdition"),
    "fetch": ("direct", "gatewayd", "nginx", "nginx-64k", "perdition"),
    "idle": ("gatewayd", "nginx"),
}


# ---- prerequisites ---------------------------------------------------------

def ensure_packages(targets, allow_install):
    need = []
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/imap"):
        need += ["dovecot-core", "dovecot-imapd"]
    if "nginx" in targets or "nginx-64k" in targets:
        if not shutil.which("nginx"):
            need.append("nginx")
        if not os.path.exists(NGINX_MAIL_MODULE):
            need.append("libnginx-mod-mail")
    if "perdition" in targets and not (os.access(PERDITION, os.X_OK)
                                       and os.path.exists(PERDITION_REGEX_MAP)):
        need.append("perdition")
    if not shutil.which("openssl"):
        need.append("openssl")
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


def ensure_gatewayd():
    binary = gwtest.gatewayd_path()
    plugin = os.path.join(gwtest.plugin_dir(), "imap.so")
    build = gwtest.build_dir()
    if not (os.access(binary, os.X_OK) and os.path.exists(plugin)):
        log("gatewayd or the imap plugin missing; building %s (Release)" % build)
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       timeout=600)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)],
                       check=True, stdin=subprocess.DEVNULL, timeout=1800)
    if not (os.access(binary, os.X_OK) and os.path.exists(plugin)):
        raise BenchError("no gatewayd at %s with %s" % (binary, plugin))
    btype = cmake_cache(build, "CMAKE_BUILD_TYPE") or "?"
    if cmake_cache(build, "GW_SANITIZE") in ("ON", "TRUE", "1"):
        log("WARNING: %s is a sanitizer build (GW_SANITIZE=ON): numbers are meaningless" % build)
    elif btype not in ("Release", "RelWithDebInfo"):
        log("WARNING: %s is a %s build; use -DCMAKE_BUILD_TYPE=Release" % (build, btype))
    return binary, btype


def ensure_imapload(tmp):
    """imapload from the build tree (bench/ target) or compiled here (with
    bench/loadgen.c)."""
    bench = os.path.dirname(HERE)
    srcs = [os.path.join(HERE, "imapload.c"), os.path.join(bench, "loadgen.c")]
    newest = max(os.path.getmtime(p) for p in srcs + [os.path.join(bench, "loadgen.h")])
    for cand in (os.environ.get("IMAPLOAD"),
                 os.path.join(gwtest.build_dir(), "bench", "imapload")):
        if cand and os.access(cand, os.X_OK) and os.path.getmtime(cand) >= newest:
            return cand
    out = os.path.join(tmp, "imapload")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-I", bench,
                    "-o", out] + srcs, check=True, stdin=subprocess.DEVNULL, timeout=120)
    return out


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need)) if hard != resource.RLIM_INFINITY else max(soft, need)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


# ---- servers ---------------------------------------------------------------

class BenchDovecot(gwtest.Dovecot):
    """gwtest's Dovecot with the bench tuning: imap-login in high-performance
    mode (service_count = 0, process_min_avail = cores, vsz_limit = 1G), no
    per-user connection limit, and the imap process pool shaped for the test
    at hand (set_imap(); restarts Dovecot in the same directory and ports):

      login  client_limit = 10, clients/10 + 2 processes pre-spawned (as in
             bench/pop: with one idle process per client every new session
             wakes them all on the shared socket)
      fetch  client_limit = 1, one pre-spawned process per client, so that
             concurrent FETCHes run in parallel
      idle   client_limit = 100, vsz_limit = 2G: thousands of idle sessions
             in a few dozen processes instead of one process each
    """

    imap_client_limit = 1
    imap_min_avail = 0
    imap_process_limit = 100
    imap_vsz = "256M"

    def _config(self):
        conf = super()._config()
        cores = os.cpu_count() or 2
        conf, n1 = re.subn(r"(service imap-login \{\n  service_count = 0\n)",
                           r"\g<1>  process_min_avail = %d\n  vsz_limit = 1G\n"
                           r"  client_limit = 4000\n" % cores, conf)
        conf, n2 = re.subn(r"(service imap \{\n  service_count = 0\n)  client_limit = 1\n",
                           r"\g<1>  client_limit = %d\n  process_min_avail = %d\n"
                           r"  process_limit = %d\n  vsz_limit = %s\n"
                           % (self.imap_client_limit, self.imap_min_avail,
                              self.imap_process_limit, self.imap_vsz), conf)
        if n1 != 1 or n2 != 1:
            raise BenchError("gwtest's dovecot.conf changed shape; update BenchDovecot")
        return conf + """# bench/imap/run.py
protocol imap {
  mail_max_userip_connections = 100000
}
"""

    @classmethod
    def shape_for(cls, test, clients):
        """Class defaults for the next start."""
        if test == "login":
            cls.imap_client_limit = 10
            cls.imap_min_avail = clients // 10 + 2
            cls.imap_process_limit = max(100, cls.imap_min_avail + 20)
            cls.imap_vsz = "256M"
        elif test == "fetch":
            cls.imap_client_limit = 1
            cls.imap_min_avail = clients + 2
            cls.imap_process_limit = max(100, cls.imap_min_avail + 20)
            cls.imap_vsz = "256M"
        else:
            cls.imap_client_limit = 100
            cls.imap_min_avail = 0
            cls.imap_process_limit = clients // 100 + 50
            cls.imap_vsz = "2G"

    def set_imap(self, test, clients):
        """Restart (same directory, same ports) with the imap pool for test."""
        old = (self.imap_client_limit, self.imap_min_avail, self.imap_process_limit)
        BenchDovecot.shape_for(test, clients)
        for k in ("imap_client_limit", "imap_min_avail", "imap_process_limit", "imap_vsz"):
            setattr(self, k, getattr(BenchDovecot, k))
        if old == (self.imap_client_limit, self.imap_min_avail, self.imap_process_limit):
            return
        self.stop()
        with open(self.conf_path, "w") as f:
            f.write(self._config())
        self.restart()


class NginxImap(popbench.Nginx):
    """bench/pop's nginx wrapper with an IMAP mail server block; room for the
    idle test's sessions (worker_connections, worker_rlimit_nofile)."""

    def __init__(self, directory, backend_port, proxy_buffer=None, connections=4096):
        super().__init__(directory, backend_port, proxy_buffer)
        pb = "    proxy_buffer %s;\n" % proxy_buffer if proxy_buffer else ""
        with open(self.conf, "w") as f:
            f.write("""# generated by bench/imap/run.py
load_module {module};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections {conns};
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
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
    imap_auth plain;
{pb}    server {{
        listen 127.0.0.1:{port};
        protocol imap;
        proxy on;
    }}
}}
""".format(module=NGINX_MAIL_MODULE, d=directory, auth_port=self.auth_port,
                   backend=backend_port, port=self.port, pb=pb, conns=connections,
                   nofile=2 * connections + 100))


class Perdition:
    """perdition.imap4 in the foreground (-F +: log to stderr, no detaching),
    listening on 127.0.0.1 only, its regex popmap (posix_regex map library)
    mapping every user to the one Dovecot. It forks a child per session."""

    def __init__(self, directory, backend_port):
        self.dir = directory
        self.port = gwtest.free_port()
        self.proc = None
        self.map = os.path.join(directory, "popmap.re")
        with open(self.map, "w") as f:
            f.write("# generated by bench/imap/run.py: every user to the one Dovecot\n"
                    "^.*$: 127.0.0.1:%d\n" % backend_port)
        os.chmod(self.map, 0o644)

    def start(self, timeout=15.0):
        cmd = [PERDITION, "-f", "/dev/null", "--no_daemon", "-F", "+", "-q",
               "-b", "127.0.0.1:%d" % self.port, "-n", "--pid_file", "",
               "-M", PERDITION_REGEX_MAP, "-m", self.map,
               "--connect_relog", "0"]
        out = open(os.path.join(self.dir, "perdition.stderr"), "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=self._limit_fds)
        finally:
            out.close()
        gwtest.wait_port("127.0.0.1", self.port, timeout, proc=self.proc, what="perdition")
        return self

    @staticmethod
    def _limit_fds():
        # Each session's child closes every descriptor up to the soft
        # RLIMIT_NOFILE, one close() each, when it ends (and it waits with
        # select(), so descriptors above 1024 are of no use to it): run it
        # with the usual 1024 of a system service, not this shell's limit.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))

    def pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid] + gwtest._children(self.proc.pid)

    def stop(self, timeout=10.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)     # its session children
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.proc = None

    @staticmethod
    def version():
        r = subprocess.run([PERDITION, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        m = re.search(r"perdition version (\S+)", r.stdout)
        return m.group(1) if m else "?"


def gateway_config(args, users, backend_port, port):
    gw_users = {u: {"password": gwtest.hash_password(pw), "database": "db1", "version": 15}
                for u, pw in users.items()}
    return {
        "workers": 1,
        "plugin_dir": gwtest.plugin_dir(),
        "log_level": args.gw_log_level,
        "shutdown_timeout": "2s",
        "auth": {"failure_delay": "0s", "cache_ttl": "30m", "negative_ttl": "30s",
                 "cache_size": 10000},
        "upstream": {"connect_timeout": "5s", "retries": 0, "verify": False},
        "directory": {"source": "static", "users": gw_users},
        "locator": {"source": "static",
                    "servers": {"mbx1": {"address": "127.0.0.1", "site": "site-a",
                                         "services": {"imap": {"port": backend_port,
                                                               "tls": "none"}}}},
                    "databases": {"db1": {"copies": ["mbx1"]}}},
        "sites": {"site-a": {}},
        "protocols": {"imap": {
            "listen": [{"address": "127.0.0.1:%d" % port, "tls": "none",
                        "allow_plaintext": True}],
            "login_timeout": "60s", "idle_timeout": "31m"}},
    }


# ---- measuring -------------------------------------------------------------

def proc_cpu_reaped(pid):
    """utime+stime+cutime+cstime in seconds of one process: its own CPU and
    that of the children it has waited for."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def smaps_kib(pids):
    """(PSS, RSS) in KiB of the given processes, summed (smaps_rollup)."""
    pss = rss = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            pass
    return pss, rss


class Run:
    def __init__(self, args, imapload, ports, proxy_pids, dovecot_pgid):
        self.args = args
        self.imapload = imapload
        self.ports = ports                # target -> port
        self.proxy_pids = proxy_pids      # target -> callable returning pids
        self.dovecot_pgid = dovecot_pgid  # callable: Dovecot restarts between tests
        self.results = {test: {} for test in TESTS}
        self.literal = None               # (size, FNV-1a hash) of the big message
        self.noisy = 0

    def targets(self, test):
        return [t for t in TEST_TARGETS[test] if t in self.ports]

    def cmd(self, target, test, seconds, verify=False):
        a = self.args
        cmd = [self.imapload, "--port", str(self.ports[target]), "--duration", "%g" % seconds,
               "--timeout", "10"]
        if test == "login":
            cmd += ["--conns", str(a.conns), "--user-prefix", "user", "--pass-prefix", "pw",
                    "--nusers", str(a.users)]
        else:
            cmd += ["--conns", str(a.fetch_conns), "--user-prefix", "big",
                    "--pass-prefix", "bigpw", "--nusers", str(a.fetch_conns), "--fetch", "1"]
            if verify:
                cmd.append("--hash")
        return cmd

    def once(self, target, test, seconds, verify=False):
        cmd = self.cmd(target, test, seconds, verify)
        proxy = self.proxy_pids.get(target)
        ppids = proxy() if proxy else []
        if target == "perdition" and ppids:
            # A process per session: the master's own CPU, that of the
            # sessions it reaped (cutime, cstime) and the live sessions'.
            master = ppids[0]

            def proxy_cpu_now():
                return proc_cpu_reaped(master) + proc_cpu(proxy()[1:])
        else:
            def proxy_cpu_now():
                return proc_cpu(ppids)
        pgid = self.dovecot_pgid()
        dpids = group_pids(pgid)
        p0, d0 = proxy_cpu_now(), proc_cpu(dpids)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0 = busy_cores_counter()
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            raise BenchError("imapload against %s hung (%s)" % (target, " ".join(cmd)))
        wall = time.monotonic() - t0
        if target == "perdition" and ppids:
            # Its session children exit after imapload closed: let the
            # master reap them, so that their CPU is in its cutime/cstime.
            gwtest.wait_until(lambda: len(proxy()) <= 1, 2.0, 0.02)
            wall = time.monotonic() - t0
        b1 = busy_cores_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p1 = proxy_cpu_now()
        d1 = proc_cpu(group_pids(pgid) or dpids)
        vals = dict(kv.split("=", 1) for kv in r.stdout.split())
        if not vals:
            raise BenchError("imapload against %s printed nothing (status %d):\n%s"
                             % (target, r.returncode, r.stderr))
        res = {}
        for k, v in vals.items():
            try:
                res[k] = float(v)
            except ValueError:
                res[k] = v
        res["proxy_cpu"] = (p1 - p0) / wall if proxy else 0.0
        res["dovecot_cpu"] = (d1 - d0) / wall
        res["load_cpu"] = ((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) / wall
        res["other_cpu"] = max(0.0, (b1 - b0) / wall - res["load_cpu"] - res["proxy_cpu"]
                               - res["dovecot_cpu"])
        res["stderr"] = r.stderr.strip()
        return res

    @staticmethod
    def value(test, res):
        return res["per_sec"] if test == "login" else res["mb_per_sec"]

    def warmup(self, test):
        for t in self.targets(test):
            res = self.once(t, test, self.args.warmup, verify=(test == "fetch"))
            if res["errors"] or self.value(test, res) <= 0:
                raise BenchError("warm-up %s against %s failed: %s\n%s"
                                 % (test, t, res, res["stderr"]))
            if test == "fetch" and self.literal:
                got = (int(res["literal"]), res.get("literal_hash"))
                if got != self.literal:
                    raise BenchError("FETCH through %s returned a literal of %d octets (hash %s), "
                                     "expected %d (hash %s)"
                                     % (t, got[0], got[1], self.literal[0], self.literal[1]))
            log("warm-up %-5s %-9s %8.1f%s" % (test, t, self.value(test, res),
                                               "  (message byte-exact)" if test == "fetch" else ""))

    def rounds(self, test):
        targets = self.targets(test)
        for t in targets:
            self.results[test][t] = []
        for rnd in range(self.args.rounds):
            k = rnd % len(targets)
            order = targets[k:] + targets[:k]
            for t in order:
                for attempt in range(self.args.retries + 1):
                    res = self.once(t, test, self.args.seconds)
                    if res["other_cpu"] <= self.args.max_other_cpu:
                        break
                    if attempt < self.args.retries:
                        log("round %d/%d %-5s %-9s %8.1f  discarded: %.2f cores busy with other work"
                            % (rnd + 1, self.args.rounds, test, t, self.value(test, res),
                               res["other_cpu"]))
                        time.sleep(min(self.args.seconds, 3))
                else:
                    self.noisy += 1
                self.results[test][t].append(res)
                err = " errors=%d" % res["errors"] if res["errors"] else ""
                extra = ("p99 %.1f ms" % res["p99_ms"]) if test == "login" else ""
                log("round %d/%d %-5s %-9s %8.1f  cpu: load %.2f proxy %.2f dovecot %.2f other %.2f %s%s"
                    % (rnd + 1, self.args.rounds, test, t, self.value(test, res),
                       res["load_cpu"], res["proxy_cpu"], res["dovecot_cpu"], res["other_cpu"],
                       extra, err))
                if res["errors"] and res["stderr"]:
                    log("  " + res["stderr"].replace("\n", "\n  "))

    # -- idle sessions --

    def idle_once(self, target, restart):
        """Restart the proxy, warm it with a few sessions, then hold
        --sessions logged-in idle sessions; returns the memory figures."""
        a = self.args
        restart()
        port = self.ports[target]
        base = [self.imapload, "--port", str(port), "--user-prefix", "user", "--pass-prefix",
                "pw", "--nusers", str(a.users), "--hold", "--timeout", "30"]
        # Warm-up: the first sessions fill lazily allocated state (credential
        # cache, pools) that is not per session.
        r = subprocess.run(base + ["--conns", str(min(a.users, 50)), "--duration", "1",
                                   "--ramp", "20"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        if "held_at_end=%d" % min(a.users, 50) not in r.stdout:
            raise BenchError("idle warm-up through %s failed: %s %s" % (target, r.stdout, r.stderr))
        time.sleep(0.5)
        pids = self.proxy_pids[target]()
        pss0, rss0 = smaps_kib(pids)
        p = subprocess.Popen(base + ["--conns", str(a.sessions), "--duration", "600",
                                     "--parallel", str(a.idle_parallel), "--ramp", str(a.ramp)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            t0 = time.monotonic()
            line = p.stdout.readline()      # "ready held=.. errors=.. elapsed=.."
            if not line.startswith("ready"):
                raise BenchError("imapload --hold through %s: %r\n%s"
                                 % (target, line, p.stderr.read()))
            ready = dict(kv.split("=", 1) for kv in line.split()[1:])
            held = int(ready["held"])
            time.sleep(a.settle)
            pids = self.proxy_pids[target]()
            pss1, rss1 = smaps_kib(pids)
            fds = sum(len(os.listdir("/proc/%d/fd" % pid)) for pid in pids)
            ramp_s = time.monotonic() - t0
        finally:
            try:
                p.stdin.close()     # imapload closes the sessions and exits
            except OSError:
                pass
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            out, err = p.stdout.read(), p.stderr.read()
            p.stdout.close()
            p.stderr.close()
        if held == 0:
            raise BenchError("no idle session through %s: %s" % (target, err))
        return {"held": held, "errors": int(ready["errors"]), "pss_before": pss0,
                "pss_after": pss1, "rss_before": rss0, "rss_after": rss1, "fds": fds,
                "kib_per_session": (pss1 - pss0) / held,
                "rss_kib_per_session": (rss1 - rss0) / held, "ramp_s": ramp_s,
                "stderr": (err or "").strip()}

    def idle_rounds(self, restarts):
        targets = self.targets("idle")
        for t in targets:
            self.results["idle"][t] = []
        for rnd in range(self.args.idle_rounds):
            k = rnd % len(targets)
            for t in targets[k:] + targets[:k]:
                res = self.idle_once(t, restarts[t])
                self.results["idle"][t].append(res)
                log("round %d/%d idle  %-9s %5d sessions  PSS %d -> %d KiB: %.2f KiB/session "
                    "(RSS %.2f)  fds %d%s"
                    % (rnd + 1, self.args.idle_rounds, t, res["held"], res["pss_before"],
                       res["pss_after"], res["kib_per_session"], res["rss_kib_per_session"],
                       res["fds"], " errors=%d" % res["errors"] if res["errors"] else ""))
                if res["errors"] and res["stderr"]:
                    log("  " + res["stderr"].replace("\n", "\n  "))

    def summary(self):
        lines = []
        table = {}
        for test in ("login", "fetch"):
            per = self.results[test]
            if not any(per.values()):
                continue
            med = {t: statistics.median(self.value(test, r) for r in rs)
                   for t, rs in per.items() if rs}
            base = med.get("direct")
            label = "login/s  " if test == "login" else "FETCH MB/s"
            fmt = "%.0f" if test == "login" else "%.1f"
            parts = [label]
            table[test] = {}
            for t in TEST_TARGETS[test]:
                if t not in med:
                    continue
                s = "%s %s" % (t, fmt % med[t])
                ratio = med[t] / base if base and t != "direct" else None
                if ratio is not None:
                    s += " (%.2fx)" % ratio
                parts.append(s)
                rs = per[t]
                table[test][t] = {
                    "median": med[t], "ratio": ratio,
                    "rounds": [self.value(test, r) for r in rs],
                    "errors": sum(int(r["errors"]) for r in rs),
                    "proxy_cpu": statistics.median(r["proxy_cpu"] for r in rs),
                    "dovecot_cpu": statistics.median(r["dovecot_cpu"] for r in rs),
                    "load_cpu": statistics.median(r["load_cpu"] for r in rs),
                    "other_cpu": statistics.median(r["other_cpu"] for r in rs),
                }
                if test == "login":
                    table[test][t]["p50_ms"] = statistics.median(r["p50_ms"] for r in rs)
                    table[test][t]["p99_ms"] = statistics.median(r["p99_ms"] for r in rs)
                # CPU per unit of work (login, or MB), in microseconds: what
                # each process spends, whatever else the machine does.
                unit = {}
                for k in ("proxy", "dovecot", "load"):
                    unit[k] = statistics.median(r[k + "_cpu"] / self.value(test, r) * 1e6
                                                for r in rs if self.value(test, r) > 0)
                table[test][t]["cpu_us_per_unit"] = unit
                # The ratio to direct within each round (targets interleaved,
                # so slow drifts of the background load cancel out).
                if t != "direct" and per.get("direct"):
                    paired = [self.value(test, a) / self.value(test, b)
                              for a, b in zip(rs, per["direct"]) if self.value(test, b) > 0]
                    if paired:
                        table[test][t]["paired_ratio"] = statistics.median(paired)
            lines.append("  ".join(parts))
            paired = ["%s %.2fx" % (t, v["paired_ratio"]) for t, v in table[test].items()
                      if "paired_ratio" in v]
            if paired:
                lines.append("  ratio to direct, median of the per-round ratios: " + "  ".join(paired))
            # Where the cores are the bottleneck (the load generator, the
            # proxy and Dovecot share them), a target's rate relative to
            # direct is the CPU direct needs per unit over what the target
            # needs: an estimate that the background load disturbs less.
            d = table[test].get("direct", {}).get("cpu_us_per_unit")
            if d:
                est = []
                for t, v in table[test].items():
                    if t == "direct":
                        continue
                    u = v["cpu_us_per_unit"]
                    v["cpu_bound_ratio"] = (d["dovecot"] + d["load"]) / max(
                        1e-9, u["proxy"] + u["dovecot"] + u["load"])
                    est.append("%s %.2fx" % (t, v["cpu_bound_ratio"]))
                lines.append("  CPU-bound estimate (direct's CPU per unit / target's): "
                             + "  ".join(est))
            what = "per login" if test == "login" else "per MB"
            cpu = ["  CPU %s in us (median): " % what]
            for t, v in table[test].items():
                u = v["cpu_us_per_unit"]
                cpu.append("%s: proxy %.0f dovecot %.0f load %.0f" % (t, u["proxy"], u["dovecot"],
                                                                       u["load"]))
            lines.append(cpu[0] + "; ".join(cpu[1:]))
        per = self.results["idle"]
        if any(per.values()):
            table["idle"] = {}
            parts = ["idle KiB/session (PSS)"]
            med = {t: statistics.median(r["kib_per_session"] for r in rs)
                   for t, rs in per.items() if rs}
            for t in TEST_TARGETS["idle"]:
                if t not in med:
                    continue
                rs = per[t]
                table["idle"][t] = {
                    "median": med[t],
                    "rounds": [r["kib_per_session"] for r in rs],
                    "rss_median": statistics.median(r["rss_kib_per_session"] for r in rs),
                    "sessions": [r["held"] for r in rs],
                    "errors": sum(r["errors"] for r in rs),
                    "pss_before": [r["pss_before"] for r in rs],
                    "pss_after": [r["pss_after"] for r in rs],
                }
                s = "%s %.2f (RSS %.2f)" % (t, med[t], table["idle"][t]["rss_median"])
                if t == "gatewayd" and med.get("nginx"):
                    table["idle"][t]["ratio_to_nginx"] = med[t] / med["nginx"]
                    s += " (%.2fx nginx)" % (med[t] / med["nginx"])
                parts.append(s)
            lines.append("  ".join(parts) + "  [%d sessions]" % self.args.sessions)
        return lines, table


# ---- main ------------------------------------------------------------------

def machine_info():
    info = popbench.machine_info()
    info["uptime_before"] = subprocess.run(["uptime"], stdout=subprocess.PIPE,
                                           text=True).stdout.strip()
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated subset of %s (default: all)" % ",".join(TARGETS))
    ap.add_argument("--tests", default=",".join(TESTS),
                    help="comma-separated subset of %s (default: all)" % ",".join(TESTS))
    ap.add_argument("--rounds", type=int, default=5, help="login/fetch measurements per target (5)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of one measurement (5)")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up per target, seconds (2)")
    ap.add_argument("--conns", type=int, default=50, help="login: concurrent clients (50)")
    ap.add_argument("--users", type=int, default=50, help="login, idle: distinct users (50)")
    ap.add_argument("--fetch-conns", type=int, default=4, help="fetch: concurrent clients (4)")
    ap.add_argument("--fetch-size", type=parse_size, default=10 * 1024 * 1024,
                    help="fetch: message size (10MiB)")
    ap.add_argument("--sessions", type=int, default=5000,
                    help="idle: logged-in idle sessions held through each proxy (5000)")
    ap.add_argument("--idle-rounds", type=int, default=3, help="idle: rounds per proxy (3)")
    ap.add_argument("--idle-parallel", type=int, default=50,
                    help="idle: logins in flight at once while opening the sessions (50)")
    ap.add_argument("--ramp", type=float, default=120.0,
                    help="idle: seconds allowed to open the sessions (120)")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="idle: seconds between the last login and the measurement (1)")
    ap.add_argument("--max-other-cpu", type=float, default=0.3,
                    help="a round during which other processes used more cores than this "
                         "is repeated (0.3)")
    ap.add_argument("--retries", type=int, default=1,
                    help="repeats of a disturbed round before it is kept anyway (1)")
    ap.add_argument("--gw-log-level", default="warn", help="gatewayd log_level (warn)")
    ap.add_argument("--floor", type=float, default=0.95,
                    help="gatewayd/direct ratio the run is checked against (0.95)")
    ap.add_argument("--mem-floor", type=float, default=0.5,
                    help="gatewayd/nginx memory per idle session the run is checked against (0.5)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when gatewayd misses a floor")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    targets = [t for t in args.targets.split(",") if t]
    tests = [t for t in args.tests.split(",") if t]
    if not targets or any(t not in TARGETS for t in targets):
        ap.error("--targets: choose from %s" % ",".join(TARGETS))
    if not tests or any(t not in TESTS for t in tests):
        ap.error("--tests: choose from %s" % ",".join(TESTS))
    if args.rounds < 1 or args.seconds <= 0 or args.conns < 1 or args.users < 1 \
            or args.fetch_conns < 1 or args.sessions < 1 or args.idle_rounds < 1:
        ap.error("rounds, seconds, conns, users, fetch-conns, sessions, idle-rounds "
                 "must be positive")
    targets = [t for t in TARGETS if t in targets and any(t in TEST_TARGETS[x] for x in tests)]
    if args.keep:
        os.environ["GW_KEEP_TMP"] = "1"

    # A hard bound on the whole run.
    budget = 300
    for test in tests:
        n = len([t for t in TEST_TARGETS[test] if t in targets])
        if test == "idle":
            budget += n * args.idle_rounds * (args.ramp + args.settle + 90)
        else:
            budget += n * (args.rounds * (args.retries + 1) * (args.seconds + 6)
                           + args.warmup + 5) + 30
    if "gatewayd" in targets and not os.access(gwtest.gatewayd_path(), os.X_OK):
        budget += 1800

    def on_alarm(signum, frame):
        raise BenchError("the benchmark ran over its time budget (%ds)" % budget)

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(budget))

    proxies = []   # everything with a stop(), stopped in reverse order
    gw = dovecot = td = None
    try:
        ensure_packages(targets, not args.no_install)
        if "idle" in tests:
            nofile = raise_nofile(3 * args.sessions + 1000)
            if nofile < 2 * args.sessions + 200:
                log("WARNING: open file limit %d is too low for %d sessions through a proxy"
                    % (nofile, args.sessions))
        info = machine_info()
        log("machine: %s" % info["uptime_before"])
        if info["loadavg_before"][0] > 0.5 * (info["nproc"] or 1):
            log("WARNING: load average %.2f before the run: the machine is busy, numbers will be noisy"
                % info["loadavg_before"][0])
        td = gwtest.TempDir(prefix="bimap-")
        imapload = ensure_imapload(td.path)
        gw_binary = gw_btype = None
        if "gatewayd" in targets:
            gw_binary, gw_btype = ensure_gatewayd()

        # One Dovecot for all targets.
        users = {"user%d" % i: "pw%d" % i for i in range(args.users)}
        users.update({"big%d" % i: "bigpw%d" % i for i in range(args.fetch_conns)})
        small = gwtest.make_message("small message", b"Hello.\n")
        messages = {"user%d" % i: [small] for i in range(args.users)}
        big = None
        if "fetch" in tests:
            big = popbench.big_message(args.fetch_size)
            messages.update({"big%d" % i: [big] for i in range(args.fetch_conns)})
        first = tests[0]
        BenchDovecot.shape_for(first, {"login": args.conns, "fetch": args.fetch_conns,
                                       "idle": args.sessions}[first])
        log("starting Dovecot (%d users)" % len(users))
        dovecot = BenchDovecot.start("bench", users=users, messages=messages, tls=False,
                                     directory=td.subdir("dovecot"), foreground=True)
        backend = dovecot.ports["imap"]
        ports = {}
        proxy_pids = {}
        restarts = {}
        if "direct" in targets:
            ports["direct"] = backend

        if "gatewayd" in targets:
            gw_port = gwtest.free_port()
            gw_conf = gateway_config(args, users, backend, gw_port)
            gw_dir = td.subdir("gatewayd")
            log("starting gatewayd %s" % gw_binary)
            gw = gwtest.Gateway.start(gw_conf, directory=gw_dir)
            ports["gatewayd"] = gw_port
            proxy_pids["gatewayd"] = lambda: gw.pids()

            def restart_gw():
                nonlocal gw
                gw.stop(timeout=10.0)
                gw = gwtest.Gateway.start(gw_conf, directory=gw_dir)
            restarts["gatewayd"] = restart_gw

        # worker_connections counts every connection of the worker: client,
        # upstream and the auth_http request of a session in login.
        nginx_conns = max(4096, 2 * args.sessions + 500) if "idle" in tests else 4096
        for name, pb in (("nginx", None), ("nginx-64k", "64k")):
            if name not in targets:
                continue
            log("starting %s" % name)
            n = NginxImap(td.subdir(name), backend, pb, nginx_conns).start()
            proxies.append(n)
            ports[name] = n.port
            proxy_pids[name] = n.pids
            info["nginx"] = n.version()

            def restart_nginx(n=n):
                n.stop()
                n.start()
            restarts[name] = restart_nginx

        if "perdition" in targets:
            log("starting perdition")
            p = Perdition(td.subdir("perdition"), backend).start()
            proxies.append(p)
            ports["perdition"] = p.port
            proxy_pids["perdition"] = p.pids
            info["perdition"] = Perdition.version()
        if gw_binary:
            r = subprocess.run([gw_binary, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            info["gatewayd"] = "%s (%s build)" % (r.stdout.strip().splitlines()[0] if r.stdout.strip()
                                                  else "?", gw_btype)

        run = Run(args, imapload, ports, proxy_pids, lambda: dovecot.pid or dovecot.proc.pid)
        if big is not None:
            h = 0xcbf29ce484222325
            for b in big:
                h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
            run.literal = (len(big), "%016x" % h)
        for test in tests:
            if not run.targets(test):
                continue
            clients = {"login": args.conns, "fetch": args.fetch_conns, "idle": args.sessions}[test]
            dovecot.set_imap(test, clients)
            if test == "idle":
                run.idle_rounds(restarts)
            else:
                run.warmup(test)
                run.rounds(test)
        lines, table = run.summary()
        info["loadavg_after"] = os.getloadavg()
        print()
        print("IMAP, %s, %s; login: %d clients, %d rounds x %gs; FETCH: %d clients x %.1f MiB; "
              "idle: %d sessions x %d rounds"
              % (info["cpu"], info["dovecot"], args.conns, args.rounds, args.seconds,
                 args.fetch_conns, args.fetch_size / 1048576.0, args.sessions, args.idle_rounds))
        print("load average before %.2f, after %.2f (%d cores)"
              % (info["loadavg_before"][0], info["loadavg_after"][0], info["nproc"]))
        for line in lines:
            print(line)
        below = []
        for test in ("login", "fetch"):
            g = table.get(test, {}).get("gatewayd")
            if g and g["ratio"] is not None and g["ratio"] < args.floor:
                below.append("%s %.2fx direct" % (test, g["ratio"]))
        gi = table.get("idle", {}).get("gatewayd")
        if gi and "ratio_to_nginx" in gi and gi["ratio_to_nginx"] > args.mem_floor:
            below.append("idle memory %.2fx nginx" % gi["ratio_to_nginx"])
        for test, per in table.items():
            for t, v in per.items():
                if v["errors"]:
                    print("  %s %s: %d errors during the rounds" % (test, t, v["errors"]))
        if "gatewayd" in targets:
            print("gatewayd floors (%.2fx direct, %.2fx nginx memory): %s"
                  % (args.floor, args.mem_floor, "missed: " + ", ".join(below) if below else "met"))
        if run.noisy:
            print("WARNING: %d rounds ran while other work used more than %.2f cores; "
                  "the numbers are noisy" % (run.noisy, args.max_other_cpu))
        if gw is not None:
            bad = gw.unexpected_log_lines()
            if bad:
                print("gatewayd logged errors:\n  " + "\n  ".join(bad[:10]))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": info, "args": vars(args), "results": table}, f, indent=1)
        return 1 if (args.check and below) else 0
    except BenchError as e:
        print("bench: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        for p in reversed(proxies):
            p.stop()
        if gw is not None:
            gw.stop(timeout=10.0)
        if dovecot is not None:
            dovecot.stop()
        if td is not None:
            td.cleanup()


if __name__ == "__main__":
    sys.exit(main())
