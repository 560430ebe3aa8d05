package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dataflow-sync/dataflow/engine/serve"
)

// Defaults of dataflow serve.
const (
	defaultListen        = "127.0.0.1:8080"
	defaultServeEvery    = 5 * time.Minute
	defaultAdminTokenEnv = "DATAFLOW_ADMIN_TOKEN"
	defaultHookSecretEnv = "DATAFLOW_HOOK_SECRET"
)

func runServe(e *env, args []string) int {
	fs := e.flags("serve")
	listen := fs.String("listen", defaultListen, "serve the status page, /metrics, /healthz, /readyz and /hooks on `address` (loopback unless told otherwise; \"\" for none)")
	statePath := fs.String("state", DefaultState, "the link state `file`, or a postgres:// URL that several dataflow serve processes share")
	lease := fs.Duration("lease", serve.DefaultLease, "with the state in PostgreSQL: how long a run holds its flows without renewing, the longest the flows of a worker that died wait for another")
	every := fs.Duration("every", defaultServeEvery, "run the flows whose mappings set no every: at this `interval`")
	logFormat := fs.String("log-format", "text", "log as `text` or json")
	adminEnv := fs.String("admin-token-env", defaultAdminTokenEnv, "read the admin token (retry, drop, run now) from this environment `variable`; unset: no admin actions")
	hookEnv := fs.String("hook-secret-env", defaultHookSecretEnv, "read the webhook secret from this environment `variable`; unset: no webhooks")
	paths, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	if len(paths) == 0 {
		paths = []string{DefaultMappings}
	}
	logger, err := newLogger(e.stderr, *logFormat)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow serve: %v\n", err)
		return exitUsage
	}
	if *every <= 0 {
		fmt.Fprintf(e.stderr, "dataflow serve: --every must be positive, e.g. --every 5m\n")
		return exitUsage
	}
	token, _ := e.lookup(*adminEnv)
	secret, _ := e.lookup(*hookEnv)
	svc, err := serve.Open(e.ctx, serve.Config{
		Paths: paths, StatePath: *statePath, Every: *every, Lookup: e.lookup, Logger: logger,
		AdminToken: token, HookSecret: secret, Lease: *lease,
	})
	if err != nil {
		var invalid *serve.InvalidMappingsError
		if errors.As(err, &invalid) {
			io.WriteString(e.stderr, invalid.Text())
			fmt.Fprintln(e.stderr, "dataflow serve: the mappings are invalid; nothing was run")
		} else {
			fmt.Fprintf(e.stderr, "dataflow serve: %v\n", err)
		}
		return exitUsage
	}
	var ln net.Listener
	if *listen != "" {
		if ln, err = net.Listen("tcp", *listen); err != nil {
			svc.Close()
			fmt.Fprintf(e.stderr, "dataflow serve: %v\n", err)
			return exitUsage
		}
		if !isLoopback(ln.Addr()) && token != "" {
			logger.Warn("the status page and its admin actions are reachable from other machines; put TLS in front of it", "address", ln.Addr().String())
		}
	}
	if token == "" {
		logger.Info("admin actions are off: set the admin token in $" + *adminEnv)
	}
	if secret == "" {
		logger.Info("webhooks are off: set their secret in $" + *hookEnv)
	}
	// SIGHUP reloads the mappings; an invalid set is refused and logged, and the old one runs on.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-e.ctx.Done():
				return
			case <-hup:
				svc.Reload(e.ctx)
			}
		}
	}()
	if err := svc.Run(e.ctx, ln); err != nil {
		fmt.Fprintf(e.stderr, "dataflow serve: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
