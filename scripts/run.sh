#!/bin/sh
# run.sh - `make run`: starts one Kafscale node on the embedded defaults (no S3
# or etcd needed) in the foreground. Honours any KAFSCALE_* variable already set.
set -eu
cd "$(dirname "$0")/.."
: "${KAFSCALE_BROKER_ADDR:=0.0.0.0:9092}"
: "${KAFSCALE_DATA_DIR:=$PWD/data}"
export KAFSCALE_BROKER_ADDR KAFSCALE_DATA_DIR
port=${KAFSCALE_BROKER_PORT:-${KAFSCALE_BROKER_ADDR##*:}}
host=${KAFSCALE_BROKER_HOST:-127.0.0.1}
cat <<MSG
Kafscale node starting (data in $KAFSCALE_DATA_DIR). Connect with:
  kcat -b $host:$port -L
  kcat -b $host:$port -P -t demo      # type messages, Ctrl-D to send
  kcat -b $host:$port -C -t demo -e   # read them back
Stop with Ctrl-C.
MSG
exec bin/kafscale-broker
