package sync_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// play runs the seed: some records, the random steps, the quiet runs and the final checks.
func (w *modelWorld) play() {
	for i, n := 0, w.rng.Intn(4); i < n; i++ {
		w.create(state.Source)
	}
	for i, n := 0, w.rng.Intn(4); i < n; i++ {
		w.create(state.Target)
	}
	steps := 30 + w.rng.Intn(31)
	for step := 0; step < steps && !w.t.Failed(); step++ {
		side := []string{state.Source, state.Target}[w.rng.Intn(2)]
		switch p := w.rng.Intn(100); {
		case p < 18:
			w.create(side)
		case p < 50:
			w.edit(side, false)
		case p < 57:
			w.edit(side, true)
		case p < 66:
			w.delete(side)
		case p < 84:
			w.plainRun()
		default:
			w.run(w.rng.Intn(25))
		}
		if w.lists && !w.t.Failed() && w.lrng.Intn(100) < 35 {
			w.editParts([]string{state.Source, state.Target}[w.lrng.Intn(2)])
		}
		if w.lists && !w.t.Failed() {
			w.divergenceStep()
		}
	}
	if w.t.Failed() {
		return
	}
	if !w.drift() {
		return
	}
	quiet := false
	for i := 0; i < 5 && !w.t.Failed(); i++ {
		if rep := w.run(-1); rep != nil && rep.Writes() == 0 {
			quiet = true
			break
		}
	}
	if w.t.Failed() {
		return
	}
	if !quiet {
		w.t.Errorf("seed %d: 5 runs after the last edit and every one wrote something: the sync does not settle", w.seed)
		return
	}
	w.checkFinal()
	if w.t.Failed() {
		return
	}
	if rep := w.run(-1); rep != nil && rep.Writes() != 0 {
		w.t.Errorf("seed %d: a run after a run that wrote nothing wrote %d times", w.seed, rep.Writes())
	}
}

// ---- user edits ----

// ids lists a side's record ids in insertion order.
func (w *modelWorld) ids(side string) []string {
	table, _ := modelTable(side)
	rows, err := w.db(side).Query("SELECT id FROM " + table + " ORDER BY rowid")
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id any
		if err := rows.Scan(&id); err != nil {
			w.t.Fatal(err)
		}
		ids = append(ids, mapping.IDString(id))
	}
	return ids
}

// codes returns a side's codes, with the ids that hold each.
func (w *modelWorld) codesOf(side string) map[string][]string {
	table, _ := modelTable(side)
	rows, err := w.db(side).Query("SELECT id, " + modelCol(side, 0) + " FROM " + table + " ORDER BY rowid")
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id any
		var code sql.NullString
		if err := rows.Scan(&id, &code); err != nil {
			w.t.Fatal(err)
		}
		if code.Valid {
			out[code.String] = append(out[code.String], mapping.IDString(id))
		}
	}
	return out
}

func (w *modelWorld) freshCode() string {
	w.codes++
	return fmt.Sprintf("C%03d", w.codes)
}

// pickCode gives a new record of side its code: a fresh one, or sometimes the code of an
// unlinked record of the other side that no record of this side has (so that merge links
// them). Codes are never reused otherwise: a user who gives a new record the code of a linked
// record (or of one the engine is copying, see below) makes a duplicate, which is not the
// engine's to resolve.
func (w *modelWorld) pickCode(side string) string {
	if w.rng.Intn(100) < 40 {
		own := w.codesOf(side)
		var cands []string
		theirs := w.codesOf(modelOther(side))
		var codes []string
		for c := range theirs {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		// Records an intent is copying are not candidates: the engine may have made the copy
		// before a kill, and a second record with the code is a duplicate the user made.
		copying := map[string]bool{}
		intents, err := w.store.Intents(context.Background(), w.flow.ID())
		if err != nil {
			w.t.Fatal(err)
		}
		for _, in := range intents {
			if in.Side == side {
				copying[in.FromID] = true
			}
		}
		for _, c := range codes {
			ids := theirs[c]
			if len(own[c]) > 0 || len(ids) != 1 {
				continue
			}
			var links map[string]*state.Link
			var err error
			if side == state.Source {
				links, err = w.store.LinksByTarget(context.Background(), w.flow.ID(), ids)
			} else {
				links, err = w.store.LinksBySource(context.Background(), w.flow.ID(), ids)
			}
			if err != nil {
				w.t.Fatal(err)
			}
			if len(links) == 0 && !copying[ids[0]] {
				cands = append(cands, c)
			}
		}
		if len(cands) > 0 {
			return cands[w.rng.Intn(len(cands))]
		}
	}
	return w.freshCode()
}

// value returns a random value of property pi for side, as bound in SQL; nil now and then.
func (w *modelWorld) value(side string, pi int, nullable bool) any {
	if nullable && w.rng.Intn(100) < 15 {
		return nil
	}
	switch pi {
	case 0:
		return w.freshCode()
	case 1:
		if w.rng.Intn(100) < 5 {
			return ""
		}
		return fmt.Sprintf("%s %d", []string{"alpha", "beta", "gamma", "delta", "epsilon"}[w.rng.Intn(5)], w.rng.Intn(100))
	case 2:
		q := int64(w.rng.Intn(100))
		if side == state.Target {
			return strconv.FormatInt(q, 10)
		}
		return q
	case 3:
		return float64(w.rng.Intn(10000)) / 100
	case 4:
		return w.rng.Intn(2) == 0
	}
	panic("no such property")
}

func (w *modelWorld) create(side string) {
	table, stampCol := modelTable(side)
	vals := []any{w.pickCode(side)}
	for pi := 1; pi < len(modelProps); pi++ {
		vals = append(vals, w.value(side, pi, true))
	}
	stamp := w.tick()
	cols := []string{}
	for pi := range modelProps {
		cols = append(cols, modelCol(side, pi))
	}
	cols = append(cols, stampCol)
	args := append(append([]any{}, vals...), stamp)
	if side == state.Target {
		w.userID++
		cols = append(cols, "id")
		args = append(args, fmt.Sprintf("u%05d", w.userID))
	}
	var parts []modelPart
	if w.lists {
		for i, n := 0, w.lrng.Intn(4); i < n; i++ {
			parts = append(parts, w.newPart())
		}
		if side == state.Target {
			cols = append(cols, "parts")
			args = append(args, modelPartsJSON(parts))
		}
	}
	delete(w.gone, vals[0].(string))
	var id any
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ") RETURNING id"
	if err := w.db(side).QueryRow(q, args...).Scan(&id); err != nil {
		w.t.Fatalf("seed %d: create in %s: %v", w.seed, side, err)
	}
	if side == state.Source && len(parts) > 0 {
		for _, pt := range parts {
			w.exec(side, "INSERT INTO parts (item_id, label, qty) VALUES (?, ?, ?)", id, pt.label, pt.qty)
		}
		w.exec(side, "UPDATE items SET updated_at = ? WHERE id = ?", stamp, id) // after the parts' triggers
	}
	w.logf("create %s %s: %s %s @%s", side, mapping.IDString(id), modelShow(vals), modelShowParts(parts), stamp[11:])
}

// modelPart is one of a record's parts as the user edits it: its label (unique, never changed;
// the store's id of the part) and its quantity (nil or an int64), and its row id in the source.
type modelPart struct {
	label string
	qty   any
	row   int64
}

func (w *modelWorld) newPart() modelPart {
	w.labels++
	return modelPart{label: fmt.Sprintf("L%03d", w.labels), qty: w.partQty()}
}

func (w *modelWorld) partQty() any {
	if w.lrng.Intn(10) == 0 {
		return nil
	}
	return int64(w.lrng.Intn(20))
}

func modelPartsJSON(parts []modelPart) string {
	list := make([]any, len(parts))
	for i, p := range parts {
		list[i] = map[string]any{"id": p.label, "qty": p.qty}
	}
	return string(mapping.Canonical(list))
}

func modelShowParts(parts []modelPart) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = p.label + "=" + string(mapping.Canonical(p.qty))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (w *modelWorld) exec(side, query string, args ...any) {
	if _, err := w.db(side).Exec(query, args...); err != nil {
		w.t.Fatalf("seed %d: %s: %s: %v", w.seed, side, query, err)
	}
}

// partsOf reads a record's parts: the source's rows in id order, the store's list in its order.
func (w *modelWorld) partsOf(side, id string) []modelPart {
	var parts []modelPart
	if side == state.Source {
		rows, err := w.src.Query("SELECT id, label, qty FROM parts WHERE item_id = ? ORDER BY id", id)
		if err != nil {
			w.t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var p modelPart
			if err := rows.Scan(&p.row, &p.label, &p.qty); err != nil {
				w.t.Fatal(err)
			}
			parts = append(parts, p)
		}
		return parts
	}
	var text string
	if err := w.tgt.QueryRow("SELECT parts FROM things WHERE id = ?", id).Scan(&text); err != nil {
		w.t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(text), &list); err != nil {
		w.t.Fatalf("seed %d: parts of thing %s: %q: %v", w.seed, id, text, err)
	}
	for _, m := range list {
		p := modelPart{label: mapping.IDString(m["id"])}
		if q, ok := m["qty"].(float64); ok {
			p.qty = int64(q)
		}
		parts = append(parts, p)
	}
	return parts
}

// editParts makes one to three edits of the parts of a random record of side, and often of its
// partner's: a part added (at a random place, in the store), removed, or its quantity set or
// cleared; the record is stamped, as the system would on an edit of its lines.
func (w *modelWorld) editParts(side string) {
	ids := w.ids(side)
	if len(ids) == 0 {
		return
	}
	id := ids[w.lrng.Intn(len(ids))]
	w.editPartsOf(side, id)
	// Often the user edits the partner's parts too: the lists then differ from the base on
	// both sides, in length as well.
	if w.lrng.Intn(100) < 40 {
		var links map[string]*state.Link
		var err error
		if side == state.Source {
			links, err = w.store.LinksBySource(context.Background(), w.flow.ID(), []string{id})
		} else {
			links, err = w.store.LinksByTarget(context.Background(), w.flow.ID(), []string{id})
		}
		if err != nil {
			w.t.Fatal(err)
		}
		if l := links[id]; l != nil {
			other := l.TargetID
			if side == state.Target {
				other = l.SourceID
			}
			if w.exists(modelOther(side), other) {
				w.editPartsOf(modelOther(side), other)
			}
		}
	}
}

func (w *modelWorld) exists(side, id string) bool {
	table, _ := modelTable(side)
	var n int
	if err := w.db(side).QueryRow("SELECT count(*) FROM "+table+" WHERE id = ?", id).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n > 0
}

func (w *modelWorld) editPartsOf(side, id string) {
	parts := w.partsOf(side, id)
	var did []string
	for k, n := 0, 1+w.lrng.Intn(3); k < n; k++ {
		switch op := w.lrng.Intn(3); {
		case op == 0 || len(parts) == 0:
			p := w.newPart()
			at := w.lrng.Intn(len(parts) + 1)
			if side == state.Source {
				at = len(parts) // rows are in id order
				res, err := w.src.Exec("INSERT INTO parts (item_id, label, qty) VALUES (?, ?, ?)", id, p.label, p.qty)
				if err != nil {
					w.t.Fatal(err)
				}
				p.row, _ = res.LastInsertId()
			}
			parts = append(parts[:at], append([]modelPart{p}, parts[at:]...)...)
			did = append(did, fmt.Sprintf("+%s=%s", p.label, mapping.Canonical(p.qty)))
		case op == 1:
			at := w.lrng.Intn(len(parts))
			if side == state.Source {
				w.exec(side, "DELETE FROM parts WHERE id = ?", parts[at].row)
			}
			did = append(did, "-"+parts[at].label)
			parts = append(parts[:at], parts[at+1:]...)
		default:
			at := w.lrng.Intn(len(parts))
			parts[at].qty = w.partQty()
			if side == state.Source {
				w.exec(side, "UPDATE parts SET qty = ? WHERE id = ?", parts[at].qty, parts[at].row)
			}
			did = append(did, fmt.Sprintf("%s=%s", parts[at].label, mapping.Canonical(parts[at].qty)))
		}
	}
	stamp := w.tick()
	if side == state.Source {
		w.exec(side, "UPDATE items SET updated_at = ? WHERE id = ?", stamp, id)
	} else {
		w.exec(side, "UPDATE things SET parts = ?, modifiedOn = ? WHERE id = ?", modelPartsJSON(parts), stamp, id)
	}
	w.cover("user edits of parts")
	w.logf("edit %s %s: parts %s → %s @%s", side, id, strings.Join(did, " "), modelShowParts(parts), stamp[11:])
}

func modelShow(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = string(mapping.Canonical(v))
	}
	return strings.Join(parts, " ")
}

// edit sets (or clears) one property of a random record of side, with a later stamp.
func (w *modelWorld) edit(side string, clear bool) {
	ids := w.ids(side)
	if len(ids) == 0 {
		return
	}
	id := ids[w.rng.Intn(len(ids))]
	var pi int
	var v any
	if clear {
		pi = 1 + w.rng.Intn(len(modelProps)-1) // a code is never cleared: it is NOT NULL in the source
	} else {
		if pi = w.rng.Intn(len(modelProps) + 3); pi >= len(modelProps) {
			pi = 1 + pi - len(modelProps) // codes change less often than the rest
		}
		v = w.value(side, pi, false)
	}
	table, stampCol := modelTable(side)
	stamp := w.tick()
	col := modelCol(side, pi)
	if _, err := w.db(side).Exec("UPDATE "+table+" SET "+col+" = ?, "+stampCol+" = ? WHERE id = ?", v, stamp, id); err != nil {
		w.t.Fatalf("seed %d: edit %s %s: %v", w.seed, side, id, err)
	}
	w.logf("edit %s %s: %s = %s @%s", side, id, col, mapping.Canonical(v), stamp[11:])
}

func (w *modelWorld) delete(side string) {
	ids := w.ids(side)
	if len(ids) == 0 {
		return
	}
	id := ids[w.rng.Intn(len(ids))]
	table, _ := modelTable(side)
	if w.v.del == "propagate" {
		ctx := context.Background()
		var links map[string]*state.Link
		var err error
		if side == state.Source {
			links, err = w.store.LinksBySource(ctx, w.flow.ID(), []string{id})
		} else {
			links, err = w.store.LinksByTarget(ctx, w.flow.ID(), []string{id})
		}
		if err != nil {
			w.t.Fatal(err)
		}
		var code sql.NullString
		if err := w.db(side).QueryRow("SELECT "+modelCol(side, 0)+" FROM "+table+" WHERE id = ?", id).Scan(&code); err != nil {
			w.t.Fatal(err)
		}
		copied := len(links) > 0
		intents, err := w.store.Intents(ctx, w.flow.ID())
		if err != nil {
			w.t.Fatal(err)
		}
		for _, in := range intents {
			if in.Side == side || in.FromID != id {
				continue
			}
			// A copy the engine made before a kill, not linked yet: a record the engine
			// created on the other side with the code.
			for _, oid := range w.codesOf(in.Side)[code.String] {
				copied = copied || w.made[modelKey{in.Side, oid}]
			}
		}
		if copied {
			w.gone[code.String] = side + " " + id
		}
	}
	if _, err := w.db(side).Exec("DELETE FROM "+table+" WHERE id = ?", id); err != nil {
		w.t.Fatal(err)
	}
	w.tick()
	w.logf("delete %s %s", side, id)
}

// drift makes the changes that runs from the watermarks cannot see, or could be misled by:
// edits that do not stamp the record (an application that does not, a dropped trigger), and
// stamps that are not stamps ("N/A") or lie in the future, with an edit. Then a reconcile
// run, which must sync every one of them as a run that saw every change would (checkRun).
// Its draws come from a generator of their own, so that the steps before draw what they did.
// It reports whether the seed goes on.
func (w *modelWorld) drift() bool {
	if !w.lists {
		return true // a regression replays the steps it was found with
	}
	saved := w.rng
	w.rng = rand.New(rand.NewSource(w.seed*104729 + 3))
	defer func() { w.rng = saved }()
	for i, n := 0, w.rng.Intn(4); i < n; i++ {
		side := []string{state.Source, state.Target}[w.rng.Intn(2)]
		ids := w.ids(side)
		if len(ids) == 0 {
			continue
		}
		id := ids[w.rng.Intn(len(ids))]
		pi := 1 + w.rng.Intn(len(modelProps)-1)
		v := w.value(side, pi, true)
		table, _ := modelTable(side)
		trigger := "items_stamp_update"
		if side == state.Target {
			trigger = "things_stamp_update"
		}
		var create sql.NullString
		if w.v.stamped { // the trigger that stamps writes is dropped for the edit
			if err := w.db(side).QueryRow("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", trigger).Scan(&create); err != nil {
				w.t.Fatal(err)
			}
			w.exec(side, "DROP TRIGGER "+trigger)
		}
		w.exec(side, "UPDATE "+table+" SET "+modelCol(side, pi)+" = ? WHERE id = ?", v, id)
		if create.Valid {
			w.exec(side, create.String)
		}
		w.cover("edits without a stamp")
		w.logf("edit %s %s without a stamp: %s = %s", side, id, modelCol(side, pi), mapping.Canonical(v))
	}
	for i, n := 0, w.rng.Intn(3); i < n; i++ {
		side := []string{state.Source, state.Target}[w.rng.Intn(2)]
		ids := w.ids(side)
		if len(ids) == 0 {
			continue
		}
		id := ids[w.rng.Intn(len(ids))]
		pi := 1 + w.rng.Intn(len(modelProps)-1)
		bad := []string{"N/A", "9999-12-31T00:00:00.000000Z"}[w.rng.Intn(2)]
		table, stampCol := modelTable(side)
		w.exec(side, "UPDATE "+table+" SET "+modelCol(side, pi)+" = ?, "+stampCol+" = ? WHERE id = ?", w.value(side, pi, true), bad, id)
		w.cover("edits stamped " + bad)
		w.logf("edit %s %s stamped %s", side, id, bad)
	}
	w.reconcile = true
	defer func() { w.reconcile = false }()
	rep := w.run(-1)
	if rep == nil {
		return false
	}
	if st := rep.Flows[0]; !st.Reconcile {
		w.t.Errorf("seed %d: the run asked to reconcile says it did not", w.seed)
		return false
	} else if st.Reconciled > 0 {
		w.cover("reconciles that found pairs differing")
	}
	w.checkReconciled("the reconcile run")
	return !w.t.Failed()
}
