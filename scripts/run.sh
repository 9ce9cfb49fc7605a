#!/usr/bin/env bash
# Run the web server and a django-q2 cluster together until Ctrl-C, then send the demo alerts.
set -euo pipefail
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
PY=.venv/bin/python
export DEBUG=${DEBUG:-true}  # a local demo server

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "Stopping Quench (the embedded database keeps running; 'make stop' stops it)..."
  # Each child leads its own process group (setsid): end the group, so the cluster's
  # worker processes go with it.
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 20); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

setsid $PY manage.py qcluster &
pids+=($!)
setsid $PY manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)

for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "http://$HOST:$PORT/api/schema/" 2>/dev/null; then break; fi
  sleep 0.5
done
$PY manage.py send_demo_alerts --url "http://$HOST:$PORT" || echo "demo alerts could not be sent (see above)"
echo
echo "Waiting for the diagnoses (offline analyzer unless ANTHROPIC_API_KEY is set)..."
$PY manage.py remediation_status --service shop --wait 120 || true
cat <<MSG

Quench is running:
  admin      http://$HOST:$PORT/admin/        (credentials printed above on the first run; forgot them? .venv/bin/python manage.py changepassword admin)
  API docs   http://$HOST:$PORT/api/docs/
  health     http://$HOST:$PORT/healthz
  metrics    http://$HOST:$PORT/metrics
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
