package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

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
	src, err := readRegular(abs)
	if err != nil {
		return nil, err
	}
	var probe any
	if err := json.Unmarshal(src, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(src, int(se.Offset))
			return nil, fmt.Errorf("%s:%d:%d: %s", path, line, col, se.Error())
		}
		return nil, fmt.Errorf("%s: not valid JSON: %w", path, err)
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
		return nil, fmt.Errorf("%s: %s", path, compileError(err))
	}
	root := fromCompiled(compiled, map[*jsonschema.Schema]*Property{})
	return &Entity{Source: path, Root: root, Compiled: compiled}, nil
}

// readRegular reads a regular file of at most MaxSchemaSize bytes: a device or a FIFO named as
// a schema (/dev/zero) must give an error, not exhaust memory or hang.
func readRegular(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxSchemaSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxSchemaSize {
		return nil, fmt.Errorf("the schema file is larger than %d MiB", MaxSchemaSize>>20)
	}
	return src, nil
}

// lineCol turns a byte offset into a 1-based line and column (in runes).
func lineCol(src []byte, off int) (line, col int) {
	if off > len(src) {
		off = len(src)
	}
	line = 1 + bytes.Count(src[:off], []byte("\n"))
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return line, utf8.RuneCount(src[start:off])
}

// compileError says what is wrong with a schema in terms of the file: "/properties/id/type:
// value must be one of ...", without the metaschema's internals.
func compileError(err error) string {
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		for len(ve.Causes) > 0 {
			ve = ve.Causes[0]
		}
		loc := ve.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		return loc + ": " + ve.Message
	}
	msg := err.Error()
	if i := strings.Index(msg, "compilation failed: "); i >= 0 {
		msg = msg[i+len("compilation failed: "):]
	}
	return msg
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
