#!/usr/bin/env bash
# Run the web server and a django-q2 cluster together until Ctrl-C, then send the demo alerts.
set -euo pipefail
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
PY=.venv/bin/python

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "Stopping Quench (the embedded database keeps running; 'make stop' stops it)..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$PY manage.py qcluster &
pids+=($!)
$PY manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)

for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "http://$HOST:$PORT/api/schema/" 2>/dev/null; then break; fi
  sleep 0.5
done
$PY manage.py send_demo_alerts --url "http://$HOST:$PORT" || echo "demo alerts could not be sent (see above)"
cat <<MSG

Quench is running:
  admin      http://$HOST:$PORT/admin/        (credentials printed above on the first run; forgot them? .venv/bin/python manage.py changepassword admin)
  API docs   http://$HOST:$PORT/api/docs/
  health     http://$HOST:$PORT/healthz
  metrics    http://$HOST:$PORT/metrics
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
