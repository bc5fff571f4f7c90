#!/usr/bin/env bash
# One entry point for a fresh machine: installs what loanwatch needs (once), then runs the demo or the tests.
#   bash deploy/local/run.sh demo [loanwatch demo options]   the pipeline on embedded defaults
#   bash deploy/local/run.sh test [pytest options]           lint, types and the whole test suite
#   bash deploy/local/run.sh setup                           only the installs
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv="${LOANWATCH_VENV:-$root/.venv}"
export LOANWATCH_HOME="${LOANWATCH_HOME:-$root/.loanwatch}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v clickhouse-server >/dev/null 2>&1 || need_apt+=(clickhouse-server clickhouse-client)
# The console's browser test drives Debian's chromium; a CJK font draws the tier labels (提示 关注 预警).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || need_apt+=(fonts-wqy-zenhei)
# The TLS settings' tests make a certificate and an encrypted key with the openssl tool.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing system packages: ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

stamp="$venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "creating the Python environment in $venv (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e ".[dev]"
  touch "$stamp"
fi

say "Apache Kafka jars (fetched once into $LOANWATCH_HOME/kafka)"
"$venv/bin/python" -m streams.local.kafka_broker fetch --home "$LOANWATCH_HOME/kafka"

cmd="${1:-test}"
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) ;;
  demo) exec "$venv/bin/loanwatch" demo "$@" ;;
  test)
    say "ruff"
    "$venv/bin/ruff" check .
    say "mypy --strict"
    "$venv/bin/mypy" --strict schemas detectors streams tests bench examples
    say "pytest"
    exec "$venv/bin/pytest" "$@"
    ;;
  *) echo "usage: $0 demo|test|setup [options]" >&2; exit 2 ;;
esac
