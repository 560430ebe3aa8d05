package sync

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/stamp"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// DefaultClockSkew is how far a system's clock may be ahead of this machine's (Options.ClockSkew):
// a watermark never moves past the time its read started less this, so that a record stamped
// by a system whose clock runs ahead, or written while the read was under way, is read again.
const DefaultClockSkew = 5 * time.Minute

// namedWarnings is how many records a pass names in its warnings of one kind; the rest are
// counted, so that a table of bad stamps does not flood the report.
const namedWarnings = 5

// marks follows, while a pass reads a side, the stamps that may make its next watermark.
//
// A watermark is only as good as every stamp under it: one value that is not a stamp ("N/A")
// or lies in the future (9999-12-31) would, as the maximum, hide every later change for good.
// So the next watermark is the latest stamp read that is of the watermark's kind (a time or a
// number) and, for times, not after the read's start less the clock skew (limit); the others
// are warnings naming their records. The watermark never moves back.
type marks struct {
	flow, entity, property string
	side                   Side
	stored                 stamp.Stamp // the watermark the pass read from (zero: none)
	limit                  time.Time
	// Per kind (stamp.Time, stamp.Number): how many stamps were read, the latest within the
	// limit, and the first records (ids) with a stamp of that kind, named if the kind loses.
	count  [3]int
	latest [3]stamp.Stamp
	ids    [3][]string
	// notStamps and future are the records whose value is not a stamp, or a time after the
	// limit (named up to namedWarnings, then counted).
	notStamps, future  []string
	notStampN, futureN int
	frozen             bool // the scan saw a write of the run to its side (see pass)
	warnings           []string
}

// newMarks starts following the stamps of a pass from the stored watermark.
func (fr *flowRun) newMarks(side Side, stored string, readStart time.Time) *marks {
	_, entity := fr.on(side)
	skew := fr.r.Opts.ClockSkew
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	m := &marks{flow: fr.f.ID(), side: side, entity: entity, property: fr.updatedOf(side), limit: readStart.Add(-skew)}
	if stored == "" {
		return m
	}
	st, err := stamp.Parse(stored)
	switch {
	case err != nil:
		m.warn("the stored watermark %q is not a stamp (a time or a number); the %s is read whole and the watermark set anew", stored, entity)
	case st.Kind() == stamp.Time && st.Time().After(m.limit):
		m.warn("the stored watermark %q is later than this read's start less the clock skew (%s); the %s is read whole and the watermark set anew", stored, m.limit.UTC().Format(time.RFC3339), entity)
	default:
		m.stored = st
	}
	return m
}

// since is what the pass reads from: the stored watermark (none: everything), less the
// entity's lookback for a watermark that is a time.
func (m *marks) since(lookback time.Duration) string {
	if m.stored.Kind() == 0 {
		return ""
	}
	if lookback <= 0 || m.stored.Kind() != stamp.Time {
		return m.stored.String()
	}
	return formatLike(m.stored.String(), m.stored.Time().Add(-lookback))
}

func (m *marks) warn(format string, args ...any) {
	m.warnings = append(m.warnings, fmt.Sprintf("%s: %s %s: ", m.flow, m.side, m.entity)+fmt.Sprintf(format, args...))
}

// see takes the stamp of a record the pass read and will process.
func (m *marks) see(rec connector.Record) {
	if m.frozen {
		return
	}
	v := mapping.Get(rec.Data, m.property)
	if v == nil {
		return // no stamp (a row never stamped), which says nothing about the watermark
	}
	text := mapping.IDString(v)
	st, err := stamp.Parse(text)
	if err != nil {
		m.notStampN++
		if len(m.notStamps) < namedWarnings {
			m.warnings = append(m.warnings, fmt.Sprintf("%s: %s record %s (%s): %s %q is not a time or a number; the record is left out of the watermark", m.flow, m.side, rec.ID, m.entity, m.property, text))
			m.notStamps = append(m.notStamps, rec.ID)
		}
		return
	}
	k := st.Kind()
	m.count[k]++
	if len(m.ids[k]) < namedWarnings {
		m.ids[k] = append(m.ids[k], rec.ID+"\x00"+text)
	}
	if k == stamp.Time && st.Time().After(m.limit) {
		if len(m.future) < namedWarnings && st.Time().After(m.limit.Add(2*DefaultClockSkew)) {
			// Only a stamp well past the read's start is worth a warning: a record written
			// during the read is past the limit too, and simply read again next time.
			m.warnings = append(m.warnings, fmt.Sprintf("%s: %s record %s (%s): %s %q is in the future; the watermark stays before this read's start, so later changes are still read", m.flow, m.side, rec.ID, m.entity, m.property, text))
			m.future = append(m.future, rec.ID)
		}
		return
	}
	if m.latest[k].Kind() == 0 {
		m.latest[k] = st
	} else if c, _ := st.Compare(m.latest[k]); c > 0 {
		m.latest[k] = st
	}
}

// next returns the watermark to store after a scan that read every record it was asked for,
// and adds the warnings of the records of the kind that lost. It returns "" when the stored
// one stays.
func (m *marks) next() string {
	if n := m.notStampN - len(m.notStamps); n > 0 {
		m.warnings = append(m.warnings, fmt.Sprintf("%s: %s %s: %d more records whose %s is not a time or a number", m.flow, m.side, m.entity, n, m.property))
	}
	kind := m.stored.Kind()
	if kind == 0 {
		// No watermark yet: the kind most of the stamps have (times on a tie).
		kind = stamp.Time
		if m.count[stamp.Number] > m.count[stamp.Time] {
			kind = stamp.Number
		}
	}
	wrong := stamp.Number
	if kind == stamp.Number {
		wrong = stamp.Time
	}
	for _, idText := range m.ids[wrong] {
		id, text, _ := strings.Cut(idText, "\x00")
		m.warnings = append(m.warnings, fmt.Sprintf("%s: %s record %s (%s): %s %q is %s, and the watermark is %s; the record is left out of the watermark (if the entity's %s changed, reset the flow's watermarks: dataflow watermarks reset --flow %s)",
			m.flow, m.side, id, m.entity, m.property, text, wrong, kind, m.property, m.flow))
	}
	if n := m.count[wrong] - len(m.ids[wrong]); n > 0 {
		m.warnings = append(m.warnings, fmt.Sprintf("%s: %s %s: %d more records whose %s is %s", m.flow, m.side, m.entity, n, m.property, wrong))
	}
	best := m.latest[kind]
	if best.Kind() == 0 {
		return ""
	}
	if m.stored.Kind() == kind {
		if c, _ := best.Compare(m.stored); c <= 0 {
			return ""
		}
	}
	return best.String()
}

// lookbackOf returns the lookback of a side's entity (its system file's `lookback`), 0 when
// none is set.
func (fr *flowRun) lookbackOf(side Side) (time.Duration, error) {
	e := fr.f.Source
	if side == Target {
		e = fr.f.Target
	}
	v := e.Config.Lookback
	if v.Value == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v.Value)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("entity %s: lookback %q is not a duration: write a number with a unit, such as 10m or 1h30m", e.Name(), v.Value)
	}
	return d, nil
}

// writtenTo counts the run's writes to a side so far.
func (fr *flowRun) writtenTo(side Side) int {
	if side == Source {
		return fr.stats.UpdatedSource + fr.stats.CreatedSource
	}
	return fr.stats.UpdatedTarget + fr.stats.CreatedTarget
}

// snapshots reports whether a connection's Scan reads one consistent state of the entity,
// whatever is written meanwhile (a read transaction): then the run's own writes to the side it
// scans cannot make the scan skip records.
func snapshots(c connector.Conn) bool {
	return c.Capabilities().SnapshotScan
}

// stampLayouts are the forms formatLike writes a time in: a watermark shifted by a lookback is
// written in the form of the stamp it was shifted from, so that a system's `since` filter
// reads it as it reads its own stamps.
var stampLayouts = []string{
	time.RFC3339, "2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05.000000Z07:00", time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05.000Z0700",
	"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05.000Z07:00", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05", "2006-01-02T15:04:05.000", "2006-01-02T15:04:05.000000", "2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05", "2006-01-02 15:04:05.000", "2006-01-02 15:04:05.000000", "2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02",
}

// formatLike writes t in the form of the time stamp sample (its layout and offset), or as
// RFC 3339 in UTC when no known form reproduces sample.
func formatLike(sample string, t time.Time) string {
	for _, layout := range stampLayouts {
		p, err := time.Parse(layout, sample)
		if err != nil || p.Format(layout) != sample {
			continue
		}
		return t.In(p.Location()).Format(layout)
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// reportWarnings adds a pass's warnings to the run's report.
func (fr *flowRun) reportWarnings(m *marks) {
	fr.rep.Warnings = append(fr.rep.Warnings, m.warnings...)
	m.warnings = nil
}

// setWatermark stores a side's new watermark.
func (fr *flowRun) setWatermark(ctx context.Context, side Side, value string) error {
	return fr.commit(ctx, func(tx state.Tx) error { return tx.SetWatermark(fr.f.ID(), string(side), value) })
}
