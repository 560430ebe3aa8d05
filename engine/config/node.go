package config

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"gopkg.in/yaml.v3"
)

// Kind is the shape of a Node.
type Kind int

// The kinds of Node.
const (
	Null Kind = iota
	Scalar
	Map
	List
)

// Node is one YAML value with its position, after anchors, aliases and merge keys (<<) are
// resolved. The loader works on Nodes instead of decoding into structs because yaml.v3's
// decoder drops positions and silently ignores unknown keys.
type Node struct {
	Kind  Kind
	Tag   string // the resolved YAML tag of a scalar: !!str, !!int, !!float, !!bool, !!null
	Value string // scalar text
	Keys  []*Node
	Vals  []*Node
	Items []*Node
	Range diag.Range

	style yaml.Style
	file  *File
	size  int // values in this subtree, aliases expanded: the budget that stops alias bombs
}

// Get returns the value of key in a Map node, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Map {
		return nil
	}
	for i, k := range n.Keys {
		if k.Value == key {
			return n.Vals[i]
		}
	}
	return nil
}

// KeyNode returns the key node of key in a Map node, or nil.
func (n *Node) KeyNode(key string) *Node {
	if n == nil || n.Kind != Map {
		return nil
	}
	for _, k := range n.Keys {
		if k.Value == key {
			return k
		}
	}
	return nil
}

// Describe names the node's kind for messages: "a mapping", "a list", "a string".
func (n *Node) Describe() string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case Map:
		return "a mapping"
	case List:
		return "a list"
	case Null:
		return "null"
	}
	switch n.Tag {
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	}
	return "a string"
}

// JSON converts the node to the value encoding/json would produce, for JSON Schema validation.
// Numbers become json.Number so that integers stay exact.
func (n *Node) JSON() any {
	switch n.Kind {
	case Map:
		m := make(map[string]any, len(n.Keys))
		for i, k := range n.Keys {
			m[k.Value] = n.Vals[i].JSON()
		}
		return m
	case List:
		l := make([]any, len(n.Items))
		for i, it := range n.Items {
			l[i] = it.JSON()
		}
		return l
	case Null:
		return nil
	}
	switch n.Tag {
	case "!!int":
		if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	case "!!bool":
		var b bool
		if err := yaml.Unmarshal([]byte(n.Value), &b); err == nil {
			return b
		}
	}
	return n.Value
}

// Limits bound what a file may expand to, so that a hostile file (an alias bomb, absurd
// nesting) gives an error instead of exhausting memory or the stack.
const (
	maxDepth = 64
	maxNodes = 200_000
)

type converter struct {
	file  *File
	nodes int
	diags diag.Diagnostics
	// expanding guards against an alias that refers to a node containing itself.
	expanding map[*yaml.Node]bool
	memo      map[*yaml.Node]*Node
	tooBig    bool
}

func (c *converter) convert(y *yaml.Node, depth int) *Node {
	if c.tooBig {
		return &Node{Kind: Null, file: c.file}
	}
	c.nodes++
	if c.overLimits(y, depth) {
		return &Node{Kind: Null, file: c.file}
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &Node{Kind: Null, file: c.file, Range: c.file.rangeOf(y)}
		}
		return c.convert(y.Content[0], depth)
	case yaml.AliasNode:
		return c.convertAlias(y, depth)
	case yaml.MappingNode:
		return c.convertMap(y, depth)
	case yaml.SequenceNode:
		return c.convertList(y, depth)
	}
	return c.convertScalar(y)
}

// overLimits reports (and remembers in tooBig) a file that has grown past maxNodes values
// or maxDepth levels with y.
func (c *converter) overLimits(y *yaml.Node, depth int) bool {
	if c.nodes > maxNodes {
		c.tooBig = true
		c.diags.Errorf(c.file.rangeOf(y), "the file expands to more than %d values", maxNodes).
			WithDetail("Aliases that refer to large anchors multiply; write the values out or split the file.")
		return true
	}
	if depth > maxDepth {
		c.tooBig = true
		c.diags.Errorf(c.file.rangeOf(y), "the file nests deeper than %d levels", maxDepth)
		return true
	}
	return false
}

func (c *converter) convertAlias(y *yaml.Node, depth int) *Node {
	if c.expanding[y.Alias] {
		c.diags.Errorf(c.file.rangeOf(y), "alias *%s refers to itself", y.Value)
		return &Node{Kind: Null, file: c.file, Range: c.file.rangeOf(y)}
	}
	// An alias shares the anchored value, positions included: an error inside it points
	// at the anchor, where the text is.
	if n, ok := c.memo[y.Alias]; ok {
		c.nodes += n.size
		if c.nodes > maxNodes {
			return c.convert(y, depth) // reports the overflow
		}
		return n
	}
	c.expanding[y.Alias] = true
	n := c.convert(y.Alias, depth)
	delete(c.expanding, y.Alias)
	c.memo[y.Alias] = n
	return n
}

func (c *converter) convertMap(y *yaml.Node, depth int) *Node {
	n := &Node{Kind: Map, file: c.file, Range: c.file.rangeOf(y)}
	seen := map[string]*Node{}
	add := func(k, v *Node, merged bool) {
		if c.tooBig {
			return // the values past the limit are placeholders, not the file's text
		}
		if first, dup := seen[k.Value]; dup {
			if merged {
				return // keys written in the mapping override merged ones
			}
			c.diags.Errorf(k.Range, "duplicate key %q", k.Value).
				WithDetail("The key is first defined at %s; remove one of them.", first.Range)
			return
		}
		seen[k.Value] = k
		n.Keys = append(n.Keys, k)
		n.Vals = append(n.Vals, v)
	}
	var merges []*Node
	for i := 0; i+1 < len(y.Content); i += 2 {
		ky, vy := y.Content[i], y.Content[i+1]
		if ky.Kind == yaml.ScalarNode && ky.Tag == "!!merge" {
			merges = append(merges, c.convert(vy, depth+1))
			continue
		}
		k := c.convert(ky, depth+1)
		if k.Kind != Scalar && k.Kind != Null {
			c.diags.Errorf(k.Range, "a key must be a plain name, not %s", k.Describe())
			continue
		}
		add(k, c.convert(vy, depth+1), false)
	}
	c.merge(merges, add)
	n.size = 1
	for i := range n.Keys {
		n.size += 1 + n.Vals[i].size
	}
	return n
}

// merge adds the keys of the merge keys' (<<) mappings, after the mapping's own.
func (c *converter) merge(merges []*Node, add func(k, v *Node, merged bool)) {
	for _, m := range merges {
		srcs := []*Node{m}
		if m.Kind == List {
			srcs = m.Items
		}
		for _, s := range srcs {
			if s.Kind != Map {
				c.diags.Errorf(s.Range, "a merge key (<<) needs a mapping, not %s", s.Describe())
				continue
			}
			for i, k := range s.Keys {
				add(k, s.Vals[i], true)
			}
		}
	}
}

func (c *converter) convertList(y *yaml.Node, depth int) *Node {
	n := &Node{Kind: List, file: c.file, Range: c.file.rangeOf(y), size: 1}
	for _, it := range y.Content {
		item := c.convert(it, depth+1)
		n.Items = append(n.Items, item)
		n.size += item.size
	}
	return n
}

func (c *converter) convertScalar(y *yaml.Node) *Node {
	n := &Node{Kind: Scalar, Tag: y.ShortTag(), Value: y.Value, style: y.Style, file: c.file, size: 1}
	if n.Tag == "!!null" {
		n.Kind = Null
	}
	n.Range = c.file.scalarRange(y)
	return n
}

// rangeOf is a one-character range at the node's start.
func (f *File) rangeOf(y *yaml.Node) diag.Range {
	start := diag.Pos{Line: y.Line, Col: y.Column}
	return diag.Range{File: f.Name, Start: start, End: diag.Pos{Line: y.Line, Col: y.Column + 1}}
}

// scalarRange spans the scalar's text on its first line, quotes included, so that a caret
// underlines the whole offending value.
func (f *File) scalarRange(y *yaml.Node) diag.Range {
	r := f.rangeOf(y)
	line, ok := f.line(y.Line)
	if !ok {
		return r
	}
	rest := runesFrom(line, y.Column)
	width := 0
	switch {
	case y.Style&yaml.DoubleQuotedStyle != 0:
		width = quotedWidth(rest, '"')
	case y.Style&yaml.SingleQuotedStyle != 0:
		width = quotedWidth(rest, '\'')
	case y.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		width = 1
	default:
		if i := strings.IndexByte(y.Value, '\n'); i >= 0 {
			width = utf8.RuneCountInString(strings.TrimRight(rest, " "))
		} else {
			width = utf8.RuneCountInString(y.Value)
		}
	}
	if width < 1 {
		width = 1
	}
	r.End = diag.Pos{Line: y.Line, Col: y.Column + width}
	return r
}

// quotedWidth is the width in runes of a quoted scalar at the start of s, up to and including
// its closing quote, or to the end of the line when it continues on the next.
func quotedWidth(s string, q rune) int {
	rs := []rune(s)
	for i := 1; i < len(rs); i++ {
		switch {
		case q == '"' && rs[i] == '\\':
			i++
		case q == '\'' && rs[i] == '\'' && i+1 < len(rs) && rs[i+1] == '\'':
			i++
		case rs[i] == q:
			return i + 1
		}
	}
	return len(rs)
}

// runesFrom returns line from the 1-based rune column col.
func runesFrom(line string, col int) string {
	for i := range line {
		if col <= 1 {
			return line[i:]
		}
		col--
	}
	return ""
}

// line returns line n (1-based) without its ending, through the index of line starts built by
// Parse: positions are looked up for every scalar, so a scan per lookup would be quadratic.
func (f *File) line(n int) (string, bool) {
	return diag.LineAt(f.Src, f.lineStarts, n)
}

// PosAt returns the file position of the rune at offset off of a scalar's value: where an
// error inside an expression is. It walks the scalar's text in the file the way YAML decodes
// it: quotes and escapes, indentation, and line breaks (kept in literal blocks, folded into a
// space elsewhere, an empty line giving one newline).
func (n *Node) PosAt(off int) diag.Pos {
	start := n.Range.Start
	if n.file == nil || start.Line == 0 || off <= 0 && n.style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		if n.style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && start.Line > 0 {
			return diag.Pos{Line: start.Line, Col: start.Col + 1}
		}
		return start
	}
	if n.style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.blockPosAt(off)
	}
	return n.flowPosAt(off)
}

// blockPosAt maps an offset in a literal (|) or folded (>) block scalar.
func (n *Node) blockPosAt(off int) diag.Pos {
	folded := n.style&yaml.FoldedStyle != 0
	first := n.Range.Start.Line + 1
	indent := -1
	var last diag.Pos
	for lineNo := first; ; lineNo++ {
		l, ok := n.file.line(lineNo)
		if !ok {
			return last
		}
		trimmed := strings.TrimLeft(l, " ")
		if indent < 0 && trimmed != "" {
			indent = len(l) - len(trimmed)
		}
		content := ""
		if indent >= 0 && len(l) >= indent {
			content = l[indent:]
		}
		rs := []rune(content)
		if off < len(rs) || trimmed != "" && off == len(rs) {
			return diag.Pos{Line: lineNo, Col: max(indent, 0) + off + 1}
		}
		off -= len(rs)
		last = diag.Pos{Line: lineNo, Col: max(indent, 0) + len(rs) + 1}
		// The line break: one rune of the value, except in a folded block where a break before
		// an empty line disappears (the empty line itself gives the newline).
		next, _ := n.file.line(lineNo + 1)
		if !(folded && trimmed != "" && strings.TrimSpace(next) == "") {
			off--
		}
		if off < 0 {
			return last
		}
	}
}

// flowPosAt maps an offset in a plain, single-quoted or double-quoted scalar, which may span
// lines.
func (n *Node) flowPosAt(off int) diag.Pos {
	double := n.style&yaml.DoubleQuotedStyle != 0
	quoted := double || n.style&yaml.SingleQuotedStyle != 0
	lineNo, col := n.Range.Start.Line, n.Range.Start.Col
	line, ok := n.file.line(lineNo)
	if !ok {
		return n.Range.Start
	}
	rs := []rune(runesFrom(line, col))
	i := 0
	if quoted {
		i, col = 1, col+1
	}
	for {
		for i < len(rs) {
			if off == 0 {
				return diag.Pos{Line: lineNo, Col: col}
			}
			width := 1
			switch {
			case double && rs[i] == '\\' && i+1 < len(rs):
				width = escapeWidth(rs[i+1])
			case !double && quoted && rs[i] == '\'' && i+1 < len(rs) && rs[i+1] == '\'':
				width = 2
			}
			i += width
			col += width
			off--
		}
		// A line break inside the scalar folds into one rune (a space, or a newline for an
		// empty line); the next line's indentation is not part of the value.
		lineNo++
		line, ok = n.file.line(lineNo)
		if !ok {
			return diag.Pos{Line: lineNo - 1, Col: col}
		}
		off--
		for strings.TrimSpace(line) == "" {
			lineNo++
			if line, ok = n.file.line(lineNo); !ok {
				return diag.Pos{Line: lineNo - 1, Col: 1}
			}
		}
		if off < 0 {
			off = 0
		}
		trimmed := strings.TrimLeft(line, " \t")
		col = len([]rune(line)) - len([]rune(trimmed)) + 1
		rs, i = []rune(trimmed), 0
	}
}

// escapeWidth is the length in the file of a double-quoted escape starting with \c.
func escapeWidth(c rune) int {
	switch c {
	case 'x':
		return 4
	case 'u':
		return 6
	case 'U':
		return 10
	}
	return 2
}

// Str is a scalar from a file with its position; Set is false when the key was absent.
type Str struct {
	Value string
	Range diag.Range
	Set   bool
	Node  *Node
}

func (s Str) String() string { return s.Value }

func strOf(n *Node) Str {
	if n == nil {
		return Str{}
	}
	s := Str{Range: n.Range, Set: true, Node: n}
	if n.Kind == Scalar {
		s.Value = n.Value
	}
	return s
}
