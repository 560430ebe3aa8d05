package campaign

import (
	"context"
	"os"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/mysqltest"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// TestMain stops the PostgreSQL and MariaDB servers the campaign's tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	mysqltest.StopShared()
	os.Exit(code)
}

// The kill -9 campaign with the store in PostgreSQL: creates through RETURNING, intents
// recovered against a server, no duplicate, no lost update.
func TestKillCampaignPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("the campaign runs the real binary many times")
	}
	db := pgtest.New(t)
	records, kills := campaignSize(t)
	cfg := Config{Binary: buildDataflow(t), Dir: t.TempDir(), Records: records, Kills: kills, Seed: 1, Target: PostgresTarget{DSN: db.DSN()}}
	fig, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures:\n%s", fig)
	if !fig.OK() {
		t.Errorf("an invariant broke:\n%s", fig)
	}
	if fig.Kills != kills || fig.Immediate == 0 || fig.Edits == 0 || fig.Records < records {
		t.Errorf("the campaign did not do what it should:\n%s", fig)
	}
}

// The kill -9 campaign with the link state in PostgreSQL (SQLite systems): the state's intents
// and links survive the kills as in the file, no duplicate, no lost update, no intent left.
func TestKillCampaignPostgresState(t *testing.T) {
	if testing.Short() {
		t.Skip("the campaign runs the real binary many times")
	}
	db := pgtest.New(t)
	records, kills := campaignSize(t)
	cfg := Config{Binary: buildDataflow(t), Dir: t.TempDir(), Records: records, Kills: kills, Seed: 3, StateDSN: db.DSN()}
	fig, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures:\n%s", fig)
	if !fig.OK() {
		t.Errorf("an invariant broke:\n%s", fig)
	}
	if fig.Kills != kills || fig.Immediate == 0 || fig.Edits == 0 || fig.Records < records {
		t.Errorf("the campaign did not do what it should:\n%s", fig)
	}
}

// The kill -9 campaign with the store in MariaDB: creates read back with LAST_INSERT_ID().
func TestKillCampaignMySQL(t *testing.T) { mysqltest.Each(t, testKillCampaignMySQL) }

func testKillCampaignMySQL(t *testing.T, f mysqltest.Flavour) {
	if testing.Short() {
		t.Skip("the campaign runs the real binary many times")
	}
	db := mysqltest.NewOf(t, f)
	records, kills := campaignSize(t)
	cfg := Config{Binary: buildDataflow(t), Dir: t.TempDir(), Records: records, Kills: kills, Seed: 1, Target: MySQLTarget{DSN: db.DSN()}}
	fig, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures:\n%s", fig)
	if !fig.OK() {
		t.Errorf("an invariant broke:\n%s", fig)
	}
	if fig.Kills != kills || fig.Immediate == 0 || fig.Edits == 0 || fig.Records < records {
		t.Errorf("the campaign did not do what it should:\n%s", fig)
	}
}
