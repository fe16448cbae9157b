#!/usr/bin/env python3
"""POP3 benchmark: direct Dovecot vs gatewayd vs nginx's mail proxy, side by side.

One Dovecot serves all three targets:
  direct    popload -> Dovecot
  gatewayd  popload -> gatewayd (workers: 1) -> Dovecot
  nginx     popload -> nginx mail proxy (worker_processes 1) -> Dovecot
                       (auth_http answered by a location of the same nginx)

Two measurements, each repeated --rounds times with the targets interleaved
(the order rotates every round), the median reported with its ratio to direct:
  login   POP3 login cycles per second (connect, USER/PASS, STAT, QUIT) at
          --conns concurrent clients (50), users user0..user49
  retr    RETR throughput in MB/s (10^6 bytes) of one large message
          (--retr-size, 10 MiB) fetched again and again by --retr-conns
          clients (4), each logged in once, users big0..big3

Everything runs on 127.0.0.1 on free ports in a temporary directory and is
torn down at the end, also on failure or Ctrl-C. Missing Debian packages
(dovecot-pop3d, nginx, libnginx-mod-mail) are installed with apt-get when
running as root; a missing gatewayd is built (Release) in $GW_BUILD_DIR.

  bench/pop/run.py                       # full run, ~3.5 minutes
  bench/pop/run.py --rounds 3 --seconds 3 --targets direct,nginx --tests login

See bench/README.md and docs/performance.md.
"""

import argparse
import atexit
import glob
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

NGINX_MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"
TARGETS = ("direct", "gatewayd", "nginx")
TESTS = ("login", "retr")


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---- prerequisites ---------------------------------------------------------

def ensure_packages(targets, allow_install):
    need = []
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/pop3"):
        need += ["dovecot-core", "dovecot-pop3d"]
    if "nginx" in targets:
        if not shutil.which("nginx"):
            need.append("nginx")
        if not os.path.exists(NGINX_MAIL_MODULE):
            need.append("libnginx-mod-mail")
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


def cmake_cache(build_dir, key):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def ensure_gatewayd():
    binary = gwtest.gatewayd_path()
    plugin = os.path.join(gwtest.plugin_dir(), "pop.so")
    build = gwtest.build_dir()
    if not (os.access(binary, os.X_OK) and os.path.exists(plugin)):
        log("gatewayd or the pop plugin missing; building %s (Release)" % build)
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       timeout=600)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2),
                        "--target", "gatewayd"], check=True, stdin=subprocess.DEVNULL,
                       timeout=1800)
    if not (os.access(binary, os.X_OK) and os.path.exists(plugin)):
        raise BenchError("no gatewayd at %s with %s" % (binary, plugin))
    btype = cmake_cache(build, "CMAKE_BUILD_TYPE") or "?"
    if cmake_cache(build, "GW_SANITIZE") in ("ON", "TRUE", "1"):
        log("WARNING: %s is a sanitizer build (GW_SANITIZE=ON): numbers are meaningless" % build)
    elif btype not in ("Release", "RelWithDebInfo"):
        log("WARNING: %s is a %s build; use -DCMAKE_BUILD_TYPE=Release" % (build, btype))
    return binary, btype


def ensure_popload(tmp):
    """popload from the build tree (bench/ target) or compiled here (with
    bench/loadgen.c)."""
    bench = os.path.dirname(HERE)
    srcs = [os.path.join(HERE, "popload.c"), os.path.join(bench, "loadgen.c")]
    newest = max(os.path.getmtime(p) for p in srcs + [os.path.join(bench, "loadgen.h")])
    for cand in (os.environ.get("POPLOAD"),
                 os.path.join(gwtest.build_dir(), "bench", "popload")):
        if cand and os.access(cand, os.X_OK) and os.path.getmtime(cand) >= newest:
            return cand
    out = os.path.join(tmp, "popload")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-I", bench,
                    "-o", out] + srcs, check=True, stdin=subprocess.DEVNULL, timeout=120)
    return out


# ---- servers ---------------------------------------------------------------

class BenchDovecot(gwtest.Dovecot):
    """gwtest's Dovecot (high-performance login mode, reused pop3 processes,
    no auth failure delay) with the process pools pre-spawned, so that no
    measurement pays for forks, and the pop3 process pool shaped for the test
    at hand (set_pop3()):

      login  client_limit = 10: a few processes each serving several short
             sessions. With client_limit = 1 and 50 idle pop3 processes, every
             new session wakes them all on the shared listening socket (accept
             fails with EAGAIN in all but one): ~30-40% fewer logins/s here.
      retr   client_limit = 1: one process per session, so that concurrent
             RETRs run in parallel (with 10, several land in one process and
             direct RETR throughput halves).
    """

    pop3_client_limit = 1
    pop3_min_avail = 0

    def _config(self):
        conf = super()._config()
        cores = os.cpu_count() or 2
        # Dovecot 2.3's high-performance login mode, as documented: service_count
        # = 0, process_min_avail = number of cores, a larger vsz_limit.
        conf, n1 = re.subn(r"(service pop3-login \{\n  service_count = 0\n)",
                           r"\g<1>  process_min_avail = %d\n  vsz_limit = 1G\n" % cores, conf)
        conf, n2 = re.subn(r"(service pop3 \{\n  service_count = 0\n)  client_limit = 1\n",
                           r"\g<1>  client_limit = %d\n  process_min_avail = %d\n"
                           r"  process_limit = %d\n"
                           % (self.pop3_client_limit, self.pop3_min_avail,
                              max(100, self.pop3_min_avail + 20)), conf)
        if n1 != 1 or n2 != 1:
            raise BenchError("gwtest's dovecot.conf changed shape; update BenchDovecot")
        return conf + """# bench/pop/run.py
pop3_no_flag_updates = yes
service auth {
  client_limit = 2000
}
"""

    @classmethod
    def shape_for(cls, test, clients):
        """Class defaults for the next start."""
        if test == "login":
            cls.pop3_client_limit = 10
            cls.pop3_min_avail = clients // 10 + 2
        else:
            cls.pop3_client_limit = 1
            cls.pop3_min_avail = clients + 2

    def set_pop3(self, test, clients):
        """Restart (same directory, same ports) with the pop3 pool for test."""
        old = (self.pop3_client_limit, self.pop3_min_avail)
        BenchDovecot.shape_for(test, clients)
        self.pop3_client_limit = BenchDovecot.pop3_client_limit
        self.pop3_min_avail = BenchDovecot.pop3_min_avail
        if old == (self.pop3_client_limit, self.pop3_min_avail):
            return
        self.stop()
        with open(self.conf_path, "w") as f:
            f.write(self._config())
        self.restart()


def big_message(size):
    """A text message of about size bytes: 76-character base64 lines, every
    64th line starting with '.' (dot-stuffed on the wire)."""
    import base64
    head = gwtest.make_message("big message for the RETR benchmark", b"")
    raw = os.urandom(size * 3 // 4 + 64)
    b64 = base64.b64encode(raw)
    lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    for i in range(0, len(lines), 64):
        lines[i] = b"." + lines[i][1:]
    body = b"\r\n".join(lines)[: max(0, size - len(head) - 2)]
    body = body[: body.rfind(b"\r\n")] if b"\r\n" in body else body
    return head + body + b"\r\n"


class Nginx:
    """nginx (Debian, dynamic mail module) as a POP3 proxy in front of one
    Dovecot; auth_http points at a location of the same nginx."""

    def __init__(self, directory, backend_port, proxy_buffer=None):
        self.dir = directory
        self.port = gwtest.free_port()
        self.auth_port = gwtest.free_port()
        self.conf = os.path.join(directory, "nginx.conf")
        self.error_log = os.path.join(directory, "error.log")
        self.proc = None
        for sub in ("tmp",):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        pb = "    proxy_buffer %s;\n" % proxy_buffer if proxy_buffer else ""
        with open(self.conf, "w") as f:
            f.write("""# generated by bench/pop/run.py
load_module {module};
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
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
    pop3_auth plain;
{pb}    server {{
        listen 127.0.0.1:{port};
        protocol pop3;
        proxy on;
    }}
}}
""".format(module=NGINX_MAIL_MODULE, d=directory, auth_port=self.auth_port,
                   backend=backend_port, port=self.port, pb=pb))

    def start(self, timeout=15.0):
        out = open(os.path.join(self.dir, "nginx.stderr"), "ab")
        try:
            self.proc = subprocess.Popen(
                ["nginx", "-c", self.conf, "-p", self.dir, "-e", self.error_log],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            out.close()
        atexit.register(self.stop)
        gwtest.wait_port("127.0.0.1", self.port, timeout, proc=self.proc, what="nginx")
        gwtest.wait_port("127.0.0.1", self.auth_port, timeout, proc=self.proc, what="nginx auth")
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
                os.kill(self.proc.pid, signal.SIGTERM)   # fast shutdown
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)     # leftovers of this group only
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.proc = None

    def version(self):
        r = subprocess.run(["nginx", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        return r.stdout.strip().replace("nginx version: ", "")


# ---- measuring -------------------------------------------------------------

def proc_cpu(pids):
    """utime+stime in seconds of the given processes."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tck


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
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            out.append(int(d))
    return out


class Run:
    def __init__(self, args, popload, ports, proxy_pids, dovecot_pgid):
        self.args = args
        self.popload = popload
        self.ports = ports                # target -> port
        self.proxy_pids = proxy_pids      # target -> callable returning pids
        self.dovecot_pgid = dovecot_pgid  # callable: Dovecot restarts between tests
        self.results = {test: {t: [] for t in ports} for test in TESTS}
        self.retr_body = None     # expected RETR answer after the status line
        self.noisy = 0            # rounds kept although other work ran meanwhile
        self.waited = 0.0         # seconds spent waiting for a quiet machine

    def popload_cmd(self, target, test, seconds):
        a = self.args
        cmd = [self.popload, "--port", str(self.ports[target]), "--duration", str(seconds),
               "--timeout", "10"]
        if test == "login":
            cmd += ["--conns", str(a.conns), "--user-prefix", "user", "--pass-prefix", "pw",
                    "--nusers", str(a.users)]
        else:
            cmd += ["--conns", str(a.retr_conns), "--user-prefix", "big",
                    "--pass-prefix", "bigpw", "--nusers", str(a.retr_conns), "--retr", "1"]
        return cmd

    def once(self, target, test, seconds):
        cmd = self.popload_cmd(target, test, seconds)
        proxy = self.proxy_pids.get(target)
        ppids = proxy() if proxy else []
        pgid = self.dovecot_pgid()
        dpids = group_pids(pgid)
        p0, d0 = proc_cpu(ppids), proc_cpu(dpids)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0 = busy_cores_counter()
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=seconds + 60,
                               preexec_fn=(lambda: os.sched_setaffinity(0, {1}))
                               if self.args.pin else None)
        except subprocess.TimeoutExpired:
            raise BenchError("popload against %s hung (%s)" % (target, " ".join(cmd)))
        wall = time.monotonic() - t0
        b1 = busy_cores_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p1 = proc_cpu(ppids)
        d1 = proc_cpu(group_pids(pgid) or dpids)
        vals = dict(kv.split("=", 1) for kv in r.stdout.split())
        if not vals:
            raise BenchError("popload against %s printed nothing (status %d):\n%s"
                             % (target, r.returncode, r.stderr))
        res = {k: float(v) for k, v in vals.items()}
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

    @staticmethod
    def value(test, res):
        return res["per_sec"] if test == "login" else res["mb_per_sec"]

    def warmup(self, test):
        for t in self.ports:
            res = self.once(t, test, self.args.warmup)
            if res["errors"] or self.value(test, res) <= 0:
                raise BenchError("warm-up %s against %s failed: %s\n%s"
                                 % (test, t, res, res["stderr"]))
            if test == "retr" and self.retr_body and res["answer_body"] != self.retr_body:
                raise BenchError("RETR through %s returned %d bytes after the status line, "
                                 "expected %d" % (t, res["answer_body"], self.retr_body))
            log("warm-up %-5s %-8s %8.1f" % (test, t, self.value(test, res)))

    def rounds(self, test):
        targets = list(self.ports)
        for rnd in range(self.args.rounds):
            k = rnd % len(targets)
            order = targets[k:] + targets[:k]
            for t in order:
                for attempt in range(self.args.retries + 1):
                    self.wait_quiet()
                    res = self.once(t, test, self.args.seconds)
                    if res["other_cpu"] <= self.args.max_other_cpu:
                        break
                    if attempt < self.args.retries:
                        log("round %d/%d %-5s %-8s %8.1f  discarded: %.2f cores busy with other work"
                            % (rnd + 1, self.args.rounds, test, t, self.value(test, res),
                               res["other_cpu"]))
                else:
                    self.noisy += 1
                self.results[test][t].append(res)
                err = " errors=%d" % res["errors"] if res["errors"] else ""
                extra = ("p99 %.1f ms" % res["p99_ms"]) if test == "login" else ""
                log("round %d/%d %-5s %-8s %8.1f  cpu: load %.2f proxy %.2f dovecot %.2f other %.2f %s%s"
                    % (rnd + 1, self.args.rounds, test, t, self.value(test, res),
                       res["load_cpu"], res["proxy_cpu"], res["dovecot_cpu"], res["other_cpu"],
                       extra, err))
                if res["errors"] and res["stderr"]:
                    log("  " + res["stderr"].replace("\n", "\n  "))

    def summary(self):
        lines = []
        table = {}
        for test in TESTS:
            per = self.results[test]
            if not any(per.values()):
                continue
            med = {t: statistics.median(self.value(test, r) for r in rs)
                   for t, rs in per.items() if rs}
            base = med.get("direct")
            label = "login/s " if test == "login" else "RETR MB/s"
            fmt = "%.0f" if test == "login" else "%.1f"
            parts = [label]
            table[test] = {}
            for t in self.ports:
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
                # CPU the proxy spends per unit of work: per login in µs,
                # per MB in ms. Less dependent on the machine than the rates.
                if t != "direct":
                    table[test][t]["proxy_cpu_per_op"] = statistics.median(
                        r["proxy_cpu"] / self.value(test, r) * (1e6 if test == "login" else 1e3)
                        for r in rs if self.value(test, r) > 0)
                if test == "login":
                    table[test][t]["p50_ms"] = statistics.median(r["p50_ms"] for r in rs)
                    table[test][t]["p99_ms"] = statistics.median(r["p99_ms"] for r in rs)
            lines.append("  ".join(parts))
            cpu = ["%s %.0f" % (t, v["proxy_cpu_per_op"]) if test == "login" else
                   "%s %.2f" % (t, v["proxy_cpu_per_op"])
                   for t, v in table[test].items() if "proxy_cpu_per_op" in v]
            if cpu:
                lines.append("  proxy CPU %s  %s" % ("us/login" if test == "login" else "ms/MB",
                                                     "  ".join(cpu)))
        return lines, table


# ---- main ------------------------------------------------------------------

class proxy_cpu_affinity:
    """With --pin: processes started inside run on CPU 1 only."""

    def __init__(self, pin):
        self.pin = pin

    def __enter__(self):
        if self.pin:
            os.sched_setaffinity(0, {1})

    def __exit__(self, *exc):
        if self.pin:
            os.sched_setaffinity(0, {0})


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dv = subprocess.run(["dovecot", "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release,
            "dovecot": dv, "loadavg_before": os.getloadavg()}


def parse_size(s):
    m = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("bad size: %s" % s)
    mult = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[(m.group(2) or " ")[0].upper().strip()]
    return int(m.group(1)) * mult


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated subset of %s (default: all)" % ",".join(TARGETS))
    ap.add_argument("--tests", default=",".join(TESTS),
                    help="comma-separated subset of %s (default: all)" % ",".join(TESTS))
    ap.add_argument("--rounds", type=int, default=5, help="measurements per target (5)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of one measurement (5)")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up per target, seconds (2)")
    ap.add_argument("--conns", type=int, default=50, help="login: concurrent clients (50)")
    ap.add_argument("--users", type=int, default=50, help="login: distinct users (50)")
    ap.add_argument("--retr-conns", type=int, default=4, help="retr: concurrent clients (4)")
    ap.add_argument("--retr-size", type=parse_size, default=10 * 1024 * 1024,
                    help="retr: message size (10MiB)")
    ap.add_argument("--max-other-cpu", type=float, default=0.3,
                    help="a round during which other processes used more cores than this "
                         "is repeated (0.3)")
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="before each round wait up to this long for other work to stop (20)")
    ap.add_argument("--retries", type=int, default=3,
                    help="repeats of a disturbed round before it is kept anyway (3)")
    ap.add_argument("--gw-log-level", default="warn", help="gatewayd log_level (warn)")
    ap.add_argument("--nginx-proxy-buffer", default=None,
                    help="nginx mail proxy_buffer (default: nginx's own, one page)")
    ap.add_argument("--floor", type=float, default=0.95,
                    help="gatewayd/direct ratio the run is checked against (0.95)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when gatewayd is below --floor for any test")
    ap.add_argument("--pin", action="store_true",
                    help="Dovecot alone on CPU 0; the load generator and the proxies on "
                         "CPU 1: Dovecot has the same core whatever is in front of it, "
                         "as on a mailbox server of its own")
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
            or args.retr_conns < 1:
        ap.error("rounds, seconds, conns, users and retr-conns must be positive")
    targets = [t for t in TARGETS if t in targets]   # fixed display order
    if args.keep:
        os.environ["GW_KEEP_TMP"] = "1"

    # A hard bound on the whole run: setup + warm-ups + rounds, with margin.
    budget = 300 + len(targets) * len(tests) * (
        args.rounds * (args.retries + 1) * (args.seconds + args.quiet_wait + 3) + args.warmup + 3)
    if "gatewayd" in targets and not os.access(gwtest.gatewayd_path(), os.X_OK):
        budget += 1800

    def on_alarm(signum, frame):
        raise BenchError("the benchmark ran over its time budget (%ds)" % budget)

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(budget))

    nginx = gw = dovecot = td = None
    try:
        if args.pin and not {0, 1} <= os.sched_getaffinity(0):
            raise BenchError("--pin needs CPUs 0 and 1")
        ensure_packages(targets, not args.no_install)
        info = machine_info()
        if info["loadavg_before"][0] > 0.5 * (info["nproc"] or 1):
            log("WARNING: load average %.2f before the run: the machine is busy, numbers will be noisy"
                % info["loadavg_before"][0])
        td = gwtest.TempDir(prefix="bpop-")
        popload = ensure_popload(td.path)
        gw_binary = gw_btype = None
        if "gatewayd" in targets:
            gw_binary, gw_btype = ensure_gatewayd()

        # One Dovecot for all targets.
        users = {"user%d" % i: "pw%d" % i for i in range(args.users)}
        users.update({"big%d" % i: "bigpw%d" % i for i in range(args.retr_conns)})
        small = gwtest.make_message("small message", b"Hello.\n")
        messages = {"user%d" % i: [small] for i in range(args.users)}
        if "retr" in tests:
            big = big_message(args.retr_size)
            messages.update({"big%d" % i: [big] for i in range(args.retr_conns)})
        first = tests[0]
        BenchDovecot.shape_for(first, args.conns if first == "login" else args.retr_conns)
        if args.pin:
            # Children inherit the CPU affinity of this process at fork.
            os.sched_setaffinity(0, {0})
            log("--pin: Dovecot on CPU 0; popload, gatewayd and nginx on CPU 1")
        log("starting Dovecot (%d users)" % len(users))
        dovecot = BenchDovecot.start("bench", users=users, messages=messages, tls=False,
                                     directory=td.subdir("dovecot"), foreground=True)
        ports = {}
        proxy_pids = {}
        if "direct" in targets:
            ports["direct"] = dovecot.ports["pop3"]

        if "gatewayd" in targets:
            gw_port = gwtest.free_port()
            gw_users = {u: {"password": gwtest.hash_password(pw), "database": "db1", "version": 15}
                        for u, pw in users.items()}
            config = {
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
                                                 "services": {"pop": {"port": dovecot.ports["pop3"],
                                                                      "tls": "none"}}}},
                            "databases": {"db1": {"copies": ["mbx1"]}}},
                "sites": {"site-a": {}},
                "protocols": {"pop": {
                    "listen": [{"address": "127.0.0.1:%d" % gw_port, "tls": "none",
                                "allow_plaintext": True}],
                    "login_timeout": "30s", "idle_timeout": "10m"}},
            }
            log("starting gatewayd %s" % gw_binary)
            with proxy_cpu_affinity(args.pin):
                gw = gwtest.Gateway.start(config, directory=td.subdir("gatewayd"))
            ports["gatewayd"] = gw_port
            proxy_pids["gatewayd"] = gw.pids

        if "nginx" in targets:
            log("starting nginx")
            with proxy_cpu_affinity(args.pin):
                nginx = Nginx(td.subdir("nginx"), dovecot.ports["pop3"],
                              args.nginx_proxy_buffer).start()
            ports["nginx"] = nginx.port
            proxy_pids["nginx"] = nginx.pids
            info["nginx"] = nginx.version()
        if gw_binary:
            r = subprocess.run([gw_binary, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            info["gatewayd"] = "%s (%s build)" % (r.stdout.strip().splitlines()[0] if r.stdout.strip()
                                                  else "?", gw_btype)

        run = Run(args, popload, ports, proxy_pids, lambda: dovecot.pid or dovecot.proc.pid)
        if "retr" in tests:
            # On the wire: the message, one more '.' per line starting with
            # one, and the terminating ".\r\n".
            run.retr_body = len(big) + sum(1 for ln in big.split(b"\r\n") if ln.startswith(b".")) + 3
        for test in tests:
            dovecot.set_pop3(test, args.conns if test == "login" else args.retr_conns)
            run.warmup(test)
            run.rounds(test)
        lines, table = run.summary()
        print()
        print("POP3, %s, %d rounds x %gs, login: %d clients, RETR: %d clients x %s%s"
              % (info["cpu"], args.rounds, args.seconds, args.conns, args.retr_conns,
                 "%.1f MiB" % (args.retr_size / 1048576.0),
                 ", pinned: Dovecot CPU 0, popload and proxy CPU 1" if args.pin else ""))
        for line in lines:
            print(line)
        below = []
        for test, per in table.items():
            g = per.get("gatewayd")
            if g and g["ratio"] is not None and g["ratio"] < args.floor:
                below.append("%s %.2fx" % (test, g["ratio"]))
            for t, v in per.items():
                if v["errors"]:
                    print("  %s %s: %d errors during the rounds" % (test, t, v["errors"]))
        if "gatewayd" in targets and "direct" in targets:
            print("gatewayd floor %.2fx: %s" % (args.floor, "below: " + ", ".join(below)
                                               if below else "met"))
        if run.waited:
            log("waited %.0f s in all for other work to calm down" % run.waited)
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
        if nginx is not None:
            nginx.stop()
        if gw is not None:
            gw.stop(timeout=10.0)
        if dovecot is not None:
            dovecot.stop()
        if td is not None:
            td.cleanup()


if __name__ == "__main__":
    sys.exit(main())
