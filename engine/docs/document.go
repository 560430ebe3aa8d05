// Package docs writes the QA-checklist documents of a dataflow: for each direction a document
// in the seed's structure (title, generated stamp, introduction, one section per flow with its
// trigger, merge criteria and property table), as reStructuredText or Markdown. It builds a
// neutral Document from the compiled mapping first, so both formats say exactly the same.
package docs

import (
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// Document is one direction of one dataflow.
type Document struct {
	Name         string // file name without extension: the dataflow id, plus ".reverse" backwards
	Title        string
	Generated    string
	Introduction string
	Sections     []Section
}

// Section is one flow in the document's direction.
type Section struct {
	Heading    string
	Paragraphs []string // in order, without the tables
	MergeIntro string   // "" when the flow has no merge criteria
	Merge      Table
	PropsIntro string
	Properties Table
}

// Table is a list-table: a header row and rows of cells.
type Table struct {
	Header []string
	Rows   [][]string
}

// DefaultIntroduction is the Introduction when a dataflow sets none. {source} and {target} are
// the system names of the document's direction.
const DefaultIntroduction = "This document describes the dataflow from {source} to {target}: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration."

// Build returns the documents of a dataflow: source to target, then target to source when any
// property flows back. generated is the stamp printed under the title.
func Build(df *mapping.Dataflow, generated string) []*Document {
	var docs []*Document
	for _, reverse := range []bool{false, true} {
		if d := build(df, generated, reverse); len(d.Sections) > 0 || !reverse {
			docs = append(docs, d)
		}
	}
	return docs
}

// side is one direction's view of a flow: which entity is the document's source.
type side struct {
	reverse bool
}

func (s side) from(f *mapping.Flow) *mapping.Entity {
	if s.reverse {
		return f.Target
	}
	return f.Source
}

func (s side) to(f *mapping.Flow) *mapping.Entity {
	if s.reverse {
		return f.Source
	}
	return f.Target
}

func build(df *mapping.Dataflow, generated string, reverse bool) *Document {
	sd := side{reverse: reverse}
	fromSys, toSys := df.Source, df.Target
	name := df.ID()
	if reverse {
		fromSys, toSys = toSys, fromSys
		name += ".reverse"
	}
	intro := df.Config.Introduction.Value
	if intro == "" {
		intro = DefaultIntroduction
	}
	intro = strings.NewReplacer("{source}", fromSys.Name(), "{target}", toSys.Name()).Replace(intro)
	doc := &Document{
		Name:         name,
		Title:        collapse(fromSys.Name() + " to " + toSys.Name() + " Dataflow"),
		Generated:    collapse(generated),
		Introduction: collapse(intro),
	}
	for _, f := range df.Flows {
		if f.Source == nil || f.Target == nil {
			continue
		}
		if !flowsThisWay(f.Direction, sd) {
			continue
		}
		sec := section(f, sd, toSys)
		if len(sec.Properties.Rows) == 0 {
			continue // nothing flows this way
		}
		doc.Sections = append(doc.Sections, sec)
	}
	return doc
}

func label(e *mapping.Entity) string { return collapse(e.System.Name() + " " + e.Name()) }

func section(f *mapping.Flow, sd side, toSys *mapping.System) Section {
	S, T := label(sd.from(f)), label(sd.to(f))
	sec := Section{Heading: S + " to " + T}
	create := f.CreateTarget
	if sd.reverse {
		create = f.CreateSource
	}
	when := f.Config.When
	switch {
	case create != config.CreateAlways:
		sec.Paragraphs = append(sec.Paragraphs, "Before any synchronization can take place, a link between a "+S+" and a "+T+" must be established.")
	case when != nil && !sd.reverse:
		sec.Paragraphs = append(sec.Paragraphs, "When a "+S+" "+collapse(when.Describe.Value)+", it will be synchronized with a "+T+".")
	default:
		sec.Paragraphs = append(sec.Paragraphs, "Every "+S+" will be synchronized with a "+T+".")
	}
	if create == config.CreateReferenced {
		if r := referrers(f, sd); r != "" {
			sec.Paragraphs = append(sec.Paragraphs, "A new "+T+" will be created from a "+S+" if it is connected to a "+r+" that is synchronized into "+collapse(toSys.Name())+".")
		}
	}
	if len(f.Merge) > 0 {
		sec.MergeIntro = "A " + S + " will merge with a " + T + " if one of the following property combinations match:"
		sec.Merge.Header = []string{S + " Property", T + " Property"}
		for _, alt := range f.Merge {
			for _, p := range alt {
				if sd.reverse {
					sec.Merge.Rows = append(sec.Merge.Rows, []string{p.Target, p.Source})
				} else {
					sec.Merge.Rows = append(sec.Merge.Rows, []string{p.Source, p.Target})
				}
			}
		}
	}
	sec.PropsIntro = "Once a link between a " + S + " and a " + T + " is established, it will keep in sync between the two systems, regardless of where it is edited."
	if c := conflictRule(f); c != "" {
		sec.PropsIntro += " " + c
	}
	sec.Properties.Header = []string{S + " Property", T + " Property", collapse(toSys.Name()) + " Data Type"}
	sec.Properties.Rows = propertyRows(f.Properties, sd)
	return sec
}

// referrers names the entities whose records cause a "referenced" creation: "HubSpot Deal,
// Quote, or Lineitem".
func referrers(f *mapping.Flow, sd side) string {
	var names []string
	seen := map[string]bool{}
	sysName := ""
	for _, r := range f.RefBy {
		e := sd.from(r)
		if e == nil || seen[e.Name()] || !flowsThisWay(r.Direction, sd) || !refersTo(r.Properties, f, sd) {
			continue
		}
		seen[e.Name()] = true
		sysName = e.System.Name()
		names = append(names, e.Name())
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return sysName + " " + names[0]
	}
	return sysName + " " + strings.Join(names[:len(names)-1], ", ") + ", or " + names[len(names)-1]
}

// refersTo reports whether a property that flows in the document's direction refers to f: only
// those references cause a creation on this side.
func refersTo(props []*mapping.Property, f *mapping.Flow, sd side) bool {
	for _, p := range props {
		if !flowsThisWay(p.Direction, sd) {
			continue
		}
		if p.Ref == f || refersTo(p.Elements, f, sd) {
			return true
		}
	}
	return false
}

// flowsThisWay reports whether values of the given sync direction flow in the document's.
func flowsThisWay(direction string, sd side) bool {
	if sd.reverse {
		return direction != config.SyncToTarget
	}
	return direction != config.SyncToSource
}

// propertyRows lists what flows in the document's direction: one row per property, and per
// element property of a list, with the receiving side's JSON type.
func propertyRows(props []*mapping.Property, sd side) [][]string {
	var rows [][]string
	for _, p := range props {
		if !flowsThisWay(p.Direction, sd) {
			continue
		}
		if len(p.Elements) > 0 {
			rows = append(rows, propertyRows(p.Elements, sd)...)
			continue
		}
		from, to, typ := p.Source, p.Target, p.TargetType
		if from == "" {
			from = "(computed: " + p.Config.ToTarget.Value + ")"
		}
		if sd.reverse {
			from, to, typ = p.Target, p.Source, p.SourceType
		}
		rows = append(rows, []string{collapse(from), collapse(to), quoteType(typ)})
	}
	return rows
}

// collapse turns runs of whitespace, newlines included, into one space: a name, a multi-line
// expression or a description from a YAML block stays one heading, one paragraph, one cell.
func collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func quoteType(t string) string {
	if t == "" {
		return "N/A"
	}
	return `"` + t + `"`
}

// conflictRule says which side wins a property both systems changed since the last sync, in
// a two-way flow (a one-way flow has no conflicts: its target's edits are overwritten).
// conflict: newest compares the records' last-modified values; when an entity has none, the
// source wins every conflict, and the document says so rather than "the newest".
func conflictRule(f *mapping.Flow) string {
	if f.Direction != config.SyncBoth {
		return ""
	}
	const both = "When a property was changed in both systems since the last synchronization, "
	winner := f.Source.System.Name()
	switch {
	case f.Conflict == "target":
		winner = f.Target.System.Name()
	case f.Conflict == "newest" && f.Source.Config.Updated.Value != "" && f.Target.Config.Updated.Value != "":
		return both + "the value of the record changed last wins."
	}
	return both + "the " + collapse(winner) + " value wins."
}
