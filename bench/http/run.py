#!/usr/bin/env python3
"""HTTP benchmark: gatewayd vs nginx and HAProxy as reverse proxies vs the
direct origin, side by side, with wrk.

One origin serves every target: an nginx (worker_processes 1) with two
static files, /1k (1 KiB) and /1m (1 MiB), keep-alive on.

  direct    wrk -> origin
  gatewayd  wrk -> gatewayd (workers: 1, Basic authentication of user
                   "bench" with the credential cache warm) -> origin
  nginx     wrk -> nginx reverse proxy (worker_processes 1, upstream
                   keepalive) -> origin
  haproxy   wrk -> HAProxy (nbthread 1, http-reuse always) -> origin

For each body size (1 KiB, 1 MiB) and connection count (1, 50): --rounds
rounds of --seconds each, targets interleaved and their order rotated every
round; the medians of requests/s and p99 latency are reported with the
ratios to nginx. wrk runs one thread; every target gets the same machine.
The same Authorization header is sent to every target (only gatewayd checks
it), so all requests have the same size.

Floors (issue 6): gatewayd requests/s >= nginx's for both sizes, p99 no
worse than nginx's. --check exits 1 when a floor is missed.

Missing Debian packages (nginx, haproxy, wrk) are installed with apt-get
when running as root. gatewayd comes from $GW_BUILD_DIR (default build/),
built (Release) when missing.

  bench/http/run.py                                   # ~6 minutes
  bench/http/run.py --rounds 3 --seconds 3            # the quick look
  bench/http/run.py --targets gatewayd,nginx --sizes 1k --conns 50 --json out.json
"""

import argparse
import atexit
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import gwtest  # noqa: E402  (free ports, processes, gatewayd)

TARGETS = ("direct", "gatewayd", "nginx", "haproxy")
SIZES = {"1k": 1024, "1m": 1024 * 1024}
USER, PASSWORD = "bench", "bench-password"


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---- prerequisites -------------------------------------------------------------

def ensure_packages(targets, allow_install):
    need = []
    if not shutil.which("nginx"):
        need.append("nginx-light")
    if "haproxy" in targets and not shutil.which("haproxy"):
        need.append("haproxy")
    if not shutil.which("wrk"):
        need.append("wrk")
    if not need:
        return
    if not allow_install or os.geteuid() != 0:
        raise BenchError("missing packages: %s; as root: apt-get install %s"
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
    plugin = os.path.join(gwtest.plugin_dir(), "http.so")
    build = gwtest.build_dir()
    if not (os.access(binary, os.X_OK) and os.path.exists(plugin)):
        log("gatewayd or the http plugin missing; building %s (Release)" % build)
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


# ---- servers -------------------------------------------------------------------

class Proc:
    """A server in the foreground, in its own process group, stopped by PID."""

    def __init__(self, name, argv, directory, ports):
        self.name = name
        self.argv = argv
        self.dir = directory
        self.ports = ports
        self.proc = None

    def start(self, timeout=15.0):
        out = open(os.path.join(self.dir, self.name + ".stderr"), "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=self.dir)
        finally:
            out.close()
        atexit.register(self.stop)
        for p in self.ports:
            gwtest.wait_port("127.0.0.1", p, timeout, proc=self.proc, what=self.name)
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
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.proc = None


NGINX_HEAD = """# generated by bench/http/run.py
daemon off;
master_process on;
worker_processes 1;
pid {d}/{name}.pid;
error_log {d}/{name}.error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/{name}-body;
    proxy_temp_path {d}/tmp/{name}-proxy;
    fastcgi_temp_path {d}/tmp/{name}-fastcgi;
    uwsgi_temp_path {d}/tmp/{name}-uwsgi;
    scgi_temp_path {d}/tmp/{name}-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
"""


def origin_nginx(d):
    port = gwtest.free_port()
    www = os.path.join(d, "www")
    os.makedirs(www, exist_ok=True)
    for name, size in SIZES.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write(os.urandom(size))
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("ok\n")
    conf = os.path.join(d, "origin.conf")
    with open(conf, "w") as f:
        f.write(NGINX_HEAD.format(d=d, name="origin") + """
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        default_type application/octet-stream;
    }}
}}
""".format(port=port, www=www))
    return Proc("origin", ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "origin.error.log")],
                d, [port]), port


def proxy_nginx(d, origin_port):
    port = gwtest.free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_HEAD.format(d=d, name="nginx") + """
    upstream origin {{
        server 127.0.0.1:{origin};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
""".format(origin=origin_port, port=port))
    return Proc("nginx", ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "nginx.error.log")],
                d, [port]), port


def proxy_haproxy(d, origin_port):
    port = gwtest.free_port()
    conf = os.path.join(d, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write("""# generated by bench/http/run.py
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server origin 127.0.0.1:{origin}
""".format(port=port, origin=origin_port))
    return Proc("haproxy", ["haproxy", "-W", "-db", "-f", conf], d, [port]), port


def gatewayd_config(d, port, origin_port):
    return {
        "workers": 1,
        "plugin_dir": gwtest.plugin_dir(),
        "log_level": "warn",
        "shutdown_timeout": "2s",
        "auth": {"failure_delay": "1s", "cache_ttl": "1h", "negative_ttl": "30s",
                 "cache_size": 1000},
        "upstream": {"connect_timeout": "2s", "retries": 1, "verify": False},
        "directory": {"source": "static", "users": {
            USER: {"password": gwtest.hash_password(PASSWORD), "database": "db1", "version": 15}}},
        "locator": {"source": "static",
                    "servers": {"origin": {"address": "127.0.0.1", "site": "site-a",
                                           "services": {"http": {"port": origin_port,
                                                                 "tls": "none"}}}},
                    "databases": {"db1": {"copies": ["origin"]}},
                    "health": {"enabled": False}},
        "sites": {"site-a": {}},
        "protocols": {"http": {
            "listen": [{"address": "127.0.0.1:%d" % port, "tls": "none",
                        "allow_plaintext": True}],
            "backend_keepalive": 64,
            "keepalive_requests": 1000000,
            "backend_keepalive_requests": 1000000,
        }},
    }


# ---- measuring ---------------------------------------------------------------

def proc_cpu(pids):
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


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    if rps is None or p99 is None:
        raise BenchError("cannot read wrk's output:\n" + text)
    return {"rps": float(rps.group(1)),
            "p99_ms": float(p99.group(1)) * UNITS[p99.group(2)],
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock.group(1).strip() if sock else ""}


def run_wrk(port, path, conns, seconds, auth):
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "10s",
           "-H", "Authorization: " + auth, "http://127.0.0.1:%d%s" % (port, path)]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise BenchError("wrk failed (%d):\n%s" % (r.returncode, r.stdout))
    return parse_wrk(r.stdout)


def check_once(port, path, auth, size):
    """One request through the target: 200 and exactly the file's bytes."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Authorization": auth})
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    if r.status != 200 or len(body) != size:
        raise BenchError("GET %s on port %d: %d, %d bytes (want 200, %d)"
                         % (path, port, r.status, len(body), size))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--sizes", default="1k,1m")
    ap.add_argument("--conns", default="1,50")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--check", action="store_true", help="exit 1 when a floor is missed")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    targets = [t for t in a.targets.split(",") if t]
    sizes = [s for s in a.sizes.split(",") if s]
    conns = [int(c) for c in a.conns.split(",") if c]
    for t in targets:
        if t not in TARGETS:
            raise BenchError("unknown target %s" % t)
    for s in sizes:
        if s not in SIZES:
            raise BenchError("unknown size %s" % s)

    ensure_packages(targets, not a.no_install)
    if "gatewayd" in targets:
        _, btype = ensure_gatewayd()
    d = gwtest.TempDir(prefix="bh-").path
    if a.keep:
        os.environ["GW_KEEP_TMP"] = "1"
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    auth = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()

    origin, origin_port = origin_nginx(d)
    origin.start()
    ports = {"direct": origin_port}
    procs = {"direct": origin}
    gw = None
    if "nginx" in targets:
        p, ports["nginx"] = proxy_nginx(d, origin_port)
        procs["nginx"] = p.start()
    if "haproxy" in targets:
        p, ports["haproxy"] = proxy_haproxy(d, origin_port)
        procs["haproxy"] = p.start()
    if "gatewayd" in targets:
        ports["gatewayd"] = gwtest.free_port()
        gw = gwtest.Gateway.start(gatewayd_config(d, ports["gatewayd"], origin_port),
                                  directory=d)
        atexit.register(gw.stop)

    # correctness first, and the credential cache warm
    for t in targets:
        for s in sizes:
            check_once(ports[t], "/" + s, auth, SIZES[s])
    versions = {
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
        "haproxy": (subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
                    .splitlines() or ["?"])[0] if shutil.which("haproxy") else "-",
        "wrk": (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
                .splitlines() or ["?"])[0],
    }
    log("versions: %s" % versions)

    results = {}   # (size, conns, target) -> [runs]
    order = list(targets)
    for rnd in range(a.rounds):
        for s in sizes:
            for c in conns:
                for t in order:
                    pids = gw.pids() if t == "gatewayd" else procs[t].pids()
                    cpu0 = proc_cpu(pids)
                    r = run_wrk(ports[t], "/" + s, c, a.seconds, auth)
                    r["proxy_cpu"] = (proc_cpu(pids) - cpu0) / a.seconds if t != "direct" else 0
                    results.setdefault((s, c, t), []).append(r)
                    log("round %d %s c=%d %-8s %9.0f req/s  p99 %7.2f ms  cpu %.2f%s"
                        % (rnd + 1, s, c, t, r["rps"], r["p99_ms"], r["proxy_cpu"],
                           ("  non-2xx %d" % r["non2xx"]) if r["non2xx"] else ""))
        order = order[1:] + order[:1]

    out = {"rounds": a.rounds, "seconds": a.seconds, "versions": versions, "results": []}
    floors_ok = True
    print("%-4s %-4s %-9s %12s %10s %8s %8s %10s" % ("size", "conn", "target", "req/s", "p99 ms",
                                                     "x nginx", "cpu", "us cpu/req"))
    for s in sizes:
        for c in conns:
            med = {}
            for t in targets:
                runs = results[(s, c, t)]
                med[t] = {"rps": statistics.median(r["rps"] for r in runs),
                          "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                          "cpu": statistics.median(r["proxy_cpu"] for r in runs),
                          # the proxy's CPU per request: steadier than req/s
                          # on a machine shared with other work
                          "cpu_us_per_req": statistics.median(
                              r["proxy_cpu"] / r["rps"] * 1e6 if r["rps"] else 0 for r in runs),
                          "non2xx": sum(r["non2xx"] for r in runs)}
            for t in targets:
                ratio = (med[t]["rps"] / med["nginx"]["rps"]) if "nginx" in med else float("nan")
                print("%-4s %-4d %-9s %12.0f %10.2f %8.2f %8.2f %10.1f" % (
                    s, c, t, med[t]["rps"], med[t]["p99_ms"], ratio, med[t]["cpu"],
                    med[t]["cpu_us_per_req"]))
                out["results"].append(dict(size=s, conns=c, target=t, **med[t],
                                           runs=results[(s, c, t)]))
            if "gatewayd" in med and "nginx" in med:
                rps_ok = med["gatewayd"]["rps"] >= med["nginx"]["rps"]
                p99_ok = med["gatewayd"]["p99_ms"] <= med["nginx"]["p99_ms"]
                floors_ok = floors_ok and rps_ok and p99_ok
                print("     floors %s c=%d: req/s >= nginx %s, p99 <= nginx %s" % (
                    s, c, "met" if rps_ok else "MISSED", "met" if p99_ok else "MISSED"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    if gw is not None:
        gw.stop()
    for p in procs.values():
        p.stop()
    return 1 if a.check and not floors_ok else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("error: %s" % e)
        sys.exit(2)
