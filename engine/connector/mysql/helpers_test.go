package mysql

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/internal/mysqltest"
)

func TestMain(m *testing.M) { os.Exit(mysqltest.Main(m)) }

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
	return p.Systems[0]
}

func system(entities ...string) string {
	return "system: crm\nname: CRM\nconnector: mysql\ndsn: ${DSN}\nentities:\n  " + strings.Join(entities, "\n  ") + "\n"
}

func open(t testing.TB, dsn, src string) connector.Conn {
	t.Helper()
	c, err := Driver{}.Open(context.Background(), loadSystem(t, src, map[string]string{"DSN": dsn}), nil, connector.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func scanAll(t testing.TB, c connector.Conn, entity, since string) []connector.Record {
	t.Helper()
	var out []connector.Record
	if err := c.Scan(context.Background(), entity, since, func(b []connector.Record) error { out = append(out, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
