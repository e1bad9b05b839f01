#!/usr/bin/env bash
# A real S3 API server for the tests: moto in server mode, in memory, on
# 127.0.0.1 at a free port, installed in a virtualenv (created when
# missing). Writes $S3_DIR/moto.pid (stopped by .ci/s3-down.sh) and
# $S3_DIR/env, the AWS_* variables the tests read: source it.
set -euo pipefail
S3_DIR=${S3_DIR:-/tmp/wrun-s3}
VENV=${VENV:-$S3_DIR/venv}
mkdir -p "$S3_DIR"
if [ ! -x "$VENV/bin/moto_server" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5'
fi
# A free port: the kernel picks one for a socket that is closed at once.
port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$S3_DIR/moto.log" 2>&1 &
echo $! >"$S3_DIR/moto.pid"
endpoint="http://127.0.0.1:$port"
# Ready when it answers; bounded at 60 s (the first start in a fresh
# virtualenv compiles moto's modules, which takes several seconds).
answers() { "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/', timeout=2)" 2>/dev/null; }
for _ in $(seq 600); do
    answers && break
    sleep 0.1
done
answers || { echo "s3-up: moto did not answer at $endpoint within 60 s"; cat "$S3_DIR/moto.log"; exit 1; }
cat >"$S3_DIR/env" <<ENV
export AWS_ENDPOINT=$endpoint
export AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=wrun-test-key-id
export AWS_SECRET_ACCESS_KEY=wrun-test-secret-key
export AWS_REGION=us-east-1
export AWS_COPY_IF_NOT_EXISTS=multipart
ENV
echo "s3-up: moto on $endpoint (pid $(cat "$S3_DIR/moto.pid")); variables in $S3_DIR/env"
