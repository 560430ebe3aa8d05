package config

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

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
	f.lineStarts = diag.LineStarts(src)
	if !utf8.Valid(src) {
		// yaml.v3 says only "invalid leading UTF-8 octet"; point at the first bad byte.
		at := invalidUTF8(src)
		pos := f.posOf(at)
		ds.Errorf(diag.Range{File: name, Start: pos, End: pos}, "invalid UTF-8 (byte 0x%02x at offset %d)", src[at], at).
			WithDetail("Save the file as UTF-8; a file from a Windows editor may be in Windows-1252 or UTF-16.")
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

// invalidUTF8 returns the offset of the first byte of src that is not part of valid UTF-8.
func invalidUTF8(src []byte) int {
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(src)
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

// syntaxError turns a yaml.v3 error into a diagnostic at its line. yaml.v3 reports only a line,
// and for many errors the line where the enclosing construct started rather than the line with
// the problem; problemLine finds the latter. The caret goes under the line's first character,
// or under the tab for a tab in the indentation.
func syntaxError(name string, src []byte, err error) *diag.Diagnostic {
	msg := err.Error()
	r := diag.Range{File: name}
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg = m[2]
		line = problemLine(src, msg, line)
		r.Start.Line = line
		if text, ok := (diag.Sources{name: src}).Line(name, line); ok {
			indent := len([]rune(text)) - len([]rune(strings.TrimLeft(text, " \t")))
			r.Start.Col = indent + 1
			if tab := strings.IndexByte(text[:len(text)-len(strings.TrimLeft(text, " \t"))], '\t'); tab >= 0 {
				r.Start.Col = tab + 1
			}
			// An unclosed flow collection: point at its opening bracket.
			for _, b := range []struct{ close, open string }{{"'}'", "{"}, {"']'", "["}} {
				if strings.Contains(msg, b.close) {
					if i := strings.LastIndex(text, b.open); i >= 0 {
						r.Start.Col = len([]rune(text[:i])) + 1
					}
				}
			}
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

// problemLine finds the line where a YAML error is: the first line, from the reported one on,
// such that the file up to and including it fails with the same message. Files are small; very
// long ones keep the reported line.
func problemLine(src []byte, msg string, reported int) int {
	starts := diag.LineStarts(src)
	if len(starts) > 5000 || reported < 1 {
		return reported
	}
	for k := reported; k <= len(starts); k++ {
		end := len(src)
		if k < len(starts) {
			end = starts[k]
		}
		var doc yaml.Node
		err := safeDecode(yaml.NewDecoder(bytes.NewReader(src[:end])), &doc)
		if err == nil {
			continue
		}
		if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil && m[2] == msg {
			return k
		}
	}
	return reported
}

func yamlHint(msg string) string {
	switch {
	case strings.Contains(msg, "found character that cannot start any token"), strings.Contains(msg, "tab character"):
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

// posOf returns the position of byte offset off.
func (f *File) posOf(off int) diag.Pos {
	line := sort.SearchInts(f.lineStarts, off+1) // the lines that start at or before off
	if line < 1 {
		return diag.Pos{Line: 1, Col: 1}
	}
	start := f.lineStarts[line-1]
	return diag.Pos{Line: line, Col: utf8.RuneCount(f.Src[start:off]) + 1}
}
