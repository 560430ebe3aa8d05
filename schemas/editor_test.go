package schemas_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestShippedFilesValidateAsEditorsSeeThem: every YAML file the repository ships validates
// against the schema's root, which is what an editor applies through the modeline, and names
// the schema in its first line.
func TestShippedFilesValidateAsEditorsSeeThem(t *testing.T) {
	root := compile(t, "")
	var files []string
	for _, dir := range []string{"../mappings", "../testdata/northwind"} {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(path, ".yaml") && !strings.Contains(path, "broken") {
				files = append(files, path)
			}
			return nil
		})
	}
	if len(files) < 3 {
		t.Fatalf("found %d shipped files", len(files))
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := yaml.Unmarshal(src, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := root.Validate(doc); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		if strings.HasPrefix(path, "../mappings") && !strings.HasPrefix(string(src), "# yaml-language-server: $schema=") {
			t.Errorf("%s: the first line must be the yaml-language-server modeline", path)
		}
	}
}

// TestRootSchemaRejectsUnknownKeys: the root dispatch does reject a file with a mistake, so
// the test above can fail.
func TestRootSchemaRejectsUnknownKeys(t *testing.T) {
	root := compile(t, "")
	for _, src := range []string{
		"system: x\nname: X\nconnector: sqlite\npath: x.db\nentities: {A: {table: a, id: id, tabel: b}}\n",
		"dataflow: x\nsource: a\ntarget: b\nflows: [{id: f, source: A, target: B, properties: [{source: a, taget: b}]}]\n",
	} {
		var doc any
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		if err := root.Validate(doc); err == nil {
			t.Errorf("accepted:\n%s", src)
		}
	}
}
