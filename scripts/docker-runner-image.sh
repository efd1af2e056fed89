#!/usr/bin/env bash
# Build the Docker sandbox's runner image without any registry, starting a Docker engine
# first when none answers. Idempotent: an engine that answers and an image that exists
# (with the languages asked for) are reused.
#
#   scripts/docker-runner-image.sh [--image NAME] [--with-cpp] [--with-node] [--rebuild]
#                                  [--mirror URL] [--suite NAME] [--no-start-engine]
#
# The image is a Debian root file system from `debootstrap --variant=minbase` (python3;
# g++ and nodejs only when asked: they triple its size), trimmed of documentation and
# package caches, imported with `docker import`. Nothing is pulled: the Debian mirror is
# the one apt already uses (/etc/apt/sources.list*), or --mirror / $RLVR_DEBIAN_MIRROR.
# The image is labelled rlvr.langs=python[,cpp][,javascript]; the Docker backend
# (verifiers/sandbox/docker_backend.py) runs every program in it as a non-root user.
#
# Engine: `docker info` must answer; if it does not and we are root with dockerd
# installed, dockerd is started in the background (log: $RLVR_DOCKERD_LOG, default
# /tmp/rlvr-dockerd.log), falling back to --storage-driver=vfs and then to
# --iptables=false --bridge=none (the sandbox uses no network); RLVR_DOCKER_START_ENGINE=0
# (or --no-start-engine) never starts one. As root with apt-get,
# missing docker.io / debootstrap are installed.
#
# Exit status: 0 and the image name on the last line of stdout; 3 when this host cannot
# (no engine, no debootstrap, no mirror...), the reason on the last line of stderr.
set -uo pipefail

IMAGE="${RLVR_SANDBOX_IMAGE:-rlvr-sandbox:latest}"
WITH_CPP=0
WITH_NODE=0
REBUILD=0
START_ENGINE="${RLVR_DOCKER_START_ENGINE:-1}"
MIRROR="${RLVR_DEBIAN_MIRROR:-}"
SUITE=""
LOG="${RLVR_DOCKERD_LOG:-/tmp/rlvr-dockerd.log}"

cannot() { echo "cannot: $*" >&2; exit 3; }
say() { echo "[docker-runner-image] $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE="$2"; shift 2 ;;
    --with-cpp) WITH_CPP=1; shift ;;
    --with-node) WITH_NODE=1; shift ;;
    --rebuild) REBUILD=1; shift ;;
    --mirror) MIRROR="$2"; shift 2 ;;
    --suite) SUITE="$2"; shift 2 ;;
    --no-start-engine) START_ENGINE=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) cannot "unknown option $1" ;;
  esac
done

is_root() { [ "$(id -u)" = 0 ]; }

install_pkgs() {  # install_pkgs PKG...: only as root with apt-get
  is_root && command -v apt-get >/dev/null || return 1
  say "installing $*"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null) 2>&1 | tail -3 >&2
  return 0
}

# Starting the engine and building the image: one at a time on this host (parallel test
# sessions share the engine). Reusing both takes no lock.
LOCK="/tmp/rlvr-sandbox-image.lock"
LOCKED=0
take_lock() {
  [ "$LOCKED" = 1 ] && return 0
  exec 9>"$LOCK" || cannot "cannot open $LOCK"
  if command -v flock >/dev/null; then
    flock -w 1200 9 || cannot "another start or build holds $LOCK"
  fi
  LOCKED=1
}

# -- the engine ---------------------------------------------------------------------------
if ! command -v docker >/dev/null; then
  install_pkgs docker.io
  command -v docker >/dev/null || cannot "the docker CLI is not installed (Debian package docker.io)"
fi

engine_up() { timeout 20 docker info >/dev/null 2>&1; }

engine_up || take_lock
if ! engine_up; then
  [ "$START_ENGINE" = 1 ] || cannot "no Docker engine answers (docker info) and starting one is off (--no-start-engine or RLVR_DOCKER_START_ENGINE=0)"
  is_root || cannot "no Docker engine answers (docker info) and only root can start dockerd here"
  command -v dockerd >/dev/null || install_pkgs docker.io
  command -v dockerd >/dev/null || cannot "no Docker engine answers and dockerd is not installed (docker.io)"
  started=0
  for opts in "" "--storage-driver=vfs" "--storage-driver=vfs --iptables=false --bridge=none"; do
    say "starting dockerd ${opts:-(default options)}; log: $LOG"
    # shellcheck disable=SC2086
    setsid dockerd $opts >>"$LOG" 2>&1 < /dev/null 9>&- &
    pid=$!
    for _ in $(seq 1 60); do
      if engine_up; then started=1; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    [ "$started" = 1 ] && break
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null
    say "dockerd ${opts:-(default options)} did not come up: $(grep -iE 'level=(error|fatal)|failed' "$LOG" | tail -1)"
  done
  [ "$started" = 1 ] || cannot "dockerd does not start here (see $LOG): $(grep -iE 'level=(error|fatal)' "$LOG" | tail -1 | cut -c1-300)"
  say "dockerd is up (pid $pid)"
fi

# -- the image ----------------------------------------------------------------------------
LANGS="python"
INCLUDE="python3"
[ "$WITH_CPP" = 1 ] && { LANGS="$LANGS,cpp"; INCLUDE="$INCLUDE,g++,libc6-dev"; }
[ "$WITH_NODE" = 1 ] && { LANGS="$LANGS,javascript"; INCLUDE="$INCLUDE,nodejs"; }

image_lacks() {  # prints the languages $IMAGE lacks, or "absent"; nothing when it serves
  docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo absent; return; }
  have="$(docker image inspect -f '{{ index .Config.Labels "rlvr.langs" }}' "$IMAGE" 2>/dev/null)"
  for l in ${LANGS//,/ }; do case ",$have," in *",$l,"*) ;; *) printf ' %s' "$l" ;; esac; done
}

if [ "$REBUILD" = 0 ]; then
  lacks="$(image_lacks)"
  if [ -n "$lacks" ]; then
    take_lock
    lacks="$(image_lacks)"  # built meanwhile by whoever held the lock?
  fi
  if [ -z "$lacks" ]; then
    say "reusing $IMAGE (languages: $(docker image inspect -f '{{ index .Config.Labels "rlvr.langs" }}' "$IMAGE"))"
    echo "$IMAGE"
    exit 0
  fi
  [ "$lacks" = absent ] || say "$IMAGE lacks:$lacks; rebuilding"
else
  take_lock
fi

if ! command -v debootstrap >/dev/null; then
  install_pkgs debootstrap
  command -v debootstrap >/dev/null || cannot "debootstrap is not installed (Debian package debootstrap)"
fi
is_root || cannot "debootstrap needs root to build the runner image"

if [ -z "$SUITE" ]; then
  SUITE="$( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")"
  [ -n "$SUITE" ] || SUITE=bookworm
fi
if [ -z "$MIRROR" ]; then
  # deb822 (*.sources: "URIs: ...") or one-line ("deb URL suite ...") form; the first
  # Debian archive (not -security) that apt uses.
  MIRROR="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' \
            | grep -v -- '-security' | head -1)"
  [ -n "$MIRROR" ] || MIRROR="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
            | grep -v -- '-security' | head -1)"
  [ -n "$MIRROR" ] || MIRROR="http://deb.debian.org/debian"
fi

WORK="$(mktemp -d /var/tmp/rlvr-rootfs.XXXXXX)" || cannot "no scratch space in /var/tmp"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"
t0=$(date +%s)
say "debootstrap --variant=minbase --include=$INCLUDE $SUITE from $MIRROR"
if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -5 "$WORK/debootstrap.log" >&2
  cannot "debootstrap of $SUITE from $MIRROR failed: $(grep -E '^E:' "$WORK/debootstrap.log" | tail -1)"
fi
say "debootstrap took $(( $(date +%s) - t0 )) s"

# Trim what a sandboxed program never needs; keep dpkg's database (the image stays a
# Debian system one can inspect) and the python3 standard library.
rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/lintian "$ROOTFS"/usr/share/common-licenses \
       "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
find "$ROOTFS"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null
# The run's directory; /tmp, /sandbox and /dev/shm are tmpfs mounts in the container.
mkdir -p "$ROOTFS/sandbox" "$ROOTFS/tmp"
chmod 0755 "$ROOTFS/sandbox"
chmod 1777 "$ROOTFS/tmp"
for tool in usr/bin/python3 usr/bin/prlimit bin/sleep; do
  [ -e "$ROOTFS/$tool" ] || cannot "the built root file system lacks /$tool"
done

say "importing as $IMAGE ($(du -sh "$ROOTFS" | cut -f1) unpacked)"
if ! tar -C "$ROOTFS" --numeric-owner -c . | docker import \
      --change 'CMD ["/bin/sleep", "infinity"]' \
      --change 'ENV PATH=/usr/bin:/bin LANG=C.UTF-8' \
      --change 'WORKDIR /sandbox' \
      --change "LABEL rlvr.langs=$LANGS" \
      --change "LABEL rlvr.built-from=debootstrap-$SUITE" \
      - "$IMAGE" >/dev/null; then
  cannot "docker import of the root file system failed"
fi
say "built $IMAGE in $(( $(date +%s) - t0 )) s: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
echo "$IMAGE"
