#!/bin/sh
# Prepare a machine for sbx's test suite (run as root; idempotent).
# - the packages the tests use: uidmap (newuidmap/newgidmap), python3 (probes inside
#   the sandbox), bash, util-linux (unshare, script), procps; gcc and libc6-dev (the
#   static probe program, and gcc run inside the sandbox); cargo (a `cargo build` run
#   inside the sandbox: the test users cannot reach a rustup toolchain under /root);
#   passt (pasta, for --net user); firefox-esr, chromium, xvfb and x11-apps (xwd) for
#   the browser profile's end-to-end tests; xdg-dbus-proxy, dbus-daemon and dbus-bin
#   (dbus-send) for the dbus abstraction's test; git (the version-control metadata
#   tests), dash (the terminal test's shell), make (the CI job), openssh-client
#   (ssh-agent), libcap2-bin (setcap: a helper that fails at run time), strace (holds
#   PID 1 in its PDEATHSIG window), bubblewrap
#   (the oracle of the mount-tree property test); desktop-file-utils (the shipped
#   launchers are checked with desktop-file-validate); apparmor (apparmor_parser
#   checks the shipped AppArmor profile); dpkg-dev (cargo-deb, which this script
#   installs with cargo, builds the package with it);
# - two unprivileged test users: sbx-sub with subordinate ids, sbx-nosub without.
set -eu
if [ "$(id -u)" != 0 ]; then
  echo "tests/setup.sh: run as root (it installs packages and creates test users)" >&2
  exit 1
fi
need=""
for pkg in uidmap libcap2-bin strace python3 bash dash util-linux procps passwd gcc libc6-dev make cargo git openssh-client passt \
  firefox-esr chromium xvfb x11-apps xauth xdg-dbus-proxy dbus-daemon dbus-bin bubblewrap \
  desktop-file-utils apparmor dpkg-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need="$need $pkg"
done
if [ -n "$need" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
fi
# newuidmap must be setuid root (or carry file capabilities) for the subordinate path.
ls -l /usr/bin/newuidmap /usr/bin/newgidmap
# pasta opens /dev/net/tun as the user: Debian's udev rules make it 0666, a bare VM
# image may leave it 0600 (root only).
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  echo "making /dev/net/tun 0666 (Debian's default) for pasta"
  chmod 0666 /dev/net/tun
fi

mkuser() {
  id "$1" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --user-group "$1"
}
mkuser sbx-sub
mkuser sbx-nosub
# Subordinate ranges for sbx-sub only; sbx-nosub must have none.
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  sed -i '/^sbx-nosub:/d' "$f"
  grep -q '^sbx-sub:' "$f" || echo "sbx-sub:200000:65536" >> "$f"
done
echo "test users ready:"
id sbx-sub; grep '^sbx-sub:' /etc/subuid /etc/subgid
id sbx-nosub

# cargo-deb, for the package test (tests/package.rs builds and unpacks the .deb).
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "installing cargo-deb (for tests/package.rs)"
  cargo install cargo-deb --locked --quiet
fi
