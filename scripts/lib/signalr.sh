# The official SignalR client for the live-notification tests (sourced, not run).
#   signalr_client_install   installs @microsoft/signalr (npm registry) into .tools/signalr if
#                            missing or another version; prints the folder holding node_modules.
# Node 22 comes from scripts/lib/azurite.sh (azurite_node): the system's, or one in .tools/.

SIGNALR_CLIENT_VERSION="${SIGNALR_CLIENT_VERSION:-8.0.7}"

signalr_client_install() {
  local prefix="$REPO_ROOT/.tools/signalr"
  local manifest="$prefix/node_modules/@microsoft/signalr/package.json"
  local installed=""
  [[ -f "$manifest" ]] && installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -1)"
  if [[ "$installed" != "$SIGNALR_CLIENT_VERSION" ]]; then
    need_cmd npm "install Node.js with npm to fetch @microsoft/signalr"
    note "installing @microsoft/signalr@$SIGNALR_CLIENT_VERSION into ${prefix#"$REPO_ROOT"/}"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
      "@microsoft/signalr@$SIGNALR_CLIENT_VERSION" >&2 \
      || die "cannot install @microsoft/signalr@$SIGNALR_CLIENT_VERSION from the npm registry"
  fi
  [[ -f "$manifest" ]] || die "@microsoft/signalr was installed but $manifest is missing"
  echo "$prefix"
}

# playwright-core (npm, no bundled browsers) for the live view's browser test.
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.1}"

playwright_core_install() {
  local prefix="$REPO_ROOT/.tools/playwright"
  local manifest="$prefix/node_modules/playwright-core/package.json"
  local installed=""
  [[ -f "$manifest" ]] && installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -1)"
  if [[ "$installed" != "$PLAYWRIGHT_CORE_VERSION" ]]; then
    need_cmd npm "install Node.js with npm to fetch playwright-core"
    note "installing playwright-core@$PLAYWRIGHT_CORE_VERSION into ${prefix#"$REPO_ROOT"/}"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
      "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2 \
      || die "cannot install playwright-core@$PLAYWRIGHT_CORE_VERSION from the npm registry"
  fi
  [[ -f "$manifest" ]] || die "playwright-core was installed but $manifest is missing"
  echo "$prefix"
}
