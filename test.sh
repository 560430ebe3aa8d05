#!/usr/bin/env bash
# Runs every test of the repository on this machine, installing first what the integration
# tests need, so that none of them is skipped:
#
#   docutils     python3-docutils (apt): the generated RST must parse without a warning
#   json-server  testdata/jsonserver, exactly as package-lock.json pins it (npm ci): the Custom
#                CRM of the end-to-end tests over HTTP
#   oidc-provider testdata/oauth, as its package-lock.json pins it (npm ci): the OAuth2 provider
#                of the http connector's oauth2 tests (internal/oauthtest)
#   PocketBase   testdata/pocketbase, built with go by internal/pocketbasetest (its own go.mod)
#   chromium     chromium (apt): the status page of dataflow serve, tested in headless Chromium
#   PostgreSQL   postgresql (apt, 15) and mariadb-server (apt), by scripts/install-test-servers.sh:
#   MariaDB      the tests start throwaway servers of their own on free 127.0.0.1 ports
#                (internal/pgtest, internal/mysqltest); no system service is started
#   Oracle MySQL 9.7, Debian sid's mysql-server-core in a chroot at /opt/dataflow-mysql-sid
#                (debootstrap from deb.debian.org, ~1 min once), by the same script; the tests
#                run its mysqld there. DATAFLOW_SKIP_ORACLE_MYSQL=1 ./test.sh goes without it
#                (its tests then skip): for a machine that cannot reach deb.debian.org
#
# Then `go test ./...` with DATAFLOW_REQUIRE_DOCUTILS=1, DATAFLOW_REQUIRE_JSONSERVER=1,
# DATAFLOW_REQUIRE_CHROMIUM=1, DATAFLOW_REQUIRE_POSTGRES=1, DATAFLOW_REQUIRE_MYSQL=1 and
# DATAFLOW_REQUIRE_ORACLE_MYSQL=1 (unless DATAFLOW_SKIP_ORACLE_MYSQL=1), which
# make a test that would skip for want of one of them fail instead. Arguments go to go test
# (./test.sh -run TestScripts ./internal/cli/; the default package list is ./...).
#
# Installing with apt needs root (or sudo); npm ci needs only the network once: it is run
# again only when the lock file changes. A plain `go test ./...` runs the same tests and skips
# the integration ones whose tools are missing (go test -v says why).
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '=== %s\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# as_root runs a command as root: directly when we are, else through sudo.
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "installing needs root: run as root, or install it yourself: $*"
	fi
}

apt_updated=
apt_install() {
	command -v apt-get >/dev/null || die "no apt-get here: install $* yourself"
	if [[ -z $apt_updated ]]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null
}

# docutils: the tests use the first of python3 and /usr/bin/python3 that has it; Debian's
# package serves the latter.
has_docutils() {
	python3 -c 'import docutils' 2>/dev/null || /usr/bin/python3 -c 'import docutils' 2>/dev/null
}
need_docutils() {
	has_docutils && return
	apt_install python3-docutils
	has_docutils || die "docutils still cannot be imported after installing python3-docutils"
}

# json-server under node, installed again only when the lock changes.
need_jsonserver() {
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
		apt_install nodejs npm
	fi
	local dir=testdata/jsonserver lock
	lock=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	if [[ "$(cat "$dir/node_modules/.lock-sha256" 2>/dev/null)" != "$lock" ]]; then
		log "npm ci ($dir)"
		(cd "$dir" && npm ci --no-audit --no-fund)
		echo "$lock" >"$dir/node_modules/.lock-sha256"
	fi
}

# oidc-provider under node (need_jsonserver installs node), likewise only when the lock changes.
need_oauth() {
	local dir=testdata/oauth lock
	lock=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	if [[ "$(cat "$dir/node_modules/.lock-sha256" 2>/dev/null)" != "$lock" ]]; then
		log "npm ci ($dir)"
		(cd "$dir" && npm ci --no-audit --no-fund)
		echo "$lock" >"$dir/node_modules/.lock-sha256"
	fi
}

need_docutils
export DATAFLOW_REQUIRE_DOCUTILS=1
command -v chromium >/dev/null || apt_install chromium
export DATAFLOW_REQUIRE_CHROMIUM=1
need_jsonserver
export DATAFLOW_REQUIRE_JSONSERVER=1
need_oauth
export DATAFLOW_REQUIRE_OAUTH=1
# A failed download of Oracle MySQL fails here, saying so: its tests are required.
if [[ $(id -u) -eq 0 ]]; then
	scripts/install-test-servers.sh
else
	as_root env DATAFLOW_SKIP_ORACLE_MYSQL="${DATAFLOW_SKIP_ORACLE_MYSQL:-}" scripts/install-test-servers.sh
fi
export DATAFLOW_REQUIRE_POSTGRES=1 DATAFLOW_REQUIRE_MYSQL=1
# Oracle MySQL's mysqld runs in its chroot, which only root can enter.
if [[ ${DATAFLOW_SKIP_ORACLE_MYSQL:-} != 1 ]]; then
	if [[ $(id -u) -eq 0 ]]; then
		export DATAFLOW_REQUIRE_ORACLE_MYSQL=1
	else
		log "the Oracle MySQL tests run mysqld in a chroot, which needs root: they skip (run ./test.sh as root to run them)"
	fi
fi
export DATAFLOW_REQUIRE_POCKETBASE=1 # internal/pocketbasetest builds testdata/pocketbase (its own go.mod) with go

if [[ $# -eq 0 ]]; then
	set -- ./...
fi
log "go test $*"
exec go test "$@"
