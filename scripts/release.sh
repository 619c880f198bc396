#!/bin/sh
# The release artifacts (docs/release.md): make deb, make dist, make release-check.
# usage: scripts/release.sh version             prints csrc/vx.h's VX_VERSION (the version's one place)
#        scripts/release.sh deb DIST            lua-vertexops*.deb into DIST (dpkg-buildpackage -us -uc -b)
#        scripts/release.sh dist DIST           vertexops-V.tar.gz, vertexops-V-1.rockspec, vertexops-V-1.src.rock
#        scripts/release.sh sums DIST           DIST/SHA256SUMS of every other file of DIST
# Each builds from a copy of the working tree's files (git ls-files: tracked, and new ones not ignored)
# under build/release/, never in the checkout: nothing is reused from an earlier run.
set -e
cd "$(dirname "$0")/.."
ROOT=$(pwd)
version() { sed -n 's/^#define VX_VERSION "\(.*\)"/\1/p' csrc/vx.h; }
V=$(version)
[ -n "$V" ] || { echo "release.sh: no VX_VERSION in csrc/vx.h" >&2; exit 1; }
WORK=$ROOT/build/release

abs() { mkdir -p "$1" && (cd "$1" && pwd); }

# copy DIR: the working tree's files into DIR (a fresh directory)
copy() {
  rm -rf "$1" && mkdir -p "$1"
  git ls-files -c -o --exclude-standard | while IFS= read -r f; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done \
    | tar -c --verbatim-files-from -T - -f - | tar -x -C "$1" -f -
}

# the date of the last commit: the tarball's file times and the Debian changelog's date
epoch() { git log -1 --format=%ct 2>/dev/null || date +%s; }

deb() {
  dist=$(abs "$1")
  src=$WORK/deb/lua-vertexops-$V
  rm -rf "$WORK/deb"
  copy "$src"
  # debian/changelog: written here from VX_VERSION, so the version stays in one place
  {
    echo "lua-vertexops ($V-1) unstable; urgency=medium"
    echo
    echo "  * vertexops $V: CHANGELOG.md names its changes."
    echo
    echo " -- the vertexops authors <vertexops@example.invalid>  $(date -u -R -d "@$(epoch)")"
  } >"$src/debian/changelog"
  # no -dbgsym package among the artifacts
  (cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }noautodbgsym" \
     dpkg-buildpackage -us -uc -b -j"${DEB_JOBS:-2}") >"$WORK/deb/build.log" 2>&1 \
    || { tail -40 "$WORK/deb/build.log"; echo "make deb: dpkg-buildpackage failed (log: build/release/deb/build.log)" >&2; exit 1; }
  rm -f "$dist"/lua-vertexops*_*.deb
  mv "$WORK"/deb/*.deb "$dist"/
  cp "$WORK"/deb/*.changes "$WORK/deb/build.log" "$WORK/" 2>/dev/null || true
  ls "$dist"/lua-vertexops*_"$V"-1_*.deb
}

dist() {
  dist=$(abs "$1")
  name=vertexops-$V
  rm -rf "$WORK/dist" && mkdir -p "$WORK/dist"
  copy "$WORK/dist/$name"
  rm -rf "$WORK/dist/$name/debian"  # the Debian packaging is make deb's, not the rock's
  # the tarball: reproducible (file times of the last commit, sorted names, no owners)
  (cd "$WORK/dist" && tar --sort=name --mtime="@$(epoch)" --owner=0 --group=0 --numeric-owner \
     -cf - "$name" | gzip -n -9 >"$dist/$name.tar.gz")
  # the rockspec: vertexops-scm-1.rockspec with the version and source a release needs
  lua5.4 scripts/rockspec.lua "$V" "https://example.invalid/$name.tar.gz" <vertexops-scm-1.rockspec \
    >"$dist/$name-1.rockspec"
  # the source rock: packed from a copy of the rockspec whose source is the tarball by file://
  mkdir -p "$WORK/dist/pack"
  lua5.4 scripts/rockspec.lua "$V" "file://$dist/$name.tar.gz" <vertexops-scm-1.rockspec \
    >"$WORK/dist/pack/$name-1.rockspec"
  (cd "$WORK/dist/pack" && luarocks pack "$name-1.rockspec" >"$WORK/dist/pack.log" 2>&1) \
    || { cat "$WORK/dist/pack.log"; exit 1; }
  mv "$WORK/dist/pack/$name-1.src.rock" "$dist/"
  ls "$dist/$name.tar.gz" "$dist/$name-1.rockspec" "$dist/$name-1.src.rock"
}

sums() {
  dist=$(abs "$1")
  mkdir -p "$WORK"
  (cd "$dist" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort \
     | xargs -r sha256sum >"$WORK/SHA256SUMS.new") && mv "$WORK/SHA256SUMS.new" "$dist/SHA256SUMS"
  echo "$dist/SHA256SUMS"
}

case "$1" in
  version) echo "$V" ;;
  deb|dist|sums) [ -n "$2" ] || { echo "usage: scripts/release.sh $1 DIST" >&2; exit 2; }; "$1" "$2" ;;
  *) echo "usage: scripts/release.sh version|deb DIST|dist DIST|sums DIST" >&2; exit 2 ;;
esac
