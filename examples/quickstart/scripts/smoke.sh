#!/usr/bin/env bash
# Checks a packaged site: every page is in the archive and links the stylesheet.
set -euo pipefail
archive="${1:?usage: smoke.sh ARCHIVE}"
listing=$(tar -tzf "$archive")
for page in index about changelog; do
  grep -qx "./$page.html" <<<"$listing" || { echo "missing $page.html in $archive" >&2; exit 1; }
  tar -xOzf "$archive" "./$page.html" | grep -q 'href="site.css"' \
    || { echo "$page.html does not link site.css" >&2; exit 1; }
done
echo "smoke: $(wc -l <<<"$listing") entries, all pages present"
