package cli_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/cli"
	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3", for sqlite-load
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the scripts run "dataflow" as a real subprocess of the test binary.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"dataflow": func() {
			ctx, stop := cli.WithSignals(context.Background())
			code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// TestScripts runs the CLI scripts in testdata/script. $REPO is the repository root, so a
// script can validate or document the shipped mappings; $WORK is the script's own directory.
// UPDATE_SCRIPTS=1 rewrites the expected files of cmp lines from the actual output.
func TestScripts(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join(repo, "testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", repo)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":    cmdExitcode,
			"sqlite-load": cmdSQLiteLoad,
			"sql":         cmdSQL,
			"copytree":    cmdCopyTree,
			"filehash":    cmdFileHash,
		},
		UpdateScripts: os.Getenv("UPDATE_SCRIPTS") == "1",
	})
}

// cmdExitcode runs a program like exec and asserts its exact exit status, which `! exec`
// cannot: dataflow's 1 (invalid mappings) and 2 (bad usage) mean different things to CI.
//
//	exitcode N program [args...]
//
// Its stdout and stderr are then available to cmp and stdout/stderr like exec's.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode; give the expected status instead")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil || want < 0 {
		ts.Fatalf("exitcode: %q is not an exit status", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cmdSQLiteLoad creates (or extends) a SQLite database by running a SQL script in it, so that
// scripts can validate against a real database, such as Northwind, without the sqlite3 shell.
//
//	sqlite-load DB SQLFILE
func cmdSQLiteLoad(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! sqlite-load")
	}
	if len(args) != 2 {
		ts.Fatalf("usage: sqlite-load DB SQLFILE")
	}
	script, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	db, err := sql.Open("sqlite3", ts.MkAbs(args[0]))
	ts.Check(err)
	defer db.Close()
	// One transaction: thousands of INSERTs commit once instead of once each.
	tx, err := db.Begin()
	ts.Check(err)
	if _, err := tx.Exec(string(script)); err != nil {
		tx.Rollback()
		ts.Fatalf("sqlite-load %s: %v", args[1], err)
	}
	ts.Check(tx.Commit())
}

// cmdSQL runs one SQL statement in a database and prints the rows it returns, one per line,
// columns separated by |, so that scripts can edit a system's records and check them.
//
//	sql DB STATEMENT
func cmdSQL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sql DB STATEMENT")
	}
	db, err := sql.Open("sqlite3", ts.MkAbs(args[0])+"?_busy_timeout=5000")
	ts.Check(err)
	defer db.Close()
	rows, err := db.Query(args[1])
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("sql: %v", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		ts.Check(rows.Scan(ptrs...))
		for i, v := range vals {
			if i > 0 {
				out.WriteString("|")
			}
			switch x := v.(type) {
			case nil:
				out.WriteString("NULL")
			case []byte:
				out.Write(x)
			default:
				fmt.Fprint(&out, x)
			}
		}
		out.WriteString("\n")
	}
	if err := rows.Err(); err != nil && !neg {
		ts.Fatalf("sql: %v", err)
	}
	ts.Stdout().Write([]byte(out.String()))
}

// cmdCopyTree copies a directory recursively.
//
//	copytree SRC DST
func cmdCopyTree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: copytree SRC DST")
	}
	src, dst := ts.MkAbs(args[0]), ts.MkAbs(args[1])
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	ts.Check(err)
}

// cmdFileHash prints the sha256 of every file under a directory, sorted by path, so that a
// script can show that a command changed nothing.
//
//	filehash DIR
func cmdFileHash(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: filehash DIR")
	}
	root := ts.MkAbs(args[0])
	var lines []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		lines = append(lines, fmt.Sprintf("%x  %s", sha256.Sum256(data), rel))
		return nil
	})
	ts.Check(err)
	sort.Strings(lines)
	ts.Stdout().Write([]byte(strings.Join(lines, "\n") + "\n"))
}
