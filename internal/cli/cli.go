// Package cli is the dataflow command line: argument parsing, output and exit codes. Run is a
// plain function over its arguments and streams so that tests call it in-process, and main is
// three lines.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitInvalid = 1 // invalid mappings, failed records
	exitUsage   = 2 // bad arguments, unreadable paths, configuration errors
)

// Version is the release; the VCS revision, when the binary has one, is printed beside it.
const Version = "0.1.0"

// DefaultMappings is where mappings are read from when no path is given.
const DefaultMappings = "mappings"

type command struct {
	name    string
	summary string
	usage   string
	run     func(*env, []string) int
}

// env is what a command works with: its streams, the environment and the engine.
type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	lookup         config.Lookup
}

func commands() []*command {
	return []*command{
		{name: "validate", summary: "check mapping files against the format, the entity schemas and the expressions", usage: "validate [--format text|json|github] [--live] [PATH...]", run: runValidate},
		{name: "discover", summary: "write a system file and entity schemas from a live database's tables", usage: "discover [--tables T,...] [-o DIR] [--force] (--system ID --connector sqlite|postgres|mysql --path FILE|--dsn DSN [--schema NAME] | SYSTEM-FILE)", run: runDiscover},
		{name: "docs", summary: "write the QA-checklist documents of each dataflow", usage: "docs [-o DIR] [--format rst|md] [--generated STAMP] [PATH...]", run: runDocs},
		{name: "run", summary: "sync the records of the dataflows, both ways", usage: "run [--flow ID] [--dry-run] [--until-stable] [--every DURATION] [--reconcile] [--resync] [--clock-skew DURATION] [--json] [--state FILE] [--allow-new-state] [--allow-new-systems] [--cpuprofile FILE] [--memprofile FILE] [PATH...]", run: runRun},
		{name: "serve", summary: "run every flow on its schedule, with a status page, metrics and webhooks", usage: "serve [--listen ADDRESS] [--state FILE|URL] [--every DURATION] [--lease DURATION] [--log-format text|json] [--admin-token-env NAME] [--hook-secret-env NAME] [PATH...]", run: runServe},
		{name: "test", summary: "run the mapping tests: given records, expected records, both directions", usage: "test [PATH...]", run: runTest},
		{name: "status", summary: "show what is linked, waiting and failing, and the last run", usage: "status [--waiting] [--state FILE] [PATH...]", run: runStatus},
		{name: "links", summary: "list the links between records", usage: "links [--flow ID] [--state FILE] [PATH...]", run: runLinks},
		{name: "deadletters", summary: "list, retry or drop the records that failed", usage: "deadletters [--flow ID] [--state FILE] [PATH...] [list | retry | drop [ID...]]", run: runDeadLetters},
		{name: "watermarks", summary: "show where each flow's incremental reads start, or reset them", usage: "watermarks [--flow ID] [--state FILE] [list | reset] [PATH...]", run: runWatermarks},
		{name: "pending", summary: "list the changes the circuit breaker refused, which wait for approval", usage: "pending [--flow ID] [--state FILE]", run: runPending},
		{name: "approve", summary: "let the next run make a pending change", usage: "approve [--state FILE] ID", run: runApprove},
		{name: "reject", summary: "drop a pending change and keep the links", usage: "reject [--state FILE] ID", run: runReject},
		{name: "schema", summary: "print the JSON Schema of the mapping files", usage: "schema", run: runSchema},
		{name: "version", summary: "print the version", usage: "version", run: runVersion},
	}
}

// Run executes the command line args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, lookup: os.LookupEnv}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			c := find(args[1])
			if c == nil {
				return unknownCommand(stderr, args[1])
			}
			return c.run(e, []string{"--help"})
		}
		usage(stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(e, args[1:])
	}
	c := find(args[0])
	if c == nil {
		return unknownCommand(stderr, args[0])
	}
	return c.run(e, args[1:])
}

func unknownCommand(stderr io.Writer, name string) int {
	fmt.Fprintf(stderr, "dataflow: unknown command %q%s\nRun 'dataflow help' for the list of commands.\n", name, suggestCommand(name))
	return exitUsage
}

func find(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func suggestCommand(name string) string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return didYouMean(name, names)
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("dataflow keeps records of two business systems linked and in sync, from YAML mappings.\n\nUsage:\n  dataflow <command> [arguments]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'dataflow <command> --help' for a command's flags.\n")
	io.WriteString(w, b.String())
}

// flags returns a flag set whose usage text is headed by the command's synopsis. Usage asked
// for with --help goes to stdout; after a flag error, to stderr.
func (e *env) flags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet(c, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cmd := find(c)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: dataflow %s\n\n%s.\n", cmd.usage, capitalize(cmd.summary))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// wantsHelp reports whether -h or --help is among the flags (before a "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// parse parses flags, allowing them after positional arguments too
// ("validate mappings --format json"). It returns the exit code to stop with, or -1.
func (e *env) parse(fs *flag.FlagSet, args []string) ([]string, int) {
	if wantsHelp(args) {
		fs.SetOutput(e.stdout)
		fs.Usage()
		return nil, exitOK
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK
			}
			return nil, exitUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, -1
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), -1
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (e *env) engine() (*engine.Engine, bool) {
	eng, err := engine.New(e.lookup)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow: %s\n", errText(err))
		return nil, false
	}
	return eng, true
}

func runVersion(e *env, args []string) int {
	rest, code := e.parse(e.flags("version"), args)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintln(e.stderr, "dataflow version: takes no arguments")
		return exitUsage
	}
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	fmt.Fprintf(e.stdout, "dataflow %s%s\n", Version, rev)
	return exitOK
}
