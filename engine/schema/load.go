package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// MaxSchemaSize bounds an entity schema file.
const MaxSchemaSize = 8 << 20

// LoadFile reads and compiles an entity's JSON Schema file. Drafts 4 to 2020-12 are accepted
// ($schema decides; 2020-12 when absent). Local $refs to other files resolve relative to it.
func LoadFile(path string) (*Entity, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if info.Size() > MaxSchemaSize {
		return nil, fmt.Errorf("the schema file is larger than %d MiB", MaxSchemaSize>>20)
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	var probe any
	if err := json.Unmarshal(src, &probe); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.LoadURL = loadLocalOnly
	u := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	if err := c.AddResource(u, bytes.NewReader(src)); err != nil {
		return nil, err
	}
	compiled, err := c.Compile(u)
	if err != nil {
		return nil, err
	}
	root := fromCompiled(compiled, map[*jsonschema.Schema]*Property{})
	return &Entity{Source: path, Root: root, Compiled: compiled}, nil
}

// loadLocalOnly resolves $refs to local files only: validation must not reach the network.
func loadLocalOnly(s string) (io.ReadCloser, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "file" {
		return nil, fmt.Errorf("$ref to %s: only local schema files can be referenced", s)
	}
	return os.Open(filepath.FromSlash(u.Path))
}
