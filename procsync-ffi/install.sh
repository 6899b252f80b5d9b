#!/bin/sh
# Installs the C library of procsync under PREFIX (default /usr/local):
#   PREFIX/lib/libprocsync.so, PREFIX/lib/libprocsync.a,
#   PREFIX/include/procsync/win32.h, PREFIX/lib/pkgconfig/procsync.pc
# Cargo names the artifacts after the crate (libprocsync_ffi.*); this installs them under
# the library's name. Builds them first with `cargo build --release -p procsync-ffi`,
# unless PROCSYNC_LIB_DIR names a directory that already holds them.
#
#   procsync-ffi/install.sh [PREFIX]
#   cc prog.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs procsync)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:-/usr/local}
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
if [ -n "${PROCSYNC_LIB_DIR:-}" ]; then
    libs=$PROCSYNC_LIB_DIR
else
    (cd "$here/.." && cargo build --release -p procsync-ffi)
    libs=$(cd "$here/.." && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
fi
for f in libprocsync_ffi.so libprocsync_ffi.a; do
    [ -f "$libs/$f" ] || { echo "install.sh: $libs/$f is missing; build with cargo build --release -p procsync-ffi" >&2; exit 1; }
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml" | head -n 1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include/procsync"
install -m 0755 "$libs/libprocsync_ffi.so" "$prefix/lib/libprocsync.so"
install -m 0644 "$libs/libprocsync_ffi.a" "$prefix/lib/libprocsync.a"
install -m 0644 "$here/include/procsync/win32.h" "$prefix/include/procsync/win32.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$here/procsync.pc.in" > "$prefix/lib/pkgconfig/procsync.pc"
echo "installed libprocsync (.so, .a), procsync/win32.h and procsync.pc under $prefix"
