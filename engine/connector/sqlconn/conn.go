package sqlconn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Conn is the connector.Conn of one SQL database.
type Conn struct {
	d            Dialect
	db           DB
	sys          *config.System
	readOnly     bool
	trackDeletes bool
	secret       string // the DSN's password, scrubbed from every error

	mu       sync.Mutex
	entities map[string]*entity
	tracked  map[string]bool
}

// Options are what a driver read from the system's settings.
type Options struct {
	ReadOnly, TrackDeletes bool
	Secret                 string
}

// New returns the connection of a system over db.
func New(d Dialect, db DB, sys *config.System, o Options) *Conn {
	return &Conn{d: d, db: db, sys: sys, readOnly: o.ReadOnly, trackDeletes: o.TrackDeletes, secret: o.Secret, entities: map[string]*entity{}}
}

// Capabilities implements connector.Conn: the server deletes, every write reads the record
// back in its transaction, and a scan holds a connection of its own. It finds, counts records
// and deletions (with track_deletes), and identifies list elements by their column id.
func (c *Conn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: true, ReturnsStored: true, ConcurrentScan: true, LargeBatches: true,
		Finder: c, Counter: c, DeleteCounter: c, ListIdentifier: c}
}

// Close implements connector.Conn.
func (c *Conn) Close() error {
	c.db.Close()
	return nil
}

// entity is a system entity resolved against its table.
type entity struct {
	name string
	*Table
	id, updated int // column indexes; updated is -1 when the entity has none
	lists       []*list
	listIndex   map[string]*list
}

type list struct {
	name string
	*Table
	key, id int
}

func (c *Conn) scrub(err error) error { return Scrub(err, c.secret) }

// entity resolves an entity by name, once per connection.
func (c *Conn) entity(ctx context.Context, name string) (*entity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entities[name]; ok {
		return e, nil
	}
	ce := c.sys.Entity(name)
	if ce == nil {
		return nil, fmt.Errorf("system %s has no entity %q%s", c.sys.ID.Value, name, diag.DidYouMean(name, c.sys.EntityNames()))
	}
	t, err := c.table(ctx, TableName(ce))
	if err != nil {
		return nil, fmt.Errorf("entity %s: %w", name, err)
	}
	e := &entity{name: name, Table: t, updated: -1, listIndex: map[string]*list{}}
	if e.id, err = t.column(ce.ID.Value, "id"); err != nil {
		return nil, fmt.Errorf("entity %s: %w", name, err)
	}
	if ce.Updated.Value != "" {
		if e.updated, err = t.column(ce.Updated.Value, "updated"); err != nil {
			return nil, fmt.Errorf("entity %s: %w", name, err)
		}
	}
	for _, l := range Lists(ce) {
		if _, clash := t.Index[l.Name]; clash {
			return nil, fmt.Errorf("entity %s: list %q has the name of a column of table %s", name, l.Name, t.Quoted)
		}
		lt, err := c.table(ctx, l.Table)
		if err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		li := &list{name: l.Name, Table: lt}
		if li.key, err = lt.column(l.Key, "key"); err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		if li.id, err = lt.column(l.ID, "id"); err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		e.lists = append(e.lists, li)
		e.listIndex[l.Name] = li
	}
	c.entities[name] = e
	return e, nil
}

func (c *Conn) table(ctx context.Context, name string) (*Table, error) {
	cols, err := c.d.Columns(ctx, c.db, name)
	if err != nil {
		return nil, c.scrub(err)
	}
	return NewTable(c.d, name, cols), nil
}

// column finds a column named in the system file (what: "id", "updated", "key").
func (t *Table) column(name, what string) (int, error) {
	if i, ok := t.Index[name]; ok {
		return i, nil
	}
	names := make([]string, len(t.Cols))
	for i, c := range t.Cols {
		names[i] = c.Name
	}
	return 0, fmt.Errorf("the %s column %q is not a column of table %s%s", what, name, t.Quoted, diag.DidYouMean(name, names))
}

// Deletions implements connector.DeleteCounter for a system with track_deletes: true.
func (c *Conn) Deletions(ctx context.Context, name string) (int64, bool, error) {
	if !c.trackDeletes {
		return 0, false, nil
	}
	e, err := c.entity(ctx, name)
	if err != nil {
		return 0, false, err
	}
	n, ok, err := c.d.Deletions(ctx, c.db, e.Table, !c.readOnly)
	if err != nil {
		return 0, false, fmt.Errorf("track_deletes: cannot count the deletions of %s (%w); let dataflow create a table and a trigger in the database, or remove track_deletes",
			e.Quoted, c.scrub(err))
	}
	return n, ok, nil
}

// ListID implements connector.ListIdentifier: a list's elements are identified by its `id` column.
func (c *Conn) ListID(entity, path string) string {
	ce := c.sys.Entity(entity)
	if ce == nil {
		return ""
	}
	for _, l := range Lists(ce) {
		if l.Name == path {
			return l.ID
		}
	}
	return ""
}

// retry runs fn again, after a pause that doubles, while it fails in a way Dialect.Retry
// allows (a serialization failure, a deadlock, a connection lost): up to 8 times in all, the
// pauses adding up to 7.1 s, so that a server that restarts (Oracle MySQL 9.7 takes 1 to 3 s)
// is waited for; 5 attempts waited 1.5 s.
func (c *Conn) retry(ctx context.Context, fn func() error) error {
	wait := 100 * time.Millisecond
	// The pauses end at an interrupt, also inside a batch that is being finished.
	waits, stop := connector.Interruptible(ctx)
	defer stop()
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == 8 || !c.d.Retry(err) || waits.Err() != nil {
			return err
		}
		select {
		case <-waits.Done():
			return errors.Join(err, context.Cause(waits))
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// IDString is the text form of an id, as the engine compares ids.
func IDString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// newTextID is the id of a record created without one in a text id column that has no
// default, as the sqlite connector makes it (connector.NewTextID: led by the time, so that the
// inserts of a run append to the table's id index and to the link state's).
func newTextID() string { return connector.NewTextID(time.Now()) }

// newUUID is a random (version 4) UUID for a UUID id column without a default.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func unknown(t *Table, names []string, lists map[string]*list) error {
	known := make([]string, 0, len(t.Cols)+len(lists))
	for _, c := range t.Cols {
		known = append(known, c.Name)
	}
	for n := range lists {
		known = append(known, n)
	}
	sort.Strings(names)
	if len(names) == 1 {
		return fmt.Errorf("unknown property %q: not a column of table %s%s", names[0], t.Quoted, diag.DidYouMean(names[0], known))
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return fmt.Errorf("unknown properties %s: not columns of table %s", strings.Join(quoted, ", "), t.Quoted)
}

var errReadOnly = errors.New("the connection is read-only")

// Describe describes an entity's table and its lists' tables, for validation.
func Describe(ctx context.Context, d Dialect, q Querier, e *config.Entity, source string) (*schema.Entity, error) {
	table := TableName(e)
	cols, err := d.Columns(ctx, q, table)
	if err != nil {
		return nil, err
	}
	root := PropertyOfColumns(cols)
	for _, l := range Lists(e) {
		childCols, err := d.Columns(ctx, q, l.Table)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.Name, err)
		}
		root.Properties[l.Name] = &schema.Property{Types: []string{schema.Array}, Description: "rows of table " + l.Table, Items: PropertyOfColumns(childCols)}
	}
	return &schema.Entity{Source: "table " + d.QuoteTable(table) + " of " + source, Root: root}, nil
}
