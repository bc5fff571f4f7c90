#!/usr/bin/env bash
# A local ClickHouse server (Debian's clickhouse-server) on 127.0.0.1, for tests and trying the native backend.
#   deploy/local/clickhouse-server.sh [--port N] [--fresh] [--timeout S]
# Runs in the foreground until Ctrl-C; prints the URL (clickhouse://default:@127.0.0.1:PORT/default) on stdout,
# to use as LOANWATCH_CLICKHOUSE_URL. State (data, logs, config) lives in ${LOANWATCH_HOME:-.loanwatch}/clickhouse.
set -euo pipefail

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
exec "$python" -m streams.local.clickhouse_server start --home "$home/clickhouse" "$@"
