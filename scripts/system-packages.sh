#!/usr/bin/env bash
# The Debian packages the whole test suite needs: PostgreSQL (the tests start a throwaway server) and
# Chromium (the browser tests). As root, installs what is missing; otherwise says what to install.
set -euo pipefail

missing=()
command -v make >/dev/null || missing+=(make)
if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# The browser tests drive Debian's Chromium through Playwright (pip), never a downloaded browser.
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "note: the PostgreSQL and browser tests need Debian packages: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  echo "      (without them those tests are skipped here; in CI they fail)" >&2
fi
