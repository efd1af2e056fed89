#!/usr/bin/env bash
# Build the deployment's base images without any registry, and a wheelhouse for the
# server image, so `docker compose build` needs neither Docker Hub nor a network.
#
#   scripts/docker-base-images.sh [--python-image NAME] [--postgres-image NAME]
#                                 [--wheels DIR | --no-wheels] [--with-trainer] [--rebuild]
#                                 [--mirror URL] [--suite NAME] [--compose-v2]
#
# Images (each from a `debootstrap --variant=minbase` root file system, `docker import`ed):
#   rlvr-python:SUITE    python3 + venv + pip, bubblewrap, util-linux (setpriv, prlimit),
#                        ca-certificates: the Dockerfile's PYTHON_IMAGE
#   rlvr-postgres:SUITE  Debian's `postgresql` with an entrypoint that initialises the
#                        cluster from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, as
#                        the official image does: docker-compose.yml's POSTGRES_IMAGE
# The Debian mirror is the one apt uses here (/etc/apt/sources.list*), or --mirror /
# $RLVR_DEBIAN_MIRROR. Existing images are reused unless --rebuild.
#
# Wheelhouse (default build/wheels, git-ignored, inside the build context): every wheel
# `pip install ".[postgres]"` needs, built here with this host's pip configuration (its
# index, mirror or local wheel folders), plus setuptools and wheel for building the
# project itself. The Dockerfile installs from it with --no-index when it is present.
# --with-trainer also fills build/wheels-trainer (DIR-trainer) with the trainer image's
# wheels ($RLVR_TORCH_SPEC, default torch==2.13.0, and '.[train]'): a folder of its own,
# which only the trainer image's build stage copies.
#
# Engine: scripts/docker-engine.sh (reuses a running engine, else starts dockerd as root).
# Compose: when neither `docker compose` nor docker-compose is installed, Debian's
# docker-compose is installed as root with apt (v1 1.29 on bookworm). --compose-v2 (or
# RLVR_COMPOSE_V2=1) installs the v2 plugin when `docker compose` is missing: Debian
# trixie's docker-compose package ($RLVR_COMPOSE_V2_SUITE), only its plugin binary.
# Last lines of stdout: PYTHON_IMAGE=... and POSTGRES_IMAGE=..., ready for an .env file
# or `export`. Exit status: 0; 3 when this host cannot (no engine, no debootstrap...),
# the reason on the last line of stderr.
set -uo pipefail
cd "$(dirname "$0")/.."

SUITE=""
MIRROR="${RLVR_DEBIAN_MIRROR:-}"
PY_IMAGE=""
PG_IMAGE=""
WHEELS="build/wheels"
REBUILD=0
WITH_TRAINER=0
COMPOSE_V2="${RLVR_COMPOSE_V2:-0}"
COMPOSE_V2_SUITE="${RLVR_COMPOSE_V2_SUITE:-trixie}"

cannot() { echo "cannot: $*" >&2; exit 3; }
say() { echo "[docker-base-images] $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --python-image) PY_IMAGE="$2"; shift 2 ;;
    --postgres-image) PG_IMAGE="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --no-wheels) WHEELS=""; shift ;;
    --rebuild) REBUILD=1; shift ;;
    --with-trainer) WITH_TRAINER=1; shift ;;
    --compose-v2) COMPOSE_V2=1; shift ;;
    --mirror) MIRROR="$2"; shift 2 ;;
    --suite) SUITE="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) cannot "unknown option $1" ;;
  esac
done

if [ -z "$SUITE" ]; then
  SUITE="$( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")"
  [ -n "$SUITE" ] || SUITE=bookworm
fi
PY_IMAGE="${PY_IMAGE:-rlvr-python:$SUITE}"
PG_IMAGE="${PG_IMAGE:-rlvr-postgres:$SUITE}"

if [ -z "$MIRROR" ]; then  # the first Debian archive (not -security) apt uses; deb822 or one-line form
  MIRROR="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' \
            | grep -v -- '-security' | head -1)"
  [ -n "$MIRROR" ] || MIRROR="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
            | grep -v -- '-security' | head -1)"
  [ -n "$MIRROR" ] || MIRROR="http://deb.debian.org/debian"
fi

# install_compose_v2: Compose v2 as a docker CLI plugin where apt has none (bookworm ships
# v1 only): Debian $COMPOSE_V2_SUITE's docker-compose package (a static Go binary, v2),
# fetched with a private apt state (this host's apt sources stay as they are) and its
# plugin copied to /usr/local/lib/docker/cli-plugins. Debian v1 stays as `docker-compose`.
install_compose_v2() {
  local dir plugin=/usr/local/lib/docker/cli-plugins/docker-compose apt
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { say "--compose-v2 needs root and apt"; return 0; }
  dir="$(mktemp -d /var/tmp/rlvr-compose.XXXXXX)" || return 0
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $COMPOSE_V2_SUITE main" > "$dir/sources.list"
  apt=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
       -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
  say "installing Compose v2 from Debian $COMPOSE_V2_SUITE's docker-compose into $plugin"
  if (cd "$dir" && apt-get "${apt[@]}" -qq update && apt-get "${apt[@]}" -qq download docker-compose) >"$dir/log" 2>&1 \
     && dpkg-deb -x "$dir"/docker-compose_*.deb "$dir/x" \
     && [ -x "$dir/x/usr/libexec/docker/cli-plugins/docker-compose" ]; then
    mkdir -p "$(dirname "$plugin")" && install -m 755 "$dir/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugin"
    say "$(docker compose version 2>&1)"
  else
    say "Compose v2 not installed: $(tail -1 "$dir/log" 2>/dev/null)"
  fi
  rm -rf "$dir"
}

bash scripts/docker-engine.sh || exit 3

# Compose, to run docker-compose.yml: the v2 plugin when installed, else (as root with apt)
# Debian's docker-compose (v1 1.29 on bookworm); --compose-v2 adds the v2 plugin.
if [ "$COMPOSE_V2" = 1 ] && ! docker compose version >/dev/null 2>&1; then
  install_compose_v2
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing docker-compose (no compose installed)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null) 2>&1 | tail -3 >&2
  fi
  command -v docker-compose >/dev/null || say "no compose installed: the images build, docker-compose.yml needs \`docker compose\` or docker-compose"
fi

# -- the wheelhouse -------------------------------------------------------------------------
if [ -n "$WHEELS" ]; then
  PY="${RLVR_PYTHON:-}"
  [ -n "$PY" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python; } || PY=python3
  # wheelhouse DIR SPEC...: pip wheel SPEC... into DIR, less the project's own wheel (the
  # image builds the project from its copied source, never from a stale wheel).
  wheelhouse() {
    local dir="$1" t0; shift
    mkdir -p "$dir"; t0=$(date +%s)
    say "wheelhouse $dir: pip wheel $* (this host's pip configuration)"
    if ! "$PY" -m pip wheel -q --wheel-dir "$dir" "$@" >/tmp/rlvr-wheels.log 2>&1; then
      tail -5 /tmp/rlvr-wheels.log >&2
      cannot "pip wheel failed (log /tmp/rlvr-wheels.log)"
    fi
    rm -f "$dir"/rlvr_rewards-*.whl
    say "wheelhouse $dir: $(ls "$dir" | wc -l) wheels, $(du -sh "$dir" | cut -f1), $(( $(date +%s) - t0 )) s"
  }
  wheelhouse "$WHEELS" ".[postgres]" "setuptools>=69" wheel
  # The trainer's own wheels in a folder of their own: the server image never sees them.
  [ "$WITH_TRAINER" = 1 ] && wheelhouse "$WHEELS-trainer" "${RLVR_TORCH_SPEC:-torch==2.13.0}" ".[train]"
fi

# -- the images -----------------------------------------------------------------------------
have() { [ "$REBUILD" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }
if have "$PY_IMAGE" && have "$PG_IMAGE"; then
  say "reusing $PY_IMAGE and $PG_IMAGE"
  echo "PYTHON_IMAGE=$PY_IMAGE"
  echo "POSTGRES_IMAGE=$PG_IMAGE"
  exit 0
fi

[ "$(id -u)" = 0 ] || cannot "debootstrap and chroot need root to build the base images"
if ! command -v debootstrap >/dev/null && command -v apt-get >/dev/null; then
  say "installing debootstrap"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null) 2>&1 | tail -3 >&2
fi
command -v debootstrap >/dev/null || cannot "debootstrap is not installed (Debian package debootstrap)"


WORK="$(mktemp -d /var/tmp/rlvr-base.XXXXXX)" || cannot "no scratch space in /var/tmp"
MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

t0=$(date +%s)
say "debootstrap --variant=minbase $SUITE from $MIRROR"
if ! debootstrap --variant=minbase "$SUITE" "$WORK/minbase" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -5 "$WORK/debootstrap.log" >&2
  cannot "debootstrap of $SUITE from $MIRROR failed: $(grep -E '^E:' "$WORK/debootstrap.log" | tail -1)"
fi
say "debootstrap took $(( $(date +%s) - t0 )) s"

# chroot_install ROOT PKG...: apt-get install inside ROOT with the host's name resolution,
# no daemon started (policy-rc.d), no recommends.
chroot_install() {
  local root="$1"; shift
  cp /etc/resolv.conf "$root/etc/resolv.conf"; cp /etc/hosts "$root/etc/hosts"
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc" && MOUNTS+=("$root/proc")
  if ! chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c \
       'apt-get update -qq && apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "$@"' \
       sh "$@" >"$WORK/apt-$(basename "$root").log" 2>&1; then
    tail -5 "$WORK/apt-$(basename "$root").log" >&2
    cannot "apt-get install $* in the $SUITE root failed"
  fi
  umount -l "$root/proc" 2>/dev/null
  rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
}

# trim ROOT: what a service never reads; keep dpkg's database (apt-get still works in it).
trim() {
  rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/* \
         "$1"/usr/share/lintian "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/tmp/* \
         "$1"/root/.cache
  mkdir -p "$1/tmp"; chmod 1777 "$1/tmp"
}

# import ROOT IMAGE --change...: the root file system as an image.
import_root() {
  local root="$1" image="$2"; shift 2
  say "importing $image ($(du -sh "$root" | cut -f1) unpacked)"
  tar -C "$root" --numeric-owner -c . | docker import "$@" \
      --change "LABEL rlvr.built-from=debootstrap-$SUITE" - "$image" >/dev/null \
    || cannot "docker import of $image failed"
}

if ! have "$PY_IMAGE"; then
  R="$WORK/python"
  cp -a "$WORK/minbase" "$R"
  chroot_install "$R" python3 python3-venv python3-pip bubblewrap ca-certificates
  for tool in usr/bin/python3 usr/bin/bwrap usr/bin/setpriv usr/bin/prlimit; do
    [ -x "$R/$tool" ] || cannot "the python root file system lacks /$tool"
  done
  trim "$R"
  import_root "$R" "$PY_IMAGE" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]'
fi

if ! have "$PG_IMAGE"; then
  R="$WORK/postgres"
  cp -a "$WORK/minbase" "$R"
  # The cluster is made at first start in the data volume, not at install time.
  mkdir -p "$R/etc/postgresql-common"
  echo "create_main_cluster = false" > "$R/etc/postgresql-common/createcluster.conf"
  chroot_install "$R" postgresql
  PGBIN="$(ls -d "$R"/usr/lib/postgresql/*/bin | tail -1)"
  [ -x "$PGBIN/initdb" ] || cannot "the postgres root file system lacks initdb"
  PGBIN="${PGBIN#"$R"}"
  cat > "$R/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# PostgreSQL in a container, configured as the official image is: POSTGRES_PASSWORD
# (required on first start), POSTGRES_USER (default postgres), POSTGRES_DB (default the
# user), PGDATA (default /var/lib/postgresql/data). The cluster is made on the first start
# in an empty PGDATA: the socket trusts local users, TCP needs the password
# (scram-sha-256). Extra arguments go to postgres (e.g. -c max_connections=200).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "docker-entrypoint: set POSTGRES_PASSWORD" >&2; exit 1; }
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
         --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then  # on the socket only, before anyone can connect
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "docker-entrypoint: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
  chmod 755 "$R/usr/local/bin/docker-entrypoint.sh"
  trim "$R"
  import_root "$R" "$PG_IMAGE" --change "ENV PATH=$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change 'ENV LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data' --change 'EXPOSE 5432' \
      --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
      --change 'CMD []'
fi

say "base images ready in $(( $(date +%s) - t0 )) s: $PY_IMAGE, $PG_IMAGE"
echo "PYTHON_IMAGE=$PY_IMAGE"
echo "POSTGRES_IMAGE=$PG_IMAGE"
