package config

import (
	"slices"
	"strings"
)

// DefaultEnvironment is selected when DATAFLOW_ENV is not set: the local stand-ins, so that a
// fresh clone runs without network or credentials.
const DefaultEnvironment = "local"

// Environments reads the selected environments from DATAFLOW_ENV: a comma-separated list
// (`local`, `http,live`), DefaultEnvironment when unset, none when set but empty (every system
// then uses its file without an `environment`).
func Environments(env Lookup) []string {
	v, ok := env("DATAFLOW_ENV")
	if !ok {
		return []string{DefaultEnvironment}
	}
	var envs []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			envs = append(envs, e)
		}
	}
	return envs
}

// SelectEnvironments keeps, for each system id, the files of the first selected environment
// that has one, else the files without an environment, and moves the others to Alternates.
// A system with files only for unselected environments keeps them all, so that its flows
// still compile and validation reports on them.
func (p *Project) SelectEnvironments(envs []string) {
	best := map[string]int{} // system id → rank of the best file: index in envs, len(envs) for none
	rank := func(s *System) int {
		if s.Environment.Value == "" {
			return len(envs)
		}
		if i := slices.Index(envs, s.Environment.Value); i >= 0 {
			return i
		}
		return len(envs) + 1
	}
	for _, s := range p.Systems {
		r := rank(s)
		if b, ok := best[s.ID.Value]; !ok || r < b {
			best[s.ID.Value] = r
		}
	}
	var keep []*System
	for _, s := range p.Systems {
		if rank(s) == best[s.ID.Value] {
			keep = append(keep, s)
		} else {
			p.Alternates = append(p.Alternates, s)
		}
	}
	p.Systems = keep
}
