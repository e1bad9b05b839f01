#!/usr/bin/env bash
# Stop the S3 server of .ci/s3-up.sh by the PID it recorded.
set -euo pipefail
S3_DIR=${S3_DIR:-/tmp/wrun-s3}
pid=$(cat "$S3_DIR/moto.pid" 2>/dev/null) || exit 0
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
fi
rm -f "$S3_DIR/moto.pid" "$S3_DIR/env"
