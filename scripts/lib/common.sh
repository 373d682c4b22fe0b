# Shared helpers for the bash scripts under scripts/ (sourced, not run).
#   die MESSAGE           print "<script>: MESSAGE" to stderr and exit 1
#   need_cmd CMD HINT     die unless CMD is on PATH; HINT says how to get it
#   need_env VAR HINT     die unless environment variable VAR is set and non-empty
#   note MESSAGE          progress line on stderr
#   REPO_ROOT             the repository's top directory

SCRIPT_NAME="$(basename "$0")"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

note() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH; $2"
}

need_env() {
  [[ -n "${!1:-}" ]] || die "environment variable $1 is not set; $2"
}

# Print usage (the leading comment block of the calling script, without the '# ') and exit.
usage() {
  sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "$0"
  exit "${1:-0}"
}
