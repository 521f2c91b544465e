#!/usr/bin/env bash
# Renders content/<page>.txt into build/<page>.html: each line becomes a paragraph.
set -euo pipefail
page="${1:?usage: render-page.sh PAGE}"
: "${SITE_TITLE:?SITE_TITLE must be set (tasks.toml [env])}"
mkdir -p build
{
  printf '<!doctype html>\n<html><head><title>%s: %s</title>\n' "$SITE_TITLE" "$page"
  printf '<link rel="stylesheet" href="site.css"></head><body>\n<h1>%s</h1>\n' "$page"
  sed -e 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s|.*|<p>&</p>|' "content/$page.txt"
  printf '</body></html>\n'
} > "build/$page.html.tmp"
mv "build/$page.html.tmp" "build/$page.html"
