# The official SignalR client and playwright-core for the live-notification tests (sourced, not
# run). Node 22 comes from scripts/lib/azurite.sh (azurite_node): the system's, or one in .tools/.
#   signalr_client_install   installs @microsoft/signalr into .tools/signalr; prints that folder
#   playwright_core_install  installs playwright-core (no bundled browsers) into .tools/playwright
# Each installs from the npm registry when the package is missing or another version.

SIGNALR_CLIENT_VERSION="${SIGNALR_CLIENT_VERSION:-8.0.7}"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.1}"

# npm_tool_install PACKAGE VERSION FOLDER: PACKAGE@VERSION in .tools/FOLDER; prints the folder.
npm_tool_install() {
  local package="$1" version="$2" prefix="$REPO_ROOT/.tools/$3"
  local manifest="$prefix/node_modules/$package/package.json"
  local installed=""
  [[ -f "$manifest" ]] && installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -1)"
  if [[ "$installed" != "$version" ]]; then
    need_cmd npm "install Node.js with npm to fetch $package"
    note "installing $package@$version into ${prefix#"$REPO_ROOT"/}"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$package@$version" >&2 \
      || die "cannot install $package@$version from the npm registry"
  fi
  [[ -f "$manifest" ]] || die "$package was installed but $manifest is missing"
  echo "$prefix"
}

signalr_client_install() {
  npm_tool_install "@microsoft/signalr" "$SIGNALR_CLIENT_VERSION" signalr
}

playwright_core_install() {
  npm_tool_install playwright-core "$PLAYWRIGHT_CORE_VERSION" playwright
}
