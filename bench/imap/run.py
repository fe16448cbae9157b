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
  haproxy    imapload -> HAProxy, mode tcp (nbthread 1) -> Dovecot: no IMAP,
                         only bytes copied; the least any proxy hop costs

Three measurements:
  login   IMAP login cycles per second (connect, LOGIN, SELECT INBOX, LOGOUT)
          at --conns concurrent clients (50), users user0..user49;
          direct, gatewayd, nginx, perdition, haproxy
  fetch   FETCH BODY.PEEK[] throughput in MB/s (10^6 bytes) of one large
          message (--fetch-size, 10 MiB) fetched again and again by
          --fetch-conns clients (4), each logged in once, users big0..big3;
          direct, gatewayd, nginx, nginx-64k, perdition, haproxy
  idle    proxy memory per idle logged-in session: --sessions (5000) clients
          log in, SELECT INBOX and stay; the proxy's PSS (all its processes,
          /proc/PID/smaps_rollup) after minus before, divided by the sessions;
          gatewayd, nginx (each round on a freshly started proxy)

login and fetch: --rounds (5) rounds of --seconds (5) each, targets
interleaved and their order rotated every round; idle: --idle-rounds (3).
Medians and the ratios to direct (idle: gatewayd / nginx) are printed.

Everything runs on 127.0.0.1 on free ports in a temporary directory and is
torn down at the end, also on failure, Ctrl-C or SIGTERM. Missing Debian
packages (dovecot-imapd, nginx, libnginx-mod-mail, perdition, haproxy) are installed
with apt-get when running as root; a missing gatewayd is built (Release) in
$GW_BUILD_DIR.

  bench/imap/run.py                                   # everything, 10-15 minutes on 2 cores
  bench/imap/run.py --tests login --targets direct,gatewayd --rounds 3 --seconds 3

See bench/README.md and docs/performance.md.
"""

import importlib.util
import os
import re
import resource
import statistics
import subprocess
import sys
import time

PERDITION = "/usr/sbin/perdition.imap4"
PERDITION_REGEX_MAP = "/usr/lib/x86_64-linux-gnu/libperditiondb_posix_regex.so.0"
TARGETS = ("direct", "gatewayd", "nginx", "nginx-64k", "perdition", "haproxy")
TESTS = ("login", "fetch", "idle")
TEST_TARGETS = {
    "login": ("direct", "gatewayd", "nginx", "perdition", "haproxy"),
    "fetch": ("direct", "gatewayd", "nginx", "nginx-64k", "perdition", "haproxy"),
    "idle": ("gatewayd", "nginx"),
}

HERE = os.path.dirname(os.path.abspath(__file__))
benchlib = importlib.util.module_from_spec(importlib.util.spec_from_file_location(
    "benchlib", os.path.join(os.path.dirname(HERE), "benchlib.py")))   # bench/: no package
benchlib.__spec__.loader.exec_module(benchlib)
gwtest, log, BenchError = benchlib.gwtest, benchlib.log, benchlib.BenchError


# ---- prerequisites ---------------------------------------------------------

def ensure_packages(targets, allow_install):
    need = benchlib.mail_packages("imap", "nginx" in targets or "nginx-64k" in targets,
                                  "haproxy" in targets)
    if "perdition" in targets and not (os.access(PERDITION, os.X_OK)
                                       and os.path.exists(PERDITION_REGEX_MAP)):
        need.append("perdition")
    benchlib.apt_install(need, allow_install)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need)) if hard != resource.RLIM_INFINITY else max(soft, need)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


# ---- servers ---------------------------------------------------------------

class BenchDovecot(benchlib.PooledDovecot):
    """Dovecot with the bench tuning (benchlib.PooledDovecot; imap-login
    also takes up to 4000 clients per process), no per-user connection
    limit, and the imap process pool shaped for the test at hand:

      login  client_limit = 10, clients/10 + 2 processes pre-spawned (as in
             bench/pop: with one idle process per client every new session
             wakes them all on the shared socket)
      fetch  client_limit = 1, one pre-spawned process per client, so that
             concurrent FETCHes run in parallel
      idle   client_limit = 100, vsz_limit = 2G: thousands of idle sessions
             in a few dozen processes instead of one process each
    """

    service = "imap"
    login_extra = "  client_limit = 4000\n"
    conf_tail = """# bench/imap/run.py
protocol imap {
  mail_max_userip_connections = 100000
}
"""
    pool = {"client_limit": 1, "process_min_avail": 0, "process_limit": 100,
            "vsz_limit": "256M"}

    @classmethod
    def pool_for(cls, test, clients):
        if test == "idle":
            return {"client_limit": 100, "process_min_avail": 0,
                    "process_limit": clients // 100 + 50, "vsz_limit": "2G"}
        limit, spare = (10, clients // 10 + 2) if test == "login" else (1, clients + 2)
        return {"client_limit": limit, "process_min_avail": spare,
                "process_limit": max(100, spare + 20), "vsz_limit": "256M"}


class Perdition(benchlib.Server):
    """perdition.imap4 in the foreground (-F +: log to stderr, no detaching),
    listening on 127.0.0.1 only, its regex popmap (posix_regex map library)
    mapping every user to the one Dovecot. It forks a child per session."""

    def __init__(self, directory, backend_port):
        self.port = gwtest.free_port()
        self.map = os.path.join(directory, "popmap.re")
        with open(self.map, "w") as f:
            f.write("# generated by bench/imap/run.py: every user to the one Dovecot\n"
                    "^.*$: 127.0.0.1:%d\n" % backend_port)
        os.chmod(self.map, 0o644)
        cmd = [PERDITION, "-f", "/dev/null", "--no_daemon", "-F", "+", "-q",
               "-b", "127.0.0.1:%d" % self.port, "-n", "--pid_file", "",
               "-M", PERDITION_REGEX_MAP, "-m", self.map,
               "--connect_relog", "0"]
        super().__init__("perdition", cmd, directory, {self.port: "perdition"},
                         preexec_fn=self._limit_fds)

    @staticmethod
    def _limit_fds():
        # Each session's child closes every descriptor up to the soft
        # RLIMIT_NOFILE, one close() each, when it ends (and it waits with
        # select(), so descriptors above 1024 are of no use to it): run it
        # with the usual 1024 of a system service, not this shell's limit.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))

    @staticmethod
    def version():
        r = subprocess.run([PERDITION, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        m = re.search(r"perdition version (\S+)", r.stdout)
        return m.group(1) if m else "?"


# ---- measuring -------------------------------------------------------------

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


class ImapRounds(benchlib.Rounds):
    tool_name = "imapload"
    name_width = 9
    bulk = "fetch"
    rate_labels = {"login": "login/s  ", "fetch": "FETCH MB/s"}

    def __init__(self, *a):
        super().__init__(*a)
        self.literal = None               # (size, FNV-1a hash) of the big message

    def targets(self, test):
        return [t for t in TEST_TARGETS[test] if t in self.ports]

    def verify_args(self, verify):
        return ["--hash"] if verify else []      # the literal's FNV-1a hash

    def proxy_cpu_meter(self, target, proxy):
        if target != "perdition" or not proxy:
            return super().proxy_cpu_meter(target, proxy)
        pids = proxy()
        if not pids:
            return lambda: 0.0
        # A process per session: the master's own CPU, that of the
        # sessions it reaped (cutime, cstime) and the live sessions'.
        master = pids[0]
        return lambda: benchlib.proc_cpu_reaped(master) + benchlib.proc_cpu(proxy()[1:])

    def after_load(self, target, proxy):
        if target == "perdition" and proxy:
            # Its session children exit after imapload closed: let the
            # master reap them, so that their CPU is in its cutime/cstime.
            gwtest.wait_until(lambda: len(proxy()) <= 1, 2.0, 0.02)

    def after_discard(self):
        time.sleep(min(self.args.seconds, 3))

    def check_warmup(self, test, target, res):
        if test != "fetch":
            return ""
        if self.literal:
            got = (int(res["literal"]), res.get("literal_hash"))
            if got != self.literal:
                raise BenchError("FETCH through %s returned a literal of %d octets (hash %s), "
                                 "expected %d (hash %s)"
                                 % (target, got[0], got[1], self.literal[0], self.literal[1]))
        return "  (message byte-exact)"

    # -- idle sessions --

    def idle_once(self, target, restart):
        """Restart the proxy, warm it with a few sessions, then hold
        --sessions logged-in idle sessions; returns the memory figures."""
        a = self.args
        restart()
        port = self.ports[target]
        base = [self.tool, "--port", str(port), "--user-prefix", "user", "--pass-prefix",
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
        per = self.results.setdefault("idle", {})
        for t in targets:
            per[t] = []
        for rnd in range(self.args.idle_rounds):
            k = rnd % len(targets)
            for t in targets[k:] + targets[:k]:
                res = self.idle_once(t, restarts[t])
                per[t].append(res)
                log("round %d/%d idle  %-9s %5d sessions  PSS %d -> %d KiB: %.2f KiB/session "
                    "(RSS %.2f)  fds %d%s"
                    % (rnd + 1, self.args.idle_rounds, t, res["held"], res["pss_before"],
                       res["pss_after"], res["kib_per_session"], res["rss_kib_per_session"],
                       res["fds"], " errors=%d" % res["errors"] if res["errors"] else ""))
                if res["errors"] and res["stderr"]:
                    log("  " + res["stderr"].replace("\n", "\n  "))


    def rate_details(self, test, per):
        for t, v in per.items():
            self.add_cpu_ratios(test, t, v)
        return self.cpu_lines(test, per)

    def summary(self):
        lines, table = super().summary()
        per = self.results.get("idle", {})
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

    def add_cpu_ratios(self, test, t, v):
        """To a target's entry: login latency, CPU per unit of work, the
        median of the per-round ratios to direct."""
        rs = self.results[test][t]
        if test == "login":
            v.update(benchlib.latency_medians(rs))
        # CPU per unit of work (login, or MB), in microseconds: what
        # each process spends, whatever else the machine does.
        unit = {}
        for k in ("proxy", "dovecot", "load"):
            unit[k] = statistics.median(r[k + "_cpu"] / self.value(test, r) * 1e6
                                        for r in rs if self.value(test, r) > 0)
        v["cpu_us_per_unit"] = unit
        # The ratio to direct within each round (targets interleaved,
        # so slow drifts of the background load cancel out).
        direct = self.results[test].get("direct")
        if t != "direct" and direct:
            paired = [self.value(test, a) / self.value(test, b)
                      for a, b in zip(rs, direct) if self.value(test, b) > 0]
            if paired:
                v["paired_ratio"] = statistics.median(paired)

    @staticmethod
    def cpu_lines(test, per):
        """The report's lines on the CPU per unit of work of a rate test
        (each target's CPU-bound estimate also goes into its entry)."""
        lines = []
        paired = ["%s %.2fx" % (t, v["paired_ratio"]) for t, v in per.items()
                  if "paired_ratio" in v]
        if paired:
            lines.append("  ratio to direct, median of the per-round ratios: " + "  ".join(paired))
        # Where the cores are the bottleneck (the load generator, the
        # proxy and Dovecot share them), a target's rate relative to
        # direct is the CPU direct needs per unit over what the target
        # needs: an estimate that the background load disturbs less.
        d = per.get("direct", {}).get("cpu_us_per_unit")
        if d:
            est = []
            for t, v in per.items():
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
        for t, v in per.items():
            u = v["cpu_us_per_unit"]
            cpu.append("%s: proxy %.0f dovecot %.0f load %.0f" % (t, u["proxy"], u["dovecot"],
                                                                   u["load"]))
        lines.append(cpu[0] + "; ".join(cpu[1:]))
        return lines


# ---- main ------------------------------------------------------------------

def parse_args():
    ap = benchlib.mail_arg_parser(__doc__, TARGETS, TESTS,
                                  "login/fetch measurements per target (5)",
                                  "login, idle: distinct users (50)")
    ap.add_argument("--fetch-conns", type=int, default=4, help="fetch: concurrent clients (4)")
    ap.add_argument("--fetch-size", type=benchlib.parse_size, default=10 * 1024 * 1024,
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
    benchlib.add_round_options(ap, retries=1)
    ap.add_argument("--floor", type=float, default=0.95,
                    help="gatewayd/direct ratio the run is checked against (0.95)")
    ap.add_argument("--mem-floor", type=float, default=0.5,
                    help="gatewayd/nginx memory per idle session the run is checked against (0.5)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when gatewayd misses a floor")
    benchlib.add_output_options(ap)
    args = ap.parse_args()
    targets = benchlib.choices(ap, "--targets", args.targets, TARGETS)
    tests = benchlib.choices(ap, "--tests", args.tests, TESTS)
    if args.rounds < 1 or args.seconds <= 0 or args.conns < 1 or args.users < 1 \
            or args.fetch_conns < 1 or args.sessions < 1 or args.idle_rounds < 1:
        ap.error("rounds, seconds, conns, users, fetch-conns, sessions, idle-rounds "
                 "must be positive")
    targets = [t for t in TARGETS if t in targets and any(t in TEST_TARGETS[x] for x in tests)]
    return args, targets, tests


def main():
    args, targets, tests = parse_args()
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
    return benchlib.guarded(budget, lambda stack: run_bench(args, targets, tests, stack))


def run_bench(args, targets, tests, stack):
    ensure_packages(targets, not args.no_install)
    if "idle" in tests:
        nofile = raise_nofile(3 * args.sessions + 1000)
        if nofile < 2 * args.sessions + 200:
            log("WARNING: open file limit %d is too low for %d sessions through a proxy"
                % (nofile, args.sessions))
    info = benchlib.machine_info()
    info["uptime_before"] = subprocess.run(["uptime"], stdout=subprocess.PIPE,
                                           text=True).stdout.strip()
    log("machine: %s" % info["uptime_before"])
    benchlib.warn_if_busy(info)
    td, imapload, gw_binary, gw_btype = benchlib.prepare(
        stack, "bimap-", os.path.join(HERE, "imapload.c"), "imap", "gatewayd" in targets,
        build_targets=())   # the whole tree: the imap plugin too

    # One Dovecot for all targets.
    big = benchlib.big_message(args.fetch_size) if "fetch" in tests else None
    users, messages = benchlib.mailboxes(args.users, args.fetch_conns, big)
    clients = {"login": args.conns, "fetch": args.fetch_conns, "idle": args.sessions}
    BenchDovecot.shape_for(tests[0], clients[tests[0]])
    dovecot = BenchDovecot.start_with(td.subdir("dovecot"), users, messages)
    stack.callback(dovecot.stop)
    backend = dovecot.ports["imap"]
    run = ImapRounds(args, imapload, dovecot.pgid)
    restarts = {}       # target -> a fresh start of its proxy (idle rounds)
    if "direct" in targets:
        run.add_target("direct", backend)

    gw = None
    if "gatewayd" in targets:
        gw_port = gwtest.free_port()
        gw_conf = benchlib.gateway_config("imap", gw_port, backend, users, args.gw_log_level,
                                          login_timeout="60s", idle_timeout="31m")
        gw_dir = td.subdir("gatewayd")
        log("starting gatewayd %s" % gw_binary)
        gw = gwtest.Gateway.start(gw_conf, directory=gw_dir)
        stack.callback(lambda: gw.stop(timeout=10.0))     # the one running now
        run.add_target("gatewayd", gw_port, lambda: gw.pids())
        info["gatewayd"] = benchlib.gatewayd_version(gw_binary, gw_btype)

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
        n = benchlib.nginx_mail(td.subdir(name), "imap", backend, pb, nginx_conns,
                                nofile=2 * nginx_conns + 100).start()
        stack.callback(n.stop)
        run.add_target(name, n.port, n.pids)
        info["nginx"] = benchlib.nginx_version()

        def restart_nginx(n=n):
            n.stop()
            n.start()
        restarts[name] = restart_nginx

    if "perdition" in targets:
        log("starting perdition")
        p = Perdition(td.subdir("perdition"), backend).start()
        stack.callback(p.stop)
        run.add_target("perdition", p.port, p.pids)
        info["perdition"] = Perdition.version()

    if "haproxy" in targets:
        log("starting haproxy (mode tcp)")
        hap = benchlib.haproxy_tcp(td.subdir("haproxy"), backend).start()
        stack.callback(hap.stop)
        run.add_target("haproxy", hap.port, hap.pids)
        info["haproxy"] = benchlib.haproxy_version()

    if big is not None:
        h = 0xcbf29ce484222325
        for b in big:
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        run.literal = (len(big), "%016x" % h)
    for test in tests:
        if not run.targets(test):
            continue
        dovecot.reshape(test, clients[test])
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
    benchlib.print_round_errors(table)
    if "gatewayd" in targets:
        print("gatewayd floors (%.2fx direct, %.2fx nginx memory): %s"
              % (args.floor, args.mem_floor, "missed: " + ", ".join(below) if below else "met"))
    benchlib.finish_report(args, run, gw, {"machine": info, "args": vars(args), "results": table})
    return 1 if (args.check and below) else 0


if __name__ == "__main__":
    sys.exit(main())
