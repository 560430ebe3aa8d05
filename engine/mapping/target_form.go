package mapping

import (
	"slices"
	"sync"
)

// A record a flow creates is written down twice in canonical form: each property's value (the
// base of the new link) and the whole record (its intent). When every property that flows to
// the target sets a key of the record of its own, the record's form is made of the values'
// forms: its keys sorted, each followed by the form of the value of the last property that
// sets it. BuildTargetForms encodes each value once and puts the record's form together.

// targetForm is a flow's plan for putting a target record's canonical form together from its
// properties' values, computed once.
type targetForm struct {
	props []*Property // the properties that flow to the target, in order
	index []int       // the index of each of props in the flow's Properties
	// flat says that each of props sets one key of the record (no dotted path, no list): the
	// record's form can be put together. The rest is set only then.
	flat bool
	// last is, for each key of the record in sorted order, the index in props of the last
	// property that sets it: the one whose value the record holds.
	last []int
	// heads holds each key as the record's form has it before its value, `"key":`, after a
	// comma but for the first; the text of key i ends at ends[i].
	heads []byte
	ends  []int
	// holds is, by index in the flow's Properties, whether the record holds that property's
	// value as BuildTargetForms gives its form: a flat record's key set last by it.
	holds []bool
	// scratch holds buffers (*[]byte) for the values' forms, one per call at a time: the
	// flow's records are built on more than one goroutine.
	scratch sync.Pool
}

// maxScratch bounds the buffers targetForm keeps for reuse.
const maxScratch = 64 << 10

// lazyTargetForm is a flow's targetForm, made on first use.
type lazyTargetForm struct {
	once sync.Once
	form *targetForm
}

func (f *Flow) targetForm() *targetForm {
	f.form.once.Do(func() { f.form.form = newTargetForm(f.Properties) })
	return f.form.form
}

func newTargetForm(props []*Property) *targetForm {
	t := &targetForm{flat: true}
	t.scratch.New = func() any { return new([]byte) }
	lastOf := map[string]int{}
	for i, p := range props {
		if !p.ToTargetSide() {
			continue
		}
		t.index = append(t.index, i)
		segs := p.segs(true)
		if len(segs) != 1 || len(p.Elements) > 0 {
			t.flat = false
		} else {
			lastOf[segs[0]] = len(t.props)
		}
		t.props = append(t.props, p)
	}
	if !t.flat {
		return t
	}
	keys := make([]string, 0, len(lastOf))
	for k := range lastOf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t.holds = make([]bool, len(props))
	for i, k := range keys {
		if i > 0 {
			t.heads = append(t.heads, ',')
		}
		t.heads = appendString(t.heads, k)
		t.heads = append(t.heads, ':')
		t.ends = append(t.ends, len(t.heads))
		t.last = append(t.last, lastOf[k])
		t.holds[t.index[lastOf[k]]] = true
	}
	return t
}

// HoldsBuiltValue reports whether a record BuildTargetForms builds holds, as property i's
// view of it (View), the value whose form it gives as values[i]: a record of a flow whose
// properties each set a key (no dotted path, no list) holds each key's last value. So the form
// of that view of the record, or of the record as a system stores it when every value is
// stored as given, is values[i], and need not be made again.
func (f *Flow) HoldsBuiltValue(i int) bool {
	t := f.targetForm()
	return i < len(t.holds) && t.holds[i]
}

// BuildTargetForms is BuildTarget that also gives the canonical form (AppendCanonical) of each
// property's value in target form, values[i] for f.Properties[i] (nil for a property that does
// not flow to the target), and that of the record built, as Canonical(data) gives it. Each
// value is encoded once: when every property that flows to the target sets a key of its own
// (no dotted path, no list), the record's form is put together from the values', in the same
// allocation; else it is Canonical(data). The forms must not be modified. On an error, only the
// error is given. Like BuildTarget, it may be called from several goroutines at once.
func (f *Flow) BuildTargetForms(src map[string]any, refs Refs) (data map[string]any, values [][]byte, canon []byte, err error) {
	t := f.targetForm()
	data = make(map[string]any, len(f.Properties))
	// The values' forms are written in a buffer of the flow's first, then copied once into
	// the allocation they are given in.
	scratch := t.scratch.Get().(*[]byte)
	var endsScratch, atScratch [32]int
	buf, ends := (*scratch)[:0], endsScratch[:0]
	defer func() {
		if cap(buf) <= maxScratch { // a huge record's buffer is not kept
			*scratch = buf[:0]
			t.scratch.Put(scratch)
		}
	}()
	for _, p := range t.props {
		v, err := p.TargetValue(src, refs)
		if err != nil {
			return nil, nil, nil, err
		}
		buf = AppendCanonical(buf, v)
		ends = append(ends, len(buf))
		p.ApplyTarget(data, v)
	}
	piece := func(i int) []byte {
		if i == 0 {
			return buf[:ends[0]]
		}
		return buf[ends[i-1]:ends[i]]
	}
	// at[i] is where the form of props[i]'s value starts in out.
	at := atScratch[:0]
	for range t.props {
		at = append(at, -1)
	}
	var out []byte
	if t.flat {
		// The record's form, then the forms of the values it does not hold (of a property
		// whose key a later property sets again): one allocation of the exact size.
		size := len(t.heads) + 2
		for _, i := range t.last {
			size += len(piece(i))
		}
		if len(t.last) < len(t.props) {
			size += len(buf)
		}
		out = make([]byte, 0, size)
		out = append(out, '{')
		from := 0
		for k, i := range t.last {
			out = append(out, t.heads[from:t.ends[k]]...)
			from = t.ends[k]
			at[i] = len(out)
			out = append(out, piece(i)...)
		}
		out = append(out, '}')
		canon = out[:len(out):len(out)]
	} else {
		out = make([]byte, 0, len(buf))
	}
	for i := range t.props {
		if at[i] < 0 {
			at[i] = len(out)
			out = append(out, piece(i)...)
		}
	}
	values = make([][]byte, len(f.Properties))
	for i := range t.props {
		end := at[i] + len(piece(i))
		values[t.index[i]] = out[at[i]:end:end]
	}
	if !t.flat {
		canon = Canonical(data)
	}
	return data, values, canon, nil
}
