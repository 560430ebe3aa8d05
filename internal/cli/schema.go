package cli

import (
	"fmt"

	"github.com/dataflow-sync/dataflow/schemas"
)

func runSchema(e *env, args []string) int {
	fs := e.flags("schema")
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(e.stderr, "dataflow schema: takes no arguments\n")
		return exitUsage
	}
	e.stdout.Write(schemas.Dataflow)
	return exitOK
}
