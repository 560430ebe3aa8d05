package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
	"github.com/mattn/go-sqlite3"
)

// sqliteReadOnly is SQLite's message for a write to a file it may not write; it names no file.
const sqliteReadOnly = "attempt to write a readonly database"

// dbFile is a SQLite database a run writes: the link state or a sqlite system's file.
type dbFile struct {
	what string // "the link state", "Squarespace's database"
	path string
}

// runDatabases lists the databases a run of p writes: the state first, then the sqlite
// systems' files, in the order of the project.
func runDatabases(statePath string, p *mapping.Project) []dbFile {
	files := []dbFile{{"the link state", statePath}}
	if pgstate.IsURL(statePath) {
		files = nil // not a file, and its URL may hold a password
	}
	if p == nil {
		return files
	}
	seen := map[string]bool{}
	for _, d := range p.Dataflows {
		for _, sys := range []*mapping.System{d.Source, d.Target} {
			if sys == nil || sys.Config == nil || sys.Config.Connector.Value != "sqlite" {
				continue
			}
			path := sys.Config.Settings["path"].Value
			if path == "" || seen[path] {
				continue
			}
			seen[path] = true
			files = append(files, dbFile{sys.Name() + "'s database", path})
		}
	}
	return files
}

// explainReadOnly rewrites SQLite's "attempt to write a readonly database", which does not say
// which file, into a message that names it: the first of the run's databases (or their -wal
// and -shm files) that cannot be opened for writing. Other errors are returned as they are.
func explainReadOnly(err error, files []dbFile) error {
	var se sqlite3.Error
	if !(errors.As(err, &se) && se.Code == sqlite3.ErrReadonly) && !strings.Contains(err.Error(), sqliteReadOnly) {
		return err
	}
	// Keep the flow the error happened in: "flow product-to-inventory: ...".
	prefix := ""
	if msg := err.Error(); strings.HasPrefix(msg, "flow ") {
		if i := strings.Index(msg, ": "); i > 0 {
			prefix = msg[:i+2]
		}
	}
	for _, f := range files {
		for _, path := range []string{f.path, f.path + "-wal", f.path + "-shm"} {
			if !writable(path) {
				return fmt.Errorf("%scannot write %s %s: %s (check the file's permissions)", prefix, f.what, path, sqliteReadOnly)
			}
		}
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.path
	}
	return fmt.Errorf("%scannot write a database: %s (one of %s, or its directory, is read-only)", prefix, sqliteReadOnly, strings.Join(names, ", "))
}

// writable reports whether path can be opened for writing; a file that does not exist (a -wal
// not made yet) is no obstacle. Opening for writing without O_TRUNC changes nothing; unlike a
// look at the permission bits, it also sees a read-only mount and an immutable file, which
// stop root too.
func writable(path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	f.Close()
	return true
}
