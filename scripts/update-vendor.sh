#!/usr/bin/env bash
# Re-vendors the dashboard's browser libraries from the npm registry into src/Dashboard/wwwroot/lib/.
# The build and the run command never need npm: the dist files and their licenses are committed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lib="$root/src/Dashboard/wwwroot/lib"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Pinned versions: bump here, run the script, commit the result.
CHARTJS=4.6.1
ADAPTER=3.0.0
cd "$tmp"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts "chart.js@$CHARTJS" "chartjs-adapter-date-fns@$ADAPTER" "date-fns@4" >/dev/null
rm -rf "$lib/chart.js" "$lib/chartjs-adapter-date-fns"
mkdir -p "$lib/chart.js" "$lib/chartjs-adapter-date-fns"
cp node_modules/chart.js/dist/chart.umd.min.js "$lib/chart.js/"
cp node_modules/chart.js/LICENSE.md "$lib/chart.js/LICENSE.md"
# The adapter's bundle includes date-fns (MIT) so no separate date-fns file is needed.
cp node_modules/chartjs-adapter-date-fns/dist/chartjs-adapter-date-fns.bundle.min.js "$lib/chartjs-adapter-date-fns/"
cp node_modules/chartjs-adapter-date-fns/LICENSE.md "$lib/chartjs-adapter-date-fns/LICENSE.md"
echo "chart.js $CHARTJS, chartjs-adapter-date-fns $ADAPTER" > "$lib/VERSIONS.txt"
echo "vendored into $lib"
