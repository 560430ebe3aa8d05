package docs_test

import (
	"os"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/docs"
)

func TestZZDump(t *testing.T) {
	ds := crmShop(t).dataflow(wholeFlows).build()
	os.WriteFile("/tmp/scratch/w.rst", []byte(docs.RST(ds["crm-to-shop"])), 0o644)
	os.WriteFile("/tmp/scratch/w.reverse.rst", []byte(docs.RST(ds["crm-to-shop.reverse"])), 0o644)
	os.WriteFile("/tmp/scratch/w.md", []byte(docs.Markdown(ds["crm-to-shop"])), 0o644)
	os.WriteFile("/tmp/scratch/w.reverse.md", []byte(docs.Markdown(ds["crm-to-shop.reverse"])), 0o644)
	d := escapingProject(t).build()["star-to-plain"]
	os.WriteFile("/tmp/scratch/e.rst", []byte(docs.RST(d)), 0o644)
	os.WriteFile("/tmp/scratch/e.md", []byte(docs.Markdown(d)), 0o644)
}
