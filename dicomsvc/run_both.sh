#!/usr/bin/env bash
# Run two commands (make run: the Celery worker, the web server) until either exits or this
# script gets SIGINT/SIGTERM, then stop both and return.
#
#   dicomsvc/run_both.sh "<worker command>" "<web command>"
#
# Stopping sends SIGTERM to each command (Celery's warm shutdown, uvicorn's graceful one) and
# waits up to RUN_STOP_GRACE_SECONDS (10); then SIGKILL goes to each command's whole process
# group. A worker stuck in warm shutdown (it ignores a second SIGTERM) is killed that way, and
# so is anything a command leaves behind (Celery's pool children): nothing outlives the script.
set -u
# Job control: each command runs in a process group of its own (its pid), which can be killed
# whole, and which a Ctrl-C at the terminal does not reach: only this script's SIGTERM does.
set -m
grace=${RUN_STOP_GRACE_SECONDS:-10}

sh -c "exec $1" & worker=$!
sh -c "exec $2" & web=$!

stop() {
  trap - INT TERM
  kill -TERM "$worker" "$web" 2>/dev/null
  # The deadline: a group of its own as well, so it is removed whole once not needed.
  (sleep "$grace"; kill -KILL -- "-$worker" "-$web" 2>/dev/null) & deadline=$!
  wait "$worker" "$web" 2>/dev/null
  # Both commands are gone (or were killed): whatever is left in their groups is an orphan.
  kill -KILL -- "-$worker" "-$web" "-$deadline" 2>/dev/null
  wait 2>/dev/null
  exit 0
}
trap stop INT TERM
wait -n "$worker" "$web"
stop
