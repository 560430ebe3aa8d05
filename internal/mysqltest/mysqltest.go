// Package mysqltest starts throwaway MySQL servers for tests, of two flavours:
//
//   - MariaDB: Debian's mariadb-server (10.11), a data directory made with mariadb-install-db
//     in a temporary directory and mariadbd;
//   - OracleMySQL: Oracle MySQL (9.7) from Debian sid, installed in a chroot (OracleMySQLRoot)
//     because its binaries need a newer libc than the machine's; mysqld --initialize-insecure
//     makes the data directory inside the chroot and mysqld runs there, as root. The network
//     is shared, so the server is reached on 127.0.0.1 from outside.
//
// scripts/install-test-servers.sh installs both. Each server listens on a free 127.0.0.1 port
// with a superuser `root`@`127.0.0.1` that needs Password. System services are not used.
//
// A test binary shares one server per flavour (Main stops them at the end) and each test gets a
// database of its own (New, NewOf; Each runs a test once per flavour). A test that stops and
// restarts the server (a fault) starts its own (Start, StartOf). Without a flavour's binaries
// its tests skip, saying how to install them, unless DATAFLOW_REQUIRE_MYSQL=1 (MariaDB) or
// DATAFLOW_REQUIRE_ORACLE_MYSQL=1 (Oracle MySQL) makes that a failure (test.sh sets both).
package mysqltest

import (
	"context"
	"database/sql"
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

// OracleMySQLRoot is the Debian sid chroot that scripts/install-test-servers.sh installs
// Oracle MySQL in, and Mysqld its server binary inside the chroot.
const (
	OracleMySQLRoot = "/opt/dataflow-mysql-sid"
	Mysqld          = "/usr/sbin/mysqld"
)

// Password is the password of the superuser root@127.0.0.1 of every server started here.
const Password = "mysqltest-superuser"

// Install says how to get the MariaDB binaries.
const Install = "MariaDB is not installed: run scripts/install-test-servers.sh (as root: apt-get install mariadb-server)"

// InstallOracle says how to get Oracle MySQL.
const InstallOracle = "Oracle MySQL is not installed: run scripts/install-test-servers.sh as root (it installs Debian sid's mysql-server-core in a chroot at " + OracleMySQLRoot + ")"

// Flavour is a kind of MySQL server.
type Flavour string

// The flavours: Flavours lists them in the order Each runs them.
const (
	MariaDB     Flavour = "MariaDB"
	OracleMySQL Flavour = "OracleMySQL"
)

// Flavours are the servers a test runs on.
func Flavours() []Flavour { return []Flavour{MariaDB, OracleMySQL} }

// missing is why the flavour's server cannot be started here ("" when it can), and the
// variable that makes that a failure.
func (f Flavour) missing() (why, require string) {
	switch f {
	case MariaDB:
		for _, p := range []string{InstallDB, Mariadbd} {
			if _, err := os.Stat(p); err != nil {
				return Install, "DATAFLOW_REQUIRE_MYSQL"
			}
		}
		return "", "DATAFLOW_REQUIRE_MYSQL"
	case OracleMySQL:
		return oracleMissing(OracleMySQLRoot, os.Geteuid()), "DATAFLOW_REQUIRE_ORACLE_MYSQL"
	}
	return fmt.Sprintf("mysqltest: no flavour %q", string(f)), ""
}

// oracleMissing is why Oracle MySQL cannot be started from the chroot root by user euid, ""
// when it can.
func oracleMissing(root string, euid int) string {
	if _, err := os.Stat(filepath.Join(root, Mysqld)); err != nil {
		if root != OracleMySQLRoot {
			return strings.ReplaceAll(InstallOracle, OracleMySQLRoot, root)
		}
		return InstallOracle
	}
	if euid != 0 {
		return "Oracle MySQL runs in the chroot " + root + ", which needs root: run the tests as root"
	}
	return ""
}

// Server is a running mariadbd or mysqld.
type Server struct {
	Host    string
	Port    int
	Flavour Flavour
	root    string // the chroot the server runs in, "" for none
	dir     string // data/, the socket, the log, as seen from here (inside root when there is one)
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
}

// Available reports whether MariaDB's binaries are installed.
func Available() bool { why, _ := MariaDB.missing(); return why == "" }

// Available reports whether the flavour's server can be started here.
func (f Flavour) Available() bool { why, _ := f.missing(); return why == "" }

func skip(t testing.TB, f Flavour) {
	t.Helper()
	why, require := f.missing()
	if why == "" {
		return
	}
	if require == "" || os.Getenv(require) == "1" {
		t.Fatal(why + " (" + require + "=1 makes this a failure)")
	}
	t.Skip(why)
}

// Start starts a MariaDB server of the test's own, stopped and removed when the test ends.
func Start(t testing.TB) *Server { t.Helper(); return StartOf(t, MariaDB) }

// StartOf starts a server of the flavour of the test's own, stopped and removed when the
// test ends.
func StartOf(t testing.TB, f Flavour) *Server {
	t.Helper()
	skip(t, f)
	s, err := start(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Remove)
	return s
}

func start(f Flavour) (*Server, error) {
	s := &Server{Host: "127.0.0.1", Flavour: f}
	if f == OracleMySQL {
		s.root = OracleMySQLRoot
	}
	// Oracle MySQL's files are in its chroot's /tmp (not $TMPDIR, which the chroot may lack).
	parent := ""
	if s.root != "" {
		parent = filepath.Join(s.root, "tmp")
	}
	dir, err := os.MkdirTemp(parent, "mysqltest-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	// A temporary directory of its own: servers bootstrapping at once in one /tmp collide on
	// their temporary tables' names.
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var cmd *exec.Cmd
	if f == OracleMySQL {
		// --initialize-insecure: root@localhost without a password, on the socket only.
		cmd = s.command(Mysqld, "--no-defaults", "--initialize-insecure", "--user=root", "--datadir="+s.data(), "--tmpdir="+s.tmp(),
			"--log-error="+s.path("init.err"))
	} else {
		args := []string{"--no-defaults", "--datadir=" + s.data(), "--tmpdir=" + s.tmp(), "--auth-root-authentication-method=normal", "--skip-test-db"}
		if os.Geteuid() == 0 {
			args = append(args, "--user=root")
		}
		cmd = s.command(InstallDB, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "init.err"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mysqltest: %s: %v\n%s%s", cmd.Args[0], err, out, log)
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
	db, err := sql.Open("mysql", "root@unix("+filepath.Join(s.dir, "sock")+")/")
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

// path is a file of the server's directory as the server sees it: inside its chroot.
func (s *Server) path(name string) string {
	return filepath.Join("/", strings.TrimPrefix(s.dir, s.root), name)
}

func (s *Server) data() string   { return s.path("data") }
func (s *Server) socket() string { return s.path("sock") }
func (s *Server) tmp() string    { return s.path("tmp") }

// command runs a binary of the server's flavour: in its chroot, if it has one.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if s.root != "" {
		// The binary's path is looked up inside the chroot, where the child has gone first.
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: s.root}
		cmd.Dir = "/"
	}
	return cmd
}

// Restart starts the server (again) on its port and waits until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	args := []string{"--no-defaults", "--datadir=" + s.data(), "--tmpdir=" + s.tmp(), fmt.Sprintf("--port=%d", s.Port),
		"--bind-address=127.0.0.1", "--socket=" + s.socket(), "--pid-file=" + s.path("pid"),
		"--log-error=" + s.path("server.err"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
		"--max-connections=200"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	binary := Mariadbd
	if s.Flavour == OracleMySQL {
		binary = Mysqld
		// Without the X protocol (port 33060 for every server: the second would not start) and
		// performance_schema (memory); the binary log is on, as by default (it makes CREATE
		// TRIGGER need more privileges), but not synced; files (LOAD DATA, SELECT INTO OUTFILE)
		// only in its own tmp, where the default directory does not exist.
		args = append(args, "--mysqlx=OFF", "--sync-binlog=0", "--performance-schema=OFF", "--secure-file-priv="+s.tmp())
	}
	cmd := s.command(binary, args...)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL // no server outlives a killed test
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("unix", filepath.Join(s.dir, "sock"), time.Second)
		if err == nil {
			c.Close()
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", s.Host, s.Port), time.Second); err == nil {
				c.Close()
				break
			}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.err"))
			return fmt.Errorf("mysqltest: %s exited at start:\n%s", binary, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("mysqltest: %s did not accept connections within 60s", binary)
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

// shared are the servers of the test binary, one per flavour, each started by the first New
// of its flavour and stopped by Main.
var shared struct {
	mu      sync.Mutex
	servers map[Flavour]*sharedServer
}

type sharedServer struct {
	once sync.Once
	s    *Server
	err  error
}

// sharedOf is the binary's server of the flavour, started on first use.
func sharedOf(f Flavour) (*Server, error) {
	shared.mu.Lock()
	if shared.servers == nil {
		shared.servers = map[Flavour]*sharedServer{}
	}
	ss := shared.servers[f]
	if ss == nil {
		ss = &sharedServer{}
		shared.servers[f] = ss
	}
	shared.mu.Unlock()
	ss.once.Do(func() { ss.s, ss.err = start(f) })
	return ss.s, ss.err
}

// Main runs a test binary's tests (call it from TestMain) and then stops the shared servers.
func Main(m *testing.M) int {
	code := m.Run()
	StopShared()
	return code
}

// StopShared stops the shared servers that were started: for a TestMain that runs the tests
// itself (with the servers of other packages).
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, ss := range shared.servers {
		if ss.s != nil {
			ss.s.Remove()
		}
	}
}

// DB is a fresh database of the shared server, for one test.
type DB struct {
	Server *Server
	Name   string
}

// New returns a new database on the binary's shared MariaDB server (started on first use),
// dropped when the test ends. Call Main from TestMain so the server stops with the binary.
func New(t testing.TB) *DB { t.Helper(); return NewOf(t, MariaDB) }

// NewOf returns a new database on the binary's shared server of the flavour (started on
// first use), dropped when the test ends.
func NewOf(t testing.TB, f Flavour) *DB {
	t.Helper()
	skip(t, f)
	s, err := sharedOf(f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.Exec(ctx, "", "DROP DATABASE IF EXISTS "+name)
	})
	return &DB{Server: s, Name: name}
}

// Each runs test once per flavour, as a subtest named after it; a flavour that is not
// installed skips its subtest (or fails it, as New does).
func Each(t *testing.T, test func(t *testing.T, f Flavour)) {
	t.Helper()
	for _, f := range Flavours() {
		t.Run(string(f), func(t *testing.T) { test(t, f) })
	}
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
