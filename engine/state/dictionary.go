package state

// The numbers a link row uses for the names of its flow and of its base's property keys
// (schema 9): tables flows and base_keys, and the store's copy of them.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
)

// keyName is the property key of a number; set is false for a number not in use.
type keyName struct {
	name string
	set  bool
}

// keyNames are property keys by number.
type keyNames []keyName

// dictionary is a copy of the numbered names. Numbers are only ever added, never changed or
// reused, so a copy stays true as long as it lives: a reader that finds a number missing
// reads the tables again (another process, or this one's Tx, added it since), and a new copy
// replaces the old as a whole.
type dictionary struct {
	flows map[string]int64
	keys  map[string]int64
	names keyNames
}

var emptyDictionary = &dictionary{flows: map[string]int64{}, keys: map[string]int64{}}

// with returns a copy of d with the names of flows and keys added.
func (d *dictionary) with(flows, keys map[string]int64) *dictionary {
	n := &dictionary{flows: maps.Clone(d.flows), keys: maps.Clone(d.keys), names: d.names}
	maps.Copy(n.flows, flows)
	if len(keys) > 0 {
		var highest int64
		for _, id := range keys {
			highest = max(highest, id)
		}
		n.names = make(keyNames, max(int64(len(d.names)), highest+1))
		copy(n.names, d.names)
		for k, id := range keys {
			n.keys[k] = id
			n.names[id] = keyName{k, true}
		}
	}
	return n
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// loadDictionary reads the numbered names of a state of schema 9.
func loadDictionary(ctx context.Context, q querier) (*dictionary, error) {
	flows, keys := map[string]int64{}, map[string]int64{}
	for table, into := range map[string]map[string]int64{"flows": flows, "base_keys": keys} {
		rows, err := q.QueryContext(ctx, "SELECT id, name FROM "+table)
		if err != nil {
			return nil, fmt.Errorf("read the table %s: %w", table, err)
		}
		for rows.Next() {
			var (
				id   int64
				name string
			)
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the table %s: %w", table, err)
			}
			if id < 1 || id > 1<<24 {
				rows.Close()
				return nil, fmt.Errorf("read the table %s: the number %d of %q is out of range", table, id, name)
			}
			into[name] = id
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the table %s: %w", table, err)
		}
		rows.Close()
	}
	return emptyDictionary.with(flows, keys), nil
}

// namesCovering returns the property keys by number, read again when the copy lacks the
// number highest (a base written since the copy was made).
func (s *SQLite) namesCovering(ctx context.Context, highest int64) (keyNames, error) {
	d := s.dict.Load()
	if highest < int64(len(d.names)) && d.names[highest].set || highest == 0 {
		return d.names, nil
	}
	s.dictMu.Lock()
	defer s.dictMu.Unlock()
	if d = s.dict.Load(); highest < int64(len(d.names)) && d.names[highest].set {
		return d.names, nil
	}
	d, err := loadDictionary(ctx, s.db)
	if err != nil {
		return nil, err
	}
	s.dict.Store(d)
	return d.names, nil
}

// learn adds the names a committed Tx numbered to the store's copy.
func (s *SQLite) learn(flows, keys map[string]int64) {
	if len(flows) == 0 && len(keys) == 0 {
		return
	}
	s.dictMu.Lock()
	defer s.dictMu.Unlock()
	s.dict.Store(s.dict.Load().with(flows, keys))
}

// flowNumber returns the number of a flow's name, numbering it in the Tx if it has none.
func (t *sqliteTx) flowNumber(name string) (int64, error) {
	if id, ok := t.dict.flows[name]; ok {
		return id, nil
	}
	return t.number("flows", name, &t.newFlows)
}

// keyNumber returns the number of a property key, numbering it in the Tx if it has none.
func (t *sqliteTx) keyNumber(name string) (int64, error) {
	if id, ok := t.dict.keys[name]; ok {
		return id, nil
	}
	return t.number("base_keys", name, &t.newKeys)
}

// knownKey returns the number of a property key the Tx knows of.
func (t *sqliteTx) knownKey(name string) (int64, bool) {
	if id, ok := t.dict.keys[name]; ok {
		return id, true
	}
	id, ok := t.newKeys[name]
	return id, ok
}

// number looks a name up in table, or adds it; the numbers added are the Tx's until it
// commits.
func (t *sqliteTx) number(table, name string, added *map[string]int64) (int64, error) {
	if id, ok := (*added)[name]; ok {
		return id, nil
	}
	var id int64
	err := t.conn.QueryRowContext(t.ctx, "SELECT id FROM "+table+" WHERE name = ?", name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		var res sql.Result
		if res, err = t.exec("INSERT INTO "+table+" (name) VALUES (?)", name); err == nil {
			id, err = res.LastInsertId()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("number %q in the table %s: %w", name, table, err)
	}
	if *added == nil {
		*added = map[string]int64{}
	}
	(*added)[name] = id
	return id, nil
}
