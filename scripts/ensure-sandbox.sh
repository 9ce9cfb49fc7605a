#!/usr/bin/env bash
# The sandbox runs fix attempts' tests under bubblewrap; without it they are refused (unless
# QUENCH_SANDBOX_ALLOW_UNISOLATED=true). Install Debian's bubblewrap when we can (root, apt).
if command -v bwrap >/dev/null; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's bubblewrap for the sandbox..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
    || echo "could not install bubblewrap; sandboxed test runs will be refused"
else
  echo "bwrap not found and not root: install bubblewrap (apt-get install bubblewrap), or sandbox runs are refused"
fi
