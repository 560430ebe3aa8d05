// Command dataflow validates, documents and runs declarative two-way data syncs.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dataflow-sync/dataflow/internal/cli"
)

func main() {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	os.Exit(cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
