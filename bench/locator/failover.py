#!/usr/bin/env python3
"""Locator benchmark: unplanned failover and planned switchover, measured
from the clients' side, with two real Dovecot copies behind gatewayd.

  failover    --trials (15) times: clients log in continuously (--clients, 4,
              users of db1, whose active copy is mbx1); mbx1 is killed
              (SIGKILL of its whole process group); the time from the kill
              to the first successful login *started after the kill* on mbx2
              is one sample. Also counted per trial: login attempts that failed
              around the kill (in flight when mbx1 died), logins that went
              back to mbx1 afterwards (a flap), and gatewayd workers that
              died. Each trial has a fresh gatewayd and a restarted mbx1.
              Prints min / median / p90 / max.
  switchover  clients log in continuously (db1 and db2 users) while
              `gatewayctl switchover db1 mbx2|mbx1` moves db1 back and forth
              (--switches, 10, every --switch-every seconds, 1.0). Counts
              login attempts and failed ones (must be 0), sessions cut after
              their login (by the move's session closing), and for each switch
              the time from gatewayctl's return to the first login that lands
              on the new active copy.

Every locator and upstream setting is at its default (health interval 2s,
timeout 1s, rise 2, fall 2; hold_down 3s; move_close_window 30s;
upstream.connect_timeout 5s, retries 1; workers auto), as are the POP3
plugin's timeouts. gatewayd and gatewayctl come from $GW_BUILD_DIR (default
build/); Dovecot and gatewayd are started with tests/support/gwtest.py on
127.0.0.1 and free ports, and stopped by PID also on failure or Ctrl-C.

  GW_BUILD_DIR=/tmp/build bench/locator/failover.py
  bench/locator/failover.py --trials 20 --json /tmp/locator.json
  bench/locator/failover.py --only switchover --switches 20

See bench/README.md and docs/performance.md ("Locator").
"""

import argparse
import importlib.util
import math
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

SOCK_TIMEOUT = 15.0             # every client socket operation

HERE = os.path.dirname(os.path.abspath(__file__))
benchlib = importlib.util.module_from_spec(importlib.util.spec_from_file_location(
    "benchlib", os.path.join(os.path.dirname(HERE), "benchlib.py")))   # bench/: no package
benchlib.__spec__.loader.exec_module(benchlib)
log = benchlib.log
g = benchlib.gwtest
USERS = g.STANDARD_USERS        # alice, carol: db1 [mbx1, mbx2]; bob: db2 [mbx2, mbx1]


def gatewayctl_path():
    return os.path.join(g.build_dir(), "gatewayctl")


# ---- one POP3 login ---------------------------------------------------------

class Attempt:
    __slots__ = ("user", "start", "end", "ok", "backend", "cut", "error")

    def __init__(self, user, start):
        self.user, self.start = user, start
        self.end = None
        self.ok = False         # PASS answered +OK
        self.backend = None     # from the Subject of message 1
        self.cut = False        # logged in, then the connection was closed
        self.error = None


def _readline(f):
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    return line


def login_once(port, user):
    """connect, USER, PASS, TOP 1 0 (which backend), QUIT."""
    a = Attempt(user, time.monotonic())
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=SOCK_TIMEOUT) as s:
            f = s.makefile("rb")
            _readline(f)
            s.sendall(b"USER %s\r\n" % user.encode())
            _readline(f)
            s.sendall(b"PASS %s\r\n" % USERS[user][0].encode())
            r = _readline(f)
            if not r.startswith(b"+OK"):
                a.error = r.strip().decode("ascii", "replace")
                return a
            a.ok = True
            try:
                s.sendall(b"TOP 1 0\r\n")
                if _readline(f).startswith(b"+OK"):
                    while True:
                        line = _readline(f)
                        if line == b".\r\n":
                            break
                        m = re.match(rb"Subject: welcome \S+ on (\S+)\r\n", line)
                        if m:
                            a.backend = m.group(1).decode()
                s.sendall(b"QUIT\r\n")
                _readline(f)
            except (OSError, EOFError) as e:
                a.cut = True
                a.error = "after login: %s" % e
    except (OSError, EOFError) as e:
        a.error = repr(e)
    finally:
        a.end = time.monotonic()
    return a


class Clients:
    """n threads logging in back to back, round-robin over users, recording
    every attempt."""

    def __init__(self, port, users, n):
        self.port, self.users, self.n = port, users, n
        self.attempts = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n)]

    def _run(self, i):
        k = i
        while not self.stop_ev.is_set():
            a = login_once(self.port, self.users[k % len(self.users)])
            k += 1
            with self.lock:
                self.attempts.append(a)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(SOCK_TIMEOUT * 4)

    def snapshot(self):
        with self.lock:
            return list(self.attempts)


# ---- setup -------------------------------------------------------------------

def gateway_config(backends, tmp):
    config, info = g.standard_config(backends, tmp.path, users=USERS)
    # Product defaults everywhere but the listener and the users.
    config.pop("workers", None)
    config["upstream"].pop("connect_timeout", None)
    config["upstream"].pop("retries", None)
    for k in ("backend_timeout", "login_timeout"):
        config["protocols"]["pop"].pop(k, None)
    config["log_level"] = "info"
    config["admin"] = {"socket": tmp.join("admin")}
    return config, info["ports"]["plain"]


def wait_admin(gw, timeout=15.0):
    """Every worker's admin socket answers `show`."""
    def ready():
        n = len(gw.worker_pids())
        if n == 0:
            return False
        r = subprocess.run([gatewayctl_path(), "-c", gw.conf_path, "show"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=10)
        return r.returncode == 0 and r.stdout.count("database db1 ") == n
    if not g.wait_until(ready, timeout, 0.02):
        raise RuntimeError("gatewayd's admin sockets did not all answer")


def start_gateway(config, directory):
    gw = g.Gateway.start(config, directory=directory)
    wait_admin(gw)
    return gw


def quantile(sorted_values, q):
    """Nearest-rank quantile."""
    if not sorted_values:
        return float("nan")
    k = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[k - 1]


def crashes(gw_log_text):
    return len(re.findall(r"killed by signal", gw_log_text))


# ---- failover -------------------------------------------------------------------

def failover_trial(n, backends, tmp, clients_n, settle):
    mbx1 = backends["mbx1"]
    gdir = tmp.subdir("gw-failover-%02d" % n)
    config, port = gateway_config(backends, tmp)
    gw = start_gateway(config, gdir)
    try:
        for _ in range(3):
            warm = login_once(port, "alice")
            if warm.backend == "mbx1":
                break
            log("trial %d: warm-up login reached %s (%s); again; gatewayd's log ends:\n%s"
                % (n, warm.backend, warm.error, g._tail(gw.log_path, 8)))
        if warm.backend != "mbx1":
            raise RuntimeError("trial %d: warm-up login reached %s (%s)\n--- gatewayd ---\n%s\n"
                               "--- mbx1 ---\n%s" % (n, warm.backend, warm.error,
                                                      g._tail(gw.log_path, 30),
                                                      g._tail(mbx1.log_path, 30)))
        clients = Clients(port, ["alice", "carol"], clients_n)
        clients.start()
        # Steady state first: a few logins on mbx1 from every client.
        g.wait_until(lambda: sum(1 for a in clients.snapshot() if a.backend == "mbx1") >= 4 * clients_n,
                     10.0, 0.005)
        t_kill = time.monotonic()
        mbx1.kill()
        t_killed = time.monotonic()

        def first_on_mbx2():
            ok = [a for a in clients.snapshot()
                  if a.start >= t_kill and a.ok and a.backend == "mbx2"]
            return min((a.end for a in ok), default=None)
        first = g.wait_until(first_on_mbx2, 30.0, 0.005)
        # Keep going a little: errors and flaps after the first success count.
        time.sleep(settle)   # a measured observation window, not a readiness wait
        clients.stop()
        attempts = clients.snapshot()
    finally:
        gw.stop()
        log_text = gw.log_text()
    after = [a for a in attempts if a.end >= t_kill]
    res = {
        "trial": n,
        "failover_ms": None if first is None else round((first - t_kill) * 1000, 1),
        "kill_ms": round((t_killed - t_kill) * 1000, 1),
        "attempts_after_kill": len(after),
        # in flight when mbx1 died (started before the kill) / new logins
        "failed_inflight": sum(1 for a in after if not a.ok and a.start < t_kill),
        "failed_new": sum(1 for a in after if not a.ok and a.start >= t_kill),
        "cut_after_login": sum(1 for a in after if a.cut),
        "back_on_mbx1": sum(1 for a in after if a.start > t_killed and a.backend == "mbx1"),
        "worker_crashes": crashes(log_text),
        "errors": sorted({a.error for a in after if a.error})[:5],
    }
    mbx1.restart()
    return res


def run_failover(args, backends, tmp):
    results = []
    for n in range(1, args.trials + 1):
        r = failover_trial(n, backends, tmp, args.clients, args.settle)
        results.append(r)
        log("failover trial %2d: %s ms  (failed logins: in flight %d, new %d; cut %d, flaps %d, "
            "worker crashes %d)%s"
            % (n, r["failover_ms"], r["failed_inflight"], r["failed_new"], r["cut_after_login"],
               r["back_on_mbx1"], r["worker_crashes"],
               ("  " + "; ".join(r["errors"])) if r["errors"] else ""))
    times = sorted(r["failover_ms"] for r in results if r["failover_ms"] is not None)
    summary = {
        "trials": len(results),
        "no_failover": sum(1 for r in results if r["failover_ms"] is None),
        "min_ms": times[0] if times else None,
        "median_ms": statistics.median(times) if times else None,
        "p90_ms": quantile(times, 0.9) if times else None,
        "max_ms": times[-1] if times else None,
        "failed_inflight": sum(r["failed_inflight"] for r in results),
        "failed_new": sum(r["failed_new"] for r in results),
        "trials_with_failed_new": sum(1 for r in results if r["failed_new"]),
        "cut_after_login": sum(r["cut_after_login"] for r in results),
        "flaps": sum(r["back_on_mbx1"] for r in results),
        "worker_crashes": sum(r["worker_crashes"] for r in results),
    }
    return {"summary": summary, "trials": results}


# ---- switchover -------------------------------------------------------------------

def run_switchover(args, backends, tmp):
    config, port = gateway_config(backends, tmp)
    gw = start_gateway(config, tmp.subdir("gw-switchover"))
    ctl = [gatewayctl_path(), "-c", gw.conf_path]
    switches = []
    try:
        clients = Clients(port, ["alice", "carol", "bob"], args.clients)
        clients.start()
        if not g.wait_until(lambda: len(clients.snapshot()) >= 10 * args.clients, 20.0, 0.01):
            raise RuntimeError("clients do not get logged in")
        target = "mbx2"
        for i in range(args.switches):
            t0 = time.monotonic()
            r = subprocess.run(ctl + ["switchover", "db1", target], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=20)
            t1 = time.monotonic()
            if r.returncode != 0:
                raise RuntimeError("gatewayctl switchover failed: %s%s" % (r.stdout, r.stderr))
            switches.append({"to": target, "t_cmd": t0, "t_done": t1})
            # Paced switches: the next one a fixed time after this one.
            time.sleep(max(0.0, args.switch_every - (time.monotonic() - t0)))
            target = "mbx1" if target == "mbx2" else "mbx2"
        time.sleep(args.settle)
        clients.stop()
        attempts = clients.snapshot()
    finally:
        gw.stop()
        log_text = gw.log_text()
    t_first = switches[0]["t_cmd"] if switches else 0
    during = [a for a in attempts if a.end >= t_first]
    for k, sw in enumerate(switches):
        nxt = switches[k + 1]["t_cmd"] if k + 1 < len(switches) else float("inf")
        landed = [a.end for a in during if a.user in ("alice", "carol") and a.ok and
                  a.backend == sw["to"] and a.start >= sw["t_done"] and a.start < nxt]
        sw["first_login_on_new_ms"] = (round((min(landed) - sw["t_done"]) * 1000, 1)
                                       if landed else None)
        sw["cmd_ms"] = round((sw["t_done"] - sw["t_cmd"]) * 1000, 1)
        # Logins started after the command returned that still went to the old copy.
        sw["late_on_old"] = sum(1 for a in during if a.user in ("alice", "carol") and a.ok and
                                a.backend not in (None, sw["to"]) and
                                sw["t_done"] <= a.start < nxt)
        del sw["t_cmd"], sw["t_done"]
    lat = sorted(s["first_login_on_new_ms"] for s in switches if s["first_login_on_new_ms"] is not None)
    summary = {
        "switches": len(switches),
        "clients": args.clients,
        "login_attempts": len(during),
        "failed_logins": sum(1 for a in during if not a.ok),
        "cut_after_login": sum(1 for a in during if a.cut),
        "late_on_old_copy": sum(s["late_on_old"] for s in switches),
        "first_login_on_new_max_ms": lat[-1] if lat else None,
        "first_login_on_new_median_ms": statistics.median(lat) if lat else None,
        "gatewayctl_max_ms": max((s["cmd_ms"] for s in switches), default=None),
        "worker_crashes": crashes(log_text),
        "bob_not_on_mbx2": sum(1 for a in during if a.user == "bob" and a.ok and a.backend != "mbx2"),
        "errors": sorted({a.error for a in during if a.error})[:5],
    }
    return {"summary": summary, "switches": switches}


# ---- main ------------------------------------------------------------------------

def machine():
    model = benchlib.cpu_model(None) or platform.processor()
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "loadavg_1m": os.getloadavg()[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=15, help="failover trials (at least 10)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent login loops")
    ap.add_argument("--switches", type=int, default=10, help="switchovers in the switchover run")
    ap.add_argument("--switch-every", type=float, default=1.0, help="seconds between switchovers")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds of logins observed after the failover / last switchover")
    ap.add_argument("--only", choices=("failover", "switchover"))
    ap.add_argument("--json", help="write the results here as well")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless p90 failover < 2 s and no switchover login failed")
    args = ap.parse_args()
    for path in (g.gatewayd_path(), gatewayctl_path()):
        if not os.access(path, os.X_OK):
            sys.exit("bench: %s not built (set GW_BUILD_DIR; build targets gatewayd gatewayctl)" % path)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
    info = machine()
    if info["loadavg_1m"] > (os.cpu_count() or 1) * 0.5:
        log("warning: load average %.1f: the machine is busy, timings will be noisy"
            % info["loadavg_1m"])
    out = {"machine": info, "build": g.build_dir()}
    tmp = g.TempDir(prefix="bloc-")
    backends = g.start_backends(("mbx1", "mbx2"), users={u: pw for u, (pw, _) in USERS.items()},
                                directory=tmp.path)
    try:
        if args.only in (None, "failover"):
            out["failover"] = run_failover(args, backends, tmp)
            s = out["failover"]["summary"]
            print("failover (kill active -> first new login on the next copy), %d trials, "
                  "%d clients:" % (s["trials"], args.clients))
            print("  min %s ms  median %s ms  p90 %s ms  max %s ms  (no failover: %d)"
                  % (s["min_ms"], s["median_ms"], s["p90_ms"], s["max_ms"], s["no_failover"]))
            print("  failed logins: in flight at the kill %d, started after it %d (in %d trials); "
                  "sessions cut after login %d; flaps back to the dead copy %d; "
                  "gatewayd worker crashes %d"
                  % (s["failed_inflight"], s["failed_new"], s["trials_with_failed_new"],
                     s["cut_after_login"], s["flaps"], s["worker_crashes"]))
        if args.only in (None, "switchover"):
            out["switchover"] = run_switchover(args, backends, tmp)
            s = out["switchover"]["summary"]
            print("switchover (gatewayctl switchover db1, back and forth): %d switches, "
                  "%d clients, %d login attempts:" % (s["switches"], s["clients"], s["login_attempts"]))
            print("  failed logins %d, sessions cut after login %d, logins on the old copy after "
                  "the command returned %d, gatewayd worker crashes %d"
                  % (s["failed_logins"], s["cut_after_login"], s["late_on_old_copy"],
                     s["worker_crashes"]))
            print("  first login on the new copy after gatewayctl returned: median %s ms, max %s ms;"
                  " gatewayctl itself max %s ms"
                  % (s["first_login_on_new_median_ms"], s["first_login_on_new_max_ms"],
                     s["gatewayctl_max_ms"]))
            if s["errors"]:
                print("  errors: " + "; ".join(s["errors"]))
    finally:
        g.Dovecot.stop_all(list(backends.values()))
        tmp.cleanup()
    benchlib.write_json(args.json, out)
    if args.check:
        bad = []
        fo = out.get("failover", {}).get("summary")
        if fo and (fo["p90_ms"] is None or fo["p90_ms"] >= 2000 or fo["no_failover"]):
            bad.append("failover p90 %s ms" % fo["p90_ms"])
        so = out.get("switchover", {}).get("summary")
        if so and so["failed_logins"]:
            bad.append("%d failed logins during switchovers" % so["failed_logins"])
        if bad:
            print("check: FAILED: " + ", ".join(bad))
            sys.exit(1)
        print("check: met")


if __name__ == "__main__":
    main()
