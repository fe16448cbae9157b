#!/bin/bash
# Try gatewayd: two demo Dovecot backends on loopback and gatewayd in front
# of them, on examples/gateway.yaml. Ctrl-C stops everything.
#
#   sudo examples/run-demo.sh
#
# Installs missing packages (root), builds into build/, starts the backends
# (mbx1: POP3 11110 / IMAP 11143, mbx2: POP3 12110 / IMAP 12143), then runs
# gatewayd in the foreground with its log on the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tests/support/install-deps.sh

cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$(nproc 2>/dev/null || echo 2)"

# Dovecot's processes must reach the directory: short path, mode 0755.
demo_dir=$(mktemp -d /tmp/gwdemo.XXXXXX)
chmod 755 "$demo_dir"
python=/usr/bin/python3
[ -x "$python" ] || python=python3

cleanup() {
  "$python" "$root/tests/support/demo_backends.py" stop "$demo_dir" || true
  rm -rf "$demo_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$python" "$root/tests/support/demo_backends.py" start "$demo_dir"

cat <<'TXT'

gatewayd is starting on POP3 127.0.0.1:1110. In another terminal, try:

  curl -u alice:secret-alice pop3://127.0.0.1:1110/1    # alice lives on mbx1
  curl -u bob:secret-bob pop3://127.0.0.1:1110/1        # bob lives on mbx2
  curl -u carol:secret-carol pop3://127.0.0.1:1110/     # carol's message list
  curl -u alice:wrong pop3://127.0.0.1:1110/1           # refused: -ERR [AUTH]

Each mailbox's welcome message names the backend that holds it.
Press Ctrl-C to stop gatewayd and the backends.

TXT

# Not exec: the EXIT trap must stop the backends when gatewayd ends.
"$root/build/gatewayd" -c "$root/examples/gateway.yaml" || rc=$?
exit "${rc:-0}"
