#!/bin/sh
# scripts/install.sh install|uninstall: make install and make uninstall (the Makefile passes DESTDIR,
# PREFIX, INSTALL_LUAS, CLI_LUA). install writes, under DESTDIR PREFIX:
#   lib/lua/V/vertexops/core.so            the C core built for Lua V (build/V/), each V of INSTALL_LUAS
#   share/lua/V/vertexops/...              every lua/vertexops/**/*.lua, for each V
#   bin/vertexops                          the command line, run by CLI_LUA, PREFIX's Lua tree first
#   share/man/man1/vertexops.1             docs/vertexops.1
#   share/bash-completion/completions/vertexops, share/zsh/vendor-completions/_vertexops
#                                          made by the command line from its table (build/completion/)
#   share/doc/vertexops/                   README.md, LICENSE, CHANGELOG.md, SECURITY.md, docs/*.md
#   share/doc/vertexops/installed-files    what it wrote: each file ("f path") and each directory it
#                                          made ("d path"), relative to PREFIX (the list itself aside)
# uninstall removes the files that list names, then the directories install made once empty, then
# the list: exactly what install wrote, whatever the checkout holds by then.
set -eu

action=$1
: "${PREFIX:=/usr/local}" "${DESTDIR:=}" "${INSTALL_LUAS:=5.1 5.2 5.3 5.4}" "${CLI_LUA:=lua5.4}"

case $PREFIX in
  /*) ;;
  *) echo "make $action: PREFIX must be an absolute path, not '$PREFIX'" >&2; exit 2 ;;
esac
# PREFIX is written into the command line's launcher as a Lua string: no quotes, backslashes, spaces
if printf '%s' "$PREFIX" | grep -q '[^A-Za-z0-9_./+@-]'; then
  echo "make $action: PREFIX '$PREFIX' has a character other than letters, digits and _ . / + @ -" >&2
  exit 2
fi

root=$DESTDIR$PREFIX
manifest=share/doc/vertexops/installed-files

if [ "$action" = uninstall ]; then
  if [ ! -f "$root/$manifest" ]; then
    echo "make uninstall: nothing installed in $root (no $manifest)"
    exit 0
  fi
  # files first, then the directories install made, deepest first (each only once empty); every
  # path is relative and stays under PREFIX
  list=$(cat "$root/$manifest")
  rm -f "$root/$manifest"
  under() { grep "^$1 " | cut -c3- | grep -v -e '^/' -e '\.\.' | sed "s|^|$root/|"; }
  printf '%s\n' "$list" | under f | xargs -r -d '\n' rm -f
  printf '%s\n' "$list" | under d | sort -r | xargs -r -d '\n' rmdir 2>/dev/null || true
  echo "make uninstall: removed vertexops from $root"
  exit 0
fi

[ "$action" = install ] || { echo "usage: scripts/install.sh install|uninstall" >&2; exit 2; }

files=$(mktemp)
dirs=$(mktemp)
trap 'rm -f "$files" "$dirs"' EXIT

# a directory, made (with its parents) and remembered when it did not exist
mkd() {
  d=$1
  missing=""
  while [ ! -d "$root/$d" ]; do
    missing="$d $missing"
    case $d in */*) d=${d%/*} ;; *) break ;; esac
  done
  for m in $missing; do
    mkdir -p "$root/$m"
    echo "d $m" >> "$dirs"
  done
}

# put SOURCE DEST MODE: one file, remembered
put() {
  mkd "${2%/*}"
  install -m "$3" "$1" "$root/$2"
  echo "f $2" >> "$files"
}

# put_dir SOURCE_DIR DEST_DIR: its *.lua files, in one install, remembered
put_dir() {
  ls "$1"/*.lua >/dev/null 2>&1 || return 0
  mkd "$2"
  install -m 644 "$1"/*.lua "$root/$2/"
  for f in "$1"/*.lua; do echo "f $2/${f##*/}" >> "$files"; done
}

mkdir -p "$root"
for v in $INSTALL_LUAS; do
  [ -f "build/$v/vertexops/core.so" ] || { echo "make install: build/$v/vertexops/core.so is not built" >&2; exit 1; }
  put "build/$v/vertexops/core.so" "lib/lua/$v/vertexops/core.so" 755
  for d in $(find lua/vertexops -type d | sort); do
    put_dir "$d" "share/lua/$v/${d#lua/}"
  done
done

launcher=$(mktemp)
cat > "$launcher" <<EOF
#!/usr/bin/env $CLI_LUA
-- vertexops's command line, written by make install (PREFIX=$PREFIX): that prefix's Lua tree first
local v = _VERSION:match("%d+%.%d+")
package.path = "$PREFIX/share/lua/" .. v .. "/?.lua;$PREFIX/share/lua/" .. v .. "/?/init.lua;" .. package.path
package.cpath = "$PREFIX/lib/lua/" .. v .. "/?.so;" .. package.cpath
os.exit(require("vertexops.cli").run(arg))
EOF
put "$launcher" bin/vertexops 755
rm -f "$launcher"

put docs/vertexops.1 share/man/man1/vertexops.1 644
put build/completion/vertexops share/bash-completion/completions/vertexops 644
put build/completion/_vertexops share/zsh/vendor-completions/_vertexops 644
for f in README.md LICENSE CHANGELOG.md SECURITY.md docs/*.md; do
  [ -f "$f" ] && put "$f" "share/doc/vertexops/${f##*/}" 644
done

# an earlier install's list: its directories are still install's to remove, and its files that
# this one did not write again (a module since renamed) still its to list
if [ -f "$root/$manifest" ]; then
  grep '^d ' "$root/$manifest" >> "$dirs" || true
  sort -u "$files" > "$files.new"
  grep '^f ' "$root/$manifest" | sort -u | comm -23 - "$files.new" | while IFS= read -r line; do
    if [ -f "$root/${line#f }" ]; then echo "$line" >> "$files"; fi
  done
  rm -f "$files.new"
fi
mkd "${manifest%/*}"
sort -u "$files" "$dirs" > "$root/$manifest"
echo "make install: vertexops $(sed -n 's/^#define VX_VERSION "\(.*\)"/\1/p' csrc/vx.h) into $root" \
  "(Lua $INSTALL_LUAS; $(grep -c '^f ' "$root/$manifest") files)"
