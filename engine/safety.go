package engine

import (
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// safetyWarnings are the warnings about flows that are valid but do something a user would
// not expect from reading them: they do not make the files invalid.
//
//   - A flow that creates records (create: always, the target's default) without merge
//     criteria links what it created only through the link state: should the state be lost
//     (a deleted .dataflow/, a new machine), the next run creates every record again.
//   - conflict: newest (the default) compares the records' last-modified values; when an
//     entity has no `updated` property there is nothing to compare, and the source wins every
//     conflict, which the file does not say.
func safetyWarnings(p *mapping.Project) diag.Diagnostics {
	var ds diag.Diagnostics
	if p == nil {
		return ds
	}
	for _, df := range p.Dataflows {
		for _, f := range df.Flows {
			if f.Source == nil || f.Target == nil || f.Config == nil {
				continue
			}
			warnCreateWithoutMerge(&ds, f)
			warnNewestWithoutUpdated(&ds, f)
		}
	}
	return ds
}

// at is where a warning about one of the flow's keys points: the key's value when the file
// sets it, else the flow's id (the key's default applies to the flow as a whole).
func at(key config.Str, f *mapping.Flow) diag.Range {
	if key.Set {
		return key.Range
	}
	return f.Config.ID.Range
}

func warnCreateWithoutMerge(ds *diag.Diagnostics, f *mapping.Flow) {
	if len(f.Merge) > 0 {
		return
	}
	sides := []struct {
		policy string
		key    config.Str
		entity *mapping.Entity
	}{
		{f.CreateTarget, f.Config.Create.Target, f.Target},
		{f.CreateSource, f.Config.Create.Source, f.Source},
	}
	for _, s := range sides {
		if s.policy != config.CreateAlways {
			continue
		}
		ds.Warnf(at(s.key, f), "flow %q creates %s records without merge criteria", f.ID(), s.entity.System.Name()+" "+s.entity.Name()).
			WithDetail("Only the link state (.dataflow/state.db) knows which records it created: should it be lost, the next run creates every record again. Add `merge:` criteria that identify a record on both sides (an email, a SKU, an external reference), or `create: never` or `referenced`.")
	}
}

func warnNewestWithoutUpdated(ds *diag.Diagnostics, f *mapping.Flow) {
	if f.Conflict != "newest" || f.Direction != config.SyncBoth {
		return
	}
	for _, e := range []*mapping.Entity{f.Source, f.Target} {
		if e.Config.Updated.Value != "" {
			continue
		}
		what := "conflict: newest (the default)"
		if f.Config.Conflict.Set {
			what = "conflict: newest"
		}
		ds.Warnf(at(f.Config.Conflict, f), "%s cannot tell which record is newer: %s has no `updated` property; the %s wins every conflict", what, e.System.Name()+" "+e.Name(), f.Source.System.Name()).
			WithDetail("Give %s `updated: <last-modified property>` in %s, or say which side wins: `conflict: source` or `conflict: target`.", e.Name(), systemFile(e))
		return
	}
}

// systemFile names the file that describes the entity's system, for a fix sentence.
func systemFile(e *mapping.Entity) string {
	if e.System.Config != nil && e.System.Config.File != nil {
		return e.System.Config.File.Name
	}
	return "its system file"
}
