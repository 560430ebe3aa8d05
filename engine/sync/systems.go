package sync

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// ErrOtherSystem is returned (wrapped) when a run is refused because a system is not the
// database or service its links were made with, and holds records with linked ids.
var ErrOtherSystem = errors.New("another system")

// overlapSample is how many linked ids of a flow are looked up in a system that is not the
// one its links were made with: one read, enough to tell a copy from another database.
const overlapSample = 100

// identity is what tells a system's database or service: its connector and where it is (the
// absolute path of a file, a URL without credentials, query or fragment).
func identity(sys *mapping.System) state.SystemIdentity {
	si := state.SystemIdentity{Connector: sys.Config.Connector.Value}
	for _, key := range []string{"path", "base_url", "url", "dsn", "database", "host"} {
		s, ok := sys.Config.Settings[key]
		if !ok || s.Value == "" {
			continue
		}
		si.Location = location(key, s.Value)
		break
	}
	return si
}

// location is a setting's value as a place: a path made absolute, a URL stripped of what may
// be secret (user and password, query, fragment), anything else as it is up to a password.
func location(key, v string) string {
	if key == "path" && !strings.Contains(v, "://") {
		if abs, err := filepath.Abs(v); err == nil {
			return abs
		}
		return v
	}
	if u, err := url.Parse(v); err == nil && u.Scheme != "" {
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		return u.String()
	}
	if i := strings.Index(strings.ToLower(v), "password"); i >= 0 {
		return v[:i] // a key=value DSN: what comes before its password
	}
	return v
}

// checkSystems refuses a run whose systems are not those the link state's links were made with
// (another connector or location) when one of them holds records with the ids of linked
// records: the links would pair records that were never synced, and the merge would overwrite
// one with the other. A system in another place without such records (a new, empty database)
// is recorded: its links' records are missing there, which the circuit breaker stops. The
// identities are recorded for the next run; Options.AllowNewSystems accepts a copy.
func (r *Runner) checkSystems(ctx context.Context, flows []*mapping.Flow) error {
	stored, err := r.State.Systems(ctx)
	if err != nil {
		return err
	}
	current := map[string]state.SystemIdentity{}
	usedBy := map[string][]*mapping.Flow{}
	for _, f := range flows {
		for _, sys := range []*mapping.System{f.Dataflow.Source, f.Dataflow.Target} {
			id := sys.Config.ID.Value
			current[id] = identity(sys)
			usedBy[id] = append(usedBy[id], f)
		}
	}
	ids := make([]string, 0, len(current))
	for id := range current {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var changed []string
	for _, id := range ids {
		was, ok := stored[id]
		now := current[id]
		if ok && was == now {
			continue
		}
		changed = append(changed, id)
		if !ok || r.Opts.AllowNewSystems {
			continue
		}
		hit, err := r.overlap(ctx, id, usedBy[id])
		if err != nil {
			return err
		}
		if hit != "" {
			return fmt.Errorf("%w: system %s: the links of the link state are of %s %s, and this run is against %s %s, which holds %s: "+
				"the links would pair records that were never synced. Point the system at the database it was synced with, "+
				"or use another link state (--state); if it is a copy of that database, run with --allow-new-systems",
				ErrOtherSystem, id, was.Connector, was.Location, now.Connector, now.Location, hit)
		}
	}
	if len(changed) == 0 || r.Opts.DryRun {
		return nil
	}
	tx, err := r.State.Begin(ctx)
	if err != nil {
		return err
	}
	for _, id := range changed {
		if err := tx.PutSystem(id, current[id]); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// overlap looks up a sample of the linked ids of each flow on system id and describes the
// records found ("" for none).
func (r *Runner) overlap(ctx context.Context, id string, flows []*mapping.Flow) (string, error) {
	conn := r.Conns[id]
	if conn == nil {
		return "", nil
	}
	for _, f := range flows {
		onSource := f.Dataflow.Source.Config.ID.Value == id
		entity := f.Target.Name()
		if onSource {
			entity = f.Source.Name()
		}
		var sample []string
		errEnough := errors.New("enough")
		err := r.State.ScanLinks(ctx, f.ID(), func(links []*state.Link) error {
			for _, l := range links {
				if onSource {
					sample = append(sample, l.SourceID)
				} else {
					sample = append(sample, l.TargetID)
				}
				if len(sample) == overlapSample {
					return errEnough
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return "", err
		}
		if len(sample) == 0 {
			continue
		}
		got, _, err := getSome(ctx, conn, entity, sample)
		if err != nil {
			return "", fmt.Errorf("system %s: %w", id, err)
		}
		var found []string
		for _, sid := range sample {
			if _, ok := got[sid]; ok {
				found = append(found, sid)
			}
		}
		if len(found) > 0 {
			if len(found) > 3 {
				found = append(found[:3], "...")
			}
			return fmt.Sprintf("%s records with the ids of linked ones (%s)", entity, strings.Join(found, ", ")), nil
		}
	}
	return "", nil
}
