#!/usr/bin/env bash
# Make sure a Docker engine answers, starting dockerd in the background when none does.
#
#   scripts/docker-engine.sh [--no-start]
#
# `docker info` must answer; if it does not and we are root with dockerd installed (as
# root with apt-get, docker.io is installed when missing), dockerd is started with setsid
# (log: $RLVR_DOCKERD_LOG, default /tmp/rlvr-dockerd.log), falling back to
# --storage-driver=vfs (hosts whose file system refuses overlayfs). --no-start (or
# RLVR_DOCKER_START_ENGINE=0) only checks. The same approach as docker-runner-image.sh.
#
# Exit status: 0 when an engine answers; 3 when none can here, the reason on the last
# line of stderr.
set -uo pipefail

START="${RLVR_DOCKER_START_ENGINE:-1}"
LOG="${RLVR_DOCKERD_LOG:-/tmp/rlvr-dockerd.log}"
[ "${1:-}" = --no-start ] && START=0

cannot() { echo "cannot: $*" >&2; exit 3; }
say() { echo "[docker-engine] $*" >&2; }
engine_up() { timeout 20 docker info >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }
install_docker() {
  is_root && command -v apt-get >/dev/null || return 0
  say "installing docker.io"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null) 2>&1 | tail -3 >&2
}

command -v docker >/dev/null || install_docker
command -v docker >/dev/null || cannot "the docker CLI is not installed (Debian package docker.io)"
engine_up && exit 0

# One start at a time on this host: parallel sessions share the engine.
exec 9>/tmp/rlvr-docker-engine.lock || cannot "cannot open /tmp/rlvr-docker-engine.lock"
command -v flock >/dev/null && { flock -w 300 9 || cannot "another start holds /tmp/rlvr-docker-engine.lock"; }
engine_up && exit 0
[ "$START" = 1 ] || cannot "no Docker engine answers (docker info) and starting one is off"
is_root || cannot "no Docker engine answers (docker info) and only root can start dockerd here"
command -v dockerd >/dev/null || install_docker
command -v dockerd >/dev/null || cannot "no Docker engine answers and dockerd is not installed (docker.io)"
for opts in "" "--storage-driver=vfs"; do
  say "starting dockerd ${opts:-(default options)}; log: $LOG"
  # shellcheck disable=SC2086
  setsid dockerd $opts >>"$LOG" 2>&1 < /dev/null 9>&- &
  pid=$!
  for _ in $(seq 1 60); do
    engine_up && { say "dockerd is up (pid $pid)"; exit 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null
  say "dockerd ${opts:-(default options)} did not come up: $(grep -iE 'level=(error|fatal)|failed' "$LOG" | tail -1)"
done
cannot "dockerd does not start here (see $LOG): $(grep -iE 'level=(error|fatal)' "$LOG" | tail -1 | cut -c1-300)"
