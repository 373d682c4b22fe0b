# cargo-deny for scripts/test (sourced, not run).
#   deny_install   installs cargo-deny $DENY_VERSION into .tools/cargo from crates.io if missing
#                  (about 4 minutes of compiling, once) and puts it on PATH.
#   deny_check     runs `cargo deny check` with deny.toml: advisories, licenses, bans, sources.
#                  Advisories come from the live RustSec database when GitHub answers, else
#                  from the snapshot in scripts/lib/advisory-db (its date is printed, and
#                  scripts/update-advisory-db refreshes it where GitHub is reachable).
# cargo-deny looks for a database fetched from <url> in .tools/advisory-db/<name>-<hash of url>;
# the snapshot is unpacked there as a git repository whose commit carries the snapshot's date,
# which is what cargo-deny reads as the database's age.

DENY_VERSION="${DENY_VERSION:-0.20.2}"
DENY_ROOT="$REPO_ROOT/.tools/cargo"
DENY_DB_DIR="$REPO_ROOT/.tools/advisory-db/advisory-db-3157b0e258782691"
DENY_SNAPSHOT="$REPO_ROOT/scripts/lib/advisory-db"

deny_install() {
  if [[ "$("$DENY_ROOT/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]]; then
    note "installing cargo-deny $DENY_VERSION into ${DENY_ROOT#"$REPO_ROOT"/} (crates.io, once)"
    cargo install --quiet --locked --version "$DENY_VERSION" --root "$DENY_ROOT" cargo-deny >&2 \
      || die "cannot install cargo-deny $DENY_VERSION from crates.io"
  fi
  export PATH="$DENY_ROOT/bin:$PATH"
}

# Unpacks the advisory snapshot (again when the snapshot changed).
deny_prepare_snapshot() {
  local commit date
  commit="$(sed -n 's/^commit=//p' "$DENY_SNAPSHOT/snapshot.info")"
  date="$(sed -n 's/^date=//p' "$DENY_SNAPSHOT/snapshot.info")"
  if [[ "$(cat "$DENY_DB_DIR/.snapshot-commit" 2>/dev/null)" == "$commit" ]]; then
    return
  fi
  rm -rf "$DENY_DB_DIR"
  mkdir -p "$DENY_DB_DIR"
  tar -xJf "$DENY_SNAPSHOT/snapshot.tar.xz" -C "$DENY_DB_DIR" || die "cannot unpack $DENY_SNAPSHOT/snapshot.tar.xz"
  (
    cd "$DENY_DB_DIR"
    git init --quiet --initial-branch=main
    git add crates
    GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
      git -c user.name=snapshot -c user.email=snapshot@localhost commit --quiet \
        -m "RustSec advisory-db snapshot $commit"
  ) || die "cannot make a git repository of the advisory snapshot"
  echo "$commit" > "$DENY_DB_DIR/.snapshot-commit"
}

deny_check() {
  if timeout 10 git ls-remote --quiet https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
    note "advisories: the live RustSec database"
    rm -rf "$DENY_DB_DIR"
    cargo deny check
  else
    deny_prepare_snapshot
    local date
    date="$(sed -n 's/^date=//p' "$DENY_SNAPSHOT/snapshot.info")"
    note "advisories: GitHub unreachable, checking against the RustSec snapshot of ${date%%T*} (scripts/update-advisory-db refreshes it)"
    # Offline, cargo-deny reads every package of the lock file from the local registry cache,
    # including those of other platforms that a build never downloads: fetch them first.
    cargo fetch --locked --quiet || die "cannot fetch the crates of Cargo.lock from crates.io"
    cargo deny --offline check
  fi
}
