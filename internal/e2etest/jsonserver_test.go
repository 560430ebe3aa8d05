package e2etest

// A full two-way sync of Northwind (SQLite) with the Custom CRM served by the real json-server
// (testdata/jsonserver, through internal/jsonservertest) over the http connector: the dataflow
// testdata/jsonserver/northwind-to-custom-crm.yaml with the shipped system file
// mappings/systems/custom-crm-http.yaml, run by the sync.Runner. Assertions look where a user
// looks: Northwind's tables in SQL, the CRM's records through its REST API, the run's report
// and the dead letters. Helpers are in helpers_jsonserver_test.go.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/internal/jsonservertest"
)

// jsCountries is the dataflow's table of Northwind's country names and the CRM's codes.
var jsCountries = map[string]string{
	"Argentina": "AR", "Austria": "AT", "Belgium": "BE", "Brazil": "BR", "Canada": "CA",
	"Denmark": "DK", "Finland": "FI", "France": "FR", "Germany": "DE", "Ireland": "IE",
	"Italy": "IT", "Mexico": "MX", "Norway": "NO", "Poland": "PL", "Portugal": "PT",
	"Spain": "ES", "Sweden": "SE", "Switzerland": "CH", "UK": "GB", "USA": "US",
	"Venezuela": "VE",
}

var jsFiles = []string{
	"testdata/jsonserver/northwind-to-custom-crm.yaml",
	"testdata/northwind/northwind.yaml",
	"mappings/systems/custom-crm-http.yaml",
}

func TestJSONServerNorthwindTwoWay(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand records over HTTP: about half a minute; run without -short")
	}
	p := newJSProject(t, "", jsFiles...)
	crm := p.crm

	// --- The first sync creates everything in the CRM. ---
	start := time.Now()
	rep := p.run()
	t.Logf("first run: %v", time.Since(start))
	if rep.Failed() != 0 {
		t.Fatalf("first run: %d records failed: %v\n%s", rep.Failed(), p.deadLetters("nw-products"), jsStats(rep))
	}
	for flow, want := range map[string]int{"nw-products": 77, "nw-customers": 91, "nw-orders": 830} {
		st := jsFlow(t, rep, flow)
		if st.CreatedTarget != want || st.CreatedSource != 0 || st.Waiting != 0 {
			t.Errorf("first run, %s: created %d in the CRM, %d in Northwind, %d waiting; want %d, 0, 0", flow, st.CreatedTarget, st.CreatedSource, st.Waiting, want)
		}
		if n := len(p.links(flow)); n != want {
			t.Errorf("first run, %s: %d links, want %d", flow, n, want)
		}
	}
	products := p.crmBy("products", "sku")
	customers := p.crmBy("customers", "email")
	orders := p.crmBy("orders", "order_number")
	if len(products) != 77 || len(customers) != 91 || len(orders) != 830 {
		t.Fatalf("the CRM has %d products, %d customers, %d orders; want 77, 91, 830", len(products), len(customers), len(orders))
	}
	productByID := map[string]jsonservertest.Record{}
	for _, r := range products {
		productByID[jsText(r["id"])] = r
	}
	customerByID := map[string]jsonservertest.Record{}
	for _, r := range customers {
		customerByID[jsText(r["id"])] = r
	}

	// Every product, with its letters, exact prices and category.
	var crmProducts []string
	for id := 1; id <= 77; id++ {
		r := products[fmt.Sprintf("NW-%d", id)]
		crmProducts = append(crmProducts, jsFields(r, "sku", "name", "description", "unit_price", "units_in_stock", "discontinued", "category"))
	}
	jsSame(t, "products", p.rows(`SELECT 'NW-' || ProductID, ProductName, QuantityPerUnit, UnitPrice, UnitsInStock,
		CASE Discontinued WHEN '1' THEN 'true' ELSE 'false' END, CategoryName
		FROM Products LEFT JOIN Categories USING (CategoryID) ORDER BY ProductID`), crmProducts)
	if got := jsFields(products["NW-24"], "name", "unit_price", "discontinued"); got != "Guaraná Fantástica | 4.5 | true" {
		t.Errorf("product NW-24: %s", got)
	}

	// Every customer with an address; the two Northwind rows without one stay out.
	var crmCustomers []string
	for _, r := range customers {
		country := ""
		for name, code := range jsCountries {
			if code == r["country_code"] {
				country = name
			}
		}
		crmCustomers = append(crmCustomers, jsFields(r, "email", "first_name", "last_name", "company", "address1", "city", "state", "postal_code", "phone")+" | "+country)
	}
	sort.Strings(crmCustomers)
	nwCustomers := p.rows(`SELECT lower(CustomerID) || '@northwind.example',
		substr(ContactName, 1, instr(ContactName, ' ') - 1), substr(ContactName, instr(ContactName, ' ') + 1),
		CompanyName, Address, City, Region, PostalCode, Phone, Country
		FROM Customers WHERE Address IS NOT NULL ORDER BY 1`)
	jsSame(t, "customers", nwCustomers, crmCustomers)
	if got := jsFields(customers["bergs@northwind.example"], "first_name", "last_name", "company", "city", "state", "country_code"); got != "Christina | Berglund | Berglunds snabbköp | Luleå | <NULL> | SE" {
		t.Errorf("customer BERGS: %s", got)
	}

	// Every order refers to the CRM's copy of its customer, every line to the CRM's copy of
	// its product; the totals are the lines' sum to the cent.
	nwSums := map[string]float64{}
	for _, r := range p.rows(`SELECT OrderID, sum(UnitPrice * Quantity * (1 - Discount)) + Freight, sum(UnitPrice * Quantity * (1 - Discount)) FROM "Order Details" JOIN Orders USING (OrderID) GROUP BY OrderID`) {
		f := strings.Split(r, " | ")
		nwSums[f[0]+" grand"], _ = strconv.ParseFloat(f[1], 64)
		nwSums[f[0]], _ = strconv.ParseFloat(f[2], 64)
	}
	var crmOrders, crmLines []string
	for _, r := range orders {
		n := jsText(r["order_number"])
		c := customerByID[jsText(r["customer_id"])]
		crmOrders = append(crmOrders, n+" | "+jsFields(c, "email")+" | "+
			jsFields(r, "customer_email", "order_date", "status", "currency", "shipping_total", "billing_address1", "billing_city", "billing_state", "billing_postal_code", "billing_country_code"))
		for _, line := range jsonservertest.Records(t, r["lines"]) {
			sku := jsFields(productByID[jsText(line["product_id"])], "sku")
			crmLines = append(crmLines, n+" | "+strings.TrimPrefix(sku, "NW-")+" | "+jsFields(line, "unit_price", "quantity"))
		}
		if d := math.Abs(jsFloat(t, r["subtotal"]) - nwSums[n]); d > 0.005+1e-9 {
			t.Errorf("order %s: subtotal %v, the lines' sum in Northwind %v", n, r["subtotal"], nwSums[n])
		}
		if d := math.Abs(jsFloat(t, r["grand_total"]) - nwSums[n+" grand"]); d > 0.005+1e-9 {
			t.Errorf("order %s: grand_total %v, Northwind's lines and freight %v", n, r["grand_total"], nwSums[n+" grand"])
		}
	}
	sort.Slice(crmOrders, func(i, j int) bool { return jsLess(crmOrders[i], crmOrders[j]) })
	sort.Slice(crmLines, func(i, j int) bool { return jsLess(crmLines[i], crmLines[j]) })
	jsSame(t, "orders", p.rows(`SELECT o.OrderID, lower(o.CustomerID) || '@northwind.example', lower(o.CustomerID) || '@northwind.example',
		replace(o.OrderDate, ' ', 'T') || 'Z', CASE WHEN o.ShippedDate IS NULL THEN 'pending' ELSE 'fulfilled' END, 'USD',
		o.Freight, o.ShipAddress, o.ShipCity, o.ShipRegion, o.ShipPostalCode, o.ShipCountry
		FROM Orders o ORDER BY o.OrderID`), jsCountryNames(crmOrders))
	jsSame(t, "order lines", p.rows(`SELECT OrderID, ProductID, UnitPrice, Quantity FROM "Order Details" ORDER BY OrderID, ProductID`), crmLines)
	o48 := orders["10248"]
	if got := jsFields(o48, "order_date", "status", "subtotal", "shipping_total", "grand_total", "billing_city", "billing_country_code"); got != "1996-07-04T00:00:00.000Z | fulfilled | 440 | 32.38 | 472.38 | Reims | FR" {
		t.Errorf("order 10248: %s", got)
	}
	if got := jsFields(customerByID[jsText(o48["customer_id"])], "email", "company"); got != "vinet@northwind.example | Vins et alcools Chevalier" {
		t.Errorf("order 10248's customer: %s", got)
	}

	// --- A second run writes nothing. ---
	start = time.Now()
	rep = p.quiet("second run")
	t.Logf("second run: %v", time.Since(start))
	for _, f := range rep.Flows {
		if n := len(p.links(f.Flow)); f.Unchanged != n {
			t.Errorf("second run, %s: %d unchanged, want all %d links", f.Flow, f.Unchanged, n)
		}
	}

	// --- Edits on both sides arrive on the other. ---
	chai, chang := products["NW-1"], products["NW-2"]
	alfki := customers["alfki@northwind.example"]
	crm.Patch("products", chai["id"], jsonservertest.Record{"name": "Chai (organic)"})
	crm.Patch("customers", alfki["id"], jsonservertest.Record{"city": "Hamburg", "postal_code": "20095"})
	var lines []any
	for _, line := range jsonservertest.Records(t, o48["lines"]) {
		if productByID[jsText(line["product_id"])]["sku"] == "NW-72" {
			line["quantity"] = 6
		}
		lines = append(lines, line)
	}
	crm.Patch("orders", o48["id"], jsonservertest.Record{"lines": lines})
	p.exec(`UPDATE Products SET UnitPrice = 19.25 WHERE ProductID = 2`)
	p.exec(`UPDATE Customers SET Phone = '040-555 01 99' WHERE CustomerID = 'ALFKI'`)
	p.exec(`UPDATE Orders SET Freight = 40.5, ShipCity = 'Lyon' WHERE OrderID = 10249`)

	rep = p.run()
	// nw-orders updates two CRM orders: 10249 (Northwind's edit) and 10248, whose subtotal,
	// computed from its lines, follows the CRM's line edit written to Northwind.
	for flow, crmUpdates := range map[string]int{"nw-products": 1, "nw-customers": 1, "nw-orders": 2} {
		if st := jsFlow(t, rep, flow); st.UpdatedTarget != crmUpdates || st.UpdatedSource != 1 || st.Conflicts != 0 || st.Failed != 0 {
			t.Errorf("after the edits, %s: %d updated in the CRM, %d in Northwind, %d conflicts, %d failed; want %d, 1, 0, 0", flow, st.UpdatedTarget, st.UpdatedSource, st.Conflicts, st.Failed, crmUpdates)
		}
	}
	if got := jsFields(crm.Get("orders", o48["id"]), "subtotal"); got != "474.8" {
		t.Errorf("CRM order 10248's subtotal after its line edit: %s, want 474.8 (440 + 34.8)", got)
	}
	if got := p.row(`SELECT ProductName, UnitPrice FROM Products WHERE ProductID = 1`); got != "Chai (organic) | 18" {
		t.Errorf("Northwind product 1 after the CRM's edit: %s", got)
	}
	if got := jsFields(crm.Get("products", chang["id"]), "name", "unit_price"); got != "Chang | 19.25" {
		t.Errorf("CRM product NW-2 after Northwind's edit: %s", got)
	}
	// Both sides edited different properties of ALFKI: both edits survive, on both sides.
	if got := p.row(`SELECT City, PostalCode, Phone FROM Customers WHERE CustomerID = 'ALFKI'`); got != "Hamburg | 20095 | 040-555 01 99" {
		t.Errorf("Northwind ALFKI: %s", got)
	}
	if got := jsFields(crm.Get("customers", alfki["id"]), "city", "postal_code", "phone"); got != "Hamburg | 20095 | 040-555 01 99" {
		t.Errorf("CRM ALFKI: %s", got)
	}
	if got := p.rows(`SELECT ProductID, Quantity, UnitPrice FROM "Order Details" WHERE OrderID = 10248 ORDER BY ProductID`); strings.Join(got, "; ") != "11 | 12 | 14; 42 | 10 | 9.8; 72 | 6 | 34.8" {
		t.Errorf("Northwind order 10248's lines after the CRM's edit: %s", strings.Join(got, "; "))
	}
	if got := jsFields(crm.Get("orders", orders["10249"]["id"]), "shipping_total", "billing_city"); got != "40.5 | Lyon" {
		t.Errorf("CRM order 10249 after Northwind's edit: %s", got)
	}
	p.quiet("the run after the edits")

	// --- An order entered in the CRM arrives in Northwind, its customer and products
	// translated to Northwind's ids. ---
	entered := crm.Post("orders", jsonservertest.Record{
		"order_number": 20001, "customer_id": alfki["id"], "order_date": "2024-11-05T14:30:00Z",
		"currency": "USD", "subtotal": 73.25, "shipping_total": 12.5, "grand_total": 85.75,
		"billing_address1": "Obere Str. 57", "billing_city": "Berlin", "billing_postal_code": "12209", "billing_country_code": "DE",
		"lines": []any{
			jsonservertest.Record{"product_id": chai["id"], "quantity": 3, "unit_price": 18},
			jsonservertest.Record{"product_id": chang["id"], "quantity": 1, "unit_price": 19.25},
		},
	})
	rep = p.run()
	if st := jsFlow(t, rep, "nw-orders"); st.CreatedSource != 1 || st.CreatedTarget != 0 || st.Failed != 0 || st.Waiting != 0 {
		t.Errorf("the order entered in the CRM: %d created in Northwind, %d in the CRM, %d failed, %d waiting; want 1, 0, 0, 0", st.CreatedSource, st.CreatedTarget, st.Failed, st.Waiting)
	}
	var newID string
	for src, tgt := range p.links("nw-orders") {
		if tgt == jsText(entered["id"]) {
			newID = src
		}
	}
	if newID == "" {
		t.Fatalf("the order entered in the CRM (id %v) is not linked", entered["id"])
	}
	if got := p.row(`SELECT CustomerID, OrderDate || '', Freight, ShipAddress, ShipCity, ShipPostalCode, ShipCountry FROM Orders WHERE OrderID = ?`, newID); got != "ALFKI | 2024-11-05 14:30:00 | 12.5 | Obere Str. 57 | Berlin | 12209 | Germany" {
		t.Errorf("Northwind order %s: %s", newID, got)
	}
	if got := strings.Join(p.rows(`SELECT ProductID, Quantity, UnitPrice, Discount FROM "Order Details" WHERE OrderID = ? ORDER BY ProductID`, newID), "; "); got != "1 | 3 | 18 | 0; 2 | 1 | 19.25 | 0" {
		t.Errorf("Northwind order %s's lines: %s", newID, got)
	}
	p.quiet("the run after the CRM's order")

	// --- A record the CRM refuses (400) goes to the dead letters with the CRM's message; the
	// run goes on. ---
	bad := p.exec(`INSERT INTO Products (ProductName, UnitPrice, UnitsInStock, Discontinued) VALUES ('   ', 5, 10, '0')`)
	badID, _ := bad.LastInsertId()
	good := p.exec(`INSERT INTO Products (ProductName, UnitPrice, UnitsInStock, Discontinued) VALUES ('Rødgrød med fløde', 12.5, 40, '0')`)
	goodID, _ := good.LastInsertId()
	rep = p.run()
	if st := jsFlow(t, rep, "nw-products"); st.CreatedTarget != 1 || st.Failed != 1 {
		t.Errorf("with a blank product name: %d created, %d failed; want 1, 1", st.CreatedTarget, st.Failed)
	}
	if n := len(rep.Flows); n != 3 {
		t.Errorf("the run reports %d flows, want all 3", n)
	}
	wantDead := fmt.Sprintf("source %d: creating Product: custom-crm Product: POST %s/products: 400 Bad Request: name must not be blank", badID, crm.URL)
	if got := p.deadLetters("nw-products"); len(got) != 1 || got[0] != wantDead {
		t.Errorf("dead letters %q\nwant [%q]", got, wantDead)
	}
	if got := jsFields(crm.Find("products", "sku", fmt.Sprintf("NW-%d", goodID)), "name", "unit_price", "units_in_stock"); got != "Rødgrød med fløde | 12.5 | 40" {
		t.Errorf("the good product in the CRM: %s", got)
	}
	if n := crm.Count("products"); n != 78 {
		t.Errorf("the CRM has %d products, want 78 (the blank name refused)", n)
	}
	// Fixed in Northwind, it goes through on the next run and leaves the dead letters.
	p.exec(`UPDATE Products SET ProductName = 'Aquavit' WHERE ProductID = ?`, badID)
	rep = p.run()
	if st := jsFlow(t, rep, "nw-products"); st.CreatedTarget != 1 || st.Failed != 0 {
		t.Errorf("after the fix: %d created, %d failed; want 1, 0", st.CreatedTarget, st.Failed)
	}
	if got := p.deadLetters("nw-products"); len(got) != 0 {
		t.Errorf("dead letters after the fix: %q", got)
	}
	if got := jsFields(crm.Find("products", "sku", fmt.Sprintf("NW-%d", badID)), "name"); got != "Aquavit" {
		t.Errorf("the fixed product in the CRM: %s", got)
	}
	p.quiet("the last run")
}

// jsFloat reads a number the CRM sent.
func jsFloat(t *testing.T, v any) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(jsText(v), 64)
	if err != nil {
		t.Fatalf("not a number: %v", v)
	}
	return f
}

// jsLess orders " | "-separated rows cell by cell, numbers as numbers.
func jsLess(a, b string) bool {
	ca, cb := strings.Split(a, " | "), strings.Split(b, " | ")
	for i := 0; i < len(ca) && i < len(cb); i++ {
		if ca[i] == cb[i] {
			continue
		}
		na, errA := strconv.ParseFloat(ca[i], 64)
		nb, errB := strconv.ParseFloat(cb[i], 64)
		if errA == nil && errB == nil {
			return na < nb
		}
		return ca[i] < cb[i]
	}
	return len(ca) < len(cb)
}

// jsCountryNames replaces the country code at the end of each row with Northwind's name.
func jsCountryNames(rows []string) []string {
	names := map[string]string{}
	for n, c := range jsCountries {
		names[c] = n
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		j := strings.LastIndex(r, " | ")
		out[i] = r[:j+3] + names[r[j+3:]]
	}
	return out
}

// The seed dataflow (mappings/custom-crm-to-squarespace.yaml) works unchanged with the Custom
// CRM over HTTP: loaded from mappings/ with DATAFLOW_ENV=http,local (custom-crm-http.yaml and
// the local Squarespace stand-in), against json-server holding testdata/jsonserver/
// custom-crm.json — the quick start's testdata/local/custom-crm.sql, record for record — it
// runs exactly as the default environment does with the SQLite CRM: the same counts in every
// run until a run writes nothing, the same web shop, and the same CRM afterwards.
func TestJSONServerSeedDataflowAsWithSQLite(t *testing.T) {
	root := jsRoot(t)
	t.Chdir(root) // the local systems' init scripts are relative to the working directory
	seed, err := os.ReadFile("testdata/jsonserver/custom-crm.json")
	if err != nil {
		t.Fatal(err)
	}
	crm := jsonservertest.StartWith(t, string(seed), jsonservertest.Options{Token: jsToken})

	dirSQL, dirHTTP := t.TempDir(), t.TempDir()
	crmDB := filepath.Join(dirSQL, "custom-crm.db")
	jsLoadSQL(t, crmDB, "testdata/local/custom-crm.sql")
	sqlCRM := jsOpenDB(t, crmDB)
	viaSQL := jsNewProject(t, dirSQL, map[string]string{
		"CRM_DB": crmDB, "SQUARESPACE_DB": filepath.Join(dirSQL, "squarespace.db"),
	}, "mappings")
	viaHTTP := jsNewProject(t, dirHTTP, map[string]string{
		"DATAFLOW_ENV": "http,local", "CRM_URL": crm.URL, "CRM_TOKEN": jsToken,
		"SQUARESPACE_DB": filepath.Join(dirHTTP, "squarespace.db"),
	}, "mappings")
	for _, c := range []struct {
		p    *jsProject
		want string
	}{{viaSQL, "sqlite"}, {viaHTTP, "http"}} {
		if got := c.p.project.Systems["custom-crm"].Config.Connector.Value; got != c.want {
			t.Fatalf("the Custom CRM's connector is %s, want %s", got, c.want)
		}
	}

	// The CRMs start equal.
	crmRows := func(api bool) []string {
		var out []string
		if api {
			for _, r := range crm.List("products", "", 0) {
				out = append(out, "product "+jsFields(r, "id", "sku", "name", "description", "unit_price", "units_in_stock", "unlimited_stock", "discontinued", "visible", "weight_kg", "category", "webshop_availability"))
			}
			for _, r := range crm.List("customers", "", 0) {
				out = append(out, "customer "+jsFields(r, "id", "first_name", "last_name", "email", "phone", "company", "address1", "address2", "city", "state", "postal_code", "country_code", "accepts_marketing"))
			}
			for _, r := range crm.List("orders", "", 0) {
				row := "order " + jsFields(r, "id", "order_number", "customer_id", "customer_email", "billing_first_name", "billing_last_name", "billing_address1", "billing_address2", "billing_city", "billing_state", "billing_postal_code", "billing_country_code", "billing_phone", "order_date", "status", "currency", "subtotal", "shipping_total", "tax_total", "grand_total")
				for _, l := range jsonservertest.Records(t, r["lines"]) {
					row += " | " + jsFields(l, "id", "product_id", "quantity", "unit_price")
				}
				out = append(out, row)
			}
		} else {
			for _, r := range jsRows(t, sqlCRM, `SELECT id, sku, name, description, unit_price, units_in_stock,
				CASE unlimited_stock WHEN 1 THEN 'true' ELSE 'false' END, CASE discontinued WHEN 1 THEN 'true' ELSE 'false' END,
				CASE visible WHEN 1 THEN 'true' ELSE 'false' END, weight_kg, category, webshop_availability FROM products`) {
				out = append(out, "product "+r)
			}
			for _, r := range jsRows(t, sqlCRM, `SELECT id, first_name, last_name, email, phone, company, address1, address2, city,
				state, postal_code, country_code, CASE accepts_marketing WHEN 1 THEN 'true' ELSE 'false' END FROM customers`) {
				out = append(out, "customer "+r)
			}
			for _, r := range jsRows(t, sqlCRM, `SELECT o.id, order_number, customer_id, customer_email, billing_first_name,
				billing_last_name, billing_address1, billing_address2, billing_city, billing_state, billing_postal_code,
				billing_country_code, billing_phone, order_date || '', status, currency, subtotal, shipping_total, tax_total, grand_total,
				(SELECT group_concat(l.id || ' | ' || l.product_id || ' | ' || l.quantity || ' | ' || l.unit_price, ' | ')
				 FROM (SELECT * FROM order_lines WHERE order_id = o.id ORDER BY id) l)
				FROM orders o`) {
				out = append(out, "order "+strings.TrimSuffix(r, " | <NULL>"))
			}
		}
		sort.Slice(out, func(i, j int) bool { return jsLess(out[i], out[j]) })
		return out
	}
	before := crmRows(true)
	if len(before) != 13+6+8 {
		t.Fatalf("the CRM on json-server has %d products, customers and orders, want 13 + 6 + 8", len(before))
	}
	jsSame(t, "the CRM before the runs (SQLite, json-server)", crmRows(false), before)

	// Both run until a run writes nothing, with the same counts in every run.
	stats := func(p *jsProject) []string {
		var out []string
		for run := 1; run <= 5; run++ {
			rep := p.run()
			for _, f := range rep.Flows {
				out = append(out, fmt.Sprintf("run %d %s: created %d/%d merged %d updated %d/%d conflicts %d waiting %d failed %d deleted %d",
					run, f.Flow, f.CreatedTarget, f.CreatedSource, f.Merged, f.UpdatedTarget, f.UpdatedSource, f.Conflicts, f.Waiting, f.Failed, f.Deleted))
			}
			if rep.Writes() == 0 {
				return out
			}
		}
		t.Fatalf("no run without writes after five runs:\n%s", strings.Join(out, "\n"))
		return nil
	}
	sqlStats, httpStats := stats(viaSQL), stats(viaHTTP)
	jsSame(t, "the runs (SQLite, json-server)", sqlStats, httpStats)
	if len(httpStats) != 9 || !strings.HasPrefix(httpStats[8], "run 3 ") {
		t.Errorf("want three runs (the third writes nothing), got:\n%s", strings.Join(httpStats, "\n"))
	}

	// The same web shop.
	shop := func(dir string) []string {
		db := jsOpenDB(t, filepath.Join(dir, "squarespace.db"))
		out := jsRows(t, db, `SELECT json_extract(variants, '$[0].sku'), name, description, isVisible,
			json_remove(variants, '$[0].id') FROM products ORDER BY 1`)
		out = append(out, jsRows(t, db, `SELECT sku, descriptor, isUnlimited, quantity FROM inventory ORDER BY sku`)...)
		return append(out, jsRows(t, db, `SELECT o.orderNumber, o.customerEmail, o.billingAddress, o.fulfillmentStatus,
			o.createdOn, o.subtotal, o.shippingTotal, o.taxTotal, o.grandTotal,
			(SELECT group_concat(json_extract(p.variants, '$[0].sku') || ' ×' || json_extract(li.value, '$.quantity')
			        || ' @' || json_extract(li.value, '$.unitPricePaid.value'), ', ')
			 FROM json_each(o.lineItems) li LEFT JOIN products p ON p.id = json_extract(li.value, '$.productId'))
			FROM orders o ORDER BY o.orderNumber`)...)
	}
	sqlShop, httpShop := shop(dirSQL), shop(dirHTTP)
	jsSame(t, "the web shop (with the SQLite CRM, with json-server)", sqlShop, httpShop)
	if len(httpShop) != 11+11+7 {
		t.Errorf("the web shop has %d rows of products, inventory and orders, want 11 + 11 + 7", len(httpShop))
	}

	// The same CRM afterwards, the values that came back from the shop included; each
	// product's webshop_variant_id is the variant of its own SKU in its web shop.
	after := crmRows(true)
	jsSame(t, "the CRM after the runs (SQLite, json-server)", crmRows(false), after)
	find := func(prefix string) string {
		for _, r := range after {
			if strings.HasPrefix(r, prefix) {
				return r
			}
		}
		return "none"
	}
	if got := find("product 1 |"); got != `product 1 | NR-ESP-250 | Espresso Blend "Nattravn" 250 g | Dark-roasted blend of Brazilian and Indian beans with notes of cocoa and hazelnut. | 8.9 | 120 | false | false | true | 0.25 | Coffee | in stock` {
		t.Errorf("the CRM's product 1 after the runs:\n%s", got)
	}
	if got := find("order 1 |"); got != "order 1 | 1001 | 1 | ingrid.solberg@example.com | Ingrid | Solberg | Thorvald Meyers gate 12 | <NULL> | Oslo | <NULL> | 0555 | NO | +47 912 34 567 | 2024-09-02T08:14:00Z | fulfilled | EUR | 35.8 | 4.9 | 8.14 | 48.84 | 1 | 1 | 2 | 8.9 | 2 | 10 | 1 | 18" {
		t.Errorf("the CRM's order 1 after the runs:\n%s", got)
	}
	variants := func(dir string, products [][2]string) []string {
		db := jsOpenDB(t, filepath.Join(dir, "squarespace.db"))
		var out []string
		for _, p := range products {
			sku := "<NULL>"
			if p[1] != "<NULL>" {
				sku = strings.Join(jsRows(t, db, `SELECT sku FROM inventory WHERE variantId = ?`, p[1]), ",")
			}
			out = append(out, p[0]+" → "+sku)
		}
		return out
	}
	var sqlVariants, httpVariants [][2]string
	for _, r := range jsRows(t, sqlCRM, `SELECT sku, webshop_variant_id FROM products ORDER BY id`) {
		f := strings.Split(r, " | ")
		sqlVariants = append(sqlVariants, [2]string{f[0], f[1]})
	}
	for _, r := range crm.List("products", "", 0) {
		httpVariants = append(httpVariants, [2]string{jsText(r["sku"]), jsText(r["webshop_variant_id"])})
	}
	sort.Slice(httpVariants, func(i, j int) bool { return jsLess(httpVariants[i][0], httpVariants[j][0]) })
	sort.Slice(sqlVariants, func(i, j int) bool { return jsLess(sqlVariants[i][0], sqlVariants[j][0]) })
	sv, hv := variants(dirSQL, sqlVariants), variants(dirHTTP, httpVariants)
	jsSame(t, "webshop_variant_id (SQLite, json-server)", sv, hv)
	linked := 0
	for _, v := range hv {
		if f := strings.Split(v, " → "); f[0] == f[1] {
			linked++
		} else if f[1] != "<NULL>" {
			t.Errorf("json-server product %s", v)
		}
	}
	if linked != 11 {
		t.Errorf("%d products of the CRM on json-server know their web shop variant, want 11", linked)
	}
	viaHTTP.quiet("one more run on json-server")
}

// A create whose answer is lost (the connection breaks after the CRM stored the record) is not
// made twice: the next run repeats it with the same Idempotency-Key, the CRM answers with the
// record it created the first time, and the engine links that one — even when a user edited
// it in between, whose edit then reaches Northwind.
func TestJSONServerLostAnswersAreNotCreatedTwice(t *testing.T) {
	p := newJSProject(t, "", jsFiles...)
	p.opts.Flows = []string{"nw-products"}
	lose := &jsLoseAnswers{entity: "Product"}
	p.wrap = func(system string, c connector.Conn) connector.Conn {
		if system != "custom-crm" {
			return c
		}
		kc := c.Capabilities().KeyedCreator
		if kc == nil {
			t.Fatal("the http connection does not create with idempotency keys")
		}
		lose.Conn, lose.kc = c, kc
		return lose
	}
	if _, err := p.runErr(); err == nil || !strings.Contains(err.Error(), "the answers are lost") {
		t.Fatalf("the run with the answers lost: %v, want the lost answers' error", err)
	}
	if lose.lost != 77 {
		t.Fatalf("%d creates lost their answers, want 77", lose.lost)
	}
	stored := p.crmBy("products", "sku")
	if len(stored) != 77 || len(p.links("nw-products")) != 0 {
		t.Fatalf("after the lost answers: %d products in the CRM, %d links; want 77, 0", len(stored), len(p.links("nw-products")))
	}
	p.crm.Patch("products", stored["NW-5"]["id"], jsonservertest.Record{"name": "Gumbo Mix (renamed in the CRM)"})

	p.wrap = nil
	rep := p.run()
	if st := jsFlow(t, rep, "nw-products"); st.Recovered != 77 || st.CreatedTarget != 0 || st.Failed != 0 {
		t.Errorf("the recovery run: %d recovered, %d created, %d failed; want 77, 0, 0", st.Recovered, st.CreatedTarget, st.Failed)
	}
	links := p.links("nw-products")
	after := p.crmBy("products", "sku")
	if len(after) != 77 || len(links) != 77 {
		t.Errorf("after the recovery: %d products in the CRM, %d links; want 77 and 77", len(after), len(links))
	}
	for src, tgt := range links {
		if want := stored["NW-"+src]; jsText(want["id"]) != tgt {
			t.Errorf("Northwind product %s is linked to CRM product %s, want %v, the one created first", src, tgt, want["id"])
		}
	}
	for run := 1; run <= 3 && p.row(`SELECT ProductName FROM Products WHERE ProductID = 5`) != "Gumbo Mix (renamed in the CRM)"; run++ {
		p.run()
	}
	if got := p.row(`SELECT ProductName FROM Products WHERE ProductID = 5`); got != "Gumbo Mix (renamed in the CRM)" {
		t.Errorf("Northwind product 5 is %q; the CRM's edit of the adopted record did not arrive", got)
	}
	p.quiet("the run after the recovery")
	if n := p.crm.Count("products"); n != 77 {
		t.Errorf("the CRM has %d products at the end, want 77", n)
	}
}

// jsLoseAnswers is a connection whose keyed creates of one entity reach the system but whose
// answers are lost, as when the connection breaks after the request.
type jsLoseAnswers struct {
	connector.Conn
	kc     connector.KeyedCreator
	entity string
	lost   int
}

// Capabilities are the connection's, with its keyed creates going through the wrapper.
func (w *jsLoseAnswers) Capabilities() connector.Capabilities {
	caps := w.Conn.Capabilities()
	caps.KeyedCreator = w
	return caps
}
func (w *jsLoseAnswers) Idempotent(entity string) bool { return w.kc.Idempotent(entity) }

func (w *jsLoseAnswers) CreateKeyed(ctx context.Context, entity string, data []map[string]any, keys []string) ([]connector.Result, error) {
	res, err := w.kc.CreateKeyed(ctx, entity, data, keys)
	if err != nil || entity != w.entity {
		return res, err
	}
	w.lost += len(data)
	return nil, errors.New("connection reset by peer: the answers are lost")
}
