#!/bin/sh
# Regenerates the reference transcripts under expected/ by compiling each Win32 test
# program with the MinGW-w64 cross compiler and running it under Wine; with --check,
# compares instead of writing (exit 1 on a difference). spec_*.c are not Wine's: their
# references are written from SEMANTICS.md (Wine differs there, or they fault on Windows).
#
#   apt-get install -y gcc-mingw-w64-x86-64 wine64
#   procsync-ffi/tests/win32/regen-wine.sh [--check] [name ...]
#
# The Wine prefix and the builds live in a temporary directory removed at the end.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mode=write
if [ "${1:-}" = "--check" ]; then mode=check; shift; fi

cc=x86_64-w64-mingw32-gcc
command -v "$cc" >/dev/null || { echo "regen-wine: $cc not found; apt-get install gcc-mingw-w64-x86-64" >&2; exit 2; }
wine=$(command -v wine64 || true)
[ -n "$wine" ] || { [ -x /usr/lib/wine/wine64 ] && wine=/usr/lib/wine/wine64; }
[ -n "$wine" ] || { echo "regen-wine: wine64 not found; apt-get install wine64" >&2; exit 2; }
wineserver=$(command -v wineserver || echo "$(dirname "$wine")/wineserver")

tmp=$(mktemp -d)
export WINEPREFIX="$tmp/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# Wine's helper processes (services, explorer, ...) must not outlive the run: they
# would hold our standard output open.
cleanup() { "$wineserver" -k >/dev/null 2>&1 || true; "$wineserver" -w >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$wine" cmd /c exit </dev/null >/dev/null 2>&1 || true   # creates the prefix once

if [ $# -eq 0 ]; then
    set -- $(cd "$here" && ls *.c | sed 's/\.c$//' | grep -v -e '^example$' -e '^spec_')
fi
status=0
for name in "$@"; do
    "$cc" -std=gnu11 -O1 -D__USE_MINGW_ANSI_STDIO=1 -I"$here" -o "$tmp/$name.exe" "$here/$name.c"
    mkdir -p "$tmp/run-$name"
    out=$(cd "$tmp/run-$name" && timeout 300 "$wine" "$tmp/$name.exe" </dev/null 2>"$tmp/$name.err" | tr -d '\r') || true
    if [ -s "$tmp/$name.err" ]; then sed "s/^/regen-wine: $name stderr: /" "$tmp/$name.err" >&2; fi
    if [ "$mode" = write ]; then
        printf '%s\n' "$out" > "$here/expected/$name.txt"
        echo "regen-wine: wrote expected/$name.txt"
    elif printf '%s\n' "$out" | diff -u "$here/expected/$name.txt" - ; then
        echo "regen-wine: $name matches"
    else
        status=1
    fi
done
exit $status
