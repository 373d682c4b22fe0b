# Azurite (the Blob Storage emulator) for the Blob archive tests (sourced, not run).
#   azurite_start   installs Node 22 and Azurite into .tools/ if missing (npm registry), starts
#                   azurite-blob on 127.0.0.1 with a free port, in memory, telemetry off, strict
#                   API version checks; exports AZURITE_BLOB_ENDPOINT; stops it when the
#                   calling shell exits.
# Versions: Azurite 3.37+ accepts the REST version azure_storage_blob 1.x sends (2026-04-06) and
# needs Node >= 22, so a Node 22 binary (npm package `node`) is installed beside it when the
# system's node is older.

AZURITE_VERSION="${AZURITE_VERSION:-3.37.0}"
AZURITE_NODE_VERSION="${AZURITE_NODE_VERSION:-22}"
AZURITE_TOOLS="$REPO_ROOT/.tools"

# Prints the path of a node >= 22: the system's, or one installed into .tools/node22.
azurite_node() {
  local major
  if command -v node >/dev/null 2>&1; then
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if (( major >= 22 )); then command -v node; return; fi
  fi
  local prefix="$AZURITE_TOOLS/node$AZURITE_NODE_VERSION"
  local bin="$prefix/node_modules/node/bin/node"
  if [[ ! -x "$bin" ]]; then
    need_cmd npm "install Node.js with npm (any version) to fetch Node $AZURITE_NODE_VERSION and Azurite"
    note "installing Node $AZURITE_NODE_VERSION into ${prefix#"$REPO_ROOT"/} (for Azurite)"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "node@$AZURITE_NODE_VERSION" >&2 \
      || die "cannot install node@$AZURITE_NODE_VERSION from the npm registry"
  fi
  [[ -x "$bin" ]] || die "Node $AZURITE_NODE_VERSION was installed but $bin is missing"
  echo "$bin"
}

# npm_tool_install PACKAGE VERSION FOLDER [NPM_ARGS...]: PACKAGE@VERSION in .tools/FOLDER (installed
# from the npm registry when missing or another version); prints the folder.
npm_tool_install() {
  local package="$1" version="$2" prefix="$REPO_ROOT/.tools/$3"
  shift 3
  local manifest="$prefix/node_modules/$package/package.json"
  local installed=""
  [[ -f "$manifest" ]] && installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -1)"
  if [[ "$installed" != "$version" ]]; then
    need_cmd npm "install Node.js with npm to fetch $package"
    note "installing $package@$version into ${prefix#"$REPO_ROOT"/}"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$@" "$package@$version" >&2 \
      || die "cannot install $package@$version from the npm registry"
  fi
  [[ -f "$manifest" ]] || die "$package was installed but $manifest is missing"
  echo "$prefix"
}

# Prints the path of Azurite's blob entry point, installing Azurite if missing or outdated.
azurite_install() {
  local prefix
  prefix="$(npm_tool_install azurite "$AZURITE_VERSION" azurite --engine-strict=false)" || exit 1
  local main="$prefix/node_modules/azurite/dist/src/blob/main.js"
  [[ -f "$main" ]] || die "Azurite was installed but $main is missing"
  echo "$main"
}

# A TCP port nobody listens on right now.
azurite_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

azurite_stop() {
  if [[ -n "${AZURITE_PID:-}" ]]; then
    kill "$AZURITE_PID" 2>/dev/null || true
    wait "$AZURITE_PID" 2>/dev/null || true
    AZURITE_PID=""
  fi
  [[ -n "${AZURITE_DIR:-}" ]] && rm -rf "$AZURITE_DIR"
  return 0
}

azurite_start() {
  local started node main port
  started=$(date +%s)
  node="$(azurite_node)"
  main="$(azurite_install)"
  port="$(azurite_free_port)"
  AZURITE_DIR="$(mktemp -d)"
  # In memory (--location is refused with it); run inside a scratch folder all the same.
  (cd "$AZURITE_DIR" && exec "$node" "$main" --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --disableTelemetry --silent >"$AZURITE_DIR/azurite.log" 2>&1) &
  AZURITE_PID=$!
  trap azurite_stop EXIT
  local tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$AZURITE_PID" 2>/dev/null; then
      cat "$AZURITE_DIR/azurite.log" >&2
      die "Azurite exited at start-up (log above)"
    fi
    (( ++tries > 300 )) && die "Azurite did not listen on 127.0.0.1:$port within 30 s"
    sleep 0.1
  done
  export AZURITE_BLOB_ENDPOINT="http://127.0.0.1:$port/$AZURITE_ACCOUNT_NAME"
  note "Azurite $AZURITE_VERSION (node $("$node" --version)) at $AZURITE_BLOB_ENDPOINT, ready in $(( $(date +%s) - started )) s"
}

AZURITE_ACCOUNT_NAME="devstoreaccount1"
