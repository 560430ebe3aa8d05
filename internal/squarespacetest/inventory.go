package squarespacetest

import (
	"fmt"
	"net/http"
	"slices"
)

// adjustmentsInput is the body of POST /1.0/commerce/inventory/adjustments.
type adjustmentsInput struct {
	IncrementOperations    []quantityOperation `json:"incrementOperations"`
	DecrementOperations    []quantityOperation `json:"decrementOperations"`
	SetFiniteOperations    []quantityOperation `json:"setFiniteOperations"`
	SetUnlimitedOperations []string            `json:"setUnlimitedOperations"`
}

type quantityOperation struct {
	VariantID string `json:"variantId"`
	Quantity  *int   `json:"quantity"`
}

// maxStock is the largest finite stock a variant may have.
const maxStock = 1_000_000

// variantRef locates a variant in the shop.
type variantRef struct {
	p *Product
	i int
}

func (ref variantRef) item() InventoryItem {
	v := &ref.p.Variants[ref.i]
	return InventoryItem{VariantID: v.ID, SKU: v.SKU, Descriptor: descriptor(ref.p, v), IsUnlimited: v.Stock.Unlimited, Quantity: v.Stock.Quantity}
}

// variant finds a variant by id. s.mu is held.
func (s *Server) variant(id string) (variantRef, bool) {
	for _, p := range s.products {
		for i := range p.Variants {
			if p.Variants[i].ID == id {
				return variantRef{p, i}, true
			}
		}
	}
	return variantRef{}, false
}

func (s *Server) listInventory(r *http.Request) (int, any) {
	c, e := listCursor(r.URL.Query(), "inventory", nil)
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []sortKey
	refs := map[string]variantRef{}
	for id, p := range s.products {
		for i, v := range p.Variants {
			keys = append(keys, sortKey{fmt.Sprintf("%010d.%04d", s.seq[id], i), v.ID})
			refs[v.ID] = variantRef{p, i}
		}
	}
	ids, pg := s.page(r, c, keys)
	out := make([]InventoryItem, 0, len(ids))
	for _, id := range ids {
		out = append(out, refs[id].item())
	}
	return http.StatusOK, map[string]any{"inventory": out, "pagination": pg}
}

func (s *Server) getInventory(r *http.Request) (int, any) {
	ids, e := splitIDs(r.PathValue("ids"))
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InventoryItem, 0, len(ids))
	for _, id := range ids {
		if ref, ok := s.variant(id); ok {
			out = append(out, ref.item())
		}
	}
	if len(out) == 0 {
		return fail(&apiError{status: 404, typ: "INVALID_REQUEST_ERROR", subtype: "INVENTORY_ITEM_NOT_FOUND", message: "Inventory item not found."})
	}
	return http.StatusOK, map[string]any{"inventory": out}
}

// adjustInventory applies stock adjustments, all or none. The Idempotency-Key header is
// required; a key seen before with the same body changes nothing and answers as the first
// time.
func (s *Server) adjustInventory(r *http.Request) (int, any) {
	const endpoint = "POST /1.0/commerce/inventory/adjustments"
	key, e := idempotencyKey(r)
	if e != nil {
		return fail(e)
	}
	var in adjustmentsInput
	body, e := decode(r, &in)
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen, e := s.remembered(endpoint, key, body); e != nil {
		return fail(e)
	} else if seen {
		return http.StatusNoContent, nil
	}
	type change struct {
		ref       variantRef
		quantity  int
		unlimited bool
	}
	var changes []change
	used := map[string]bool{}
	n := len(in.IncrementOperations) + len(in.DecrementOperations) + len(in.SetFiniteOperations) + len(in.SetUnlimitedOperations)
	if n == 0 {
		return fail(invalid("operations", "must hold at least one operation"))
	}
	if n > 50 {
		return fail(invalid("operations", "must hold at most 50 operations"))
	}
	find := func(field, id string) (variantRef, *apiError) {
		if id == "" {
			return variantRef{}, missing(field + ".variantId")
		}
		if used[id] {
			return variantRef{}, invalid(field+".variantId", "appears in more than one operation")
		}
		used[id] = true
		ref, ok := s.variant(id)
		if !ok {
			return variantRef{}, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INVENTORY_ITEM_NOT_FOUND",
				message: field + ".variantId " + id + " is not an inventory item.", details: map[string]any{"field": field + ".variantId"}}
		}
		return ref, nil
	}
	quantity := func(field string, op quantityOperation, min int) (int, *apiError) {
		if op.Quantity == nil {
			return 0, missing(field + ".quantity")
		}
		if *op.Quantity < min || *op.Quantity > maxStock {
			return 0, invalid(field+".quantity", fmt.Sprintf("must be between %d and %d", min, maxStock))
		}
		return *op.Quantity, nil
	}
	for _, group := range []struct {
		kind string
		ops  []quantityOperation
	}{{"incrementOperations", in.IncrementOperations}, {"decrementOperations", in.DecrementOperations}} {
		kind := group.kind
		for i, op := range group.ops {
			field := fmt.Sprintf("%s[%d]", kind, i)
			ref, e := find(field, op.VariantID)
			if e != nil {
				return fail(e)
			}
			q, e := quantity(field, op, 1)
			if e != nil {
				return fail(e)
			}
			item := ref.item()
			if item.IsUnlimited {
				return fail(&apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "STOCK_NOT_TRACKED",
					message: field + ": the stock of variant " + item.VariantID + " is unlimited."})
			}
			next := item.Quantity + q
			if kind == "decrementOperations" {
				next = item.Quantity - q
			}
			if next < 0 {
				return fail(&apiError{status: 409, typ: "CONFLICT", subtype: "INSUFFICIENT_STOCK",
					message: fmt.Sprintf("%s: variant %s has %d in stock, fewer than %d.", field, item.VariantID, item.Quantity, q)})
			}
			if next > maxStock {
				return fail(&apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "STOCK_EXCEEDS_MAX",
					message: fmt.Sprintf("%s: the stock of variant %s would exceed %d.", field, item.VariantID, maxStock)})
			}
			changes = append(changes, change{ref: ref, quantity: next})
		}
	}
	for i, op := range in.SetFiniteOperations {
		field := fmt.Sprintf("setFiniteOperations[%d]", i)
		ref, e := find(field, op.VariantID)
		if e != nil {
			return fail(e)
		}
		q, e := quantity(field, op, 0)
		if e != nil {
			return fail(e)
		}
		changes = append(changes, change{ref: ref, quantity: q})
	}
	for i, id := range in.SetUnlimitedOperations {
		field := fmt.Sprintf("setUnlimitedOperations[%d]", i)
		ref, e := find(field, id)
		if e != nil {
			return fail(e)
		}
		// The last known quantity stays while stock is unlimited.
		changes = append(changes, change{ref: ref, quantity: ref.item().Quantity, unlimited: true})
	}
	stamped := map[*Product]bool{}
	for _, c := range changes {
		v := &c.ref.p.Variants[c.ref.i]
		if v.Stock.Quantity == c.quantity && v.Stock.Unlimited == c.unlimited {
			continue
		}
		v.Stock = Stock{Quantity: c.quantity, Unlimited: c.unlimited}
		if !stamped[c.ref.p] {
			stamped[c.ref.p] = true
			c.ref.p.ModifiedOn = s.stamp()
		}
	}
	s.idempotency[key] = idempotent{endpoint: endpoint, body: string(body)}
	a := Adjustment{Key: key, SetUnlimitedOperations: slices.Clone(in.SetUnlimitedOperations)}
	for _, g := range []struct {
		in  []quantityOperation
		out *[]StockOperation
	}{{in.IncrementOperations, &a.IncrementOperations}, {in.DecrementOperations, &a.DecrementOperations}, {in.SetFiniteOperations, &a.SetFiniteOperations}} {
		for _, op := range g.in {
			*g.out = append(*g.out, StockOperation{VariantID: op.VariantID, Quantity: *op.Quantity})
		}
	}
	s.adjustments = append(s.adjustments, a)
	return http.StatusNoContent, nil
}

// Adjustment is an inventory adjustment the shop applied (POST
// /1.0/commerce/inventory/adjustments): its Idempotency-Key and its operations. A request
// repeated with the key of an applied adjustment is not applied again, and not recorded.
type Adjustment struct {
	Key                    string
	IncrementOperations    []StockOperation
	DecrementOperations    []StockOperation
	SetFiniteOperations    []StockOperation
	SetUnlimitedOperations []string
}

// StockOperation is one operation of an adjustment: a variant and a quantity.
type StockOperation struct {
	VariantID string
	Quantity  int
}

// sortedVariantIDs lists the variants of the shop in inventory order. s.mu is held.
func (s *Server) sortedVariantIDs() []string {
	var keys []sortKey
	for id, p := range s.products {
		for i, v := range p.Variants {
			keys = append(keys, sortKey{fmt.Sprintf("%010d.%04d", s.seq[id], i), v.ID})
		}
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		if a.mod != b.mod {
			if a.mod < b.mod {
				return -1
			}
			return 1
		}
		return 0
	})
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.id
	}
	return ids
}
