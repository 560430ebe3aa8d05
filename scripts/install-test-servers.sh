#!/usr/bin/env bash
# Installs the database servers that the PostgreSQL and MySQL connector tests start for
# themselves (internal/pgtest, internal/mysqltest): Debian's postgresql (15) and
# mariadb-server, each only when missing. Non-interactive, as root, on Debian 12. It starts no
# service (the packages' own are disabled from starting here): the tests run initdb/pg_ctl and
# mariadbd in temporary directories on free 127.0.0.1 ports and stop them at the end.
set -euo pipefail

need=()
[[ -x /usr/lib/postgresql/15/bin/pg_ctl ]] || need+=(postgresql)
[[ -x /usr/sbin/mariadbd && -x /usr/bin/mariadb-install-db ]] || need+=(mariadb-server)
if ((${#need[@]} == 0)); then
	echo "install-test-servers: postgresql and mariadb-server are installed"
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "install-test-servers: missing ${need[*]}; run as root: apt-get install ${need[*]}" >&2
	exit 1
fi
echo "install-test-servers: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 tells the packages' scripts not to start their services.
policy=/usr/sbin/policy-rc.d
made_policy=
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	made_policy=1
fi
cleanup() { [[ -z $made_policy ]] || rm -f "$policy"; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null
[[ -x /usr/lib/postgresql/15/bin/pg_ctl ]] || { echo "install-test-servers: pg_ctl still missing" >&2; exit 1; }
[[ -x /usr/sbin/mariadbd ]] || { echo "install-test-servers: mariadbd still missing" >&2; exit 1; }
