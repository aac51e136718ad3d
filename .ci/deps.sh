#!/bin/sh
# Installs the Debian packages given as arguments when they are missing.
# As root on Debian it runs apt-get; otherwise it prints what is missing and fails.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node + npm run Tencent's @wecom/crypto (interop spec, benchmark); any
# install will do, Debian's packages when there is none
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || exit 1
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
    exit 0
fi
echo "deps: missing Debian packages:$missing" >&2
echo "deps: run 'sudo make deps' or: apt-get install$missing" >&2
exit 1
