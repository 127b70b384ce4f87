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

pkgs=""
for lib in $libs; do
    real=$(readlink -f "$lib")
    found=""
    # Debian 12 is usr-merged: dpkg may have registered either spelling.
    for path in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" \
                "${real#/usr}"; do
        if owner=$(dpkg-query -S "$path" 2>/dev/null); then
            found=${owner%%:*}
            break
        fi
    done
    if [ -z "$found" ]; then
        echo "runtime-packages: no package provides $lib" >&2
        exit 1
    fi
    pkgs="$pkgs $found"
done

printf '%s\n' $pkgs | sort -u
