# The official SignalR client and playwright-core for the live-notification tests (sourced, not
# run). Node 22 and npm_tool_install come from scripts/lib/azurite.sh.
#   signalr_client_install   installs @microsoft/signalr into .tools/signalr; prints that folder
#   playwright_core_install  installs playwright-core (no bundled browsers) into .tools/playwright
# Each installs from the npm registry when the package is missing or another version.

SIGNALR_CLIENT_VERSION="${SIGNALR_CLIENT_VERSION:-8.0.7}"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.1}"

signalr_client_install() {
  npm_tool_install "@microsoft/signalr" "$SIGNALR_CLIENT_VERSION" signalr
}

playwright_core_install() {
  npm_tool_install playwright-core "$PLAYWRIGHT_CORE_VERSION" playwright
}
