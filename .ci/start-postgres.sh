#!/usr/bin/env bash
# Install (if needed) and start a throwaway PostgreSQL server on 127.0.0.1:55432 for the tests.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin_dir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
data_dir=/tmp/tinysdlc-nb-pg
port=55432

if "$bin_dir/pg_isready" -h 127.0.0.1 -p "$port" >/dev/null 2>&1; then
    exit 0
fi
rm -rf "$data_dir"
mkdir -p "$data_dir"
chown postgres "$data_dir"
su postgres -c "$bin_dir/initdb -D $data_dir -U postgres --auth=trust >/dev/null"
su postgres -c "$bin_dir/pg_ctl -D $data_dir -o '-p $port -k /tmp -c listen_addresses=127.0.0.1' -l $data_dir/server.log -w start >/dev/null"
"$bin_dir/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE ROLE tinysdlc LOGIN CREATEDB PASSWORD 'ci-local-pg-7Qm2'" \
    -c "CREATE DATABASE tinysdlc_test OWNER tinysdlc"
