package postgres

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// loadSystem loads a system file's text with the given environment; any problem fails the test.
func loadSystem(t testing.TB, src string, env map[string]string) *config.System {
	t.Helper()
	l, err := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	p := &config.Project{}
	for _, d := range l.AddFile(p, "system.yaml", []byte(src)) {
		t.Fatalf("system file: %v", d)
	}
	if len(p.Systems) != 1 {
		t.Fatalf("loaded %d systems", len(p.Systems))
	}
	return p.Systems[0]
}

// system is a postgres system file with the given entities (YAML lines under entities:).
func system(entities ...string) string {
	return "system: crm\nname: CRM\nconnector: postgres\ndsn: ${DSN}\nentities:\n  " + strings.Join(entities, "\n  ") + "\n"
}

// open opens a system on a database.
func open(t testing.TB, dsn, src string) connector.Conn {
	t.Helper()
	c, err := Driver{}.Open(context.Background(), loadSystem(t, src, map[string]string{"DSN": dsn}), nil, connector.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// scanAll reads every record of an entity (since a watermark, when given).
func scanAll(t testing.TB, c connector.Conn, entity, since string) []connector.Record {
	t.Helper()
	var out []connector.Record
	if err := c.Scan(context.Background(), entity, since, func(b []connector.Record) error { out = append(out, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
