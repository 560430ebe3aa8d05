package serve

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's headless-capable Chromium, or skips the test (fails it when
// DATAFLOW_REQUIRE_CHROMIUM=1, as in CI where it is installed).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("DATAFLOW_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed (apt-get install -y chromium) and DATAFLOW_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); set DATAFLOW_REQUIRE_CHROMIUM=1 to fail instead")
	return ""
}

// artifactDir is where the test keeps its screenshots: $DATAFLOW_ARTIFACTS, else the test's
// artifact directory (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("DATAFLOW_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// TestStatusPageInBrowser: in headless Chromium, an admin logs in on the status page, sees the
// dead letter with its reason, retries it once the shop takes the record, and sees it gone and
// the retry's run listed. Screenshots of both pages are kept.
func TestStatusPageInBrowser(t *testing.T) {
	exe := chromium(t)
	seedProject(t)
	r := startService(t, Config{AdminToken: testToken})
	r.settle(t)
	refuseNewProduct(t)
	if run := r.runAndWait(t, "product-to-sesamproducts"); run.Result != ResultFailed {
		t.Fatalf("the run with a refused product: %s", run.Result)
	}
	acceptNewProduct(t)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	dir := artifactDir(t)
	deadRow := chromedp.CSS(`tr.dead-letter[data-record="source:14"]`)
	err := chromedp.Do(ctx,
		chromedp.Navigate(r.base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(deadRow+" button.retry"),
	)
	if err != nil {
		t.Fatalf("logging in: %v", err)
	}
	reason, err := chromedp.Run(ctx, chromedp.Text(deadRow))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "creating Sesamproducts: the shop refuses this product") {
		t.Errorf("the dead letter's row: %q; want its reason", reason)
	}
	before, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status-dead-letter.png"), before, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(deadRow+" button.retry"), chromedp.WaitVisible(chromedp.ID("flows"))); err != nil {
		t.Fatalf("retrying: %v", err)
	}
	// The retry's run makes the product; the page (reloaded as a person would) has no dead
	// letter any more and lists the run.
	waitFor(t, "the retry's run", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		runs := r.runs["product-to-sesamproducts"]
		return len(runs) > 0 && runs[0].Trigger == "retry"
	})
	waitFor(t, "the service to be idle", r.idle)
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/"), chromedp.WaitVisible(chromedp.ID("flow-product-to-sesamproducts"))); err != nil {
		t.Fatalf("reloading the page: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("tr.dead-letter"), chromedp.AtLeast(0)))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#flow-product-to-sesamproducts table.runs")))
	if err != nil {
		t.Fatal(err)
	}
	after, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status-after-retry.png"), after, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 {
		t.Errorf("%d dead letters on the page after the retry; want none", len(rows))
	}
	if !strings.Contains(runs, "test-worker\tretry") || !strings.Contains(runs, "ok") {
		t.Errorf("the runs table does not list the retry's run:\n%s", runs)
	}
	if n := len(deadLetters(t, "product-to-sesamproducts")); n != 0 {
		t.Errorf("the state still has %d dead letters", n)
	}
	t.Logf("screenshots in %s", dir)
}
