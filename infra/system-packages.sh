#!/usr/bin/env bash
# Debian packages that some tests drive, installed once (as root, where apt-get exists):
# PostgreSQL for the single-machine stack (tests/integration/test_stack.py) and Chromium for the
# UI form (tests/integration/test_ui_form.py). Elsewhere those tests say what is missing.
set -euo pipefail
[[ $EUID -eq 0 ]] && command -v apt-get >/dev/null || exit 0
updated=
install() {  # install PACKAGE [apt-get options]
  [[ -n $updated ]] || { apt-get update -qq; updated=1; }
  echo "installing Debian's $1"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" "$1" >/dev/null
}
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || install postgresql --no-install-recommends
[[ -x /usr/bin/chromium ]] || install chromium
