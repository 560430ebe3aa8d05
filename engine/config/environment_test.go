package config

import (
	"slices"
	"testing"
)

func TestEnvironments(t *testing.T) {
	for _, tc := range []struct {
		set  bool
		val  string
		want []string
	}{
		{false, "", []string{"local"}},
		{true, "", nil},
		{true, "live", []string{"live"}},
		{true, " http , live,", []string{"http", "live"}},
	} {
		env := func(string) (string, bool) { return tc.val, tc.set }
		if got := Environments(env); !slices.Equal(got, tc.want) {
			t.Errorf("DATAFLOW_ENV=%q (set %v): got %q, want %q", tc.val, tc.set, got, tc.want)
		}
	}
}

func TestSelectEnvironments(t *testing.T) {
	sys := func(id, env string) *System {
		return &System{ID: Str{Value: id}, Environment: Str{Value: env}}
	}
	names := func(ss []*System) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID.Value+"@"+s.Environment.Value)
		}
		return out
	}
	all := []*System{sys("shop", ""), sys("shop", "local"), sys("crm", ""), sys("crm", "http"), sys("erp", "test")}
	for _, tc := range []struct {
		envs      []string
		keep, alt []string
	}{
		{[]string{"local"}, []string{"shop@local", "crm@", "erp@test"}, []string{"shop@", "crm@http"}},
		{nil, []string{"shop@", "crm@", "erp@test"}, []string{"shop@local", "crm@http"}},
		{[]string{"http", "local"}, []string{"shop@local", "crm@http", "erp@test"}, []string{"shop@", "crm@"}},
	} {
		p := &Project{Systems: slices.Clone(all)}
		p.SelectEnvironments(tc.envs)
		if got := names(p.Systems); !slices.Equal(got, tc.keep) {
			t.Errorf("%q: kept %q, want %q", tc.envs, got, tc.keep)
		}
		if got := names(p.Alternates); !slices.Equal(got, tc.alt) {
			t.Errorf("%q: alternates %q, want %q", tc.envs, got, tc.alt)
		}
		if ds := p.CheckUnique(); len(ds) != 0 {
			t.Errorf("%q: unexpected %v", tc.envs, ds)
		}
	}
	p := &Project{Systems: []*System{sys("shop", "local"), sys("shop", "local")}}
	p.SelectEnvironments([]string{"local"})
	if ds := p.CheckUnique(); len(ds) != 1 || ds[0].Summary != `system "shop" is defined twice for environment "local"; first at ` {
		t.Errorf("duplicate environment: got %v", ds)
	}
}
