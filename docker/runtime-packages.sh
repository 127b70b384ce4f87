#!/bin/sh
# runtime-packages.sh BINARY... - print the Debian packages that provide the
# shared libraries the given binaries load, one per line.
#
# The Dockerfiles run it in their build stage and install exactly that list
# in the runtime stage, so a small image never misses a library (nor carries
# a -dev package) when a component adds or drops a dependency.
set -eu

libs=$(for bin in "$@"; do
           ldd "$bin" || exit 1
       done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
[ -n "$libs" ] || { echo "runtime-packages: no libraries found" >&2; exit 1; }

# Debian 12 is usr-merged: dpkg may have registered a library under either
# spelling of its path, so ask about both, and about the link's target,
# in one dpkg-query call (each call reads the whole file database).
candidates=""
for lib in $libs; do
    real=$(readlink -f "$lib")
    for path in "$lib" "$real"; do
        candidates="$candidates ${path#/usr} /usr${path#/usr}"
    done
done
owners=$(dpkg-query -S $candidates 2>/dev/null || true)

for lib in $libs; do
    real=$(readlink -f "$lib")
    base=$(basename "$lib")
    rbase=$(basename "$real")
    if ! printf '%s\n' "$owners" \
            | grep -q -e "/$base\$" -e "/$rbase\$"; then
        echo "runtime-packages: no package provides $lib" >&2
        exit 1
    fi
done

printf '%s\n' "$owners" | grep -v '^diversion ' | sed 's/:.*//; s/, /\n/g' | sort -u
