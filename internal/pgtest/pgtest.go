// Package pgtest starts throwaway PostgreSQL servers for tests: Debian's PostgreSQL 15
// (`apt-get install postgresql`, or scripts/install-test-servers.sh), a cluster made with
// initdb in a temporary directory, listening on a free 127.0.0.1 port, with password
// authentication over TCP. initdb and pg_ctl refuse to run as root, so as root they run as
// the `postgres` user (runuser) in a directory owned by it.
//
// A test binary shares one server (Main stops it at the end) and each test gets a database of
// its own (New). A test that stops and restarts the server (a fault) starts its own (Start).
// Without the binaries the tests skip, saying how to install them, unless
// DATAFLOW_REQUIRE_POSTGRES=1 (CI), which makes that a failure.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir is where Debian's postgresql-15 package puts initdb, pg_ctl and postgres.
const BinDir = "/usr/lib/postgresql/15/bin"

// Password is the password of the superuser `postgres` of every server started here.
const Password = "pgtest-superuser"

// Install says how to get the binaries.
const Install = "PostgreSQL 15 is not installed: run scripts/install-test-servers.sh (as root: apt-get install postgresql)"

// Server is a running PostgreSQL cluster.
type Server struct {
	Host string
	Port int
	dir  string // owned by the postgres user when run as root: data/, the socket, the log
	asPG bool   // run the binaries as the postgres user
	mu   sync.Mutex
	up   bool
}

// Available reports whether the binaries are installed.
func Available() bool {
	_, err := os.Stat(filepath.Join(BinDir, "pg_ctl"))
	return err == nil
}

// skip skips (or fails, with DATAFLOW_REQUIRE_POSTGRES=1) a test when the binaries are missing.
func skip(t testing.TB) {
	t.Helper()
	if Available() {
		return
	}
	if os.Getenv("DATAFLOW_REQUIRE_POSTGRES") == "1" {
		t.Fatal(Install + " (DATAFLOW_REQUIRE_POSTGRES=1 makes this a failure)")
	}
	t.Skip(Install)
}

// Start starts a server of the test's own, stopped and removed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	skip(t)
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Remove)
	return s
}

func start() (*Server, error) {
	s := &Server{Host: "127.0.0.1"}
	if os.Geteuid() == 0 {
		s.asPG = true
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if s.asPG {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user of Debian's package: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	pw := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pw, []byte(Password+"\n"), 0o644); err != nil { // read by initdb as postgres
		s.Remove()
		return nil, err
	}
	if err := s.run(filepath.Join(BinDir, "initdb"), "-D", s.data(), "-U", "postgres", "--pwfile="+pw,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		s.Remove()
		return nil, err
	}
	var lastErr error
	for range 5 { // a free port can be taken between finding it and the server binding it
		if s.Port, err = freePort(); err != nil {
			s.Remove()
			return nil, err
		}
		if lastErr = s.Restart(); lastErr == nil {
			return s, nil
		}
	}
	s.Remove()
	return nil, lastErr
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// run runs a command, as the postgres user when needed; its output is in the error.
func (s *Server) run(name string, args ...string) error {
	if s.asPG {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// Restart starts the server (again) on its port, and waits until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return nil
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
		s.Port, s.dir)
	if err := s.run(filepath.Join(BinDir, "pg_ctl"), "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	s.up = true
	return nil
}

// Stop stops the server (fast: open connections are cut), keeping its data.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up {
		return nil
	}
	s.up = false
	return s.run(filepath.Join(BinDir, "pg_ctl"), "-D", s.data(), "-m", "fast", "-w", "-t", "60", "stop")
}

// Remove stops the server and deletes its files.
func (s *Server) Remove() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// DSN is the URL of a database of the server, as a user with a password.
func (s *Server) DSN(user, password, database string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/" + database}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// AdminDSN is the superuser's URL of a database.
func (s *Server) AdminDSN(database string) string { return s.DSN("postgres", Password, database) }

// Exec runs SQL statements as the superuser in a database.
func (s *Server) Exec(ctx context.Context, database string, sql ...string) error {
	c, err := pgx.Connect(ctx, s.AdminDSN(database))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	for _, q := range sql {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("pgtest: %s: %w", q, err)
		}
	}
	return nil
}

var dbSeq atomic.Int64

// CreateDatabase creates a new empty database and returns its name.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	return name, s.Exec(ctx, "postgres", "CREATE DATABASE "+name)
}

// shared is the server of the test binary, started by the first New and stopped by Main.
var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Main runs a test binary's tests (call it from TestMain) and then stops the shared server.
func Main(m *testing.M) int {
	code := m.Run()
	StopShared()
	return code
}

// StopShared stops the shared server, if it was started: for a TestMain that runs the tests
// itself (with the servers of other packages).
func StopShared() {
	if shared.s != nil {
		shared.s.Remove()
	}
}

// DB is a fresh database of the shared server, for one test.
type DB struct {
	Server *Server
	Name   string
}

// New returns a new database on the binary's shared server (started on first use), dropped
// when the test ends. Call Main from TestMain so the server stops with the binary.
func New(t testing.TB) *DB {
	t.Helper()
	skip(t)
	shared.once.Do(func() { shared.s, shared.err = start() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, err := shared.s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.s.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return &DB{Server: shared.s, Name: name}
}

// DSN is the superuser's URL of the database.
func (d *DB) DSN() string { return d.Server.AdminDSN(d.Name) }

// Exec runs SQL statements in the database as the superuser, failing the test on an error.
func (d *DB) Exec(t testing.TB, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Server.Exec(ctx, d.Name, sql...); err != nil {
		t.Fatal(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Launch starts a server outside a test (the benchmark's, bench/); the caller removes it.
func Launch() (*Server, error) {
	if !Available() {
		return nil, errors.New(Install)
	}
	return start()
}
