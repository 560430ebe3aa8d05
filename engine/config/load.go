package config

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/diag"
)

// Loader reads mapping files. It holds the compiled format schema, so one Loader serves many
// loads (an editor's on-save hook, the fuzzer) without compiling it again.
type Loader struct {
	Schema *FormatSchema
	Env    Lookup
	// Environments are the selected environments (see Environments), in order of preference.
	Environments []string
}

// NewLoader compiles the format schema and reads variables through env.
func NewLoader(env Lookup) (*Loader, error) {
	fs, err := NewFormatSchema()
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	return &Loader{Schema: fs, Env: env, Environments: Environments(env)}, nil
}

// Load reads the files and directories in paths (directories recursively, *.yaml and *.yml)
// and, for each dataflow file, the systems/ directory beside it. Problems in the files are
// diagnostics; the error is for paths that cannot be read at all.
func (l *Loader) Load(paths []string) (*Project, diag.Diagnostics, error) {
	files, err := discover(paths)
	if err != nil {
		return nil, nil, err
	}
	p := &Project{}
	var ds diag.Diagnostics
	for _, name := range files {
		src, err := readFile(name)
		if err != nil {
			return nil, nil, err
		}
		ds = append(ds, l.AddFile(p, name, src)...)
	}
	p.SelectEnvironments(l.Environments)
	ds = append(ds, p.CheckUnique()...)
	return p, ds, nil
}

// AddFile parses one file's text and adds what it holds to p.
func (l *Loader) AddFile(p *Project, name string, src []byte) diag.Diagnostics {
	f, ds := Parse(name, src)
	p.Files = append(p.Files, f)
	if f.Root == nil || ds.HasErrors() && f.Root.Kind != Map {
		return ds
	}
	root := f.Root
	switch {
	case root.Kind == Null:
		ds.Errorf(diag.Range{File: name}, "file is empty").
			WithDetail("A mapping file starts with a \"dataflow:\" or a \"system:\" key.")
	case root.Kind != Map:
		ds.Errorf(root.Range, "a mapping file must be a mapping, not %s", root.Describe()).
			WithDetail("Start the file with a \"dataflow:\" or a \"system:\" key.")
	case root.Get("system") != nil:
		ds = append(ds, l.Schema.CheckSystem(root)...)
		s := decodeSystem(f, root, l.Env)
		for _, key := range slices.Sorted(maps.Keys(s.Settings)) {
			if st := s.Settings[key]; st.Node != nil {
				if _, _, bad := Expand(st.Node.Value, l.Env); bad != "" {
					r := st.Range
					if i := strings.Index(st.Node.Value, bad); i >= 0 {
						off := len([]rune(st.Node.Value[:i]))
						r.Start = st.Node.PosAt(off)
						r.End = st.Node.PosAt(off + len([]rune(bad)))
					}
					ds.Errorf(r, "malformed variable reference %q in %q", bad, key).
						WithDetail("Write ${NAME} or ${NAME:-default}, with a name of letters, digits and underscores not starting with a digit; write $$ for a literal $.")
				}
			}
		}
		p.Systems = append(p.Systems, s)
	case root.Get("dataflow") != nil:
		ds = append(ds, l.Schema.CheckDataflow(root)...)
		p.Dataflows = append(p.Dataflows, decodeDataflow(f, root))
	case root.Get("test") != nil:
		ds = append(ds, l.Schema.check(defTestFile, root)...)
		p.Tests = append(p.Tests, decodeTest(f, root))
	default:
		r := root.Range
		if len(root.Keys) > 0 {
			r = root.Keys[0].Range
		}
		for _, k := range root.Keys {
			if s := diag.Suggest(k.Value, []string{"dataflow", "system", "test"}); s != "" {
				ds.Errorf(k.Range, "unknown key %q; did you mean %q?", k.Value, s).
					WithDetail("A dataflow file starts with \"dataflow: <id>\", a system file with \"system: <id>\".")
				return ds
			}
		}
		ds.Errorf(r, "neither a dataflow nor a system file").
			WithDetail("A dataflow file starts with \"dataflow: <id>\", a system file with \"system: <id>\", a mapping test with \"test: <what it checks>\".")
	}
	return ds
}

// readFile reads a regular file, at most one byte past MaxFileSize (Parse reports the size):
// a device or a FIFO among the paths gives an error instead of an endless read.
func readFile(name string) ([]byte, error) {
	info, err := os.Stat(name) // before opening: opening a FIFO waits for a writer
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %s: not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// CheckUnique reports systems, dataflows and flows defined twice.
func (p *Project) CheckUnique() diag.Diagnostics {
	var ds diag.Diagnostics
	systems := map[string]Str{}
	for _, s := range append(slices.Clip(p.Systems), p.Alternates...) {
		key := s.ID.Value + "\x00" + s.Environment.Value
		if first, dup := systems[key]; dup && s.ID.Value != "" {
			if s.Environment.Value != "" {
				ds.Errorf(s.ID.Range, "system %q is defined twice for environment %q; first at %s", s.ID.Value, s.Environment.Value, first.Range)
			} else {
				ds.Errorf(s.ID.Range, "system %q is defined twice; first at %s", s.ID.Value, first.Range)
			}
		} else {
			systems[key] = s.ID
		}
	}
	dataflows := map[string]Str{}
	flows := map[string]Str{}
	for _, d := range p.Dataflows {
		if first, dup := dataflows[d.ID.Value]; dup && d.ID.Value != "" {
			ds.Errorf(d.ID.Range, "dataflow %q is defined twice; first at %s", d.ID.Value, first.Range)
		} else {
			dataflows[d.ID.Value] = d.ID
		}
		pairs := map[string]Str{}
		for _, f := range d.Flows {
			if f.ID.Value != "" {
				if first, dup := flows[f.ID.Value]; dup {
					ds.Errorf(f.ID.Range, "flow %q is defined twice; first at %s", f.ID.Value, first.Range).
						WithDetail("Flow ids name flows in \"ref\" and \"run --flow\"; give each flow its own.")
				} else {
					flows[f.ID.Value] = f.ID
				}
			}
			if f.Source.Value == "" || f.Target.Value == "" {
				continue
			}
			pair := f.Source.Value + "\x00" + f.Target.Value
			if first, dup := pairs[pair]; dup {
				ds.Errorf(f.Source.Range, "%s to %s is defined twice; first at %s", f.Source.Value, f.Target.Value, first.Range).
					WithDetail("Merge the two flows' properties into one flow.")
			} else {
				pairs[pair] = f.Source
			}
		}
	}
	return ds
}

// discover expands paths into YAML files, in a stable order, adding the systems/ directory
// beside each file given on its own.
func discover(paths []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	add := func(name string) {
		clean := filepath.Clean(name)
		if !seen[clean] {
			seen[clean] = true
			files = append(files, clean)
		}
	}
	walk := func(dir string) error {
		return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && isYAML(path) {
				add(path)
			}
			return nil
		})
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
		}
		if info.IsDir() {
			if err := walk(p); err != nil {
				return nil, err
			}
			continue
		}
		add(p)
		sys := filepath.Join(filepath.Dir(p), "systems")
		if st, err := os.Stat(sys); err == nil && st.IsDir() && filepath.Base(filepath.Dir(p)) != "systems" {
			if err := walk(sys); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

func isYAML(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}
