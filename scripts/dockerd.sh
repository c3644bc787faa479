#!/usr/bin/env bash
# Starts (or stops) a Docker engine with host networking only, when none answers.
set -euo pipefail
PIDFILE=/run/wheeldock-dockerd.pid
LOG=/var/log/wheeldock-dockerd.log
case "${1:-start}" in
  start)
    if docker info >/dev/null 2>&1; then echo "[dockerd] engine already running"; exit 0; fi
    echo "[dockerd] starting dockerd (log: $LOG)"
    # Only host networking here: no bridge, no iptables.
    nohup dockerd --bridge=none --iptables=false --ip-masq=false --ip6tables=false >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 60); do
      if docker info >/dev/null 2>&1; then echo "[dockerd] engine up"; exit 0; fi
      sleep 0.5
    done
    echo "[dockerd] engine did not start; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1 ;;
  stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
