package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/docs"
)

var docFormats = []string{"rst", "md"}

func runDocs(e *env, args []string) int {
	fs := e.flags("docs")
	out := fs.String("o", "docs", "`directory` to write the documents to; - writes them to standard output")
	format := fs.String("format", "rst", "document `format`: rst or md")
	generated := fs.String("generated", "", "the `stamp` printed as \"Generated:\" (default: now, UTC), for reproducible output")
	paths, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	if !e.checkChoice("docs", "format", *format, docFormats) {
		return exitUsage
	}
	res, ok := e.load(paths)
	if !ok {
		return exitUsage
	}
	if res.Diagnostics.HasErrors() {
		diag.WriteText(e.stderr, res.Diagnostics, res.Sources)
		fmt.Fprintln(e.stderr, "dataflow docs: the mappings are invalid; no documents written")
		return exitInvalid
	}
	if len(res.Project.Dataflows) == 0 {
		fmt.Fprintln(e.stderr, "dataflow docs: no dataflow files found; documents are written for files that start with \"dataflow:\"")
		return exitInvalid
	}
	stamp := *generated
	if stamp == "" {
		stamp = time.Now().UTC().Format("2006-01-02 15:04:05")
	}
	render, ext := docs.RST, ".rst"
	if *format == "md" {
		render, ext = docs.Markdown, ".md"
	}
	if *out != "-" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintf(e.stderr, "dataflow docs: %s\n", errText(err))
			return exitUsage
		}
	}
	first := true
	for _, df := range res.Project.Dataflows {
		for _, d := range docs.Build(df, stamp) {
			text := render(d)
			if *out == "-" {
				if !first {
					fmt.Fprint(e.stdout, "\n\n") // documents two blank lines apart, like sections
				}
				first = false
				fmt.Fprint(e.stdout, text)
				continue
			}
			name := filepath.Join(*out, d.Name+ext)
			if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
				fmt.Fprintf(e.stderr, "dataflow docs: %s\n", errText(err))
				return exitUsage
			}
			fmt.Fprintf(e.stdout, "wrote %s\n", name)
		}
	}
	return exitOK
}
