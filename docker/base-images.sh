#!/usr/bin/env bash
# Makes the two base images the Dockerfiles name, locally, for machines that cannot reach an
# image registry (only Debian's mirror): a Debian bookworm rootfs from debootstrap, imported as
#   ptr-local/debian:bookworm-slim   (runtime stage; stands for debian:bookworm-slim)
#   ptr-local/rust:1.95-bookworm     (build stage; stands for rust:1.95-bookworm: the same
#                                     rootfs plus gcc and this machine's Rust toolchain)
# Images that already exist are kept. Where the public images can be pulled, skip this script
# and build with the Dockerfiles' default base images.
set -euo pipefail
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${WORK:-$HOME/.cache/ptr-server/docker-base}
TOOLCHAIN=${TOOLCHAIN:-$(rustc --print sysroot)}
mkdir -p "$WORK"

have() { docker image inspect "$1" >/dev/null 2>&1; }

# The extra CAs this machine trusts (e.g. a TLS-intercepting egress proxy's) go into the images
# too, or cargo and pip inside a build could not reach crates.io and PyPI from here.
host_cas() { # host_cas ROOTFS
  mkdir -p "$1/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true
  if [ -x "$1/usr/sbin/update-ca-certificates" ]; then chroot "$1" update-ca-certificates >/dev/null; fi
}

rootfs() { # rootfs DIR PACKAGES
  local dir=$1 pkgs=$2
  [ -e "$dir/.complete" ] && return
  rm -rf "$dir"
  debootstrap --variant=minbase ${pkgs:+--include="$pkgs"} bookworm "$dir" "$MIRROR" >"$dir.log" 2>&1 \
    || { tail -20 "$dir.log" >&2; exit 1; }
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$MIRROR" "$MIRROR" >"$dir/etc/apt/sources.list"
  touch "$dir/.complete"
}

if ! have ptr-local/debian:bookworm-slim; then
  rootfs "$WORK/slim" ""
  host_cas "$WORK/slim"
  tar -C "$WORK/slim" --exclude=./.complete -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - ptr-local/debian:bookworm-slim
fi

if ! have ptr-local/rust:1.95-bookworm; then
  rootfs "$WORK/rust" "gcc,g++,libc6-dev,make,patch,pkg-config,ca-certificates,python3,xz-utils"
  host_cas "$WORK/rust"
  rm -rf "$WORK/rust/usr/local/cargo"
  mkdir -p "$WORK/rust/usr/local/cargo"
  # The toolchain itself (cargo, rustc, std), not rustup's proxies; docs left out.
  tar -C "$TOOLCHAIN" --exclude=./share/doc -c . | tar -C "$WORK/rust/usr/local/cargo" -x
  "$WORK/rust/usr/local/cargo/bin/rustc" --version
  tar -C "$WORK/rust" --exclude=./.complete -c . | docker import \
    -c 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV CARGO_HOME=/usr/local/cargo' \
    -c 'CMD ["bash"]' - ptr-local/rust:1.95-bookworm
fi
docker image ls 'ptr-local/*'
