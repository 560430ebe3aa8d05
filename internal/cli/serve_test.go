package cli_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildDataflow builds the dataflow command, for the tests that send it signals as a person
// or systemd would (the scripts' in-process command has no signal handling).
func buildDataflow(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "dataflow")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dataflow")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// seedDir lays out the quick start (mappings/, schemas/, testdata/local/*.sql) in a
// temporary directory.
func seedDir(t *testing.T) string {
	t.Helper()
	repo, _ := filepath.Abs("../..")
	dir := t.TempDir()
	for _, d := range []string{"mappings", "schemas"} {
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS(filepath.Join(repo, d))); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "testdata/local"), 0o755)
	for _, f := range []string{"custom-crm.sql", "squarespace.sql"} {
		data, err := os.ReadFile(filepath.Join(repo, "testdata/local", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "testdata/local", f), data, 0o644)
	}
	return dir
}

// logLines reads a JSON log line by line into a channel.
func logLines(t *testing.T, r io.Reader) <-chan map[string]any {
	ch := make(chan map[string]any, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				rec = map[string]any{"msg": "NOT JSON: " + sc.Text()}
			}
			ch <- rec
		}
	}()
	return ch
}

// waitLog reads lines until one has msg, failing after 30 s or at the end of the log.
func waitLog(t *testing.T, lines <-chan map[string]any, msg string) map[string]any {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case rec, ok := <-lines:
			if !ok {
				t.Fatalf("the log ended before %q", msg)
			}
			if m, _ := rec["msg"].(string); strings.HasPrefix(m, "NOT JSON") {
				t.Errorf("a log line that is not JSON: %s", m)
			}
			if rec["msg"] == msg {
				return rec
			}
		case <-timeout:
			t.Fatalf("no %q in the log within 30 s", msg)
		}
	}
}

// TestServeSignals: dataflow serve logs JSON, runs the flows, refuses a SIGHUP reload of
// invalid mappings with the error and keeps serving, takes a valid one, and on SIGTERM stops
// cleanly with exit status 0.
func TestServeSignals(t *testing.T) {
	bin := buildDataflow(t)
	dir := seedDir(t)
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--every", "1h")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DATAFLOW_ADMIN_TOKEN=", "DATAFLOW_HOOK_SECRET=")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := logLines(t, stderr)
	serving := waitLog(t, lines, "serving")
	base := "http://" + serving["address"].(string)
	for i := 0; i < 3; i++ {
		if rec := waitLog(t, lines, "run finished"); rec["run"] == "" || rec["result"] != "ok" {
			t.Errorf("run finished: %v", rec)
		}
	}
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}

	mapping := filepath.Join(dir, "mappings/custom-crm-to-squarespace.yaml")
	good, _ := os.ReadFile(mapping)
	os.WriteFile(mapping, []byte(strings.Replace(string(good), "target: squarespace\n", "target: squarespace\nevery: soon\n", 1)), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	rec := waitLog(t, lines, "reload refused")
	if rec["at"] != "mappings/custom-crm-to-squarespace.yaml:5:8" || !strings.HasPrefix(rec["error"].(string), `invalid every "soon"`) {
		t.Errorf("reload refused: %v", rec)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, `invalid every "soon"`) {
		t.Errorf("/readyz after a refused reload: %d %s", code, body)
	}
	os.WriteFile(mapping, good, 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, lines, "mappings reloaded")
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz after a good reload: %d %s", code, body)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, lines, "stopped")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dataflow serve after SIGTERM: %v; want exit status 0", err)
	}
}

// TestServeRefusesInvalidMappings: serve starts nothing with invalid mappings and says why, as
// validate does, with exit status 2.
func TestServeRefusesInvalidMappings(t *testing.T) {
	bin := buildDataflow(t)
	dir := seedDir(t)
	mapping := filepath.Join(dir, "mappings/custom-crm-to-squarespace.yaml")
	data, _ := os.ReadFile(mapping)
	os.WriteFile(mapping, []byte(strings.Replace(string(data), "target: squarespace\n", "target: squarespace\nevery: 10ms\n", 1)), 0o644)
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"serve", "--listen", ""}, `mappings/custom-crm-to-squarespace.yaml:5:8: error: every "10ms" is shorter than a second
  5 | every: 10ms
    |        ^~~~
  Run a flow at most once a second, e.g. every: 1s; a webhook (POST /hooks/{flow}) runs it as soon as something changes.
dataflow serve: the mappings are invalid; nothing was run
`},
		{[]string{"serve", "--log-format", "xml"}, "dataflow serve: --log-format \"xml\": use text or json\n"},
		{[]string{"serve", "--every", "0s"}, "dataflow serve: --every must be positive, e.g. --every 5m\n"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Dir = dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: %v; want exit status 2", tc.args, err)
		}
		// The seed's warnings (if any) come first, as validate prints them.
		if !strings.HasSuffix(stderr.String(), tc.stderr) || strings.Count(stderr.String(), "error") != strings.Count(tc.stderr, "error") {
			t.Errorf("%v: stderr\n%s\nwant it to end with\n%s", tc.args, stderr.String(), tc.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".dataflow/state.db")); err == nil {
		t.Errorf("a refused serve made a link state")
	}
}
