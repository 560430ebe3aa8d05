package state

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// stateV8 is a state file of schema 8, written by the dataflow of that schema (commit bc42d07)
// with TestWriteStateV8: the links of v8Links and a little of everything else.
const stateV8 = "testdata/state-v8.db"

// v8Links are the links of stateV8: the benchmark's shape, and every odd shape a link of
// schema 8 can have (digests that are not 32 hex digits, no time, a time with nanoseconds, a
// list's elements, keys and values JSON must escape, a base that is not compact JSON).
func v8Links() []*Link {
	rng := rand.New(rand.NewPCG(8, 8))
	var links []*Link
	for i := 1; i <= 300; i++ {
		links = append(links, benchProductLink(rng, i))
	}
	for i := 0; i < 50; i++ {
		l := testLink("contacts", i)
		switch i % 5 {
		case 0:
			l.SourceHash, l.TargetHash = "", "ABCDEF0123456789ABCDEF0123456789" // upper case: not our digest
		case 1:
			l.Updated, l.Made, l.LinkedIn, l.MergedIn = time.Time{}, "", 0, 0
		case 2:
			l.Made = Source
			l.Base["list"] = Base{S: json.RawMessage(`[1,2]`), T: json.RawMessage(`[1,2]`), E: &Elements{Source: []string{"a", "b"}, Pairs: []int{0, -1}}}
		case 3:
			l.Base["ünïcode \"key\" <&>"] = Base{S: json.RawMessage(`"line\nbreak \"quoted\" \u00e9"`), T: json.RawMessage(`null`)}
			l.Base["empty"] = Base{}
		case 4:
			l.SourceHash = "0123456789abcdef0123456789abcde" // 31 digits
			l.Updated = time.Date(1601, 1, 1, 0, 0, 0, 1, time.UTC)
		}
		links = append(links, l)
	}
	return links
}

// TestWriteStateV8 wrote stateV8 with the dataflow of schema 8; run with
// DATAFLOW_WRITE_STATE_V8=1 on that dataflow only.
func TestWriteStateV8(t *testing.T) {
	if os.Getenv("DATAFLOW_WRITE_STATE_V8") == "" {
		t.Skip("writes testdata/state-v8.db; only on the dataflow of schema 8")
	}
	if schemaVersion != 8 {
		t.Fatalf("this dataflow writes schema %d, not 8", schemaVersion)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return t0 }
	write(t, s, func(tx Tx) error {
		for _, l := range v8Links() {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		if _, err := tx.AddIntent(&Intent{Flow: "contacts", Side: Target, FromID: "s9", Data: json.RawMessage(`{"a":1}`)}); err != nil {
			return err
		}
		if err := tx.SetWatermark("contacts", Source, "2024-03-01"); err != nil {
			return err
		}
		if err := tx.PutDeadLetter("contacts", Source, "s8", "failed"); err != nil {
			return err
		}
		_, err := tx.StartRun()
		return err
	})
	// The corrupt base of a link, which must stay the error of that link.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO links (flow, source_id, target_id, base) VALUES ('contacts', 'bad', 'tbad', '{"p":{"s":')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, path, stateV8)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromV8: a state file of schema 8, written by that dataflow, is brought to this
// schema when a run opens it, with every link as it was: ids, base, digests, time, runs and
// the side made; and the rest of the state with it.
func TestMigrateFromV8(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	copyFile(t, stateV8, path)
	if _, err := Open(ctx, path, ReadOnly); err == nil || schemaVersion == 8 {
		t.Fatalf("a reader opened a file of schema 8 (this one knows %d): %v", schemaVersion, err)
	}
	s, err := Open(ctx, path, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := v8Links()
	byFlow := map[string][]string{}
	for _, l := range want {
		byFlow[l.Flow] = append(byFlow[l.Flow], l.SourceID)
	}
	got := map[string]*Link{}
	for flow, ids := range byFlow {
		links, err := s.LinksBySource(ctx, flow, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			got[flow+"/"+l.SourceID] = l
		}
	}
	decodeAll(t, got)
	for _, w := range want {
		if w.Base == nil {
			w.Base = map[string]Base{}
		}
		g := got[w.Flow+"/"+w.SourceID]
		if !reflect.DeepEqual(g, w) {
			t.Errorf("link %s/%s after migration:\n got %+v\nwant %+v", w.Flow, w.SourceID, g, w)
		}
	}
	if n, err := s.CountLinks(ctx, ""); err != nil || n != len(want)+1 {
		t.Errorf("CountLinks = %d, %v; want %d", n, err, len(want)+1)
	}
	bad, err := s.LinksBySource(ctx, "contacts", []string{"bad"})
	if err != nil || bad["bad"] == nil {
		t.Fatalf("the link with a corrupt base: %v, %v", bad, err)
	}
	if _, err := bad["bad"].Bases(); err == nil || err.Error() != `link of source "bad": base: unexpected end of JSON input` {
		t.Errorf("the corrupt base after migration: %v", err)
	}
	if byTarget, err := s.LinksByTarget(ctx, "products-to-items", []string{want[0].TargetID}); err != nil || byTarget[want[0].TargetID] == nil {
		t.Errorf("LinksByTarget after migration: %v, %v", byTarget, err)
	}
	if in, err := s.Intents(ctx, "contacts"); err != nil || len(in) != 1 || string(in[0].Data) != `{"a":1}` {
		t.Errorf("intents after migration: %+v, %v", in, err)
	}
	if w, err := s.Watermark(ctx, "contacts", Source); err != nil || w != "2024-03-01" {
		t.Errorf("watermark after migration: %q, %v", w, err)
	}
	if d, err := s.DeadLetters(ctx, ""); err != nil || len(d) != 1 {
		t.Errorf("dead letters after migration: %+v, %v", d, err)
	}
	if flows, err := s.Flows(ctx); err != nil || fmt.Sprint(flows) != "[contacts products-to-items]" {
		t.Errorf("Flows after migration: %v, %v", flows, err)
	}
}

// TestMigrateIntentsFromV9: the intents of a state file of schema 9, a row each, are the same
// intents after the migration to rows of batches (ids, sides, data, times to the nanosecond:
// the idempotency keys of their creates are made of them), and the ids go on after the
// highest ever handed out, that of an intent deleted before the migration too.
func TestMigrateIntentsFromV9(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := openDB(path, "rw")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, conn, 0, migrations[:9]); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO intents (flow, side, from_id, data, created) VALUES ('f', 'target', 's1', '{"name":"A"}', '2024-03-01T12:30:45.123456789Z')`,
		`INSERT INTO intents (flow, side, from_id, data, created) VALUES ('g', 'source', 't2', NULL, '2024-03-01T12:30:46.000000000Z')`,
		`INSERT INTO intents (flow, side, from_id, data, created) VALUES ('f', 'source', 't3', '[1,2]', '2024-03-02T00:00:00.000000001Z')`,
		`INSERT INTO intents (flow, side, from_id, data, created) VALUES ('f', 'target', 's4', NULL, '2024-03-02T00:00:00.000000001Z')`,
		`DELETE FROM intents WHERE id = 4`,
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	db.Close()

	s, err := Open(ctx, path, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	want := []Intent{
		{ID: 1, Flow: "f", Side: Target, FromID: "s1", Data: json.RawMessage(`{"name":"A"}`), Created: at("2024-03-01T12:30:45.123456789Z")},
		{ID: 2, Flow: "g", Side: Source, FromID: "t2", Created: at("2024-03-01T12:30:46Z")},
		{ID: 3, Flow: "f", Side: Source, FromID: "t3", Data: json.RawMessage(`[1,2]`), Created: at("2024-03-02T00:00:00.000000001Z")},
	}
	got, err := s.Intents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("intents after the migration:\n got %+v\nwant %+v", got, want)
	}
	var ids []int64
	write(t, s, func(tx Tx) error {
		if err := tx.DeleteIntent(1); err != nil {
			return err
		}
		ids, err = tx.AddIntents([]Intent{{Flow: "f", Side: Target, FromID: "s5"}, {Flow: "f", Side: Target, FromID: "s6"}})
		return err
	})
	if !reflect.DeepEqual(ids, []int64{5, 6}) {
		t.Errorf("the ids after the migration are %v, want [5 6] (4 was handed out before it)", ids)
	}
	if got, err := s.Intents(ctx, "f"); err != nil || len(got) != 3 || got[0].ID != 3 || got[1].ID != 5 {
		t.Errorf("intents of f after the migration and a batch: %+v, %v", got, err)
	}
}
