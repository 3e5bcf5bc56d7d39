#!/usr/bin/env bash
# Runs every Keyward test on a fresh machine: installs the system packages the build and the
# tests need (idempotent, quick when present), playwright-core for the browser tests and the
# Python relying-party libraries for the interop tests, checks the crate boundaries and the
# lints, starts a throwaway PostgreSQL server, and runs all suites with cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "system packages"
missing=()
for pkg in pkg-config libpq-dev libsqlite3-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if ! command -v initdb >/dev/null 2>&1 && [ -z "$pg_bin" ]; then missing+=(postgresql); fi
# Browser tests: Debian's Chromium (never a browser a tool downloads) and Node for playwright-core.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
else
  echo "all present"
fi
if [ -n "$pg_bin" ]; then export PATH="$PATH:$pg_bin"; fi

step "playwright-core (npm, for the browser tests)"
(
  cd tests/browser
  if [ ! -f node_modules/playwright-core/package.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  else
    echo "present"
  fi
)

step "Python relying parties (pip, for the interop tests)"
(
  # A venv from tests/interop/requirements.txt; rebuilt only when that file or python3 changes.
  cd tests/interop
  stamp="$(python3 --version 2>&1) $(sha256sum requirements.txt | cut -d' ' -f1)"
  if [ -x .venv/bin/python ] && [ "$(cat .venv/.requirements-stamp 2>/dev/null)" = "$stamp" ]; then
    echo "present"
  else
    rm -rf .venv
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check --require-virtualenv -r requirements.txt
    .venv/bin/pip check
    echo "$stamp" > .venv/.requirements-stamp
  fi
)

step "keyward-core depends on neither actix-web nor diesel (nor lettre, tera)"
if cargo tree -p keyward-core -e normal --prefix none | grep -E '^(actix-web|actix-http|diesel|lettre|tera) '; then
  echo "FAIL: keyward-core must stay free of web, database, mail and template crates" >&2
  exit 1
fi
echo "ok: $(cargo tree -p keyward-core -e normal --prefix none | sort -u | wc -l) crates, none of them forbidden"

step "no real-clock sleeps in tests"
# Tests move the in-process app's ManualClock (app.clock.advance) instead of sleeping. Left:
# polls for a condition (the line says `// poll: what`) and the black-box tests below, whose
# sleeps say `// black-box: why` and may appear only in these files:
black_box_files=(
  tests/e2e/operations.rs                     # SIGTERM drain of the binary: requests in flight when the signal lands
  tests/e2e/multi_instance.rs                 # the same for one of two binaries behind a load balancer
  tests/e2e/admin_cli.rs                      # `keyward audit tail --follow` (a subprocess) has no ready signal
  tests/e2e/cli.rs                            # `keyward db cleanup` runs on the wall clock: a code expires in real time
  crates/keyward-store/tests/sqlite_tuning.rs # SQLite's checkpointer thread runs on real time
  crates/keyward-testkit/tests/smtp.rs        # the sink's wait is tested against a mail sent later
)
sleeps=$(grep -rnE '\bsleep\(' tests/e2e crates/*/tests --include='*.rs' | grep -v '// poll: ' || true)
bad=""
while IFS= read -r line; do
  [ -z "$line" ] && continue
  file=${line%%:*}
  if [[ "$line" == *'// black-box: '* ]] && printf '%s\n' "${black_box_files[@]}" | grep -qxF "$file"; then continue; fi
  bad+="$line"$'\n'
done <<< "$sleeps"
if [ -n "$bad" ]; then
  echo "FAIL: real-clock sleeps in tests; advance app.clock, poll a condition (// poll: what), or allow-list a black-box test in tests/run.sh:" >&2
  printf '%s' "$bad" >&2
  exit 1
fi
echo "ok: no real-clock sleeps outside polls and the black-box allow-list"

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "deployment files (deploy/)"; bash tests/deploy_check.sh

pg_dir=""
stop_postgres() {
  if [ -n "$pg_dir" ] && [ -d "$pg_dir" ]; then
    pg_run pg_ctl -D "$pg_dir/data" stop -m fast >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
pg_run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- env PATH="$PATH" "$@"; else "$@"; fi; }

if [ -z "${KEYWARD_TEST_DATABASE_URL:-}" ]; then
  step "PostgreSQL (initdb + pg_ctl in a temp dir)"
  pg_dir=$(mktemp -d /tmp/keyward-pg-XXXXXX)
  trap stop_postgres EXIT
  if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  pg_run initdb -D "$pg_dir/data" -A trust -U keyward -E UTF8 --no-locale --no-sync >/dev/null
  pg_run pg_ctl -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
  export KEYWARD_TEST_DATABASE_URL="postgres://keyward@127.0.0.1:$port"
  echo "PostgreSQL on 127.0.0.1:$port"
fi

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  echo "cargo-nextest not found; using cargo test"
  cargo test --workspace --no-fail-fast
fi

step "benchmark regression guard (keyward-bench --quick, debug build)"
# A few seconds of W1–W4 against the debug keyward that the tests above built: fails only on
# errors or on W1 far below its budget (see docs/performance.md), so no release build is needed.
cargo run --quiet -p keyward-bench -- --quick --keyward "${CARGO_TARGET_DIR:-target}/debug/keyward"

step "scale-out guard (keyward-bench --quick --postgres: one and two instances on one PostgreSQL)"
# W1/W2 through one instance, then through two sharing a throwaway PostgreSQL: any error (a
# code, session or refresh token that does not work at the other instance) fails the run.
cargo run --quiet -p keyward-bench -- --quick --postgres --keyward "${CARGO_TARGET_DIR:-target}/debug/keyward"
