#!/usr/bin/env python3
"""POP3 benchmark: direct Dovecot vs gatewayd vs nginx's mail proxy, side by side.

One Dovecot serves all four targets:
  direct    popload -> Dovecot
  gatewayd  popload -> gatewayd (workers: 1) -> Dovecot
  nginx     popload -> nginx mail proxy (worker_processes 1) -> Dovecot
                       (auth_http answered by a location of the same nginx)
  haproxy   popload -> HAProxy, mode tcp (nbthread 1) -> Dovecot: no POP3,
                       only bytes copied; the least any proxy hop costs

Two measurements, each repeated --rounds times with the targets interleaved
(the order rotates every round), the median reported with its ratio to direct:
  login   POP3 login cycles per second (connect, USER/PASS, STAT, QUIT) at
          --conns concurrent clients (50), users user0..user49
  retr    RETR throughput in MB/s (10^6 bytes) of one large message
          (--retr-size, 10 MiB) fetched again and again by --retr-conns
          clients (4), each logged in once, users big0..big3

Everything runs on 127.0.0.1 on free ports in a temporary directory and is
torn down at the end, also on failure or Ctrl-C. Missing Debian packages
(dovecot-pop3d, nginx, libnginx-mod-mail, haproxy) are installed with apt-get when
running as root; a missing gatewayd is built (Release) in $GW_BUILD_DIR.

  bench/pop/run.py                       # full run, ~3.5 minutes
  bench/pop/run.py --rounds 3 --seconds 3 --targets direct,nginx --tests login

See bench/README.md and docs/performance.md.
"""

import importlib.util
import os
import statistics
import sys

TARGETS = ("direct", "gatewayd", "nginx", "haproxy")
TESTS = ("login", "retr")

HERE = os.path.dirname(os.path.abspath(__file__))
benchlib = importlib.util.module_from_spec(importlib.util.spec_from_file_location(
    "benchlib", os.path.join(os.path.dirname(HERE), "benchlib.py")))   # bench/: no package
benchlib.__spec__.loader.exec_module(benchlib)
gwtest, log, BenchError = benchlib.gwtest, benchlib.log, benchlib.BenchError


class BenchDovecot(benchlib.PooledDovecot):
    """Dovecot with the bench tuning (benchlib.PooledDovecot), the pop3
    process pool shaped for the test at hand:

      login  client_limit = 10: a few processes each serving several short
             sessions. With client_limit = 1 and 50 idle pop3 processes, every
             new session wakes them all on the shared listening socket (accept
             fails with EAGAIN in all but one): ~30-40% fewer logins/s here.
      retr   client_limit = 1: one process per session, so that concurrent
             RETRs run in parallel (with 10, several land in one process and
             direct RETR throughput halves).
    """

    service = "pop3"
    conf_tail = """# bench/pop/run.py
pop3_no_flag_updates = yes
service auth {
  client_limit = 2000
}
"""
    pool = {"client_limit": 1, "process_min_avail": 0, "process_limit": 100}

    @classmethod
    def pool_for(cls, test, clients):
        limit, spare = (10, clients // 10 + 2) if test == "login" else (1, clients + 2)
        return {"client_limit": limit, "process_min_avail": spare,
                "process_limit": max(100, spare + 20)}


class PopRounds(benchlib.Rounds):
    tool_name = "popload"
    bulk = "retr"
    rate_labels = {"login": "login/s ", "retr": "RETR MB/s"}

    def __init__(self, *a):
        super().__init__(*a)
        self.retr_body = None     # expected RETR answer after the status line

    def loadgen_preexec(self):
        # --pin: popload on CPU 1, with the proxies.
        return (lambda: os.sched_setaffinity(0, {1})) if self.args.pin else None

    def before_attempt(self):
        self.wait_quiet()

    def check_warmup(self, test, target, res):
        if test == "retr" and self.retr_body and res["answer_body"] != self.retr_body:
            raise BenchError("RETR through %s returned %d bytes after the status line, "
                             "expected %d" % (target, res["answer_body"], self.retr_body))
        return ""

    def rate_details(self, test, per):
        for t, v in per.items():
            rs = self.results[test][t]
            # CPU the proxy spends per unit of work: per login in µs,
            # per MB in ms. Less dependent on the machine than the rates.
            if t != "direct":
                v["proxy_cpu_per_op"] = statistics.median(
                    r["proxy_cpu"] / self.value(test, r) * (1e6 if test == "login" else 1e3)
                    for r in rs if self.value(test, r) > 0)
            if test == "login":
                v.update(benchlib.latency_medians(rs))
        cpu = ["%s %.0f" % (t, v["proxy_cpu_per_op"]) if test == "login" else
               "%s %.2f" % (t, v["proxy_cpu_per_op"])
               for t, v in per.items() if "proxy_cpu_per_op" in v]
        if not cpu:
            return []
        return ["  proxy CPU %s  %s" % ("us/login" if test == "login" else "ms/MB", "  ".join(cpu))]


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


def parse_args():
    ap = benchlib.mail_arg_parser(__doc__, TARGETS, TESTS, "measurements per target (5)",
                                  "login: distinct users (50)")
    ap.add_argument("--retr-conns", type=int, default=4, help="retr: concurrent clients (4)")
    ap.add_argument("--retr-size", type=benchlib.parse_size, default=10 * 1024 * 1024,
                    help="retr: message size (10MiB)")
    benchlib.add_round_options(ap, retries=3, quiet_wait=True)
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
    benchlib.add_output_options(ap)
    args = ap.parse_args()
    targets = benchlib.choices(ap, "--targets", args.targets, TARGETS)
    tests = benchlib.choices(ap, "--tests", args.tests, TESTS)
    if args.rounds < 1 or args.seconds <= 0 or args.conns < 1 or args.users < 1 \
            or args.retr_conns < 1:
        ap.error("rounds, seconds, conns, users and retr-conns must be positive")
    return args, [t for t in TARGETS if t in targets], tests   # targets in display order


def main():
    args, targets, tests = parse_args()
    if args.keep:
        os.environ["GW_KEEP_TMP"] = "1"
    # A hard bound on the whole run: setup + warm-ups + rounds, with margin.
    budget = 300 + len(targets) * len(tests) * (
        args.rounds * (args.retries + 1) * (args.seconds + args.quiet_wait + 3) + args.warmup + 3)
    if "gatewayd" in targets and not os.access(gwtest.gatewayd_path(), os.X_OK):
        budget += 1800
    return benchlib.guarded(budget, lambda stack: run_bench(args, targets, tests, stack))


def run_bench(args, targets, tests, stack):
    if args.pin and not {0, 1} <= os.sched_getaffinity(0):
        raise BenchError("--pin needs CPUs 0 and 1")
    benchlib.apt_install(benchlib.mail_packages("pop3", "nginx" in targets, "haproxy" in targets),
                         not args.no_install)
    info = benchlib.machine_info()
    benchlib.warn_if_busy(info)
    td, popload, gw_binary, gw_btype = benchlib.prepare(
        stack, "bpop-", os.path.join(HERE, "popload.c"), "pop", "gatewayd" in targets)

    # One Dovecot for all targets.
    big = benchlib.big_message(args.retr_size) if "retr" in tests else None
    users, messages = benchlib.mailboxes(args.users, args.retr_conns, big)
    first = tests[0]
    BenchDovecot.shape_for(first, args.conns if first == "login" else args.retr_conns)
    if args.pin:
        # Children inherit the CPU affinity of this process at fork.
        os.sched_setaffinity(0, {0})
        log("--pin: Dovecot on CPU 0; popload, gatewayd and nginx on CPU 1")
    dovecot = BenchDovecot.start_with(td.subdir("dovecot"), users, messages)
    stack.callback(dovecot.stop)
    run = PopRounds(args, popload, dovecot.pgid)
    if "direct" in targets:
        run.add_target("direct", dovecot.ports["pop3"])

    gw = None
    if "gatewayd" in targets:
        gw_port = gwtest.free_port()
        config = benchlib.gateway_config("pop", gw_port, dovecot.ports["pop3"], users,
                                         args.gw_log_level, login_timeout="30s",
                                         idle_timeout="10m")
        log("starting gatewayd %s" % gw_binary)
        with proxy_cpu_affinity(args.pin):
            gw = gwtest.Gateway.start(config, directory=td.subdir("gatewayd"))
        stack.callback(gw.stop, timeout=10.0)
        run.add_target("gatewayd", gw_port, gw.pids)
        info["gatewayd"] = benchlib.gatewayd_version(gw_binary, gw_btype)

    if "nginx" in targets:
        log("starting nginx")
        nginx = benchlib.nginx_mail(td.subdir("nginx"), "pop3", dovecot.ports["pop3"],
                                    args.nginx_proxy_buffer)
        with proxy_cpu_affinity(args.pin):
            nginx.start()
        stack.callback(nginx.stop)
        run.add_target("nginx", nginx.port, nginx.pids)
        info["nginx"] = benchlib.nginx_version()

    if "haproxy" in targets:
        log("starting haproxy (mode tcp)")
        hap = benchlib.haproxy_tcp(td.subdir("haproxy"), dovecot.ports["pop3"])
        with proxy_cpu_affinity(args.pin):
            hap.start()
        stack.callback(hap.stop)
        run.add_target("haproxy", hap.port, hap.pids)
        info["haproxy"] = benchlib.haproxy_version()

    if big is not None:
        # On the wire: the message, one more '.' per line starting with
        # one, and the terminating ".\r\n".
        run.retr_body = len(big) + sum(1 for ln in big.split(b"\r\n") if ln.startswith(b".")) + 3
    for test in tests:
        dovecot.reshape(test, args.conns if test == "login" else args.retr_conns)
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
    below = ["%s %.2fx" % (test, per["gatewayd"]["ratio"]) for test, per in table.items()
             if per.get("gatewayd") and per["gatewayd"]["ratio"] is not None
             and per["gatewayd"]["ratio"] < args.floor]
    benchlib.print_round_errors(table)
    if "gatewayd" in targets and "direct" in targets:
        print("gatewayd floor %.2fx: %s" % (args.floor, "below: " + ", ".join(below)
                                           if below else "met"))
    benchlib.finish_report(args, run, gw, {"machine": info, "args": vars(args), "results": table})
    return 1 if (args.check and below) else 0


if __name__ == "__main__":
    sys.exit(main())
