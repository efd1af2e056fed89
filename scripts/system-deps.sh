#!/usr/bin/env bash
# System packages some features and their tests use (Debian/Ubuntu, as root):
#   bubblewrap           the code verifier's local sandbox
#   chromium, -driver    the check of `rewardctl report` pages in a headless browser
#   g++, nodejs          C++ and JavaScript programs in the code verifier
# Without root or apt-get it only says what is missing; the tests that need a missing
# package are skipped with the reason printed.
set -uo pipefail
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v chromium >/dev/null || need+=(chromium chromium-driver)
command -v g++ >/dev/null || need+=(g++)
command -v node >/dev/null || need+=(nodejs)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${need[*]}" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
    || echo "could not install ${need[*]}; the tests that need them will be skipped" >&2
else
  echo "missing system packages (install them for the full test suite): ${need[*]}" >&2
fi
exit 0
