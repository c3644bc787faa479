#!/usr/bin/env bash
# Installs what wheeldock's demo and tests need on a Debian bookworm machine, as root.
# Idempotent: a second run only checks and is quick. Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

BOOKWORM_PKGS=(mmdebstrap umoci runc crun docker-registry apache2-utils qemu-user-static binfmt-support
  arch-test python3-venv curl ca-certificates zstd dpkg-dev oci-image-tool busybox-static
  gcc python3-dev libffi-dev libpq-dev libyaml-dev)
# The engine and its tools come from Debian trixie (bookworm's skopeo 1.9 cannot talk to engine
# 26; docker-compose v2 and buildx are trixie's). An engine already here with compose v2 and
# buildx is used as it is: nothing of trixie is added then.
TRIXIE_PKGS=()
engine_ok() {
  command -v docker >/dev/null && docker compose version 2>/dev/null | grep -q ' v\?2\.' \
    && docker buildx version >/dev/null 2>&1
}
if ! engine_ok; then TRIXIE_PKGS+=(docker.io docker-buildx docker-compose); fi
if ! command -v skopeo >/dev/null || ! skopeo --version | grep -Eq ' 1\.(1[3-9]|[2-9][0-9])'; then
  TRIXIE_PKGS+=(skopeo)
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

missing=()
for p in "${BOOKWORM_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
export DEBIAN_FRONTEND=noninteractive
apt_update() {
  if [ ! -f /var/lib/apt/.wheeldock-updated ]; then
    $SUDO apt-get update -qq && touch /var/lib/apt/.wheeldock-updated
  fi
}
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The registry package starts a daemon on :5000 where init scripts run; tests start their own.
  $SUDO pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true
else
  log "Debian packages present"
fi

if [ ${#TRIXIE_PKGS[@]} -gt 0 ]; then
  # Debian trixie, pinned low: only the packages asked for with -t trixie come from it.
  if [ ! -f /etc/apt/sources.list.d/trixie.sources ]; then
    log "adding Debian trixie at pin priority 100 (only what is asked for with -t trixie comes from it)"
    $SUDO tee /etc/apt/sources.list.d/trixie.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO tee /etc/apt/preferences.d/trixie-pin >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    rm -f /var/lib/apt/.wheeldock-updated
  fi
  apt_update
  # Say what the trixie install changes on this machine before it does: apt's own simulation.
  # On a bookworm host that is libc6 (2.36 -> 2.41), libstdc++6, dpkg, base-files and the rest
  # of what the engine's packages depend on.
  upgrades=$($SUDO apt-get install -s --no-install-recommends -t trixie "${TRIXIE_PKGS[@]}" 2>/dev/null \
    | awk '/^Inst / && $3 ~ /^\[/ { gsub(/[\[\]]/, "", $3); print "  " $2 " " $3 " -> " substr($4, 2) }')
  if [ -n "$upgrades" ]; then
    log "installing ${TRIXIE_PKGS[*]} from trixie upgrades these host packages:"
    printf '%s\n' "$upgrades"
    log "(an engine with compose v2 and buildx already installed is used instead: install it first to avoid this)"
  fi
  log "installing from trixie: ${TRIXIE_PKGS[*]}"
  # docker.io's maintainer script may fail to start the engine without systemd: that is fine,
  # we start it ourselves below.
  $SUDO apt-get install -y -qq --no-install-recommends -t trixie "${TRIXIE_PKGS[@]}" >/dev/null || {
    $SUDO dpkg --configure -a || true
    $SUDO apt-get install -y -qq --no-install-recommends -t trixie "${TRIXIE_PKGS[@]}" >/dev/null
  }
else
  log "engine present (docker with compose v2 and buildx), skopeo present: nothing from trixie"
fi

# The docker CLI preinstalled in /usr/local/bin may shadow Debian's; make sure it finds the plugins.
for plugin in docker-buildx docker-compose; do
  if [ -x "/usr/libexec/docker/cli-plugins/$plugin" ] && [ ! -e "/usr/local/lib/docker/cli-plugins/$plugin" ]; then
    $SUDO mkdir -p /usr/local/lib/docker/cli-plugins
    $SUDO ln -sf "/usr/libexec/docker/cli-plugins/$plugin" "/usr/local/lib/docker/cli-plugins/$plugin"
  fi
done

# The project's venv, with wheeldock installed editable. Debian's own python3 by default (a
# pyenv or other python3 earlier on PATH is passed over): it is the images' interpreter, and its
# optimised (PGO/LTO) build compiles the images' bytecode ~20% faster than an unoptimised one
# such as pyenv's default build. PYTHON=... picks another.
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ] \
   && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  PY=/usr/bin/python3
else
  PY=${PYTHON:-python3}
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.wheeldock-installed-$DEV"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing wheeldock into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$DEV" = 1 ]; then
    .venv/bin/python -m pip install -q -e '.[dev]'
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
else
  log ".venv up to date"
fi
# An editable install leaves wheeldock's own modules uncompiled (a wheel install compiles them),
# and with PYTHONDONTWRITEBYTECODE set every start would compile them again: ~0.1 s per command.
.venv/bin/python -m compileall -q src/wheeldock >/dev/null

# Foreign-architecture bases (`wheeldock base build --arch arm64`) run maintainer scripts under
# qemu-user: the kernel's binfmt_misc must be mounted and the handler enabled.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
# qemu-arm too: armhf (linux/arm/v7) bases and images.
for handler in qemu-aarch64 qemu-arm; do
  if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e "/proc/sys/fs/binfmt_misc/$handler" ]; then
    $SUDO update-binfmts --enable "$handler" 2>/dev/null || log "could not enable $handler binfmt"
  fi
done

# The engine: started here when it is not running (no systemd on these machines).
scripts/dockerd.sh start
