package engine_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/cli"
	"github.com/rogpeppe/go-internal/diff"
	"github.com/rogpeppe/go-internal/txtar"
)

// The validation corpus: testdata/validate/*.txtar, one broken (or, rarely, valid) mapping
// project per archive, with the exact output `dataflow validate` must print for it. Each
// archive holds:
//
//	the project's files    mappings/..., schemas/... (extracted into a temporary directory)
//	want                   the exact stdout of `dataflow validate [args]`, run in that directory
//	args                   optional: arguments after "validate", whitespace-separated
//	                       (default: none, so ./mappings is validated)
//	exit                   optional: the expected exit code (default 1)
//
// The archive's comment says what the case tests.
//
// To regenerate the want files from the current engine, run
//
//	UPDATE_CORPUS=1 go test ./engine/ -run TestCorpus
//
// (add /NAME to the -run pattern to update one case) and then read every changed message
// critically before committing: the corpus is a specification of the messages, not a
// recording of whatever the engine prints.

const corpusDir = "../testdata/validate"

// minCorpus is the number of cases the corpus must keep: a lost archive must not go unnoticed.
const minCorpus = 40

// corpusMeta are the archive members that describe the case instead of belonging to the project.
var corpusMeta = map[string]bool{"want": true, "args": true, "exit": true}

type corpusCase struct {
	name    string
	path    string // as shown in messages, relative to engine/
	absPath string // for rewriting want after the test has changed directory
	archive *txtar.Archive
	args    []string
	exit    int
	want    []byte
}

func readCorpus(t testing.TB) []*corpusCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []*corpusCase
	for _, path := range paths {
		a, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		c := &corpusCase{name: strings.TrimSuffix(filepath.Base(path), ".txtar"), path: path, absPath: abs, archive: a, exit: 1}
		for _, f := range a.Files {
			switch f.Name {
			case "want":
				c.want = f.Data
			case "args":
				c.args = strings.Fields(string(f.Data))
			case "exit":
				n, err := strconv.Atoi(strings.TrimSpace(string(f.Data)))
				if err != nil {
					t.Fatalf("%s: exit: %v", path, err)
				}
				c.exit = n
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// extract writes the project files of the case (not want, args or exit) into dir.
func (c *corpusCase) extract(t testing.TB, dir string) {
	t.Helper()
	project := projectFiles(c.archive)
	if len(project.Files) == 0 {
		t.Fatalf("%s: the archive holds no project files", c.path)
	}
	if err := txtar.Write(project, dir); err != nil {
		t.Fatal(err)
	}
}

func TestCorpus(t *testing.T) {
	cases := readCorpus(t)
	if len(cases) < minCorpus {
		t.Errorf("the corpus has %d cases in %s; it must keep at least %d", len(cases), corpusDir, minCorpus)
	}
	update := os.Getenv("UPDATE_CORPUS") == "1"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(bytes.TrimSpace(c.archive.Comment)) == 0 {
				t.Errorf("%s: the archive has no comment saying what it tests", c.path)
			}
			if c.want == nil && !update {
				t.Fatalf("%s: the archive has no want file", c.path)
			}
			dir := t.TempDir()
			c.extract(t, dir)
			t.Chdir(dir)

			var stdout, stderr bytes.Buffer
			args := append([]string{"validate"}, c.args...)
			code := cli.Run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)

			// A case that expects failure must fail because the files are invalid (exit 1): a
			// case that validates, or stops on a usage error (exit 2), asserts nothing about
			// the messages.
			if c.exit != 0 {
				if code != 1 {
					t.Errorf("exit code %d: the case does not fail validation, so it asserts nothing; stdout:\n%s", code, stdout.Bytes())
				}
				if !wantsErrors(c.want) && !update {
					t.Errorf("%s: want holds no error although exit is %d", c.path, c.exit)
				}
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr:\n%s", stderr.Bytes())
			}
			if update {
				if !bytes.Equal(stdout.Bytes(), c.want) {
					c.setWant(t, stdout.Bytes())
				}
				return
			}
			if code != c.exit {
				t.Errorf("exit code %d, want %d", code, c.exit)
			}
			if got := stdout.Bytes(); !bytes.Equal(got, c.want) {
				t.Errorf("dataflow %s: output differs (-want +got):\n%s", strings.Join(args, " "), diff.Diff("want", c.want, "got", got))
			}
		})
	}
}

// wantsErrors reports whether the expected output reports an error, in any of the formats.
func wantsErrors(want []byte) bool {
	return bytes.Contains(want, []byte(": error: ")) || // text
		bytes.Contains(want, []byte(`"severity": "error"`)) || // json
		bytes.HasPrefix(want, []byte("::error ")) || bytes.Contains(want, []byte("\n::error ")) // github
}

// setWant rewrites the case's want file, keeping the rest of the archive as it is.
func (c *corpusCase) setWant(t *testing.T, got []byte) {
	t.Helper()
	found := false
	for i, f := range c.archive.Files {
		if f.Name == "want" {
			c.archive.Files[i].Data = got
			found = true
		}
	}
	if !found {
		c.archive.Files = append(c.archive.Files, txtar.File{Name: "want", Data: got})
	}
	if err := os.WriteFile(c.absPath, txtar.Format(c.archive), 0o666); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", c.path)
}
