#!/bin/bash
# Install the packages gatewayd needs to build and test, if any is missing.
# Sourced or run by tests/run-all.sh and examples/run-demo.sh. Debian/Ubuntu.
# Installing starts no service we rely on: the tests start their own servers.
set -euo pipefail

GW_DEPS=(
  build-essential cmake pkg-config
  libev-dev libssl-dev libyaml-dev libldap-dev libcmocka-dev libcrypt-dev
  libhttp-parser-dev
  dovecot-imapd dovecot-pop3d slapd ldap-utils sip-tester
  curl openssl python3 clang libclang-rt-14-dev
)

gw_missing=()
for p in "${GW_DEPS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    gw_missing+=("$p")
  fi
done

if ((${#gw_missing[@]} > 0)); then
  echo "install-deps: missing: ${gw_missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (sudo), or install them yourself" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # slapd asks debconf questions; noninteractive takes the defaults.
  apt-get install -y -qq --no-install-recommends "${gw_missing[@]}"
fi
