#!/bin/sh
# deps.sh - installs what Kafscale's build and tests need, idempotently:
# Debian packages through apt-get (sudo only when not root), Node.js/npm only
# when missing, and the npm packages the tests use into test/node/node_modules.
set -eu
cd "$(dirname "$0")/.."

DEBS="build-essential pkg-config libevent-dev libprotobuf-c-dev protobuf-c-compiler
libcurl4-openssl-dev libjansson-dev liblz4-dev check clang libclang-rt-14-dev
kcat librdkafka-dev python3 python3-kafka python3-confluent-kafka etcd-server etcd-client
python3-boto3 python3-botocore libssl-dev zlib1g-dev libsnappy-dev libzstd-dev tmux yamllint systemd prometheus iperf3 time"

missing=""
for p in $DEBS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

# npm packages for the tests (pinned in test/node/package.json).
if [ ! -f test/node/node_modules/.kafscale-deps ] || [ test/node/package.json -nt test/node/node_modules/.kafscale-deps ]; then
    echo "deps: npm install in test/node"
    (cd test/node && npm install --no-audit --no-fund --loglevel=error)
    touch test/node/node_modules/.kafscale-deps
fi
echo "deps: ok"
