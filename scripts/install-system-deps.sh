#!/bin/sh
# Install the Debian packages garrison's tests use (real images, registries, dockerd).
# Idempotent and non-interactive; run as root. Installs nothing when everything is present.
# docker.io is installed with a policy-rc.d that forbids starting services: the tests start their own
# private, loopback-only dockerd and the host's networking must not change.
set -eu

PACKAGES="debootstrap skopeo umoci pigz isal zstd docker-registry apache2-utils openssl docker.io rpm ca-certificates db5.3-util bundler postgresql"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps.sh: must run as root" >&2
    exit 1
fi

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "install-system-deps.sh: all packages already installed"
    exit 0
fi

echo "install-system-deps.sh: installing:$missing"
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# garrison install-system-deps.sh: do not start services during install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT INT TERM

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
echo "install-system-deps.sh: done"
