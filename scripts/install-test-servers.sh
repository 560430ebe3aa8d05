#!/usr/bin/env bash
# Installs the database servers that the PostgreSQL and MySQL connector tests start for
# themselves (internal/pgtest, internal/mysqltest), each only when missing:
#
#   postgresql      Debian's (15), apt
#   mariadb-server  Debian's (MariaDB 10.11), apt
#   Oracle MySQL    Debian sid's mysql-server-core (9.7) in a chroot at /opt/dataflow-mysql-sid:
#                   its binaries need a newer libc than Debian 12's, and MySQL 8.0 (end of life)
#                   is not packaged for Debian 12. debootstrap (apt) makes a minimal sid there
#                   from deb.debian.org, then apt-get installs the package inside it (~1 min,
#                   ~660 MB). DATAFLOW_SKIP_ORACLE_MYSQL=1 leaves it out.
#
# Non-interactive, as root, on Debian 12. It starts no service (the packages' own are disabled
# from starting here): the tests run initdb/pg_ctl, mariadbd and the chroot's mysqld in
# temporary directories on free 127.0.0.1 ports and stop them at the end.
set -euo pipefail

sid_root=/opt/dataflow-mysql-sid
say() { echo "install-test-servers: $*"; }

need=()
[[ -x /usr/lib/postgresql/15/bin/pg_ctl ]] || need+=(postgresql)
[[ -x /usr/sbin/mariadbd && -x /usr/bin/mariadb-install-db ]] || need+=(mariadb-server)
need_oracle=
[[ ${DATAFLOW_SKIP_ORACLE_MYSQL:-} == 1 || -x $sid_root/usr/sbin/mysqld ]] || need_oracle=1
[[ -n $need_oracle ]] && ! command -v debootstrap >/dev/null && need+=(debootstrap)
if ((${#need[@]} == 0)) && [[ -z $need_oracle ]]; then
	if [[ ${DATAFLOW_SKIP_ORACLE_MYSQL:-} == 1 ]]; then
		say "postgresql and mariadb-server are installed; Oracle MySQL is left out (DATAFLOW_SKIP_ORACLE_MYSQL=1)"
	else
		say "postgresql, mariadb-server and Oracle MySQL ($sid_root) are installed"
	fi
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	say "missing ${need[*]} ${need_oracle:+Oracle MySQL (a Debian sid chroot at $sid_root)}; run this script as root" >&2
	exit 1
fi
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
if ((${#need[@]} > 0)); then
	say "installing ${need[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null
	[[ -x /usr/lib/postgresql/15/bin/pg_ctl ]] || { say "pg_ctl still missing" >&2; exit 1; }
	[[ -x /usr/sbin/mariadbd ]] || { say "mariadbd still missing" >&2; exit 1; }
fi
[[ -n $need_oracle ]] || exit 0

# Oracle MySQL: a minimal Debian sid in a directory of its own, the server package inside it.
# A half-made chroot (an earlier run that failed) is made again from scratch.
oracle_failed() {
	say "could not install Oracle MySQL in $sid_root: $1" >&2
	say "(it needs deb.debian.org's sid; set DATAFLOW_SKIP_ORACLE_MYSQL=1 to run without the Oracle MySQL tests, which then skip)" >&2
	exit 1
}
started=$SECONDS
if [[ ! -x $sid_root/usr/bin/apt-get ]]; then
	rm -rf "$sid_root"
	say "debootstrap --variant=minbase sid $sid_root (Debian sid from deb.debian.org)"
	log=$(mktemp)
	if ! debootstrap --variant=minbase sid "$sid_root" http://deb.debian.org/debian >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		oracle_failed "debootstrap failed (its last lines are above)"
	fi
	rm -f "$log"
fi
# The chroot's policy-rc.d: no service starts there either.
printf '#!/bin/sh\nexit 101\n' >"$sid_root/usr/sbin/policy-rc.d"
chmod +x "$sid_root/usr/sbin/policy-rc.d"
say "apt-get install mysql-server-core in $sid_root"
# debootstrap has fetched the package lists; a chroot made earlier gets them again. Not
# checking Valid-Until: the mirror may serve a sid whose Release file this machine's clock
# holds expired (seen here: "is expired (invalid since 30d)"), which apt would refuse.
if [[ -z $(find "$sid_root/var/lib/apt/lists" -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null) ]]; then
	chroot "$sid_root" apt-get -o Acquire::Check-Valid-Until=false update -qq || oracle_failed "apt-get update in the chroot failed"
fi
log=$(mktemp)
if ! chroot "$sid_root" apt-get install -y -qq -o Acquire::Check-Valid-Until=false --no-install-recommends mysql-server-core </dev/null >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	rm -f "$log"
	oracle_failed "apt-get install mysql-server-core in the chroot failed (its last lines are above)"
fi
rm -f "$log"
[[ -x $sid_root/usr/sbin/mysqld ]] || oracle_failed "no /usr/sbin/mysqld after installing mysql-server-core"
say "Oracle MySQL $(chroot "$sid_root" /usr/sbin/mysqld --version | sed 's/^.*Ver //') installed in $sid_root in $((SECONDS - started)) s"
