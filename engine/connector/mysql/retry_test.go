package mysql

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/internal/mysqltest"
	"github.com/go-sql-driver/mysql"
)

// A session the server ends for inactivity is a connection lost, which is retried, on either
// server: Oracle MySQL reports it as error 4031, MariaDB as a bad connection.
func TestDisconnectedForInactivityIsRetried(t *testing.T) {
	mysqltest.Each(t, testDisconnectedForInactivityIsRetried)
}

func testDisconnectedForInactivityIsRetried(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	pool := sqlOpen(t, db.DSN())
	ctx := context.Background()
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("SET SESSION wait_timeout = 1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	_, err = tx.Exec("SELECT 1")
	var me *mysql.MySQLError
	if f == mysqltest.OracleMySQL && (!errors.As(err, &me) || me.Number != 4031) {
		t.Fatalf("Oracle MySQL: %v, want error 4031", err)
	}
	if err == nil || !(&dialect{}).Retry(err) {
		t.Fatalf("%v is not retried", err)
	}
}
