package config

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"gopkg.in/yaml.v3"
)

// File is one parsed YAML file.
type File struct {
	Name string // as given by the user, used in diagnostics
	Src  []byte
	Root *Node // nil when the file could not be parsed

	lineStarts []int
}

// MaxFileSize bounds a mapping file; real ones are a few kilobytes.
const MaxFileSize = 8 << 20

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses src as a single YAML document. Syntax errors, duplicate keys, self-referring
// aliases and oversized input are reported as diagnostics; it never panics.
func Parse(name string, src []byte) (f *File, ds diag.Diagnostics) {
	f = &File{Name: name, Src: src}
	whole := diag.Range{File: name}
	if len(src) > MaxFileSize {
		ds.Errorf(whole, "file is larger than %d MiB", MaxFileSize>>20).
			WithDetail("Mapping files are small; split it into several files.")
		return f, ds
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	err := safeDecode(dec, &doc)
	if errors.Is(err, io.EOF) {
		ds.Errorf(whole, "file is empty").
			WithDetail("A mapping file starts with a \"dataflow:\" or a \"system:\" key.")
		return f, ds
	}
	if err != nil {
		ds = append(ds, syntaxError(name, src, err))
		return f, ds
	}
	var extra yaml.Node
	if err := safeDecode(dec, &extra); err == nil {
		ds.Errorf(f.rangeOf(&extra), "a second YAML document in one file").
			WithDetail("Put each dataflow and each system in a file of its own.")
	} else if !errors.Is(err, io.EOF) {
		ds = append(ds, syntaxError(name, src, err))
	}
	c := &converter{file: f, expanding: map[*yaml.Node]bool{}, memo: map[*yaml.Node]*Node{}}
	f.Root = c.convert(&doc, 0)
	ds = append(ds, c.diags...)
	if c.tooBig {
		f.Root = nil
	}
	return f, ds
}

// safeDecode turns a panic inside the YAML parser into an error: hostile input must give a
// message, never a crash.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("yaml: the YAML parser failed on this input")
		}
	}()
	return dec.Decode(n)
}

// syntaxError turns a yaml.v3 error into a diagnostic at its line. yaml.v3 reports lines only,
// so the caret goes under the line's first non-blank character.
func syntaxError(name string, src []byte, err error) *diag.Diagnostic {
	msg := err.Error()
	r := diag.Range{File: name}
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg = m[2]
		r.Start.Line = line
		if text, ok := (diag.Sources{name: src}).Line(name, line); ok {
			r.Start.Col = len([]rune(text)) - len([]rune(strings.TrimLeft(text, " "))) + 1
			r.End = diag.Pos{Line: line, Col: r.Start.Col + 1}
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &diag.Diagnostic{
		Severity: diag.Error,
		Summary:  "invalid YAML: " + msg,
		Detail:   yamlHint(msg),
		Subject:  r,
	}
}

func yamlHint(msg string) string {
	switch {
	case strings.Contains(msg, "found character that cannot start any token"):
		return "YAML does not allow tabs for indentation; indent with spaces."
	case strings.Contains(msg, "mapping values are not allowed"):
		return "A value that contains \": \" must be quoted."
	case strings.Contains(msg, "did not find expected"):
		return "Check the indentation and the quotes on this line and the one before."
	case strings.Contains(msg, "invalid leading UTF-8 octet"), strings.Contains(msg, "invalid trailing UTF-8 octet"), strings.Contains(msg, "incomplete UTF-8"):
		return "Save the file as UTF-8."
	}
	return ""
}
