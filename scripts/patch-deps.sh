#!/usr/bin/env bash
# Lays out vendor/mistralrs-core: mistralrs-core 0.8.1 exactly as cargo downloads it from
# crates.io, plus the small fixes in patches/mistralrs-core/ (README "Patched dependencies").
# Cargo.toml's [patch.crates-io] points there, so every cargo command needs it: the Makefile's
# targets, .ci/run and the Dockerfiles run this first. Idempotent and quick once done; it redoes
# the folder when a patch changes. Only the patches are in git; vendor/ is ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=mistralrs-core VERSION=0.8.1
dest=vendor/$NAME
want=$(cat patches/$NAME/*.patch | sha256sum | cut -c1-16)
# The target dir remembers which patches its mistralrs-core was built with; when they change, its
# fingerprints go, so cargo rebuilds it (file times alone would not tell it).
target=${CARGO_TARGET_DIR:-$HOME/.cache/ptr-server/target}
if [ -d "$target" ] && [ "$(cat "$target/.ptr-patches-$NAME" 2>/dev/null)" != "$want" ]; then
  rm -rf "$target"/*/.fingerprint/$NAME-*
fi
mkdir -p "$target" && echo "$want" > "$target/.ptr-patches-$NAME"
[ "$(cat "$dest/.ptr-patches" 2>/dev/null)" = "$want" ] && exit 0
registry=${CARGO_HOME:-$HOME/.cargo}/registry
find_crate() { ls "$registry"/cache/*/$NAME-$VERSION.crate 2>/dev/null | head -1; }
if [ -z "$(find_crate)" ]; then
  # Let cargo download it (checksum-verified against the index) through a scratch project:
  # the checkout's own manifest cannot resolve before vendor/ exists.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = { version = "=%s", default-features = false }\n' \
    "$NAME" "$NAME" "$VERSION" > "$scratch/Cargo.toml"
  mkdir "$scratch/src" && touch "$scratch/src/lib.rs"
  cargo fetch --quiet --manifest-path "$scratch/Cargo.toml"
fi
crate=$(find_crate)
[ -n "$crate" ] || { echo "patch-deps: cargo did not download $NAME $VERSION" >&2; exit 1; }
mkdir -p vendor
tmp=$(mktemp -d vendor/.tmp.XXXXXX)
tar -xzf "$crate" -C "$tmp"
for p in patches/$NAME/*.patch; do
  patch --quiet --forward -p1 -d "$tmp/$NAME-$VERSION" < "$p"
done
# cargo decides whether a path dependency is fresh by file times, and tar keeps the crate's own:
# the patched files get the crate's times too, so every clone's vendor/ looks alike to cargo and a
# new clone does not rebuild mistral.rs. A change of the patches is told to cargo below instead.
grep -h '^+++ b/' patches/$NAME/*.patch | cut -c7- | sort -u | while read -r f; do
  touch -r "$tmp/$NAME-$VERSION/Cargo.toml.orig" "$tmp/$NAME-$VERSION/$f"
done
# Its build script embeds `git rev-parse HEAD` and reruns when `.git/HEAD` changes; from vendor/
# that would be this checkout's commit, a rebuild of mistral.rs per commit (and, the file being
# absent, per build). A `.git/HEAD` of its own, as old as the crate, keeps the script's output.
mkdir -p "$tmp/$NAME-$VERSION/.git"
echo "mistralrs-core $VERSION as published, vendored by ptr-server" > "$tmp/$NAME-$VERSION/.git/HEAD"
touch -r "$tmp/$NAME-$VERSION/Cargo.toml.orig" "$tmp/$NAME-$VERSION/.git/HEAD"
echo "$want" > "$tmp/$NAME-$VERSION/.ptr-patches"
rm -rf "$dest"
mv "$tmp/$NAME-$VERSION" "$dest"
rmdir "$tmp"
echo "patch-deps: $dest = $NAME $VERSION + $(ls patches/$NAME | wc -l) patch(es)"
