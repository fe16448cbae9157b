"""Shared setup of the HTTP integration tests: origins, gateway config, a raw
HTTP client for what http.client and curl will not send.

The standard world (HttpWorld.start):

  origins   mbx1, mbx2 (site-a), mbx3 (site-b, which has an external URL),
            legacy1 (the downlevel server), mbx4 (TLS, site-a) and canary
            (NOT in the locator: nothing may ever reach it)
  databases db1 [mbx1, mbx2], db2 [mbx2, mbx1], db3 [mbx3], db4 [mbx4]
  users     alice db1, bob db2, carol db1, dave db3 (site-b), eve db1 at
            version 14 (legacy), frank db4 (TLS backend); password "pw-<user>"
  gateway   local_site site-a; protocols.http with a plain listener
            (allow_plaintext), a TLS listener and a plain listener without
            allow_plaintext; anonymous /autodiscover, health pages for /owa
            and /autodiscover, legacy_servers legacy1 with current_version 15
"""

import base64
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
import gwtest as g  # noqa: E402
from http_origin import Origin, pattern, pattern_chunks, pattern_sha256, ws_frame  # noqa: E402,F401

TIMEOUT = 15.0

USERS = {
    "alice": ("db1", 15),
    "bob": ("db2", 15),
    "carol": ("db1", 15),
    "dave": ("db3", 15),
    "eve": ("db1", 14),
    "frank": ("db4", 15),
}


def password(user):
    return "pw-" + user


def basic(user, pw=None):
    raw = ("%s:%s" % (user, password(user) if pw is None else pw)).encode()
    return "Basic " + base64.b64encode(raw).decode()


class HttpWorld:
    """Origins and one gatewayd in front of them."""

    def __init__(self):
        self.origins = {}
        self.gw = None
        self.ports = {}
        self.cert = None
        self.dir = None

    @classmethod
    def start(cls, test, http_options=None, health=False, log_level="info", top=None,
              origins=("mbx1", "mbx2", "mbx3", "legacy1", "mbx4", "canary"), env=None,
              locator=None):
        self = cls()
        td = g.TempDir(prefix="gwh-", test=test)
        self.dir = td.path
        self.cert = g.make_cert(td.path, "gateway")
        self.backend_cert = g.make_cert(td.path, "backend")
        for name in origins:
            tls = self.backend_cert if name == "mbx4" else None
            self.origins[name] = Origin.start(name, tls=tls, test=test)
        self.ports = {"plain": g.free_port(), "tls": g.free_port(), "strict": g.free_port()}
        self.config = self.make_config(http_options or {}, health, log_level, top or {})
        self.config["locator"].update(locator or {})
        self.gw = g.Gateway.start(self.config, directory=td.path, test=test, env=env)
        return self

    def make_config(self, http_options, health, log_level, top):
        o = self.origins
        servers = {}

        def server(name, site, tls="none"):
            if name in o:
                svc = {"port": o[name].port, "tls": tls}
                if tls == "implicit":
                    svc["sni"] = "localhost"
                servers[name] = {"address": "127.0.0.1", "site": site, "services": {"http": svc}}

        server("mbx1", "site-a")
        server("mbx2", "site-a")
        server("mbx3", "site-b")
        server("legacy1", "site-a")
        server("mbx4", "site-a", "implicit")
        dbs = {"db1": ["mbx1", "mbx2"], "db2": ["mbx2", "mbx1"], "db3": ["mbx3"], "db4": ["mbx4"]}
        dbs = {k: [s for s in v if s in servers] for k, v in dbs.items()}
        dbs = {k: {"copies": v} for k, v in dbs.items() if v}
        users = {u: {"password": g.hash_password(password(u)), "database": db, "version": v}
                 for u, (db, v) in USERS.items() if db in dbs}
        http = {
            "listen": [
                g.listener(self.ports["plain"], "none", allow_plaintext=True),
                g.listener(self.ports["tls"], "implicit", cert=self.cert),
                g.listener(self.ports["strict"], "none"),
            ],
            "anonymous_paths": "/autodiscover",
            "health_prefixes": "/owa, /autodiscover",
            "health_user": "alice",
            "backend_timeout": "3s",
            "header_timeout": "5s",
            "keepalive_timeout": "10s",
            "retry_after": "7s",
            "idle_timeout": "30s",
        }
        if "legacy1" in servers:
            http["legacy_servers"] = "legacy1"
            http["current_version"] = 15
        http.update(http_options)
        config = {
            "workers": 1,
            "plugin_dir": g.plugin_dir(),
            "log_level": log_level,
            "shutdown_timeout": "2s",
            "local_site": "site-a",
            "auth": {"failure_delay": "0s", "cache_ttl": "5m", "negative_ttl": "1s",
                     "cache_size": 1000},
            "upstream": {"connect_timeout": "2s", "retries": 1, "verify": True,
                         "ca_file": self.backend_cert[0]},
            "directory": {"source": "static", "users": users},
            "locator": {"source": "static", "servers": servers, "databases": dbs,
                        "health": {"enabled": bool(health), "interval": "500ms",
                                   "timeout": "300ms", "rise": 1, "fall": 1}},
            "sites": {"site-a": {}, "site-b": {"external_url": "https://mail.site-b.example"}},
            "protocols": {"http": http},
        }
        config.update(top)
        return config

    def stop_and_check(self, allow=()):
        """Stop gatewayd, then fail on error lines or sanitizer reports (leaks
        are reported when the worker exits)."""
        if self.gw is not None:
            self.gw.stop()
            self.gw.check_log(None, allow=allow)

    def url(self, path, kind="plain"):
        scheme = "https" if kind == "tls" else "http"
        return "%s://127.0.0.1:%d%s" % (scheme, self.ports[kind], path)

    def raw(self, kind="plain", timeout=TIMEOUT):
        return Raw(self.ports[kind], tls=self.cert[0] if kind == "tls" else None, timeout=timeout)

    def curl(self, *args, kind="plain"):
        """curl -sS -i ...; returns (status of the last response, headers dict
        (lower-case names), body bytes, stderr)."""
        cmd = ["curl", "-sS", "-i", "--max-time", "20"]
        if kind == "tls":
            cmd += ["--cacert", self.cert[0]]
        r = subprocess.run(cmd + list(args), capture_output=True, timeout=60)
        return parse_curl(r.stdout) + (r.stderr.decode(errors="replace"),)

    def requests(self, name):
        return self.origins[name].stats()["requests"]


def parse_curl(out):
    """The last response of curl -i output: (status, headers, body)."""
    status, headers, body = None, {}, b""
    rest = out
    while rest.startswith(b"HTTP/"):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        body = rest
        if status >= 200 or status == 101:
            break
    return status, headers, body


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:80])


class Raw(g.LineClient):
    """gwtest's raw line client, read back as HTTP responses. Every read has
    a timeout; EOFError when the gateway closes. tls: a CA file."""

    def __init__(self, port, tls=None, timeout=TIMEOUT):
        super().__init__(port, tls=tls, timeout=timeout, greeting=False)

    def response(self, head_request=False):
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
        if m is None:
            raise AssertionError("not a status line: %r" % lines[0])
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        resp = Response(status, m.group(2).decode("latin-1"), headers, b"", head)
        if head_request or status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None:
            assert te.lower() == "chunked", te
            body = b""
            while True:
                size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self.read_exact(size)
                assert self.read_exact(2) == b"\r\n"
            resp.body = body
        elif cl is not None:
            resp.body = self.read_exact(int(cl))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method, path, headers=(), body=None, host="gw.example", version="1.1"):
        lines = ["%s %s HTTP/%s" % (method, path, version)]
        if host is not None:
            lines.append("Host: " + host)
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                        for k, _ in headers):
            lines.append("Content-Length: %d" % len(body))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.send(data + (body or b""))
        return self.response(head_request=(method == "HEAD"))


def worker_rss_kb(gw):
    return sum(gw.rss_kb([p]) for p in gw.worker_pids())


def log_count(gw, pattern_, since=0):
    text = gw.log_text()[since:]
    return len(re.findall(pattern_, text))
