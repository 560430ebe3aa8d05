package docs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/docs"
)

// ---------------------------------------------------------------------------------------------
// docutils: every golden .rst, and every document the tests above render, must parse without
// a single warning, and its text must read back as the document says: the title, each section
// heading, each paragraph and each table cell, unescaped. docutils is a Python package; the
// test skips without it, unless DATAFLOW_REQUIRE_DOCUTILS=1 (CI sets it) makes that a failure.

// readBack parses each file with docutils and prints, per file, its warnings and its text.
const readBack = `
import io, json, sys
import docutils.core, docutils.nodes as nodes

def table(t):
    return [[e.astext() for e in row.traverse(nodes.entry)] for row in t.traverse(nodes.row)]

def blocks(section):
    out = []
    for child in section.children:
        if isinstance(child, nodes.title):
            continue
        if isinstance(child, nodes.paragraph):
            out.append(child.astext())
        elif isinstance(child, nodes.table):
            out.append(table(child))
        elif isinstance(child, nodes.section):
            continue
        else:
            out.append("unexpected " + child.tagname)
    return out

result = []
for path in sys.argv[1:]:
    warnings = io.StringIO()
    doc = docutils.core.publish_doctree(open(path, encoding="utf-8").read(), source_path=path,
        settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": warnings})
    sections = []
    for s in doc.traverse(nodes.section):
        sections.append({"title": s.next_node(nodes.title).astext(), "blocks": blocks(s)})
    result.append({
        "file": path,
        "warnings": warnings.getvalue(),
        "title": doc.get("title", ""),
        "top": blocks(doc),
        "sections": sections,
    })
json.dump(result, sys.stdout)
`

// python returns a Python interpreter that has docutils, or "".
func python(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("DATAFLOW_PYTHON"), "python3", "/usr/bin/python3"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if err := exec.Command(c, "-c", "import docutils").Run(); err == nil {
			return c
		}
	}
	if os.Getenv("DATAFLOW_REQUIRE_DOCUTILS") == "1" {
		t.Fatal("docutils is required (DATAFLOW_REQUIRE_DOCUTILS=1) but no python3 can import it; apt-get install python3-docutils")
	}
	t.Skip("docutils not installed (apt-get install python3-docutils; ./test.sh installs it and runs every test); set DATAFLOW_REQUIRE_DOCUTILS=1 to make this a failure")
	return ""
}

type parsed struct {
	File     string
	Warnings string
	Title    string
	Top      []any
	Sections []struct {
		Title  string
		Blocks []any
	}
}

func parseRST(t *testing.T, py string, files []string) []parsed {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-c", readBack}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docutils: %v\n%s", err, stderr.String())
	}
	var res []parsed
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("docutils output: %v\n%s", err, out)
	}
	return res
}

// expectRead is what docutils must read back from a document.
func expectRead(d *docs.Document) (title string, top []any, sections []string, blocks [][]any) {
	tbl := func(t docs.Table) []any {
		rows := []any{toAny(t.Header)}
		for _, r := range t.Rows {
			rows = append(rows, toAny(r))
		}
		return rows
	}
	top = []any{"Generated: " + d.Generated}
	sections = append(sections, "Introduction")
	blocks = append(blocks, []any{d.Introduction})
	for _, s := range d.Sections {
		sections = append(sections, s.Heading)
		var b []any
		for _, p := range s.Paragraphs {
			b = append(b, p)
		}
		if s.MergeIntro != "" {
			b = append(b, s.MergeIntro, tbl(s.Merge))
		}
		S := strings.TrimSuffix(s.Properties.Header[0], " Property")
		T := strings.TrimSuffix(s.Properties.Header[1], " Property")
		b = append(b, s.PropsIntro, "The following properties are synchronized between a "+S+" and a "+T+":", tbl(s.Properties))
		blocks = append(blocks, b)
	}
	return d.Title, top, sections, blocks
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkReadBack parses the documents' RST with docutils and compares what it reads with the
// documents' text.
func checkReadBack(t *testing.T, py string, ds []*docs.Document, files []string) {
	t.Helper()
	res := parseRST(t, py, files)
	for i, r := range res {
		if r.Warnings != "" {
			t.Errorf("%s: docutils warnings:\n%s", r.File, r.Warnings)
		}
		if ds[i] == nil {
			continue
		}
		title, top, sections, blocks := expectRead(ds[i])
		if r.Title != title {
			t.Errorf("%s: title %q, want %q", r.File, r.Title, title)
		}
		if jsonOf(r.Top) != jsonOf(top) {
			t.Errorf("%s: before the first section:\n got %s\nwant %s", r.File, jsonOf(r.Top), jsonOf(top))
		}
		if len(r.Sections) != len(sections) {
			t.Errorf("%s: %d sections, want %d", r.File, len(r.Sections), len(sections))
			continue
		}
		for j, s := range r.Sections {
			if s.Title != sections[j] {
				t.Errorf("%s: section %d heading %q, want %q", r.File, j, s.Title, sections[j])
			}
			if jsonOf(s.Blocks) != jsonOf(blocks[j]) {
				t.Errorf("%s: section %q reads\n %s\nwant\n %s", r.File, s.Title, jsonOf(s.Blocks), jsonOf(blocks[j]))
			}
		}
	}
}

// TestGoldenRSTParses runs docutils on every .rst in testdata/golden and reads each back
// against the document it must say.
func TestGoldenRSTParses(t *testing.T) {
	py := python(t)
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.rst"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden .rst files")
	}
	sort.Strings(files)
	built := goldenDocs(t)
	ds := make([]*docs.Document, len(files))
	for i, f := range files {
		if ds[i] = built[strings.TrimSuffix(filepath.Base(f), ".rst")]; ds[i] == nil {
			t.Fatalf("%s: no such document (TestGolden says more)", f)
		}
	}
	checkReadBack(t, py, ds, files)
}

// TestRSTReadBack renders the test projects above, escaping included, and checks that docutils
// reads exactly their text back.
func TestRSTReadBack(t *testing.T) {
	py := python(t)
	var ds []*docs.Document
	for _, p := range []*project{crmShop(t).dataflow(wholeFlows), escapingProject(t)} {
		for _, d := range docs.Build(p.load(), stamp) {
			ds = append(ds, d)
		}
	}
	dir := t.TempDir()
	var files []string
	for i, d := range ds {
		name := filepath.Join(dir, fmt.Sprintf("%d-%s.rst", i, d.Name))
		if err := os.WriteFile(name, []byte(docs.RST(d)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	checkReadBack(t, py, ds, files)
}
