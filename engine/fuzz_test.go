package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/rogpeppe/go-internal/txtar"
)

// fuzzBase is the corpus case whose system and schema files surround the fuzzed file.
const fuzzBase = "valid-project"

// fuzzLimit is how long one load may take. Real mapping files load in milliseconds; the
// limit is generous so that a busy machine running many fuzz workers does not trip it.
const fuzzLimit = 10 * time.Second

// FuzzValidate feeds arbitrary bytes to the loader and compiler, once as a dataflow file and
// once as a system file beside the valid project of the corpus, and checks that validation
// never panics, finishes in reasonable time, and reports diagnostics that the writers can
// print: a summary, a file that was loaded, and a position inside that file.
//
//	go test ./engine/ -run XXX -fuzz FuzzValidate -fuzztime 60s
//
// It is seeded from every YAML file of the corpus, the shipped mappings and a few hostile
// inputs. Crashers land in testdata/fuzz/FuzzValidate and then run with every `go test`.
func FuzzValidate(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}

	// The base project lives in a directory of its own; files are named by absolute path so
	// that the systems' relative schema paths resolve there, whatever the working directory.
	dir := f.TempDir()
	base := readCase(f, fuzzBase)
	if err := txtar.Write(projectFiles(base), dir); err != nil {
		f.Fatal(err)
	}
	baseFiles := map[string][]byte{}
	var baseDataflow string
	var baseSystems []string
	for _, file := range base.Files {
		if !isYAMLName(file.Name) {
			continue
		}
		name := filepath.Join(dir, filepath.FromSlash(file.Name))
		baseFiles[name] = file.Data
		if strings.Contains(file.Name, "/systems/") {
			baseSystems = append(baseSystems, name)
		} else {
			baseDataflow = name
		}
	}
	if baseDataflow == "" || len(baseSystems) == 0 {
		f.Fatalf("%s: the fuzz base needs a dataflow file and system files", fuzzBase)
	}

	eng, err := engine.New(func(string) (string, bool) { return "", false })
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// The fuzzed bytes as the dataflow file, beside the base systems.
		asDataflow := filepath.Join(dir, "mappings", "fuzz.yaml")
		files := map[string][]byte{asDataflow: data}
		order := []string{asDataflow}
		for _, s := range baseSystems {
			files[s] = baseFiles[s]
			order = append(order, s)
		}
		checkLoad(t, eng, files, order)

		// The fuzzed bytes as a system file, beside the base project.
		asSystem := filepath.Join(dir, "mappings", "systems", "fuzz.yaml")
		files = map[string][]byte{asSystem: data, baseDataflow: baseFiles[baseDataflow]}
		order = []string{baseDataflow}
		for _, s := range baseSystems {
			files[s] = baseFiles[s]
			order = append(order, s)
		}
		order = append(order, asSystem)
		checkLoad(t, eng, files, order)
	})
}

// checkLoad loads the files and checks what must hold of any result.
func checkLoad(t *testing.T, eng *engine.Engine, files map[string][]byte, order []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzLimit)
	defer cancel()

	type outcome struct {
		res   *engine.Result
		panic any
		stack []byte
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- outcome{panic: r, stack: debug.Stack()}
			}
		}()
		done <- outcome{res: eng.LoadSources(ctx, files, order)}
	}()
	var res *engine.Result
	select {
	case o := <-done:
		if o.panic != nil {
			t.Fatalf("LoadSources panicked: %v\n%s", o.panic, o.stack)
		}
		res = o.res
	case <-time.After(fuzzLimit + time.Second):
		t.Fatalf("LoadSources did not return within %s", fuzzLimit)
	}
	if res == nil || res.Project == nil {
		t.Fatal("LoadSources returned no result or no project")
	}

	for _, d := range res.Diagnostics {
		if err := checkDiagnostic(d, files); err != nil {
			t.Errorf("%v\n  diagnostic: %s: %s: %s", err, d.Subject, d.Severity, d.Summary)
		}
	}

	// The writers must cope with whatever the loader reports.
	var text, js, gh bytes.Buffer
	for _, w := range []struct {
		name  string
		write func() error
	}{
		{"text", func() error { return diag.WriteText(&text, res.Diagnostics, res.Sources) }},
		{"json", func() error { return diag.WriteJSON(&js, res.Diagnostics) }},
		{"github", func() error { return diag.WriteGitHub(&gh, res.Diagnostics) }},
	} {
		if err := safeWrite(w.write); err != nil {
			t.Errorf("%s writer: %v", w.name, err)
		}
	}
	if !json.Valid(js.Bytes()) {
		t.Errorf("the JSON writer wrote invalid JSON:\n%s", js.Bytes())
	}
	if n := bytes.Count(gh.Bytes(), []byte("\n")); n != len(res.Diagnostics) {
		t.Errorf("the GitHub writer wrote %d lines for %d diagnostics: a message broke out of its command", n, len(res.Diagnostics))
	}
	// Whatever the file holds, the terminal gets no control character but the line breaks,
	// and only UTF-8 (diag.Escape).
	for _, out := range []struct {
		name string
		b    []byte
	}{{"text", text.Bytes()}, {"github", gh.Bytes()}} {
		if !utf8.Valid(out.b) {
			t.Errorf("the %s writer wrote bytes that are not UTF-8:\n%q", out.name, out.b)
		}
		for _, r := range string(out.b) {
			if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
				t.Errorf("the %s writer wrote the control character %U:\n%q", out.name, r, out.b)
				break
			}
		}
	}
}

// wholeFile lists the diagnostics that may be about a file as a whole, without a line:
// engine/config/parse.go gives them no position when the parser reports none.
var wholeFile = []string{
	"file is empty",
	"file is larger than ",
	"invalid YAML: ", // yaml.v3 errors without "line N"
}

// checkDiagnostic returns what is wrong with one diagnostic, or nil.
func checkDiagnostic(d *diag.Diagnostic, files map[string][]byte) error {
	switch {
	case d == nil:
		return fmt.Errorf("nil diagnostic")
	case strings.TrimSpace(d.Summary) == "":
		return fmt.Errorf("empty summary")
	case strings.Contains(d.Summary, "\n"):
		return fmt.Errorf("the summary is not one line")
	case d.Severity != diag.Error && d.Severity != diag.Warning:
		return fmt.Errorf("unknown severity %d", d.Severity)
	case d.Subject.File == "":
		return fmt.Errorf("no file name")
	}
	src, ok := files[d.Subject.File]
	if !ok {
		return fmt.Errorf("file %q was not loaded", d.Subject.File)
	}
	start, end := d.Subject.Start, d.Subject.End
	if start.Line < 0 || start.Col < 0 || end.Line < 0 || end.Col < 0 {
		return fmt.Errorf("negative position")
	}
	if start.Line == 0 {
		if start.Col != 0 {
			return fmt.Errorf("a column without a line")
		}
		for _, prefix := range wholeFile {
			if strings.HasPrefix(d.Summary, prefix) {
				return nil
			}
		}
		return fmt.Errorf("no line: only a diagnostic about the whole file may lack one")
	}
	// The line must be one the text writer can quote, found the way it finds lines.
	line, ok := diag.Sources{d.Subject.File: src}.Line(d.Subject.File, start.Line)
	if !ok {
		return fmt.Errorf("line %d is not in the file, as the text writer reads it", start.Line)
	}
	// A column may point just past the line's last character (a missing value after "key:"),
	// not further.
	width := utf8.RuneCountInString(line)
	if start.Col > width+1 {
		return fmt.Errorf("column %d is past the end of line %d (%d characters)", start.Col, start.Line, width)
	}
	if end.Line > 0 && (end.Line < start.Line || end.Line == start.Line && end.Col < start.Col) {
		return fmt.Errorf("the range ends (%d:%d) before it starts", end.Line, end.Col)
	}
	return nil
}

func safeWrite(write func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return write()
}

// fuzzSeeds returns every YAML file of the corpus and of the shipped mappings, and hostile
// inputs that a loader must survive.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.txtar"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range paths {
		a, err := txtar.ParseFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range a.Files {
			if isYAMLName(file.Name) {
				seeds = append(seeds, file.Data)
			}
		}
	}
	err = filepath.WalkDir(filepath.Join("..", "mappings"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAMLName(path) {
			return err
		}
		data, err := os.ReadFile(path)
		seeds = append(seeds, data)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	return append(seeds, hostileSeeds()...)
}

func hostileSeeds() [][]byte {
	const deep = 10_000
	bomb := "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	for c := 'b'; c <= 'i'; c++ {
		prev := string(c - 1)
		bomb += fmt.Sprintf("%c: &%c [%s]\n", c, c, strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ","))
	}
	return [][]byte{
		// Nesting far beyond any mapping: flow lists, flow mappings and block lists.
		[]byte("dataflow: x\nflows: " + strings.Repeat("[", deep) + strings.Repeat("]", deep) + "\n"),
		[]byte("dataflow: x\nflows: " + strings.Repeat("{a: ", deep) + "1" + strings.Repeat("}", deep) + "\n"),
		[]byte("dataflow: x\nflows:\n  " + strings.Repeat("- ", deep) + "x\n"),
		// Billion laughs, as a system file and as a dataflow file.
		[]byte("system: bomb\nname: Bomb\n" + bomb),
		[]byte("dataflow: bomb\n" + bomb),
		// An alias to its own ancestor, and a merge key of an alias.
		[]byte("dataflow: x\nflows: &f\n  - *f\n"),
		[]byte("dataflow: x\nbase: &b {source: crm}\n<<: *b\ntarget: shop\nflows: []\n"),
		// Invalid UTF-8 in a key, in a value and in an expression.
		[]byte("dataflow: x\n\xff\xfe: 1\nsource: \xc3\x28\n"),
		[]byte("dataflow: crm-to-shop\nsource: crm\ntarget: shop\nflows:\n  - id: a\n    source: Product\n    target: Item\n    properties:\n      - {source: name, target: title, sync: to-target, to_target: \"name + \xe2\x28\xa1\"}\n"),
		// A 1 MB string, as an id and as an expression.
		[]byte("dataflow: \"" + strings.Repeat("x", 1<<20) + "\"\n"),
		[]byte("dataflow: crm-to-shop\nsource: crm\ntarget: shop\nflows:\n  - id: a\n    source: Product\n    target: Item\n    properties:\n      - {source: name, target: title, sync: to-target, to_target: \"" + strings.Repeat("name + ", 1<<17) + "name\"}\n"),
		// Control characters, a NUL, a BOM, CRLF line ends, and nothing but a comment.
		[]byte("dataflow: x\x00\nsource: \x07\n"),
		[]byte("\ufeffdataflow: x\r\nsource: crm\r\ntarget: shop\r\nflows:\r\n  - id: a\r\n    source: Product\r\n    target: Item\r\n    properties:\r\n      - {source: nmae, target: title}\r\n"),
		[]byte("# only a comment\n"),
		[]byte("---\n...\n---\n"),
	}
}

func readCase(tb testing.TB, name string) *txtar.Archive {
	tb.Helper()
	a, err := txtar.ParseFile(filepath.Join(corpusDir, name+".txtar"))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// projectFiles returns the archive without the files that describe the case.
func projectFiles(a *txtar.Archive) *txtar.Archive {
	out := &txtar.Archive{}
	for _, f := range a.Files {
		if !corpusMeta[f.Name] {
			out.Files = append(out.Files, f)
		}
	}
	return out
}

func isYAMLName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}
