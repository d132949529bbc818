#!/usr/bin/env bash
# The server binaries of the deployment test (tests/e2e/test_celery_deployment.py): PostgreSQL (the
# metadata database) and Redis (the Celery broker), from Debian's packages. Nothing is started here:
# the test starts its own servers on free loopback ports, in temporary directories, and stops them.
#
# Root (CI, this project's machines): installs what is missing with apt-get, without starting the
# distribution's services, and creates the unprivileged system user that owns the test's PostgreSQL
# data directory (PostgreSQL refuses to run as root). Not root: only checks and says what is missing.
set -euo pipefail

PG_USER="${MLS_E2E_PG_USER:-mls-e2e}"

find_pg_bin() {
    for dir in "${MLS_E2E_PG_BIN:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

missing=()
find_pg_bin >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "e2e-services: missing ${missing[*]}; install them (Debian: apt-get install -y ${missing[*]}) or run as root" >&2
        exit 1
    fi
    echo "e2e-services: installing ${missing[*]}"
    # Don't let the packages start their system-wide services: the test runs its own.
    policy_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    trap '[ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$(id -u)" -eq 0 ] && ! id -u "$PG_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER"
fi

runs_as=$([ "$(id -u)" -eq 0 ] && echo "$PG_USER" || id -un)
echo "e2e-services: postgres $("$(find_pg_bin)/postgres" --version | awk '{print $3}') in $(find_pg_bin)," \
    "redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), postgres runs as ${runs_as}"
