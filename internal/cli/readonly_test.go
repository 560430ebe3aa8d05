//go:build linux

package cli_test

import (
	"database/sql"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// readOnlyProject is the quick start after one run, in a directory every user may write, and
// a copy of this test binary there for a user without rights to the build cache.
func readOnlyProject(t *testing.T) (dir, exe string) {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	for _, sub := range []string{"mappings", "schemas"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(repo, sub))); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"custom-crm.sql", "squarespace.sql"} {
		data, err := os.ReadFile(filepath.Join(repo, "testdata/local", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"testdata/local/" + f: string(data)})
	}
	_, exited, stdout, stderr := startDataflow(t, dir, "run")
	if code := waitExit(t, exited); code != 0 {
		t.Fatalf("the first run exited %d\n%s%s", code, stdout, stderr)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "dataflow.test")
	copyExecutable(t, self, exe)
	// Everyone may read and write everything (the directories of t.TempDir are 0700), so that
	// only the file a test makes read-only is.
	for p := dir; p != filepath.Dir(os.TempDir()) && p != "/"; p = filepath.Dir(p) {
		if strings.HasPrefix(p, filepath.Clean(os.TempDir())+string(filepath.Separator)) {
			os.Chmod(p, 0o777)
		}
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o666)
			if d.IsDir() || p == exe {
				mode = 0o777
			}
			os.Chmod(p, mode)
		}
		return err
	})
	return dir, exe
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// runAsUser runs `dataflow args...` in dir as a user whom the permission bits bind: as root
// (CI), which a read-only file does not stop, as nobody (65534).
func runAsUser(t *testing.T, dir, exe string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	cmd := &exec.Cmd{Path: exe, Args: append([]string{"dataflow"}, args...), Dir: dir, Stdout: &out, Stderr: &errb,
		Env: []string{"PATH=/usr/bin:/bin", "HOME=" + dir}}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// A read-only link state is named in the error (SQLite's own message names no file), and the
// run does not report "0 records failed" as if it had done everything (issue 13 item 7).
func TestRunOnReadOnlyStateNamesTheFile(t *testing.T) {
	dir, exe := readOnlyProject(t)
	if err := os.Chmod(filepath.Join(dir, ".dataflow/state.db"), 0o444); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runAsUser(t, dir, exe, "run")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if want := "dataflow run: cannot write the link state .dataflow/state.db: attempt to write a readonly database (check the file's permissions)\n"; stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	if strings.Contains(stdout, "records failed") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// A read-only system database is named too, with the flow that wrote to it.
func TestRunOnReadOnlySystemDatabaseNamesTheFile(t *testing.T) {
	dir, exe := readOnlyProject(t)
	// An edit in the CRM that product-to-inventory writes into the shop's inventory.
	_, exited, stdout, stderr := startDataflow(t, dir, "run") // settle the second run's links first
	if code := waitExit(t, exited); code != 0 {
		t.Fatalf("the second run exited %d\n%s%s", code, stdout, stderr)
	}
	runSQL(t, filepath.Join(dir, "testdata/local/custom-crm.db"), "UPDATE products SET name = 'Espresso Nattravn', updated_at = '2025-01-01T00:00:00Z' WHERE sku = 'NR-ESP-250'")
	for _, f := range []string{".dataflow/state.db", ".dataflow/state.db-wal", ".dataflow/state.db-shm"} {
		os.Chmod(filepath.Join(dir, f), 0o666)
	}
	if err := os.Chmod(filepath.Join(dir, "testdata/local/squarespace.db"), 0o444); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runAsUser(t, dir, exe, "run")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if want := "dataflow run: flow product-to-inventory: cannot write Squarespace's database testdata/local/squarespace.db: attempt to write a readonly database (check the file's permissions)\n"; errs != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs, want)
	}
	if !strings.HasSuffix(out, "\n0 writes, then the run stopped on an error; what it did not reach is synced by the next run\n") {
		t.Errorf("stdout:\n%s", out)
	}
}

func runSQL(t *testing.T, db, statement string) {
	t.Helper()
	conn, err := sql.Open("sqlite3", db+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec(statement); err != nil {
		t.Fatal(err)
	}
}
