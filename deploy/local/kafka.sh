#!/usr/bin/env bash
# The local single-node Apache Kafka broker (KRaft, 127.0.0.1), run from jars fetched from Maven Central.
#   deploy/local/kafka.sh fetch                    fetch the jars once (into $LOANWATCH_HOME/kafka/jars)
#   deploy/local/kafka.sh start [--port N] [--fresh]
#                                                  run the broker in the foreground until Ctrl-C; prints the
#                                                  bootstrap (e.g. 127.0.0.1:9092) on stdout
#   deploy/local/kafka.sh stop                     stop the broker started on this LOANWATCH_HOME
# State (data, broker.log, pid file) lives in ${LOANWATCH_HOME:-.loanwatch}/kafka.
set -euo pipefail

cmd="${1:-}"
case "$cmd" in
  fetch | start | stop) shift ;;
  *) echo "usage: $0 fetch|start|stop [--port N] [--fresh]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# A relative LOANWATCH_HOME is taken from the caller's folder; the default .loanwatch is the repo's.
if [ -n "${LOANWATCH_HOME:-}" ]; then
  home="$LOANWATCH_HOME"
  case "$home" in /*) ;; *) home="$PWD/$home" ;; esac
else
  home="$root/.loanwatch"
fi

venv="${LOANWATCH_VENV:-$root/.venv}"
if [ -x "$venv/bin/python" ]; then python="$venv/bin/python"; else python="python3"; fi

cd "$root"
exec "$python" -m streams.local.kafka_broker "$cmd" --home "$home/kafka" "$@"
