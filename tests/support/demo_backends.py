#!/usr/bin/env python3
"""Start or stop the two demo Dovecot backends of examples/gateway.yaml.

    demo_backends.py start DIR    mbx1 (POP3 11110, IMAP 11143) and
                                  mbx2 (POP3 12110, IMAP 12143) in DIR,
                                  users alice, bob, carol; returns once both
                                  greet, leaving them running
    demo_backends.py stop DIR     stop them (by the PIDs in their pidfiles)

Every mailbox holds one welcome message whose subject names the backend, so
you can see where the gateway took you.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest as g  # noqa: E402

USERS = {"alice": "secret-alice", "bob": "secret-bob", "carol": "secret-carol"}
PORTS = {"mbx1": {"pop3": 11110, "imap": 11143}, "mbx2": {"pop3": 12110, "imap": 12143}}


def start(directory):
    busy = [p for ports in PORTS.values() for p in ports.values()
            if not g._port_bindable("127.0.0.1", p)]
    if busy:
        print("demo backends: port(s) %s on 127.0.0.1 already in use (another demo still "
              "running?)" % ", ".join(map(str, busy)), file=sys.stderr)
        sys.exit(1)
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    backends = g.start_backends(tuple(PORTS), users=USERS, tls=False, directory=directory,
                                ports=PORTS, foreground=False)
    for d in backends.values():
        g._unregister(d)      # they outlive this script
        print("demo backend %s: POP3 127.0.0.1:%d, IMAP 127.0.0.1:%d (pid %d, log %s)"
              % (d.name, d.ports["pop3"], d.ports["imap"], d.pid, d.log_path))


def stop(directory):
    pids = []
    for name in PORTS:
        pid = g._read_pidfile(os.path.join(directory, name, "run", "master.pid"))
        if pid is not None and g._pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            pids.append((name, pid))
    for name, pid in pids:
        if g.wait_until(lambda: not g._pid_alive(pid), 15.0, 0.05) is None:
            print("demo backend %s (pid %d) did not stop; killing it" % (name, pid), file=sys.stderr)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        else:
            print("demo backend %s stopped" % name)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    (start if sys.argv[1] == "start" else stop)(os.path.abspath(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
