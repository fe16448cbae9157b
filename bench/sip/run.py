#!/usr/bin/env python3
"""SIP redirect benchmark: gatewayd against Kamailio, same machine, same run.

Each server answers INVITE with 302 and a Contact found by the called user
(gatewayd: static directory + locator; Kamailio: an htable lookup and a
stateless sl reply, kamailio.cfg.in). sipp (UDP) places calls INVITE -> 302 ->
ACK at stepped rates for a few seconds each; a step passes when every call
succeeded (sipp exits 0, no failed call) at 95 % of the target rate or more
(a server that falls behind still completes its calls through sipp's
retransmissions, at a fraction of the rate); the ladder stops after two
failed steps in a row. The result per server is the highest passing target
rate and the rate sipp actually achieved there. Both servers get the same
number of processes (--workers: gatewayd workers, Kamailio UDP children).

    /usr/bin/python3 bench/sip/run.py [--build build] [--workers 1] [--seconds 5]
        [--rates 2000,4000,...] [--only gatewayd|kamailio]

Needs sipp (sip-tester) and kamailio installed; gatewayd built. Prints a
Markdown table (copy it to bench/sip/RESULTS.md).
"""

import argparse
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

DEFAULT_RATES = [2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 24000, 28000]

HERE = os.path.dirname(os.path.abspath(__file__))
benchlib = importlib.util.module_from_spec(importlib.util.spec_from_file_location(
    "benchlib", os.path.join(os.path.dirname(HERE), "benchlib.py")))   # bench/: no package
benchlib.__spec__.loader.exec_module(benchlib)
g, REPO = benchlib.gwtest, benchlib.REPO


def gateway_config(build, port, ctl_port, workers):
    users = {"alice": {"password": g.hash_password("x"), "database": "db1", "sip_uri": "alice",
                       "extension": "4001"},
             "bob": {"password": g.hash_password("x"), "database": "db2", "sip_uri": "bob",
                     "extension": "4002"}}
    return {
        "workers": workers,
        "plugin_dir": os.path.join(build, "plugins"),
        "log_level": "warn",
        "shutdown_timeout": "1s",
        "directory": {"source": "static", "users": users},
        "locator": {"source": "static", "health": {"enabled": False},
                    "servers": {"mbx1": {"address": "127.0.0.1", "site": "a",
                                         "services": {"sip": {"port": 15061}}},
                                "mbx2": {"address": "127.0.0.1", "site": "a",
                                         "services": {"sip": {"port": 15062}}}},
                    "databases": {"db1": {"copies": ["mbx1", "mbx2"]},
                                  "db2": {"copies": ["mbx2", "mbx1"]}}},
        "sites": {"a": {}},
        "protocols": {"sip": {"listen": [{"address": "127.0.0.1:%d" % port, "transport": "udp"},
                                         {"address": "127.0.0.1:%d" % ctl_port}]}},
    }


def wait_udp_options(port, timeout=10.0):
    """Wait until the server answers an OPTIONS over UDP."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    p = s.getsockname()[1]
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        req = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKw%d\r\n"
               "From: <sip:b@x>;tag=1\r\nTo: <sip:x>\r\nCall-ID: w%d\r\nCSeq: 1 OPTIONS\r\n"
               "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n" % (port, p, n, n)).encode()
        s.sendto(req, ("127.0.0.1", port))
        try:
            if s.recv(4096).startswith(b"SIP/2.0 200"):
                s.close()
                return
        except OSError:
            pass
    s.close()
    raise RuntimeError("nothing answers OPTIONS on udp %d" % port)


def run_step(port, rate, seconds, workdir, user="alice"):
    """One sipp run; returns (ok, successful, failed, retransmissions, achieved_cps)."""
    calls = rate * seconds
    stat = os.path.join(workdir, "stat-%d-%d.csv" % (port, rate))
    cmd = ["sipp", "127.0.0.1:%d" % port, "-sf", os.path.join(HERE, "uac_redirect.xml"),
           "-s", user, "-t", "u1", "-r", str(rate), "-m", str(calls),
           "-i", "127.0.0.1", "-p", str(g.free_port()), "-ci", "127.0.0.1", "-cp", str(g.free_port()),
           "-mi", "127.0.0.1", "-mp", str(g.free_port()), "-nostdin",
           "-timeout", "%ds" % (seconds * 4 + 20), "-timeout_error", "-default_behaviors", "-bye",
           "-trace_stat", "-stf", stat, "-fd", "1", "-buff_size", "4194304"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=seconds * 4 + 60)
    elapsed = time.monotonic() - t0
    ok_calls = failed = retrans = 0
    duration = elapsed
    try:
        with open(stat) as f:
            rows = list(csv.reader(f, delimiter=";"))
        head, last = rows[0], rows[-1]
        col = {name: i for i, name in enumerate(head)}
        ok_calls = int(last[col["SuccessfulCall(C)"]])
        failed = int(last[col["FailedCall(C)"]])
        retrans = int(last[col["Retransmissions(C)"]])
        # ElapsedTime(C) is "HH:MM:SS:usec" style; sipp's own clock
        et = last[col["ElapsedTime(C)"]].split(":")
        duration = int(et[0]) * 3600 + int(et[1]) * 60 + float(et[2]) + (
            float(et[3]) / 1e6 if len(et) > 3 else 0)
    except (OSError, KeyError, IndexError, ValueError):
        pass
    achieved = ok_calls / duration if duration > 0 else 0.0
    # sustained: every call succeeded, and at (nearly) the rate asked for --
    # a server that falls behind still completes its calls through
    # retransmissions, at a fraction of the rate
    ok = p.returncode == 0 and failed == 0 and ok_calls == calls and achieved >= 0.95 * rate
    return ok, ok_calls, failed, retrans, achieved


def measure(name, port, rates, seconds, workdir):
    best = None
    results = []
    for rate in rates:
        ok, succ, failed, retrans, cps = run_step(port, rate, seconds, workdir)
        results.append((rate, ok, succ, failed, retrans, cps))
        print("%-9s target %6d/s: %s  calls %d failed %d retrans %d  achieved %.0f/s"
              % (name, rate, "ok  " if ok else "FAIL", succ, failed, retrans, cps), flush=True)
        if ok:
            best = (rate, cps, retrans)
        elif len(results) >= 2 and not results[-2][1]:
            break   # two failed steps in a row: the machine is not noisy, the server is full
    return best, results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    ap.add_argument("--only", choices=("gatewayd", "kamailio"))
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    build = os.path.abspath(args.build)
    for tool in ("sipp",) + (() if args.only == "gatewayd" else ("kamailio",)):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("%s is not installed" % tool)
    workdir = tempfile.mkdtemp(prefix="gwbench-sip-")
    summary = {}
    try:
        if args.only in (None, "gatewayd"):
            port, ctl = g.free_port(), g.free_port()
            conf = os.path.join(workdir, "gateway.yaml")
            with open(conf, "w") as f:
                f.write(g.to_yaml(gateway_config(build, port, ctl, args.workers)))
            srv = benchlib.Server("gatewayd", [os.path.join(build, "gatewayd"), "-c", conf],
                                  workdir, output="gatewayd.log").start()
            try:
                wait_udp_options(port)
                summary["gatewayd"] = measure("gatewayd", port, rates, args.seconds, workdir)
            finally:
                srv.stop()
        if args.only in (None, "kamailio"):
            port = g.free_port()
            with open(os.path.join(HERE, "kamailio.cfg.in")) as f:
                cfg = (f.read().replace("@PORT@", str(port))
                       .replace("@CHILDREN@", str(args.workers)))
            conf = os.path.join(workdir, "kamailio.cfg")
            with open(conf, "w") as f:
                f.write(cfg)
            kam = shutil.which("kamailio") or "/usr/sbin/kamailio"
            srv = benchlib.Server("kamailio", [kam, "-f", conf, "-DD", "-E", "-m", "256",
                                               "-M", "16",
                                               "-P", os.path.join(workdir, "kamailio.pid"),
                                               "-Y", workdir], workdir, output="kamailio.log").start()
            try:
                wait_udp_options(port)
                summary["kamailio"] = measure("kamailio", port, rates, args.seconds, workdir)
            finally:
                srv.stop()
    finally:
        if os.environ.get("GW_KEEP_TMP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("kept", workdir)

    print("\n| server | workers | highest sustained target rate (0 failed calls) | achieved calls/s there | retransmissions there |")
    print("|---|---|---|---|---|")
    for name, (best, _) in summary.items():
        if best is None:
            print("| %s | %d | none of the steps | | |" % (name, args.workers))
        else:
            print("| %s | %d | %d | %.0f | %d |" % (name, args.workers, best[0], best[1], best[2]))
    if "gatewayd" in summary and "kamailio" in summary and summary["kamailio"][0] and summary["gatewayd"][0]:
        print("\ngatewayd / kamailio (achieved): %.2f"
              % (summary["gatewayd"][0][1] / summary["kamailio"][0][1]))


if __name__ == "__main__":
    main()
