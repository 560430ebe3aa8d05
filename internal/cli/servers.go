package cli

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// printServers is status's table of where each system's records are: host:port/database for
// a database server, the file for sqlite, the base URL (without credentials or query) for an
// API; never a password. Without mappings it is where the link state says the links were made.
func (e *env) printServers(st state.Store, project *mapping.Project) {
	type row struct{ id, connector, server string }
	var rows []row
	if project != nil {
		reg := engine.Connectors()
		for _, s := range project.Config.Systems {
			server := ""
			if d, ok := reg.Driver(s.Connector.Value); ok {
				if l, ok := d.(connector.Locator); ok {
					server = l.Server(s)
				}
			}
			if server == "" {
				if u, err := url.Parse(s.Settings["base_url"].Value); err == nil && u.Host != "" {
					u.User, u.RawQuery, u.Fragment = nil, "", ""
					server = u.String()
				}
			}
			rows = append(rows, row{s.ID.Value, s.Connector.Value, server})
		}
	} else if recorded, err := st.Systems(e.ctx); err == nil {
		wd, _ := os.Getwd()
		for id, si := range recorded {
			loc := si.Location
			// A file under the working directory as the system file would name it.
			if rel, err := filepath.Rel(wd, loc); err == nil && filepath.IsAbs(loc) && wd != "" && !strings.HasPrefix(rel, "..") {
				loc = rel
			}
			rows = append(rows, row{id, si.Connector, loc})
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "system\tconnector\tserver")
	for _, r := range rows {
		if r.server == "" {
			r.server = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", diag.Escape(r.id), diag.Escape(r.connector), diag.Escape(r.server))
	}
	tw.Flush()
}
