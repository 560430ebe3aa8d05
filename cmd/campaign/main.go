// Command campaign runs the kill -9 campaign (internal/campaign): it builds the dataflow
// binary, syncs two systems both ways while SIGKILLing it at random moments, with edits on
// both sides between the kills, and prints what it found. It exits 1 when an invariant broke.
//
//	go run ./cmd/campaign -records 2000 -kills 50
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dataflow-sync/dataflow/internal/campaign"
)

func main() {
	records := flag.Int("records", 2000, "records on the source before the first run")
	kills := flag.Int("kills", 50, "SIGKILLs that must land mid-run")
	seed := flag.Int64("seed", time.Now().UnixNano(), "random seed (printed, to repeat a campaign)")
	dir := flag.String("dir", "", "working directory (default: a new temporary one, removed when all is well)")
	binary := flag.String("binary", "", "the dataflow binary (default: built from ./cmd/dataflow)")
	verbose := flag.Bool("v", false, "print a line per kill")
	target := flag.String("target", "sqlite", "the target system: sqlite, or jsonserver (the Custom CRM REST API of testdata/jsonserver; needs npm ci there)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var t campaign.Target
	switch *target {
	case "sqlite":
		t = campaign.SQLiteTarget{}
	case "jsonserver":
		t = &campaign.JSONServerTarget{Dir: filepath.Join("testdata", "jsonserver")}
	default:
		fmt.Fprintf(os.Stderr, "campaign: -target is sqlite or jsonserver, not %q\n", *target)
		os.Exit(2)
	}
	os.Exit(run(ctx, *target, t, *records, *kills, *seed, *dir, *binary, *verbose))
}

func run(ctx context.Context, name string, target campaign.Target, records, kills int, seed int64, dir, binary string, verbose bool) int {
	keep := dir != ""
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "dataflow-campaign-"); err != nil {
			fmt.Fprintln(os.Stderr, "campaign:", err)
			return 2
		}
	}
	if binary == "" {
		binary = filepath.Join(dir, "dataflow")
		build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/dataflow")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "campaign: building dataflow (run from the repository root):", err)
			return 2
		}
	}
	cfg := campaign.Config{Binary: binary, Dir: filepath.Join(dir, "work"), Records: records, Kills: kills, Seed: seed, Target: target}
	if verbose {
		cfg.Log = os.Stderr
	}
	fmt.Printf("kill -9 campaign, SQLite to %s: %d records, %d kills, seed %d, in %s\n", name, records, kills, seed, cfg.Dir)
	fig, err := campaign.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "campaign:", err)
		return 2
	}
	fmt.Print(fig)
	if !fig.OK() {
		fmt.Printf("FAILED: an invariant broke; the systems and link state are kept in %s\n", cfg.Dir)
		return 1
	}
	fmt.Println("ok: no duplicate, no lost update, no pending intent, and one more run wrote nothing")
	if !keep {
		os.RemoveAll(dir)
	}
	return 0
}
