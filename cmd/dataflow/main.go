// Command dataflow validates, documents and runs declarative two-way data syncs.
package main

import (
	"context"
	"os"

	"github.com/dataflow-sync/dataflow/internal/cli"
)

func main() {
	ctx, stop := cli.WithSignals(context.Background())
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
