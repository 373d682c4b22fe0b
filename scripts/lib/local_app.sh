# A fresh `handler local` for the scripted tests (sourced, not run).
#   local_app_bin     prints the handler binary: $HANDLER_BIN, else ${CARGO_TARGET_DIR:-target}/debug/handler
#                     (built with `cargo build --bin handler` if missing)
#   local_app_start BIN
#                     starts BIN local in a temporary DATA_DIR on a free loopback port with the
#                     settings of local.settings.example.json unset and timers off (RUST_LOG from
#                     LOCAL_APP_RUST_LOG if set); waits until
#                     ready; exports DATA_DIR, LOCAL_APP_BASE (http://127.0.0.1:<port>) and
#                     LOCAL_APP_LOG; stops it and removes the folder when the shell exits.

local_app_bin() {
  local bin="${HANDLER_BIN:-${CARGO_TARGET_DIR:-target}/debug/handler}"
  if [[ -z "${HANDLER_BIN:-}" && ! -x "$bin" ]]; then
    note "building $bin (cargo build --bin handler)"
    cargo build --bin handler >&2
  fi
  [[ -x "$bin" ]] || die "$bin is not an executable file; fix: build it (cargo build --bin handler) or set HANDLER_BIN"
  echo "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
}

local_app_stop() {
  if [[ -n "${LOCAL_APP_PID:-}" ]]; then
    kill "$LOCAL_APP_PID" 2>/dev/null || true
    wait "$LOCAL_APP_PID" 2>/dev/null || true
    LOCAL_APP_PID=""
  fi
  [[ -n "${LOCAL_APP_TMP:-}" ]] && rm -rf "$LOCAL_APP_TMP"
  return 0
}

local_app_start() {
  local bin="$1" port key
  need_cmd curl "install curl"
  need_cmd python3 "install Python 3 (used to find a free port)"
  LOCAL_APP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/local-app.XXXXXX")
  trap local_app_stop EXIT
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  for key in $(sed -n 's/^ *"\([A-Za-z_][A-Za-z0-9_]*\)": *".*/\1/p' "$REPO_ROOT/local.settings.example.json"); do
    unset "$key"
  done
  export DATA_DIR="$LOCAL_APP_TMP/data" ARCHIVE_DIR="$LOCAL_APP_TMP/data/archive" LOCAL_PORT="$port" LOCAL_TIMERS=false
  [[ -n "${LOCAL_APP_RUST_LOG:-}" ]] && export RUST_LOG="$LOCAL_APP_RUST_LOG"
  LOCAL_APP_LOG="$LOCAL_APP_TMP/local.log"
  "$bin" local >"$LOCAL_APP_LOG" 2>&1 &
  LOCAL_APP_PID=$!
  LOCAL_APP_BASE="http://127.0.0.1:$port"
  for _ in $(seq 300); do
    kill -0 "$LOCAL_APP_PID" 2>/dev/null || { cat "$LOCAL_APP_LOG" >&2; die "handler local exited at start (log above)"; }
    curl -s --max-time 1 "$LOCAL_APP_BASE/api/health/ready" | grep -q '"status":"ready"' && return 0
    sleep 0.1
  done
  die "handler local did not answer ready within 30 s"
}
