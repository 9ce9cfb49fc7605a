#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright. Install it when we can (root, apt).
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium; browser tests will be skipped"
else
  echo "chromium not found at /usr/bin/chromium and not root: browser tests will be skipped"
fi
