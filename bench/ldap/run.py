#!/usr/bin/env python3
"""LDAP directory benchmark: lookups per second, cached and uncached, and the
latency a login through gatewayd adds over logging in to the backend directly.

    bench/ldap/run.py                      # ~1 minute on 2 cores
    GW_BUILD_DIR=/tmp/build-rel bench/ldap/run.py --json /tmp/ldap.json
    bench/ldap/run.py --seconds 3 --logins 100   # quicker

What it starts, all on 127.0.0.1 and free ports, in temporary directories
(tests/support: slapd.py and gwtest.py):
  - slapd (mdb, the shipped schema, no stats log), users user0..user49
    (password pw<N>) with gwMailUser entries;
  - one Dovecot holding the same users (POP3);
  - gatewayd, workers: 1, the LDAP directory pointing at that slapd, one
    server = that Dovecot; once with auth.cache_ttl 5m ("cached") and once
    with 0s ("uncached": every login is a search and a bind).

Measurements:
  1. ldapbench (bench/ldap/ldapbench.c, linked with <build>/libgwcore.a):
     gw_authenticate() in a loop on one libev loop, 16 outstanding, like a
     worker with nothing else to do: lookups/s and p50/p99, uncached and
     cached.
  2. POP3 logins, one at a time (connect, greeting, USER, PASS, QUIT): direct
     to Dovecot, through gatewayd cached, through gatewayd uncached. Median
     and p90, and the medians' difference to direct: the added latency.
Every value is the median of --rounds rounds.
"""

import argparse
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time

NUSERS = 50

HERE = os.path.dirname(os.path.abspath(__file__))
benchlib = importlib.util.module_from_spec(importlib.util.spec_from_file_location(
    "benchlib", os.path.join(os.path.dirname(HERE), "benchlib.py")))   # bench/: no package
benchlib.__spec__.loader.exec_module(benchlib)
import slapd as S  # noqa: E402  (tests/support, on the path through benchlib)
g, REPO = benchlib.gwtest, benchlib.REPO


def build_ldapbench(build, outdir):
    lib = os.path.join(build, "libgwcore.a")
    if not os.path.exists(lib):
        raise SystemExit("no %s: build gatewayd first (cmake --build %s)" % (lib, build))
    out = os.path.join(outdir, "ldapbench")
    libs = subprocess.run(["pkg-config", "--libs", "ldap", "yaml-0.1", "openssl"], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.split()
    cmd = ["cc", "-O2", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
           "-I", os.path.join(REPO, "core"), "-I", os.path.join(REPO, "include"),
           os.path.join(HERE, "ldapbench.c"), lib] + libs + ["-lev", "-lcrypt", "-ldl",
                                                            "-lpthread", "-o", out]
    if b"__asan_init" in open(lib, "rb").read():
        cmd.insert(1, "-fsanitize=address,undefined")
        print("warning: %s is a sanitizer build: numbers mean little" % build, file=sys.stderr)
    subprocess.run(cmd, check=True)
    return out


def gateway_config(dovecot, slapd, tmp, cache_ttl, port):
    cfg = {
        "workers": 1,
        "plugin_dir": g.plugin_dir(),
        "log_level": "warn",
        "auth": {"failure_delay": "0s", "cache_ttl": cache_ttl, "cache_size": 10000,
                 "penalty": {"after": 0, "lockout_user": 0, "lockout_ip": 0}},
        "upstream": {"connect_timeout": "2s"},
        "directory": S.directory_config([slapd.uri], slapd.password_file(tmp),
                                        timeout="5s", connect_timeout="2s"),
        "locator": {"source": "static",
                    "servers": {"mbx1": {"address": "127.0.0.1", "site": "a",
                                         "services": {"pop": {"port": dovecot.ports["pop3"]}}}},
                    "databases": {"db1": {"copies": ["mbx1"]}}},
        "sites": {"a": {}},
        "protocols": {"pop": {"listen": [g.listener(port, "none", allow_plaintext=True)]}},
    }
    return cfg


def ldapbench(tool, conf_path, seconds, concurrency):
    r = subprocess.run([tool, "-c", conf_path, "-n", str(NUSERS), "-C", str(concurrency),
                        "-d", str(seconds), "-W", "1", "-u", "user", "-w", "pw"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=seconds + 30, env=S.env())
    if r.returncode != 0:
        raise RuntimeError("ldapbench failed (%d): %s %s" % (r.returncode, r.stdout, r.stderr))
    return dict(kv.split("=") for kv in r.stdout.split())


def pop_login(port, user, password):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rwb")
        for send in (None, b"USER %s\r\n" % user.encode(), b"PASS %s\r\n" % password.encode(),
                     b"QUIT\r\n"):
            if send is not None:
                f.write(send)
                f.flush()
            line = f.readline()
            if not line.startswith(b"+OK"):
                raise RuntimeError("POP3 answered %r" % line)


def login_latency(port, n):
    times = []
    for i in range(n):
        u = i % NUSERS
        t = time.perf_counter()
        pop_login(port, "user%d" % u, "pw%d" % u)
        times.append((time.perf_counter() - t) * 1000.0)
    times.sort()
    return {"p50_ms": times[len(times) // 2], "p90_ms": times[len(times) * 9 // 10]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="ldapbench run length")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--logins", type=int, default=300, help="POP3 logins per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = ap.parse_args()
    if args.keep:
        os.environ["GW_KEEP_TMP"] = "1"
    load = os.getloadavg()[0]
    if load > os.cpu_count():
        print("warning: load average %.1f on %d cores: numbers will be noisy"
              % (load, os.cpu_count()), file=sys.stderr)

    tmp = g.TempDir(prefix="ldb-")
    tool = build_ldapbench(g.build_dir(), tmp.path)
    users = {"user%d" % i: {"password": "pw%d" % i, "database": "db1"} for i in range(NUSERS)}
    slapd = S.Slapd.start(users=users, stats=False)
    dovecot = g.Dovecot.start("bench", users={u: v["password"] for u, v in users.items()},
                              tls=False)
    results = {"machine": {"cores": os.cpu_count(), "load": load}}
    gws = {}
    try:
        for name, ttl in (("cached", "5m"), ("uncached", "0s")):
            port = g.free_port()
            cfg = gateway_config(dovecot, slapd, tmp.path, ttl, port)
            d = tmp.subdir("gw-" + name)
            gws[name] = (g.Gateway.start(cfg, directory=d, env=S.env()), port)
            with open(os.path.join(d, "bench.yaml"), "w") as f:
                f.write(g.to_yaml(cfg))
        # 1. lookups per second
        for name in ("uncached", "cached"):
            conf_path = os.path.join(tmp.path, "gw-" + name, "bench.yaml")
            runs = [ldapbench(tool, conf_path, args.seconds, args.concurrency)
                    for _ in range(args.rounds)]
            per_sec = statistics.median(float(r["per_sec"]) for r in runs)
            results["lookups_" + name] = {
                "per_sec": per_sec,
                "p50_us": statistics.median(float(r["p50_us"]) for r in runs),
                "p99_us": statistics.median(float(r["p99_us"]) for r in runs)}
            print("lookups/s %-9s %8.0f  p50 %6.0f us  p99 %6.0f us" % (
                name, per_sec, results["lookups_" + name]["p50_us"],
                results["lookups_" + name]["p99_us"]), flush=True)
        # 2. login latency
        targets = [("direct", dovecot.ports["pop3"]), ("gatewayd cached", gws["cached"][1]),
                   ("gatewayd uncached", gws["uncached"][1])]
        for _, port in targets:
            login_latency(port, 20)     # warm-up (caches, processes)
        lat = {}
        for name, port in targets:
            rounds = [login_latency(port, args.logins) for _ in range(args.rounds)]
            lat[name] = {"p50_ms": statistics.median(r["p50_ms"] for r in rounds),
                         "p90_ms": statistics.median(r["p90_ms"] for r in rounds)}
        results["login_latency"] = lat
        base = lat["direct"]["p50_ms"]
        for name, _ in targets:
            extra = "" if name == "direct" else "  (+%.2f ms)" % (lat[name]["p50_ms"] - base)
            print("POP3 login %-18s p50 %6.2f ms  p90 %6.2f ms%s" % (
                name, lat[name]["p50_ms"], lat[name]["p90_ms"], extra), flush=True)
        for gw, _ in gws.values():
            gw.stop()
            gw.check_log()
    finally:
        for gw, _ in gws.values():
            gw.stop()
        g.Dovecot.stop_all([dovecot])
        slapd.stop()
    benchlib.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
