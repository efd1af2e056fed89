#!/bin/sh
# /opt/rlvr/bin/reward-server in the server image, first on PATH. Run as root (compose's
# reward-server: its command, `docker compose exec`, the healthcheck), it readies /proc
# for the code verifier's sandbox, then steps down to the user `rewards` with no
# capability, an empty bounding set and no_new_privs, and runs the real
# /opt/venv/bin/reward-server. Run as `rewards` (the image's default user) it only execs it.
#
# Why: bubblewrap (unprivileged, in user namespaces) mounts a fresh /proc for the sandbox
# and sets nested user namespaces off through /proc/sys/user. Docker masks parts of the
# container's /proc (kcore, keys, sysrq-trigger...) and binds /proc/sys read-only over
# itself; the kernel then refuses the new proc mount and the write. Two mount operations,
# which need CAP_SYS_ADMIN (compose's cap_add), held only by this script until its exec:
#   umount /proc/sys        /proc/sys as the kernel gives it (each file keeps its owner
#                           and mode: root's, so `rewards` writes none of the container's)
#   a proc anchor           a fresh proc at /run/rlvr-proc-anchor/proc, in a directory only
#                           root may enter: the kernel allows a new proc in a user namespace
#                           only while one proc mount is fully visible (none masked). The
#                           server never sees it; its own /proc keeps Docker's other masks.
# Where either fails (no CAP_SYS_ADMIN: a plain `docker run`), a line on stderr and the
# server starts anyway: the code verifier then reports itself unavailable, with the reason.
set -eu
REAL=/opt/venv/bin/reward-server
ANCHOR=/run/rlvr-proc-anchor
[ "$(id -u)" = 0 ] || exec "$REAL" "$@"
warn() { echo "reward-server: $* (needs cap_add SYS_ADMIN): the code sandbox may be unavailable" >&2; }
if mountpoint -q /proc/sys; then
  umount /proc/sys 2>/dev/null || warn "cannot unmount the read-only /proc/sys"
fi
if ! mountpoint -q "$ANCHOR/proc" 2>/dev/null; then
  { mkdir -p "$ANCHOR/proc" && chmod 0700 "$ANCHOR" \
    && mount -t proc -o nosuid,nodev,noexec proc "$ANCHOR/proc" 2>/dev/null; } \
    || warn "cannot mount a proc anchor at $ANCHOR/proc"
fi
exec setpriv --reuid=rewards --regid=rewards --init-groups --inh-caps=-all --bounding-set=-all \
     --no-new-privs -- "$REAL" "$@"
