package docs_test

import (
	"strings"
	"testing"
)

// The documents say which side wins a property both systems changed (issue 14 item 12):
// conflict: newest is "the record changed last" only when both entities have an `updated`
// property; without one the source wins, and the document names it instead.
func TestConflictRule(t *testing.T) {
	const both = "When a property was changed in both systems since the last synchronization, "
	for _, c := range []struct {
		name, updated, flow, want string
	}{
		{"newest, both stamped", "    updated: modified\n", "conflict: newest", both + "the value of the record changed last wins."},
		{"newest by default, both stamped", "    updated: modified\n", "sync: both", both + "the value of the record changed last wins."},
		{"newest, nothing stamped", "", "conflict: newest", both + "the Acme CRM value wins."},
		{"source", "    updated: modified\n", "conflict: source", both + "the Acme CRM value wins."},
		{"target", "", "conflict: target", both + "the Web Shop value wins."},
		{"one-way: no conflicts", "", "sync: to-target", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newProject(t)
			for _, s := range []struct{ id, name, entity string }{{"crm", "Acme CRM", "Product"}, {"shop", "Web Shop", "Item"}} {
				p.write("systems/"+s.id+".yaml", "system: "+s.id+"\nname: "+s.name+"\nconnector: sqlite\npath: "+s.id+".db\nentities:\n  "+s.entity+":\n    table: t\n    id: id\n"+c.updated+"    schema: ../schemas/"+s.id+".json\n")
				p.write("schemas/"+s.id+".json", object(prop("id", typ("string")), prop("sku", typ("string")), prop("modified", typ("string"))))
			}
			docs := p.dataflow("dataflow: crm-to-shop\nsource: crm\ntarget: shop\nflows:\n  - id: product-to-item\n    source: Product\n    target: Item\n    merge: [[{source: sku, target: sku}]]\n    " + c.flow + "\n    properties:\n      - {source: sku, target: sku}\n").build()
			intro := docs["crm-to-shop"].Sections[0].PropsIntro
			const plain = "Once a link between a Acme CRM Product and a Web Shop Item is established, it will keep in sync between the two systems, regardless of where it is edited."
			want := strings.TrimSpace(plain + " " + c.want)
			if intro != want {
				t.Errorf("got  %q\nwant %q", intro, want)
			}
		})
	}
}
