// Command bench measures dataflow against hand-written Go (and, for the mapping step,
// Bloblang) on generated SQLite systems, per the scenarios of issue 6:
//
//	cd bench && go run . [-n 100000] [-runs 3] [-scenarios a,b,...] [-dir /tmp/dataflow-bench] [-cpuprofile DIR]
//
// Each measured run is a child process (this program re-executed with -child), so that its
// peak RSS is its own; the parent prepares the databases between runs, untimed, and prints
// the medians. See README.md.
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"database/sql"

	"github.com/dataflow-sync/dataflow/engine"
	_ "github.com/mattn/go-sqlite3"
)

//go:embed testdata
var testdata embed.FS

const (
	progDataflow = "dataflow"
	progGo       = "go"
	progBloblang = "bloblang"
	progPlain    = "plain" // the plain loop of issue 19 (plain.go)
)

// scenarios in the order they run, with their letter in issue 6.
var scenarios = []struct{ letter, name, title string }{
	{"a", "full-sync", "full first sync, one-way"},
	{"i", "int-full-sync", "full first sync into integer ids"},
	{"b", "mapping", "mapping alone"},
	{"c", "nochange-watermark", "nothing changed, watermark"},
	{"d", "nochange", "nothing changed, no watermark"},
	{"e", "changed", "1 % changed, watermark"},
	{"f", "two-way", "two-way, 1 % changed each side"},
	{"g", "validate", "validate 1,000 flows"},
	{"h", "pg-full-sync", "full first sync into PostgreSQL"},
}

// job is what a child process runs.
type job struct {
	Kind      string `json:"kind"`
	Program   string `json:"program"`
	N         int    `json:"n"`
	Dir       string `json:"dir"`
	Testdata  string `json:"testdata"`
	Source    string `json:"source,omitempty"`
	Watermark bool   `json:"watermark,omitempty"`
	Expect    int    `json:"expect,omitempty"`
	Expect2   int    `json:"expect2,omitempty"`
	Profile   string `json:"profile,omitempty"`
	DSN       string `json:"dsn,omitempty"`     // h: the PostgreSQL database of the run
	IntIDs    bool   `json:"int_ids,omitempty"` // i: the target whose ids SQLite assigns
}

// result is what a child reports on its standard output.
type result struct {
	Seconds float64 `json:"seconds"`
	Note    string  `json:"note,omitempty"`
	Error   string  `json:"error,omitempty"`
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func main() {
	n := flag.Int("n", 100000, "number of products (orders: N/10)")
	runs := flag.Int("runs", 3, "runs per scenario and program; the table shows medians")
	list := flag.String("scenarios", "", "comma-separated scenarios, by letter or name (default all): "+scenarioNames())
	dir := flag.String("dir", filepath.Join(os.TempDir(), "dataflow-bench"), "working directory: generated sources are cached here by N")
	profile := flag.String("cpuprofile", "", "write a CPU and an allocation profile of every dataflow run into `DIR`")
	childSpec := flag.String("child", "", "internal: run one measured job (JSON) and report it")
	flag.Parse()
	if *childSpec != "" {
		os.Exit(child(*childSpec))
	}
	if flag.NArg() > 0 || *n < 100 || *runs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	selected, err := selectScenarios(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	b, err := newBench(*dir, *n, *runs, *profile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	for _, s := range scenarios {
		if selected[s.letter] {
			b.run(s.letter)
		}
	}
	if b.pg != nil {
		b.pg.remove()
	}
	b.print(os.Stdout)
	if b.failed {
		os.Exit(1)
	}
}

func scenarioNames() string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.letter+"="+s.name)
	}
	return strings.Join(names, ", ")
}

func selectScenarios(list string) (map[string]bool, error) {
	sel := map[string]bool{}
	if list == "" {
		for _, s := range scenarios {
			sel[s.letter] = true
		}
		return sel, nil
	}
next:
	for _, w := range strings.Split(list, ",") {
		w = strings.TrimSpace(w)
		for _, s := range scenarios {
			if w == s.letter || w == s.name {
				sel[s.letter] = true
				continue next
			}
		}
		return nil, fmt.Errorf("unknown scenario %q; the scenarios are %s", w, scenarioNames())
	}
	return sel, nil
}

// ---------------------------------------------------------------------------------------------
// The parent: prepares, runs children, collects rows.

type row struct {
	letter, scenario, program string
	n                         string  // the N column
	records                   float64 // what records/s counts
	secs                      []float64
	rssKiB                    []int64
	note, errs                string
	ratio, target             string
	linkBytes, rowBytes       float64 // a first sync's storage per record (measureSizes)
}

func (r *row) median() float64 {
	if len(r.secs) == 0 {
		return 0
	}
	s := slices.Clone(r.secs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *row) peakMiB() float64 {
	if len(r.rssKiB) == 0 {
		return 0
	}
	return float64(slices.Max(r.rssKiB)) / 1024
}

type bench struct {
	dir, work, td, self, profile string
	n, runs                      int
	rows                         []*row
	baselines                    map[string]string
	fullSync                     *row // dataflow's full sync, the reference of e and f
	handFullSync                 *row // a's hand-written loop, today's reference of i too
	failed                       bool
	started                      time.Time
	pg                           *pgServer // h's server, once started
	pgSkip                       string    // why h has no server
}

func newBench(dir string, n, runs int, profile string) (*bench, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b := &bench{dir: dir, work: filepath.Join(dir, "work"), td: filepath.Join(dir, "testdata"), self: self, n: n, runs: runs,
		baselines: map[string]string{}, started: time.Now()}
	if profile != "" {
		if b.profile, err = filepath.Abs(profile); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(b.profile, 0o755); err != nil {
			return nil, err
		}
	}
	// Baselines are made by this build of dataflow: never reused across invocations.
	if err := os.RemoveAll(b.work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return nil, err
	}
	// The YAML, schemas and scripts the children load, as embedded in this build.
	if err := os.RemoveAll(b.td); err != nil {
		return nil, err
	}
	err = fs.WalkDir(testdata, "testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		data, err := testdata.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// spawn runs a job in a child process and returns its result and peak RSS.
func (b *bench) spawn(j job) (result, int64, float64, error) {
	j.Testdata = b.td
	spec, _ := json.Marshal(j)
	cmd := exec.Command(b.self, "-child", string(spec))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var rss int64
	var cpu float64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = int64(ru.Maxrss) // KiB on Linux
		}
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	var res result
	if jerr := json.Unmarshal(bytes.TrimSpace(lastLine(out.Bytes())), &res); jerr != nil {
		if err == nil {
			err = fmt.Errorf("the child reported no result: %v", jerr)
		}
		return res, rss, cpu, fmt.Errorf("%s %s: %w", j.Kind, j.Program, err)
	}
	if res.Error != "" {
		return res, rss, cpu, fmt.Errorf("%s %s: %s", j.Kind, j.Program, res.Error)
	}
	return res, rss, cpu, err
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// measure runs one measured job and adds it to the row.
func (b *bench) measure(r *row, j job, i int) bool {
	if j.Program == progDataflow && b.profile != "" {
		j.Profile = filepath.Join(b.profile, fmt.Sprintf("%s-%s-n%d-run%d", r.scenario, r.program, j.N, i+1))
	}
	// Whatever earlier runs left for the kernel to write back would be written while this
	// run waits on its own fsyncs: every measured run starts with none.
	syscall.Sync()
	res, rss, cpu, err := b.spawn(j)
	if err != nil {
		logf("%s %s N=%s run %d: %v", r.scenario, r.program, r.n, i+1, err)
		r.errs = err.Error()
		b.failed = true
		return false
	}
	r.secs = append(r.secs, res.Seconds)
	r.rssKiB = append(r.rssKiB, rss)
	if res.Note != "" {
		r.note = res.Note
	}
	// The CPU is the child's, user and system, from its start to its exit: the timed part and
	// what the child does around it (opening the databases it is given, loading the flows).
	logf("%s %s N=%s run %d/%d: %.3f s, %.0f MiB, %.2f s CPU%s", r.scenario, r.program, r.n, i+1, b.runs, res.Seconds, float64(rss)/1024, cpu, prefixed("; ", res.Note))
	return true
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func (b *bench) newRow(letter, program, n string, records float64) *row {
	var name string
	for _, s := range scenarios {
		if s.letter == letter {
			name = s.name
		}
	}
	r := &row{letter: letter, scenario: name, program: program, n: n, records: records}
	b.rows = append(b.rows, r)
	return r
}

func (b *bench) source(n int) string {
	p, err := sourcePath(b.dir, n)
	if err != nil {
		logf("generating the source: %v", err)
		os.Exit(1)
	}
	return p
}

// fresh prepares a run directory for a first sync: a copy of the source, an empty shop.
func (b *bench) fresh(name string, n int) (string, error) {
	return b.freshInto(name, n, "testdata/shop.sql")
}

// freshInto is fresh with the empty shop made by another script (int-ids/shop.sql).
func (b *bench) freshInto(name string, n int, shopSQL string) (string, error) {
	d := filepath.Join(b.work, name)
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	if err := copyFile(b.source(n), filepath.Join(d, "erp.db")); err != nil {
		return "", err
	}
	script, err := testdata.ReadFile(shopSQL)
	if err != nil {
		return "", err
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(d, "shop.db"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	_, err = db.Exec(string(script))
	return d, err
}

// copyRun copies a baseline's databases into a new run directory.
func (b *bench) copyRun(base, name string) (string, error) {
	d := filepath.Join(b.work, name)
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-shm") || e.IsDir() {
			continue
		}
		if err := copyFile(filepath.Join(base, e.Name()), filepath.Join(d, e.Name())); err != nil {
			return "", err
		}
	}
	return d, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	// The copy is made durable before a measured run opens it: else the run's first fsync of
	// the file (a checkpoint) writes the whole copy to disk, a cost no real run has.
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// baseline returns the directory of a synced pair of systems, making it when missing (untimed,
// in a child): "oneway" (dataflow's first one-way sync), "hand" (the hand-written loop's) or
// "twoway" (dataflow's two-way sync, run until it writes nothing).
func (b *bench) baseline(kind string, n int) (string, error) {
	key := fmt.Sprintf("%s-%d", kind, n)
	if d, ok := b.baselines[key]; ok {
		return d, nil
	}
	d, err := b.fresh("base-"+key, n)
	if err != nil {
		return "", err
	}
	j := job{Kind: "full-sync", Program: progDataflow, N: n, Dir: d}
	switch kind {
	case "hand":
		j.Kind, j.Program = "hand-full-sync", progGo
	case "twoway":
		j.Kind = "two-way-setup"
	}
	logf("making the %s baseline of N=%d", kind, n)
	res, rss, _, err := b.spawn(j)
	if err != nil {
		return "", fmt.Errorf("the %s baseline: %w", kind, err)
	}
	logf("baseline %s N=%d made in %.1f s, %.0f MiB%s", kind, n, res.Seconds, float64(rss)/1024, prefixed("; ", res.Note))
	b.baselines[key] = d
	return d, nil
}

// adopt keeps a measured first sync's directory as the baseline, or removes it.
func (b *bench) adopt(kind string, n int, d string) {
	key := fmt.Sprintf("%s-%d", kind, n)
	if _, ok := b.baselines[key]; ok {
		os.RemoveAll(d)
		return
	}
	base := filepath.Join(b.work, "base-"+key)
	os.RemoveAll(base)
	if err := os.Rename(d, base); err == nil {
		b.baselines[key] = base
	}
}

// measureSizes checks that a first sync left n rows in the target, and sets its storage per
// record on its row: the link state's bytes per link (every page in use of the link
// database: dataflow's state.db, the loop's link file) and the target's own row bytes (the
// pages of the items table's b-tree, without its indexes). See dbsize.go. A target without n
// rows fails the row, as a wrong created count does.
func (b *bench) measureSizes(r *row, dir, links string, n int) bool {
	shop, err := measureDB(filepath.Join(dir, "shop.db"))
	if err != nil {
		b.fail(r, err)
		return false
	}
	state, err := measureDB(filepath.Join(dir, links))
	if err != nil {
		b.fail(r, err)
		return false
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "shop.db")+"?mode=ro")
	if err != nil {
		b.fail(r, err)
		return false
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow("SELECT count(*) FROM items").Scan(&rows); err != nil {
		b.fail(r, err)
		return false
	}
	if rows != n {
		b.fail(r, fmt.Errorf("the target holds %d items after the run, want %d", rows, n))
		return false
	}
	r.linkBytes = float64(state.used) / float64(n)
	r.rowBytes = float64(shop.btrees["items"]) / float64(n)
	r.note = fmt.Sprintf("link state %.0f B/link = %.2f× the target's row (%.0f B/record; its indexes %.0f B/record more)",
		r.linkBytes, r.linkBytes/r.rowBytes, r.rowBytes, float64(shop.indexBytes("items"))/float64(n))
	return true
}

func (b *bench) fail(r *row, err error) {
	logf("%s: %v", r.scenario, err)
	r.errs = err.Error()
	b.failed = true
}

func ratioText(x float64, of string) string {
	if x == 0 || x != x {
		return "-"
	}
	return fmt.Sprintf("%.2f× %s", x, of)
}

func (b *bench) run(letter string) {
	n := b.n
	ns := fmt.Sprint(n)
	switch letter {
	case "a":
		df := b.newRow("a", progDataflow, ns, float64(n))
		hand := b.newRow("a", progGo, ns, float64(n))
		plain := b.newRow("a", progPlain, ns, float64(n))
		for i := 0; i < b.runs; i++ {
			for _, r := range []*row{df, hand, plain} {
				kind, base, links := "full-sync", "oneway", "state.db"
				switch r {
				case hand:
					kind, base, links = "hand-full-sync", "hand", "hand-links.db"
				case plain:
					kind, base, links = "plain-full-sync", "", plainLinksFile
				}
				d, err := b.fresh(fmt.Sprintf("run-a-%s-%d", r.program, i), n)
				if err != nil {
					b.fail(r, err)
					continue
				}
				if b.measure(r, job{Kind: kind, Program: r.program, N: n, Dir: d}, i) && b.measureSizes(r, d, links, n) && base != "" {
					b.adopt(base, n, d)
				} else {
					os.RemoveAll(d)
				}
			}
		}
		b.fullSync = df
		b.handFullSync = hand
		df.ratio = ratioText(hand.median()/df.median(), "go") + ", " + ratioText(plain.median()/df.median(), "plain")
		df.target, hand.ratio = "≥ 0.70× go, ≥ 0.70× plain", "reference"
		plain.ratio = "reference (" + ratioText(hand.median()/plain.median(), "go") + ")"
	case "i":
		df := b.newRow("i", progDataflow, ns, float64(n))
		plain := b.newRow("i", progPlain, ns, float64(n))
		for i := 0; i < b.runs; i++ {
			for _, r := range []*row{df, plain} {
				kind, links := "full-sync", "state.db"
				if r == plain {
					kind, links = "plain-full-sync", plainLinksFile
				}
				d, err := b.freshInto(fmt.Sprintf("run-i-%s-%d", r.program, i), n, "testdata/int-ids/shop.sql")
				if err != nil {
					b.fail(r, err)
					continue
				}
				if b.measure(r, job{Kind: kind, Program: r.program, N: n, Dir: d, IntIDs: true}, i) {
					b.measureSizes(r, d, links, n)
				}
				os.RemoveAll(d)
			}
		}
		df.ratio = ratioText(plain.median()/df.median(), "plain")
		if b.handFullSync != nil {
			// Today's reference has text ids only: a's, where it ran in this invocation.
			df.ratio += ", " + ratioText(b.handFullSync.median()/df.median(), "a's go")
		}
		df.target, plain.ratio = "≥ 0.70× plain", "reference"
	case "b":
		src := b.source(n)
		rows := map[string]*row{}
		for _, p := range []string{progDataflow, progGo, progBloblang} {
			rows[p] = b.newRow("b", p, ns, float64(n))
		}
		for i := 0; i < b.runs; i++ {
			for _, p := range []string{progDataflow, progGo, progBloblang} {
				b.measure(rows[p], job{Kind: "mapping", Program: p, N: n, Source: src, Dir: b.work}, i)
			}
		}
		d, g, bl := rows[progDataflow].median(), rows[progGo].median(), rows[progBloblang].median()
		rows[progDataflow].ratio = ratioText(bl/d, "bloblang") + ", " + ratioText(g/d, "go")
		rows[progDataflow].target = "≥ 1.50× bloblang"
		rows[progGo].ratio = "reference"
		rows[progBloblang].ratio = ratioText(g/bl, "go")
	case "c":
		var small *row
		for _, m := range []int{n / 10, n} {
			r := b.newRow("c", progDataflow, fmt.Sprint(m), float64(m))
			if m == n/10 {
				small = r
				r.n += " (N/10)"
			}
			d, err := b.baseline("oneway", m)
			if err != nil {
				b.fail(r, err)
				continue
			}
			for i := 0; i < b.runs; i++ {
				b.measure(r, job{Kind: "no-change", Program: progDataflow, N: m, Dir: d, Watermark: true}, i)
			}
			if m == n {
				r.ratio = ratioText(r.median()/small.median(), "N/10's time")
				r.target = "≈ 1× (flat in N); 1M: < 1 s"
			}
		}
	case "d":
		df := b.newRow("d", progDataflow, ns, float64(n))
		hand := b.newRow("d", progGo, ns, float64(n))
		dfBase, err := b.baseline("oneway", n)
		if err != nil {
			b.fail(df, err)
			return
		}
		handBase, err := b.baseline("hand", n)
		if err != nil {
			b.fail(hand, err)
			return
		}
		for i := 0; i < b.runs; i++ {
			b.measure(df, job{Kind: "no-change", Program: progDataflow, N: n, Dir: dfBase}, i)
			b.measure(hand, job{Kind: "hand-no-change", Program: progGo, N: n, Dir: handBase}, i)
		}
		df.ratio = ratioText(hand.median()/df.median(), "go")
		df.target, hand.ratio = "≥ 0.70× go", "reference"
	case "e":
		r := b.newRow("e", progDataflow, ns, float64(n))
		base, err := b.baseline("oneway", n)
		if err != nil {
			b.fail(r, err)
			return
		}
		for i := 0; i < b.runs; i++ {
			d, err := b.copyRun(base, fmt.Sprintf("run-e-%d", i))
			if err == nil {
				var k int
				if k, err = editSource(d, n, false); err == nil {
					b.measure(r, job{Kind: "changed", Program: progDataflow, N: n, Dir: d, Expect: k}, i)
				}
			}
			if err != nil {
				b.fail(r, err)
			}
			os.RemoveAll(d)
		}
		if b.fullSync != nil {
			r.ratio = fmt.Sprintf("%.1f%% of full sync", 100*r.median()/b.fullSync.median())
		}
		r.target = "≤ 5% of full sync"
	case "f":
		r := b.newRow("f", progDataflow, ns+" + "+fmt.Sprint(n/10)+" orders", float64(n+n/10))
		base, err := b.baseline("twoway", n)
		if err != nil {
			b.fail(r, err)
			return
		}
		for i := 0; i < b.runs; i++ {
			d, err := b.copyRun(base, fmt.Sprintf("run-f-%d", i))
			if err == nil {
				var ks, kt int
				if ks, err = editSource(d, n, true); err == nil {
					if kt, err = editTarget(d, n); err == nil {
						b.measure(r, job{Kind: "two-way", Program: progDataflow, N: n, Dir: d, Expect: ks, Expect2: kt}, i)
					}
				}
			}
			if err != nil {
				b.fail(r, err)
			}
			os.RemoveAll(d)
		}
		if b.fullSync != nil {
			r.ratio = fmt.Sprintf("%.1f%% of full sync", 100*r.median()/b.fullSync.median())
		}
	case "g":
		r := b.newRow("g", progDataflow, "1000 flows", 1000)
		d := filepath.Join(b.dir, "validate-1000")
		if _, err := os.Stat(filepath.Join(d, "mappings")); err != nil {
			if err := writeLargeProject(d, 1000); err != nil {
				b.fail(r, err)
				return
			}
		}
		for i := 0; i < b.runs; i++ {
			b.measure(r, job{Kind: "validate", Program: progDataflow, N: 1000, Dir: d}, i)
		}
		r.ratio = fmt.Sprintf("%.2f s", r.median())
		r.target = "well under 1 s"
	case "h":
		b.runPostgres(n)
	}
}

// print writes the table of medians.
func (b *bench) print(w io.Writer) {
	header := []string{"scenario", "program", "N", "records/s", "median s", "peak RSS MiB", "link B/rec", "row B/rec", "ratio", "target"}
	const firstNumber, lastNumber = 3, 7 // the right-aligned columns
	table := [][]string{header}
	for _, r := range b.rows {
		cells := []string{r.letter + " " + r.scenario, r.program, r.n, "-", "-", "-", "", "", r.ratio, r.target}
		if m := r.median(); m > 0 {
			cells[3] = fmt.Sprintf("%.0f", r.records/m)
			cells[4] = fmt.Sprintf("%.3f", m)
			cells[5] = fmt.Sprintf("%.0f", r.peakMiB())
		}
		if r.linkBytes > 0 {
			cells[6] = fmt.Sprintf("%.0f", r.linkBytes)
			cells[7] = fmt.Sprintf("%.0f", r.rowBytes)
		}
		if r.errs != "" {
			cells[8] = "error: " + firstLine(r.errs)
		}
		table = append(table, cells)
	}
	widths := make([]int, len(header))
	for _, cells := range table {
		for i, c := range cells {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	fmt.Fprintf(w, "\ndataflow bench: N=%d, %d runs each (medians), %s, %d CPUs, %s, %s\n\n", b.n, b.runs,
		runtime.Version(), runtime.NumCPU(), b.started.Format("2006-01-02"), time.Since(b.started).Round(time.Second))
	for k, cells := range table {
		var line strings.Builder
		line.WriteString("|")
		for i, c := range cells {
			pad := widths[i] - len([]rune(c))
			if i >= firstNumber && i <= lastNumber {
				fmt.Fprintf(&line, " %s%s |", strings.Repeat(" ", pad), c)
			} else {
				fmt.Fprintf(&line, " %s%s |", c, strings.Repeat(" ", pad))
			}
		}
		fmt.Fprintln(w, line.String())
		if k == 0 {
			line.Reset()
			line.WriteString("|")
			for i, wd := range widths {
				if i >= firstNumber && i <= lastNumber {
					line.WriteString(strings.Repeat("-", wd+1) + ":|")
				} else {
					line.WriteString(strings.Repeat("-", wd+2) + "|")
				}
			}
			fmt.Fprintln(w, line.String())
		}
	}
	for _, r := range b.rows {
		if r.note != "" {
			fmt.Fprintf(w, "\n%s %s N=%s: %s", r.letter, r.program, r.n, r.note)
		}
	}
	fmt.Fprintln(w)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// ---------------------------------------------------------------------------------------------
// The child: one measured job.

func child(spec string) int {
	var j job
	if err := json.Unmarshal([]byte(spec), &j); err != nil {
		fmt.Fprintln(os.Stderr, "bench: bad job:", err)
		return 2
	}
	res, err := runJob(j)
	if err != nil {
		res.Error = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if err != nil {
		return 1
	}
	return 0
}

// timed runs fn, profiled when asked, and returns its wall time.
func timed(profile string, fn func() error) (float64, error) {
	var cpu *os.File
	if profile != "" {
		var err error
		if cpu, err = os.Create(profile + ".cpu.pprof"); err != nil {
			return 0, err
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	err := fn()
	secs := time.Since(start).Seconds()
	if cpu != nil {
		pprof.StopCPUProfile()
		cpu.Close()
		f, ferr := os.Create(profile + ".alloc.pprof")
		if ferr == nil {
			runtime.GC()
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	return secs, err
}

func runJob(j job) (result, error) {
	ctx := context.Background()
	var res result
	var err error
	oneWay := filepath.Join(j.Testdata, "flows", "one-way.yaml")
	twoWay := filepath.Join(j.Testdata, "flows", "two-way.yaml")
	switch j.Kind {
	case "full-sync":
		shop := filepath.Join(j.Testdata, "systems", "shop.yaml")
		if j.IntIDs {
			shop = filepath.Join(j.Testdata, "int-ids", "shop.yaml")
		}
		res.Seconds, err = timed(j.Profile, func() error {
			rep, err := dataflowRunInto(ctx, j.Testdata, oneWay, true, j.Dir, shop)
			if err != nil {
				return err
			}
			if t := totals(rep); t.CreatedTarget != j.N || t.Failed != 0 {
				return fmt.Errorf("created %d of %d, %d failed", t.CreatedTarget, j.N, t.Failed)
			}
			return nil
		})
	case "no-change", "changed":
		res.Seconds, err = timed(j.Profile, func() error {
			rep, err := dataflowRun(ctx, j.Testdata, oneWay, j.Watermark || j.Kind == "changed", j.Dir)
			if err != nil {
				return err
			}
			t := totals(rep)
			res.Note = fmt.Sprintf("read %d source, %d target records; %d updated", t.ReadSource, t.ReadTarget, t.UpdatedTarget)
			if t.Failed != 0 || t.UpdatedTarget != j.Expect || rep.Writes() != j.Expect {
				return fmt.Errorf("%d writes (%d updates), %d failed; want %d updates", rep.Writes(), t.UpdatedTarget, t.Failed, j.Expect)
			}
			return nil
		})
	case "two-way-setup":
		start := time.Now()
		for round := 1; ; round++ {
			rep, err := dataflowRun(ctx, j.Testdata, twoWay, true, j.Dir)
			if err != nil {
				return res, err
			}
			t := totals(rep)
			if t.Failed != 0 || t.Waiting != 0 {
				return res, fmt.Errorf("run %d: %d failed, %d waiting", round, t.Failed, t.Waiting)
			}
			if rep.Writes() == 0 {
				res.Note = fmt.Sprintf("stable after %d runs", round)
				break
			}
			if round == 5 {
				return res, fmt.Errorf("still writing after %d runs (%d writes)", round, rep.Writes())
			}
		}
		res.Seconds = time.Since(start).Seconds()
	case "two-way":
		res.Seconds, err = timed(j.Profile, func() error {
			rep, err := dataflowRun(ctx, j.Testdata, twoWay, true, j.Dir)
			if err != nil {
				return err
			}
			t := totals(rep)
			res.Note = fmt.Sprintf("read %d source, %d target records; %d updated in the shop, %d in the ERP, %d conflicts",
				t.ReadSource, t.ReadTarget, t.UpdatedTarget, t.UpdatedSource, t.Conflicts)
			if t.Failed != 0 || t.UpdatedTarget != j.Expect || t.UpdatedSource != j.Expect2 {
				return fmt.Errorf("%d updates to the shop, %d to the ERP, %d failed; want %d and %d", t.UpdatedTarget, t.UpdatedSource, t.Failed, j.Expect, j.Expect2)
			}
			return nil
		})
	case "pg-full-sync":
		res.Seconds, err = timed(j.Profile, func() error {
			rep, err := dataflowPostgresRun(ctx, j.Testdata, j.Dir, j.DSN)
			if err != nil {
				return err
			}
			if t := totals(rep); t.CreatedTarget != j.N || t.Failed != 0 {
				return fmt.Errorf("created %d of %d, %d failed", t.CreatedTarget, j.N, t.Failed)
			}
			return nil
		})
	case "hand-pg-full-sync":
		res.Seconds, err = timed("", func() error {
			n, err := handPostgresFullSync(ctx, j.Dir, j.DSN)
			if err == nil && n != j.N {
				err = fmt.Errorf("copied %d of %d", n, j.N)
			}
			return err
		})
	case "hand-full-sync":
		res.Seconds, err = timed("", func() error {
			n, err := handFullSync(ctx, j.Dir)
			if err == nil && n != j.N {
				err = fmt.Errorf("copied %d of %d", n, j.N)
			}
			return err
		})
	case "plain-full-sync":
		res.Seconds, err = timed("", func() error {
			n, err := plainFullSync(ctx, j.Dir, j.IntIDs)
			if err == nil && n != j.N {
				err = fmt.Errorf("copied %d of %d", n, j.N)
			}
			return err
		})
	case "hand-no-change":
		res.Seconds, err = timed("", func() error {
			unchanged, _, err := handNoChange(ctx, j.Dir)
			if err == nil && unchanged != j.N {
				err = fmt.Errorf("%d of %d unchanged", unchanged, j.N)
			}
			return err
		})
	case "mapping":
		pool, flow, err := mappingPoolRecords(ctx, j.Testdata, j.Source)
		if err != nil {
			return res, err
		}
		fn, err := mapper(j.Program, flow)
		if err != nil {
			return res, err
		}
		if err := checkMapping(pool, fn); err != nil {
			return res, fmt.Errorf("%s maps differently from plain Go: %w", j.Program, err)
		}
		profile := ""
		if j.Program == progDataflow {
			profile = j.Profile
		}
		var sink any
		res.Seconds, err = timed(profile, func() error {
			for i := 0; i < j.N; i++ {
				out, err := fn(pool[i%len(pool)])
				if err != nil {
					return err
				}
				sink = out
			}
			return nil
		})
		_ = sink
	case "validate":
		if err := os.Chdir(j.Dir); err != nil {
			return res, err
		}
		res.Seconds, err = timed(j.Profile, func() error {
			eng, err := engine.New(nil)
			if err != nil {
				return err
			}
			r, err := eng.Load(ctx, []string{"mappings"})
			if err != nil {
				return err
			}
			if r.Diagnostics.HasErrors() || len(r.Project.Dataflows[0].Flows) != j.N {
				return errors.New("the generated project must be valid")
			}
			return nil
		})
	default:
		return res, fmt.Errorf("unknown job %q", j.Kind)
	}
	return res, err
}
