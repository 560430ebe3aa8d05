package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README stands on its own (issue 13 items 8 and 9): its Set-up block is the two commands
// a fresh clone runs, the test command is the script that installs what the tests need, the
// output it quotes is what the first command prints (the columns that do not depend on
// timestamps), the waiting records it explains are those status lists, and the contract it
// cites is in the repository.
func TestReadmeSetUp(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	setUp := section(t, string(readme), "## Set-up")
	blocks := codeBlocks(setUp)
	if len(blocks) < 3 {
		t.Fatalf("the Set-up section has %d code blocks, want the commands, the output and the waiting records", len(blocks))
	}
	var commands []string
	for _, line := range strings.Split(strings.TrimSpace(blocks[0]), "\n") {
		commands = append(commands, strings.TrimSpace(strings.SplitN(line, "#", 2)[0]))
	}
	if want := []string{"go run ./cmd/dataflow run --until-stable", "./test.sh"}; strings.Join(commands, "\n") != strings.Join(want, "\n") {
		t.Errorf("the Set-up commands are %q, want %q", commands, want)
	}
	if info, err := os.Stat(filepath.Join(repo, "test.sh")); err != nil || info.Mode()&0o111 == 0 {
		t.Errorf("test.sh must exist and be executable: %v", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "docs", "semantics.md")); err != nil {
		t.Errorf("the contract the README links: %v", err)
	}
	if strings.Contains(string(readme), "DESIGN") {
		t.Errorf("the README cites DESIGN, which is not in the repository")
	}

	// What the first command prints on a fresh copy.
	dir := t.TempDir()
	for _, sub := range []string{"mappings", "schemas"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(repo, sub))); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"custom-crm.sql", "squarespace.sql"} {
		data, err := os.ReadFile(filepath.Join(repo, "testdata/local", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"testdata/local/" + f: string(data)})
	}
	_, exited, stdout, stderr := startDataflow(t, dir, "run", "--until-stable")
	if code := waitExit(t, exited); code != 0 {
		t.Fatalf("the quick start exited %d\n%s%s", code, stdout, stderr)
	}
	if got, want := stableColumns(stdout.String()), stableColumns(blocks[1]); got != want {
		t.Errorf("the README quotes the quick start as\n%s\nit prints\n%s", want, got)
	}
	_, exited, status, stderr := startDataflow(t, dir, "status")
	if code := waitExit(t, exited); code != 0 {
		t.Fatalf("status exited %d\n%s", code, stderr)
	}
	if want := dedent(blocks[2]); !strings.Contains(status.String(), want) {
		t.Errorf("the README explains the waiting records as\n%s\nstatus prints\n%s", want, status)
	}
}

// section returns the text of a README section, up to the next heading of its level.
func section(t *testing.T, text, heading string) string {
	t.Helper()
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("no %q section", heading)
	}
	rest := text[i+len(heading)+2:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

var fence = regexp.MustCompile("(?m)^ *```[a-z]*\n((?s:.*?))^ *```\n")

func codeBlocks(text string) []string {
	var out []string
	for _, m := range fence.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// stableColumns keeps, of a run's summaries, each flow's columns but read and unchanged
// (which depend on timestamps that tie with the watermarks) and the closing lines.
func stableColumns(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 11 && f[0] != "flow":
			b.WriteString(strings.Join(append([]string{f[0]}, append(f[2:7], f[8:]...)...), " ") + "\n")
		case strings.Contains(line, "writes,") || strings.Contains(line, "write,"):
			b.WriteString(strings.TrimSpace(line) + "\n")
		}
	}
	return b.String()
}

// dedent removes the indentation of a code block inside a list item.
func dedent(block string) string {
	lines := strings.Split(block, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "  ")
	}
	return strings.Join(lines, "\n")
}
