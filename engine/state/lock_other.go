//go:build !unix

package state

import "os"

// lockFile does not lock on systems without flock: two runs writing the same state file at
// once are not refused there. SQLite's own locking still keeps the file consistent (each
// transaction is atomic), but two runs may create the same record twice.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// unlockFile closes the file lockFile opened.
func unlockFile(f *os.File) error {
	return f.Close()
}
