// Package mysqltest starts throwaway MariaDB servers for tests: Debian's mariadb-server
// (`apt-get install mariadb-server`, or scripts/install-test-servers.sh), a data directory made
// with mariadb-install-db in a temporary directory and mariadbd listening on a free 127.0.0.1
// port, with a superuser `root`@`127.0.0.1` that needs Password. System services are not used.
//
// A test binary shares one server (Main stops it at the end) and each test gets a database of
// its own (New). A test that stops and restarts the server (a fault) starts its own (Start).
// Without the binaries the tests skip, saying how to install them, unless
// DATAFLOW_REQUIRE_MYSQL=1 (CI), which makes that a failure.
package mysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Binaries of Debian's mariadb-server.
const (
	InstallDB = "/usr/bin/mariadb-install-db"
	Mariadbd  = "/usr/sbin/mariadbd"
)

// Password is the password of the superuser root@127.0.0.1 of every server started here.
const Password = "mysqltest-superuser"

// Install says how to get the binaries.
const Install = "MariaDB is not installed: run scripts/install-test-servers.sh (as root: apt-get install mariadb-server)"

// Server is a running mariadbd.
type Server struct {
	Host string
	Port int
	dir  string // data/, the socket, the log
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Available reports whether the binaries are installed.
func Available() bool {
	for _, p := range []string{InstallDB, Mariadbd} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func skip(t testing.TB) {
	t.Helper()
	if Available() {
		return
	}
	if os.Getenv("DATAFLOW_REQUIRE_MYSQL") == "1" {
		t.Fatal(Install + " (DATAFLOW_REQUIRE_MYSQL=1 makes this a failure)")
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
	dir, err := os.MkdirTemp("", "mysqltest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", dir: dir}
	// A temporary directory of its own: servers bootstrapping at once in one /tmp collide on
	// their temporary tables' names.
	if err := os.Mkdir(s.tmp(), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"--no-defaults", "--datadir=" + s.data(), "--tmpdir=" + s.tmp(), "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(InstallDB, args...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mysqltest: %s: %v\n%s", InstallDB, err, out)
	}
	var lastErr error
	for range 5 { // a free port can be taken between finding it and the server binding it
		if s.Port, err = freePort(); err != nil {
			s.Remove()
			return nil, err
		}
		if lastErr = s.Restart(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		s.Remove()
		return nil, lastErr
	}
	// root@localhost has no password and is reached through the socket only; tests connect
	// over TCP with a password, as a DSN does.
	db, err := sql.Open("mysql", "root@unix("+s.socket()+")/")
	if err != nil {
		s.Remove()
		return nil, err
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'",
		"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '" + Password + "'",
		"GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION",
	} {
		if _, err := db.Exec(q); err != nil {
			s.Remove()
			return nil, fmt.Errorf("mysqltest: %s: %w", q, err)
		}
	}
	return s, nil
}

func (s *Server) data() string   { return filepath.Join(s.dir, "data") }
func (s *Server) socket() string { return filepath.Join(s.dir, "sock") }
func (s *Server) tmp() string    { return filepath.Join(s.dir, "tmp") }

// Restart starts the server (again) on its port and waits until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	args := []string{"--no-defaults", "--datadir=" + s.data(), "--tmpdir=" + s.tmp(), fmt.Sprintf("--port=%d", s.Port),
		"--bind-address=127.0.0.1", "--socket=" + s.socket(), "--pid-file=" + filepath.Join(s.dir, "pid"),
		"--log-error=" + filepath.Join(s.dir, "log"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
		"--max-connections=200"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(Mariadbd, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no server outlives a killed test
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("unix", s.socket(), time.Second)
		if err == nil {
			c.Close()
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", s.Host, s.Port), time.Second); err == nil {
				c.Close()
				break
			}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			return fmt.Errorf("mysqltest: mariadbd exited at start:\n%s", log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return errors.New("mysqltest: mariadbd did not accept connections within 60s")
		}
	}
	s.cmd, s.done = cmd, done
	return nil
}

// Stop stops the server (open connections are cut), keeping its data.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

// Remove stops the server and deletes its files.
func (s *Server) Remove() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// DSN is the go-sql-driver/mysql data source name of a database, as a user with a password.
func (s *Server) DSN(user, password, database string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", fmt.Sprintf("%s:%d", s.Host, s.Port), database
	return cfg.FormatDSN()
}

// AdminDSN is the superuser's data source name of a database ("" for none).
func (s *Server) AdminDSN(database string) string { return s.DSN("root", Password, database) }

// Exec runs SQL statements as the superuser in a database ("" for none).
func (s *Server) Exec(ctx context.Context, database string, stmts ...string) error {
	db, err := sql.Open("mysql", s.AdminDSN(database))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("mysqltest: %s: %w", strings.TrimSpace(q), err)
		}
	}
	return nil
}

var dbSeq atomic.Int64

// CreateDatabase creates a new empty database and returns its name.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	return name, s.Exec(ctx, "", "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
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
		shared.s.Exec(ctx, "", "DROP DATABASE IF EXISTS "+name)
	})
	return &DB{Server: shared.s, Name: name}
}

// DSN is the superuser's data source name of the database.
func (d *DB) DSN() string { return d.Server.AdminDSN(d.Name) }

// Exec runs SQL statements in the database as the superuser, failing the test on an error.
func (d *DB) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Server.Exec(ctx, d.Name, stmts...); err != nil {
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
