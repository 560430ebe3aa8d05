package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// t0 is the fixed clock of the tests.
var t0 = time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)

// newStore opens a fresh ReadWrite store in a temporary directory, with the clock at t0.
func newStore(t testing.TB) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".dataflow", "state.db")
	s, err := Open(context.Background(), path, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return t0 }
	t.Cleanup(func() { s.Close() })
	return s, path
}

// write runs fn in a Tx and commits it.
func write(t testing.TB, s *SQLite, fn func(tx Tx) error) {
	t.Helper()
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// testLink is a reproducible link: source s<i>, target t<i>, a base of a few properties.
func testLink(flow string, i int) *Link {
	return &Link{
		Flow:     flow,
		SourceID: fmt.Sprintf("s%06d", i),
		TargetID: fmt.Sprintf("t%06d", i),
		Base: map[string]Base{
			"name":   {S: json.RawMessage(fmt.Sprintf(`"Name %d"`, i)), T: json.RawMessage(fmt.Sprintf(`"Name %d"`, i))},
			"amount": {S: json.RawMessage(`10`), T: json.RawMessage(`"10.00"`)},
			"tags":   {S: json.RawMessage(`["a","b"]`), T: json.RawMessage(`["a","b"]`)},
			"owner":  {S: json.RawMessage(`{"id":42,"email":"a<b>&c@example.com"}`)},
		},
		SourceHash: fmt.Sprintf("sh%d", i),
		TargetHash: fmt.Sprintf("th%d", i),
		Updated:    t0.Add(time.Duration(i) * time.Second),
		LinkedIn:   int64(i),
		MergedIn:   int64(i + 1),
		Made:       Target,
	}
}

func putLinks(t testing.TB, s *SQLite, flow string, from, to int) {
	t.Helper()
	write(t, s, func(tx Tx) error {
		for i := from; i < to; i++ {
			if err := tx.PutLink(testLink(flow, i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestLinkRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	links := []*Link{
		testLink("contacts", 1),
		{ // the least a link holds: no base, no hashes, no time
			Flow: "contacts", SourceID: "s2", TargetID: "t2", Base: map[string]Base{},
		},
		{ // JSON null and an explicit clear are kept apart from an absent value
			Flow: "deals", SourceID: "s1", TargetID: "t1",
			Base: map[string]Base{
				"cleared": {S: json.RawMessage(`null`), T: json.RawMessage(`""`)},
				"only_t":  {T: json.RawMessage(`0`)},
				"ünïcode": {S: json.RawMessage(`"Ærlig talt – 😀"`)},
			},
			Updated: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		},
	}
	write(t, s, func(tx Tx) error {
		for _, l := range links {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	for _, want := range links {
		got, err := s.LinksBySource(ctx, want.Flow, []string{want.SourceID})
		if err != nil {
			t.Fatal(err)
		}
		decodeAll(t, got)
		if !reflect.DeepEqual(got, map[string]*Link{want.SourceID: want}) {
			t.Errorf("LinksBySource(%s, %s):\n got %+v\nwant %+v", want.Flow, want.SourceID, got[want.SourceID], want)
		}
		got, err = s.LinksByTarget(ctx, want.Flow, []string{want.TargetID})
		if err != nil {
			t.Fatal(err)
		}
		decodeAll(t, got)
		if !reflect.DeepEqual(got, map[string]*Link{want.TargetID: want}) {
			t.Errorf("LinksByTarget(%s, %s):\n got %+v\nwant %+v", want.Flow, want.TargetID, got[want.TargetID], want)
		}
	}

	// The base is stored in binary form (linkcodec.go): its keys numbered in the order of their
	// names when they were first stored, a value the same on both sides once, strings without
	// their quotes, HTML characters as they were.
	var base []byte
	if err := s.db.QueryRow("SELECT base FROM link_rows WHERE source_id = 's000001'").Scan(&base); err != nil {
		t.Fatal(err)
	}
	owner := `{"id":42,"email":"a<b>&c@example.com"}`
	wantBase := []byte{binaryBase, 4, 4, // the highest key number, the number of properties
		layoutST<<3 | rawValue, stringValue, 2, '1', '0', 5, '1', '0', '.', '0', '0', // amount: 10, "10.00"
		layoutB<<3 | stringValue, 6, 'N', 'a', 'm', 'e', ' ', '1', // name: "Name 1" on both sides
		layoutS<<3 | rawValue, byte(len(owner))} // owner, on the source side
	wantBase = append(append(wantBase, owner...), layoutB<<3|rawValue, 9)
	wantBase = append(wantBase, `["a","b"]`...) // tags
	if !bytes.Equal(base, wantBase) {
		t.Errorf("stored base:\n got %q\nwant %q", base, wantBase)
	}
	// The view links shows the rows as schema 8 stored them, but for the base.
	var flow, source, target, sourceHash, updated, made string
	if err := s.db.QueryRow("SELECT flow, source_id, target_id, source_hash, updated, made FROM links WHERE flow = 'contacts' AND source_id = 's000001'").Scan(
		&flow, &source, &target, &sourceHash, &updated, &made); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join([]string{flow, source, target, sourceHash, updated, made}, " "); got != "contacts s000001 t000001 sh1 2024-03-01T12:30:46.123Z target" {
		t.Errorf("the view links shows %s", got)
	}

	// A nil base reads back as an empty map the engine can fill.
	write(t, s, func(tx Tx) error { return tx.PutLink(&Link{Flow: "f", SourceID: "a", TargetID: "b"}) })
	got, err := s.LinksBySource(ctx, "f", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, got)
	if got["a"].Base == nil || len(got["a"].Base) != 0 {
		t.Errorf("nil base read back as %#v, want an empty map", got["a"].Base)
	}

	// PutLink replaces the link of a source record, also with another target.
	changed := testLink("contacts", 1)
	changed.TargetID = "t-new"
	changed.Base = map[string]Base{"name": {S: json.RawMessage(`"x"`)}}
	changed.MergedIn, changed.Made = 99, ""
	write(t, s, func(tx Tx) error { return tx.PutLink(changed) })
	got, err = s.LinksBySource(ctx, "contacts", []string{"s000001"})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, got)
	if !reflect.DeepEqual(got["s000001"], changed) {
		t.Errorf("replaced link:\n got %+v\nwant %+v", got["s000001"], changed)
	}
	if got, _ := s.LinksByTarget(ctx, "contacts", []string{"t000001"}); len(got) != 0 {
		t.Errorf("the old target is still linked: %+v", got)
	}

	if has, err := s.HasLinks(ctx, "contacts"); err != nil || !has {
		t.Errorf("HasLinks(contacts) = %v, %v; want true", has, err)
	}
	if has, err := s.HasLinks(ctx, "nothing"); err != nil || has {
		t.Errorf("HasLinks(nothing) = %v, %v; want false", has, err)
	}

	// DeleteLink forgets it; deleting a missing link is not an error.
	write(t, s, func(tx Tx) error {
		if err := tx.DeleteLink("contacts", "s000001"); err != nil {
			return err
		}
		return tx.DeleteLink("contacts", "missing")
	})
	for _, tc := range []struct {
		flow string
		want int
	}{{"contacts", 1}, {"deals", 1}, {"f", 1}, {"nope", 0}, {"", 3}} {
		n, err := s.CountLinks(ctx, tc.flow)
		if err != nil {
			t.Fatal(err)
		}
		if n != tc.want {
			t.Errorf("CountLinks(%q) = %d, want %d", tc.flow, n, tc.want)
		}
	}
}

func TestPutLinkRefusesBadLinks(t *testing.T) {
	s, _ := newStore(t)
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tests := []struct {
		name string
		link *Link
		want string
	}{
		{"nil", nil, "put link: a link needs a flow, a source id and a target id"},
		{"no target", &Link{Flow: "f", SourceID: "s"}, "put link: a link needs a flow, a source id and a target id"},
		{"bad base", &Link{Flow: "f", SourceID: "s", TargetID: "t", Base: map[string]Base{"p": {S: json.RawMessage(`{`)}}},
			`put link of flow "f", source "s": base: json: error calling MarshalJSON for type json.RawMessage: unexpected end of JSON input`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tx.PutLink(tc.link)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestLinksByManyIDs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	putLinks(t, s, "contacts", 0, 2000)
	putLinks(t, s, "other", 0, 10) // same ids, another flow: never returned

	var sources, targets []string
	for i := 0; i < 2000; i++ {
		sources = append(sources, fmt.Sprintf("s%06d", i))
		targets = append(targets, fmt.Sprintf("t%06d", i))
	}
	// Unknown ids are left out; repeated ids are looked up once.
	sources = append(sources, "s999999", "s000007", "")
	targets = append(targets, "t999999", "t000007")

	bySource, err := s.LinksBySource(ctx, "contacts", sources)
	if err != nil {
		t.Fatal(err)
	}
	byTarget, err := s.LinksByTarget(ctx, "contacts", targets)
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, bySource)
	decodeAll(t, byTarget)
	if len(bySource) != 2000 || len(byTarget) != 2000 {
		t.Fatalf("got %d links by source and %d by target, want 2000 each", len(bySource), len(byTarget))
	}
	for i := 0; i < 2000; i++ {
		want := testLink("contacts", i)
		if got := bySource[want.SourceID]; !reflect.DeepEqual(got, want) {
			t.Fatalf("by source %s:\n got %+v\nwant %+v", want.SourceID, got, want)
		}
		if got := byTarget[want.TargetID]; !reflect.DeepEqual(got, want) {
			t.Fatalf("by target %s:\n got %+v\nwant %+v", want.TargetID, got, want)
		}
	}

	for _, ids := range [][]string{nil, {}, {"nope"}} {
		got, err := s.LinksBySource(ctx, "contacts", ids)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("LinksBySource(%q) = %v, %v; want an empty map", ids, got, err)
		}
	}
}

func TestScanLinks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	// Written in two transactions, out of order, beside another flow.
	putLinks(t, s, "contacts", 2500, 5000)
	putLinks(t, s, "contacts", 0, 2500)
	putLinks(t, s, "deals", 0, 30)

	var sizes []int
	var ids []string
	err := s.ScanLinks(ctx, "contacts", func(batch []*Link) error {
		sizes = append(sizes, len(batch))
		for _, l := range batch {
			if l.Flow != "contacts" {
				t.Fatalf("link of flow %q in the scan of contacts", l.Flow)
			}
			ids = append(ids, l.SourceID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1000, 1000, 1000, 1000, 1000}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	if len(ids) != 5000 || !sort.StringsAreSorted(ids) || ids[0] != "s000000" || ids[4999] != "s004999" {
		t.Errorf("scanned %d ids from %q to %q, sorted %v; want s000000..s004999 in order",
			len(ids), ids[0], ids[len(ids)-1], sort.StringsAreSorted(ids))
	}

	sizes = nil
	if err := s.ScanLinks(ctx, "deals", func(b []*Link) error { sizes = append(sizes, len(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []int{30}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("deals: batch sizes %v, want %v", sizes, want)
	}
	calls := 0
	if err := s.ScanLinks(ctx, "none", func([]*Link) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("empty flow: %d calls, %v; want none", calls, err)
	}

	// An error of fn stops the scan and is returned as is.
	stop := errors.New("stop")
	calls = 0
	err = s.ScanLinks(ctx, "contacts", func([]*Link) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("got %v after %d calls, want stop after 1", err, calls)
	}

	// fn may write to the state while the scan goes on.
	seen := 0
	err = s.ScanLinks(ctx, "contacts", func(batch []*Link) error {
		seen += len(batch)
		tx, err := s.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, l := range batch {
			l.SourceHash = "rescanned"
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	if err != nil || seen != 5000 {
		t.Errorf("scan with writes: %d links, %v; want 5000", seen, err)
	}
}

func TestTargetAlreadyLinked(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		return tx.PutLink(&Link{Flow: "contacts", SourceID: "s1", TargetID: "t1"})
	})

	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = tx.PutLink(&Link{Flow: "contacts", SourceID: "s2", TargetID: "t1"})
	const want = `link flow "contacts" source "s2" to target "t1": the target is already linked to source "s1": the target record is already linked`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrTargetLinked) {
		t.Errorf("errors.Is(%v, ErrTargetLinked) = false", err)
	}
	// The same target in another flow is fine, and the Tx goes on after the refusal.
	if err := tx.PutLink(&Link{Flow: "deals", SourceID: "s2", TargetID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flow, target, source string
	}{{"contacts", "t1", "s1"}, {"deals", "t1", "s2"}} {
		got, err := s.LinksByTarget(ctx, tc.flow, []string{tc.target})
		if err != nil {
			t.Fatal(err)
		}
		if l := got[tc.target]; l == nil || l.SourceID != tc.source {
			t.Errorf("%s: target %s linked to %+v, want source %s", tc.flow, tc.target, l, tc.source)
		}
	}
}

// decodeAll decodes the bases of links read from a Store, which come undecoded (Link.Bases),
// so that they compare with the links written.
func decodeAll(t testing.TB, links map[string]*Link) {
	t.Helper()
	for _, l := range links {
		if _, err := l.Bases(); err != nil {
			t.Fatal(err)
		}
		l.storedTarget = "" // how it was read, not what it holds
	}
}

// A base that does not decode is an error of the link that has it, when its base is needed,
// not of every lookup that reads it.
func TestCorruptBaseFailsItsLinkOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for _, l := range []*Link{{Flow: "f", SourceID: "good", TargetID: "t1"}, {Flow: "f", SourceID: "bad", TargetID: "t2"},
			{Flow: "f", SourceID: "other", TargetID: "t3", Base: map[string]Base{"p": {S: json.RawMessage(`1`)}}}} {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ base, want string }{
		{`'{"p":{"s":'`, `link of source "bad": base: unexpected end of JSON input`}, // JSON text, as schema 8 stored it
		// Binary: the key p is number 1 (the link "other").
		{`X'01010121'`, `link of source "bad": base: the stored base is truncated`},
		{`X'01010100'`, ``}, // p: Base{}
		{`X'010101002101'`, `link of source "bad": base: 2 bytes after the last property`},
		{`X'01090140'`, `link of source "bad": base: the key number 2 is not in the state's table of keys`},
		{`X'0101010F'`, `link of source "bad": base: unknown kind of value 7`},
		{`X'01010138'`, `link of source "bad": base: unknown layout 7`},
	} {
		if _, err := s.db.ExecContext(ctx, `UPDATE link_rows SET base = `+tc.base+` WHERE source_id = 'bad'`); err != nil {
			t.Fatal(err)
		}
		links, err := s.LinksBySource(ctx, "f", []string{"good", "bad"})
		if err != nil || len(links) != 2 {
			t.Fatalf("LinksBySource = %v, %v; want both links", links, err)
		}
		if b, err := links["good"].Bases(); err != nil || len(b) != 0 {
			t.Errorf("good base: %v, %v", b, err)
		}
		_, err = links["bad"].Bases()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("base %s: %v, want %s", tc.base, err, tc.want)
		}
	}
}

// A link read from the store and saved again is rewritten in place; one that was deleted or
// relinked since it was read is saved as a new one, and one given another target is relinked.
func TestSavingALinkReadBefore(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for _, l := range []*Link{{Flow: "f", SourceID: "s1", TargetID: "t1"}, {Flow: "f", SourceID: "s2", TargetID: "t2"}, {Flow: "f", SourceID: "s3", TargetID: "t3"}} {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	read, err := s.LinksBySource(ctx, "f", []string{"s1", "s2", "s3"})
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, func(tx Tx) error { // meanwhile: s2's link is deleted, s3's target relinked
		if err := tx.DeleteLink("f", "s2"); err != nil {
			return err
		}
		if err := tx.DeleteLink("f", "s3"); err != nil {
			return err
		}
		return tx.PutLink(&Link{Flow: "f", SourceID: "s3", TargetID: "t3b"})
	})
	s1, s2, s3 := read["s1"], read["s2"], read["s3"]
	s1.SourceHash, s1.MergedIn, s1.Base = "merged", 7, map[string]Base{"name": {S: []byte(`"x"`), T: []byte(`"x"`)}}
	s2.SourceHash = "saved again"
	s3.SourceHash = "saved again"
	write(t, s, func(tx Tx) error {
		for _, l := range []*Link{s1, s2, s3} {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.LinksBySource(ctx, "f", []string{"s1", "s2", "s3"})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, got)
	want := map[string]*Link{
		"s1": {Flow: "f", SourceID: "s1", TargetID: "t1", SourceHash: "merged", MergedIn: 7, Base: map[string]Base{"name": {S: []byte(`"x"`), T: []byte(`"x"`)}}},
		"s2": {Flow: "f", SourceID: "s2", TargetID: "t2", SourceHash: "saved again", Base: map[string]Base{}},
		"s3": {Flow: "f", SourceID: "s3", TargetID: "t3", SourceHash: "saved again", Base: map[string]Base{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("links:\n got %+v %+v %+v\nwant %+v %+v %+v", got["s1"], got["s2"], got["s3"], want["s1"], want["s2"], want["s3"])
	}
	// A link read and given another target moves to it.
	read, err = s.LinksBySource(ctx, "f", []string{"s1"})
	if err != nil {
		t.Fatal(err)
	}
	read["s1"].TargetID = "t9"
	write(t, s, func(tx Tx) error { return tx.PutLink(read["s1"]) })
	if got, err := s.LinksByTarget(ctx, "f", []string{"t1", "t9"}); err != nil || got["t1"] != nil || got["t9"] == nil || got["t9"].SourceID != "s1" {
		t.Errorf("after relinking s1 to t9: %v, %v", got, err)
	}
}
