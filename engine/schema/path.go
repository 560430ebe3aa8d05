package schema

import (
	"strings"
)

// Resolved is the result of looking a dotted path up in an entity.
type Resolved struct {
	Prop *Property
	// Lists counts the arrays the path passes through before its last segment: a path through a
	// list maps every element.
	Lists int
	// Arrays says, per segment, whether its value is a list that the path steps through, so
	// that a value can be set at the path in a record that lacks the lists yet.
	Arrays []bool
}

// PathError says which segment of a path the entity lacks.
type PathError struct {
	Path    string
	Segment int      // index of the failing segment
	Name    string   // the failing segment
	Parent  string   // the path before it, "" at the top
	Known   []string // names that exist where the segment was looked up
	Scalar  bool     // the parent is not an object: nothing can be below it
	// ParentType is the parent's JSON type when Scalar ("string"), or "" when untyped.
	ParentType string
}

func (e *PathError) Error() string {
	if e.Scalar {
		return "\"" + e.Parent + "\" has no properties"
	}
	return "no property \"" + e.Name + "\""
}

// Offset is the byte offset of the failing segment in the path, to point a caret at it.
func (e *PathError) Offset() int {
	segs := strings.Split(e.Path, ".")
	off := 0
	for i := 0; i < e.Segment && i < len(segs); i++ {
		off += len(segs[i]) + 1
	}
	return off
}

// Resolve looks up a dotted path. Arrays are stepped through transparently: in
// "variants.pricing.basePrice.value", variants is a list and pricing a member of its elements.
func (e *Entity) Resolve(path string) (Resolved, *PathError) {
	return Resolve(e.Root, path)
}

// WellFormed reports whether path is names separated by single dots. Other paths are format
// errors, reported by the format schema, and are not looked up.
func WellFormed(path string) bool {
	return path != "" && !strings.HasPrefix(path, ".") && !strings.HasSuffix(path, ".") && !strings.Contains(path, "..")
}

// Resolve looks up a dotted path below p.
func Resolve(p *Property, path string) (Resolved, *PathError) {
	var r Resolved
	segs := strings.Split(path, ".")
	r.Arrays = make([]bool, len(segs))
	cur := p
	for i, seg := range segs {
		for cur.Items != nil && cur.Has(Array) {
			cur = cur.Items
			r.Lists++
			if i > 0 {
				r.Arrays[i-1] = true
			}
		}
		if cur.Open {
			return Resolved{Prop: &Property{}, Lists: r.Lists}, nil
		}
		next, ok := cur.Properties[seg]
		if !ok {
			pe := &PathError{Path: path, Segment: i, Name: seg, Parent: strings.Join(segs[:i], "."), Known: cur.Names()}
			pe.Scalar = len(cur.Properties) == 0 && i > 0
			pe.ParentType = cur.Type()
			return r, pe
		}
		cur = next
	}
	r.Prop = cur
	return r, nil
}
