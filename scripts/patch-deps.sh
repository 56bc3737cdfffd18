#!/usr/bin/env bash
# Lays out vendor/<crate> for every folder of patches/: the crate exactly as cargo downloads it
# from crates.io (the version Cargo.lock pins), plus the small fixes in patches/<crate>/ (README
# "Patched dependencies"). Cargo.toml's [patch.crates-io] points there, so every cargo command
# needs it: the Makefile's targets, .ci/run and the Dockerfiles run this first. Idempotent and
# quick once done; it redoes a crate's folder when its patches change. Only the patches are in
# git; vendor/ is ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$HOME/.cache/ptr-server/target}
registry=${CARGO_HOME:-$HOME/.cargo}/registry

lock_version() {  # the version Cargo.lock pins for crate $1
  awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

vendor_crate() {
  local NAME=$1 VERSION want dest tmp crate
  VERSION=$(lock_version "$NAME")
  [ -n "$VERSION" ] || { echo "patch-deps: Cargo.lock pins no $NAME" >&2; exit 1; }
  dest=vendor/$NAME
  want=$(cat patches/$NAME/*.patch | sha256sum | cut -c1-16)
  # The target dir remembers which patches its crate was built with; when they change, its
  # fingerprints go, so cargo rebuilds it (file times alone would not tell it).
  if [ -d "$target" ] && [ "$(cat "$target/.ptr-patches-$NAME" 2>/dev/null)" != "$want" ]; then
    rm -rf "$target"/*/.fingerprint/$NAME-*
  fi
  mkdir -p "$target" && echo "$want" > "$target/.ptr-patches-$NAME"
  [ "$(cat "$dest/.ptr-patches" 2>/dev/null)" = "$want" ] && return 0
  find_crate() { ls "$registry"/cache/*/$NAME-$VERSION.crate 2>/dev/null | head -1; }
  if [ -z "$(find_crate)" ]; then
    # Let cargo download it (checksum-verified against the index) through a scratch project:
    # the checkout's own manifest cannot resolve before vendor/ exists.
    local scratch
    scratch=$(mktemp -d)
    printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = { version = "=%s", default-features = false }\n' \
      "$NAME" "$NAME" "$VERSION" > "$scratch/Cargo.toml"
    mkdir "$scratch/src" && touch "$scratch/src/lib.rs"
    cargo fetch --quiet --manifest-path "$scratch/Cargo.toml"
    rm -rf "$scratch"
  fi
  crate=$(find_crate)
  [ -n "$crate" ] || { echo "patch-deps: cargo did not download $NAME $VERSION" >&2; exit 1; }
  mkdir -p vendor
  tmp=$(mktemp -d vendor/.tmp.XXXXXX)
  tar -xzf "$crate" -C "$tmp"
  local root=$tmp/$NAME-$VERSION p f
  for p in patches/$NAME/*.patch; do
    patch --quiet --forward -p1 -d "$root" < "$p"
  done
  # cargo decides whether a path dependency is fresh by file times, and tar keeps the crate's
  # own: the patched files get the crate's times too, so every clone's vendor/ looks alike to
  # cargo and a new clone does not rebuild the crate. A change of the patches is told to cargo
  # above instead.
  grep -h '^+++ b/' patches/$NAME/*.patch | cut -c7- | sort -u | while read -r f; do
    touch -r "$root/Cargo.toml.orig" "$root/$f"
  done
  # mistralrs-core's build script embeds `git rev-parse HEAD` and reruns when `.git/HEAD`
  # changes; from vendor/ that would be this checkout's commit, a rebuild per commit (and, the
  # file being absent, per build). A `.git/HEAD` of its own, as old as the crate, keeps the
  # script's output.
  mkdir -p "$root/.git"
  echo "$NAME $VERSION as published, vendored by ptr-server" > "$root/.git/HEAD"
  touch -r "$root/Cargo.toml.orig" "$root/.git/HEAD"
  echo "$want" > "$root/.ptr-patches"
  rm -rf "$dest"
  mv "$root" "$dest"
  rmdir "$tmp"
  echo "patch-deps: $dest = $NAME $VERSION + $(ls patches/$NAME | wc -l) patch(es)"
}

for dir in patches/*/; do
  vendor_crate "$(basename "$dir")"
done
