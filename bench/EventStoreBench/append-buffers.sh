#!/bin/bash
# Buffer hits of one group append (13 streams x 10 events) by statement, with the cross-month checks every-row (043)
# and by the stream's span (046), for young streams (all rows this month) and aged ones (also a row last month):
# deterministic, unlike timings on a shared machine (docs/benchmarks.md "The cross-month checks by the stream's span").
# Starts a private PostgreSQL 15 on a free loopback port (as the postgres user when run as root), applies the event
# store's migrations with psql, prints the table, stops the server. Usage: bash bench/EventStoreBench/append-buffers.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../.." && pwd)
bin=/usr/lib/postgresql/15/bin
dir=$(mktemp -d /tmp/pf-append-buffers-XXXX); chmod 777 "$dir"
as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
as "$bin/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
as "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >/dev/null
trap 'as "$bin/pg_ctl" -D "$dir/data" stop -m fast >/dev/null; rm -rf "$dir"' EXIT
P() { "$bin/psql" -qAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d mb "$@"; }
"$bin/psql" -qAt -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE mb"
for f in "$repo"/src/EventStore/Sql/0*.sql; do P -1 -f "$f" >/dev/null 2>&1; done
P -f "$here/sql/append_group_helper.sql"
last_month=$(P -c "SELECT (date_trunc('month', now()) - interval '15 days')::timestamptz")
# Other streams' rows in this month and the last, so the plans are those of a table with data (with a few rows
# PostgreSQL scans the partitions instead of probing their indexes, and the counts say nothing).
for k in $(seq 1 ${FILL_GROUPS:-40}); do P -c "SELECT mb_group('fill', $k, 50, 40, now()), mb_group('fillold', $k, 50, 10, '$last_month')" >/dev/null; done
P -c "ANALYZE" >/dev/null
echo "| statement | cross_month_check | streams | shared buffer hits |"
echo "|---|---|---|---:|"
for scen in young aged; do
  for mode in every-row span; do
    pre="b${scen}${mode}"
    if [ $scen = aged ]; then P -c "SELECT mb_group('$pre', 1, 13, 1, '$last_month')" >/dev/null; fi
    P -c "SELECT mb_group('$pre', 1, 13, 10, now())" >/dev/null # warm: plans cached, heads exist
    P 2>"$dir/explain.txt" >/dev/null <<SQL
SET client_min_messages = log;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; SET auto_explain.log_level = notice;
SET pumpfleet.cross_month_check = '$mode';
SELECT mb_group('$pre', 1, 13, 10, now());
SQL
    python3 - "$dir/explain.txt" "$mode" "$scen" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in text.split('Query Text:')[1:]:
    query = ' '.join(block.strip().split('\n')[0].split())
    hits = re.search(r'Buffers: shared hit=(\d+)', block)
    for name, key in (('seq check', 'e.seq = n.seq'), ('event id check', 'e.event_id = n.event_id'),
                      ('span checks (046)', 'WITH c AS MATERIALIZED'), ('group INSERT', 'WITH RECURSIVE g AS'),
                      ('pf_append_group call', 'FROM pf_append_group(')):
        if key in query:
            print(f"| {name} | {sys.argv[2]} | {sys.argv[3]} | {hits.group(1) if hits else 0} |")
PY
  done
done
