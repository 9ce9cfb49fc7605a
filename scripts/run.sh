#!/usr/bin/env bash
# Run the web server and a django-q2 cluster together until Ctrl-C, then send the demo alerts.
set -euo pipefail
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
PY=.venv/bin/python
export DEBUG=${DEBUG:-true}  # a local demo server
# The demo verifies a merged fix within minutes, not the production default of 30.
export QUENCH_VERIFY_WINDOW_SECONDS=${QUENCH_VERIFY_WINDOW_SECONDS:-120}
# Notifications: the demo's webhook channel posts to a receiver on this machine.
export QUENCH_ALLOW_PRIVATE_WEBHOOKS=${QUENCH_ALLOW_PRIVATE_WEBHOOKS:-true}
NOTIFY_PORT=${NOTIFY_PORT:-8025}

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
# Ctrl-C (INT) or a TERM is how one stops Quench: stop the children and exit 0, so that make
# does not report the signal as a failure ("Error 143"). EXIT covers every other way out.
stop() {
  cleanup
  exit 0
}
trap stop INT TERM
trap cleanup EXIT

$PY manage.py setup_demo_notifications --receiver-url "http://127.0.0.1:$NOTIFY_PORT/quench"
setsid $PY manage.py demo_notification_receiver --port "$NOTIFY_PORT" &
pids+=($!)
setsid $PY manage.py qcluster &
pids+=($!)
setsid $PY manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)

for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "http://$HOST:$PORT/api/schema/" 2>/dev/null; then break; fi
  sleep 0.5
done
$PY manage.py send_demo_alerts --url "http://$HOST:$PORT" || echo "demo alerts could not be sent (see above)"
$PY manage.py demo_sentry_crash --url "http://$HOST:$PORT" || echo "the Sentry SDK demo crash could not be sent (see above)"
echo
echo "Waiting for the diagnoses (offline analyzer unless ANTHROPIC_API_KEY is set)..."
$PY manage.py remediation_status --service shop --wait 120 || true
SHOP_ID=$($PY manage.py shell -c "from incidents.models import Incident; print(Incident.objects.filter(service='shop', exception_type='KeyError').exclude(status='resolved').values_list('pk', flat=True).first() or '')" 2>/dev/null | tail -n 1)
cat <<MSG

Approve a fix (the whole loop, about three minutes):
  1. Open http://$HOST:$PORT/admin/remediation/approvalrequest/queue/ (log in as admin), open the
     KeyError: 'currency' proposal, read the root cause, the patch and its test run, and click Approve.
     Quench pushes branch quench/incident-${SHOP_ID:-<id>}-attempt-<n> to the shop's remote (var/demo/shop.git).
  2. Merge it as a reviewer would:  .venv/bin/python manage.py merge_fix ${SHOP_ID:-<incident id>}
  3. The watcher (every minute) sees the merge, checks the shop's health, and after a quiet
     window of ${QUENCH_VERIFY_WINDOW_SECONDS} s resolves the incident. Or reject with feedback: a new attempt follows your words.
  Progress:  .venv/bin/python manage.py remediation_status --service shop

Notifications: every step above is posted to the demo webhook receiver (its lines start with
"[demo receiver]", each signature verified) and emailed through the console backend (printed here).
  Deliveries, attempts, resend: http://$HOST:$PORT/admin/notifications/notification/
  Channels (add Slack, Teams, Telegram, Feishu; "Send a test message"): http://$HOST:$PORT/admin/notifications/channel/

Quench is running:
  admin      http://$HOST:$PORT/admin/        (credentials printed above on the first run; forgot them? .venv/bin/python manage.py changepassword admin)
  dashboard  http://$HOST:$PORT/admin/incidents/incident/dashboard/   (postmortems: /admin/incidents/postmortem/)
  API docs   http://$HOST:$PORT/api/docs/
  health     http://$HOST:$PORT/healthz
  metrics    http://$HOST:$PORT/metrics
Press Ctrl-C to stop.
MSG
status=0
wait -n "${pids[@]}" || status=$?
# Only reached when the server or the cluster ended by itself (a crash, a port in use).
echo "A Quench process ended on its own (exit status $status); stopping the other." >&2
exit "$status"
