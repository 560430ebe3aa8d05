package squarespacetest

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// This file is the test's side of the shop: what the shop owner does in the Squarespace admin
// (every change stamps modifiedOn as the API would), what a test inspects, and the request
// counts. Records returned are copies.

// SetStock sets a variant's stock to a finite quantity, as the owner does in the inventory
// panel.
func (s *Server) SetStock(variantID string, quantity int) error {
	return s.editStock(variantID, Stock{Quantity: quantity})
}

// SetUnlimited makes a variant's stock unlimited, keeping its last quantity.
func (s *Server) SetUnlimited(variantID string) error {
	s.mu.Lock()
	ref, ok := s.variant(variantID)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("squarespacetest: no variant %s", variantID)
	}
	return s.editStock(variantID, Stock{Quantity: ref.item().Quantity, Unlimited: true})
}

func (s *Server) editStock(variantID string, st Stock) error {
	if st.Quantity < 0 || st.Quantity > maxStock {
		return fmt.Errorf("squarespacetest: stock %d out of range", st.Quantity)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.variant(variantID)
	if !ok {
		return fmt.Errorf("squarespacetest: no variant %s", variantID)
	}
	ref.p.Variants[ref.i].Stock = st
	ref.p.ModifiedOn = s.stamp()
	return nil
}

// RenameProduct renames a product (its inventory descriptors follow).
func (s *Server) RenameProduct(productID, name string) error {
	return s.EditProduct(productID, func(p *Product) { p.Name = name })
}

// EditProduct changes a product with fn as the owner would in the product editor (any field,
// the variants' prices included) and stamps modifiedOn. The id, the variants' ids and the
// creation time stay.
func (s *Server) EditProduct(productID string, fn func(p *Product)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[productID]
	if !ok {
		return fmt.Errorf("squarespacetest: no product %s", productID)
	}
	next := clone(*p)
	fn(&next)
	if len(next.Variants) != len(p.Variants) {
		return fmt.Errorf("squarespacetest: EditProduct cannot add or remove variants")
	}
	next.ID, next.CreatedOn = p.ID, p.CreatedOn
	for i := range next.Variants {
		next.Variants[i].ID = p.Variants[i].ID
	}
	next.ModifiedOn = s.stamp()
	*p = next
	return nil
}

// AddProduct creates a product as the owner does in the admin: a PHYSICAL product with one
// variant of the SKU, price (in the site's currency) and stock.
func (s *Server) AddProduct(name, sku, price string, stock int) (Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ, page := "PHYSICAL", s.opts.StorePageID
	p, e := s.newProduct(productInput{Type: &typ, StorePageID: &page, Name: &name, IsVisible: ptr(true),
		Variants: []variantInput{{SKU: &sku, Pricing: &pricingInput{BasePrice: &Amount{Currency: s.opts.Currency, Value: price}}, Stock: &Stock{Quantity: stock}}}})
	if e != nil {
		return Product{}, e
	}
	return clone(*p), nil
}

// FulfillOrder marks an order fulfilled, as the owner does in the orders panel.
func (s *Server) FulfillOrder(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return fmt.Errorf("squarespacetest: no order %s", orderID)
	}
	if o.FulfillmentStatus == "CANCELED" {
		return fmt.Errorf("squarespacetest: order %s is canceled", orderID)
	}
	s.fulfil(o, nil)
	return nil
}

// CancelOrder cancels an order, as the owner does in the orders panel.
func (s *Server) CancelOrder(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return fmt.Errorf("squarespacetest: no order %s", orderID)
	}
	o.FulfillmentStatus = "CANCELED"
	o.ModifiedOn = s.stamp()
	return nil
}

// Products returns the products in creation order.
func (s *Server) Products() []Product {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Product, 0, len(s.products))
	for _, p := range s.products {
		out = append(out, clone(*p))
	}
	sort.Slice(out, func(i, j int) bool { return s.seq[out[i].ID] < s.seq[out[j].ID] })
	return out
}

// Product returns a product by id.
func (s *Server) Product(id string) (Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[id]
	if !ok {
		return Product{}, false
	}
	return clone(*p), true
}

// ProductBySKU returns the product that has a variant with the SKU.
func (s *Server) ProductBySKU(sku string) (Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.products {
		for _, v := range p.Variants {
			if v.SKU == sku {
				return clone(*p), true
			}
		}
	}
	return Product{}, false
}

// Inventory returns the inventory items in the order the Inventory API lists them.
func (s *Server) Inventory() []InventoryItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.sortedVariantIDs()
	out := make([]InventoryItem, 0, len(ids))
	for _, id := range ids {
		ref, _ := s.variant(id)
		out = append(out, ref.item())
	}
	return out
}

// InventoryItem returns the inventory item of a variant.
func (s *Server) InventoryItem(variantID string) (InventoryItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.variant(variantID)
	if !ok {
		return InventoryItem{}, false
	}
	return ref.item(), true
}

// Orders returns the orders by order number.
func (s *Server) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, clone(*o))
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].OrderNumber) != len(out[j].OrderNumber) {
			return len(out[i].OrderNumber) < len(out[j].OrderNumber)
		}
		return out[i].OrderNumber < out[j].OrderNumber
	})
	return out
}

// Order returns an order by id.
func (s *Server) Order(id string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, false
	}
	return clone(*o), true
}

// OrderByReference returns the imported order with the external order reference.
func (s *Server) OrderByReference(ref string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orders {
		if o.ExternalOrderReference != nil && *o.ExternalOrderReference == ref {
			return clone(*o), true
		}
	}
	return Order{}, false
}

// Throttle answers the next n requests (after authorization) with 429 Too Many Requests and
// the Retry-After of Options.RetryAfter: a burst of throttling, as when other apps share the
// key's rate limit.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// ThrottleEndpoint answers the next n requests to one endpoint (by its pattern, "POST
// /1.0/commerce/inventory/adjustments") with 429 Too Many Requests and the Retry-After of
// Options.RetryAfter, before they take effect.
func (s *Server) ThrottleEndpoint(endpoint string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleAt[endpoint] = n
}

// Throttled returns how many requests were answered with 429.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// FailAfter makes the next n authorized requests to an endpoint (by its pattern, "POST
// /1.0/commerce/inventory/adjustments") take effect and then answer 500 Internal Server Error
// instead of their response, as when the response is lost after the shop changed. A request
// throttled with 429 does not count.
func (s *Server) FailAfter(endpoint string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAfter[endpoint] = n
}

// Adjustments returns the inventory adjustments the shop applied, in order (requests repeated
// with the key of an applied adjustment are not among them).
func (s *Server) Adjustments() []Adjustment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.adjustments)
}

// Requests returns the number of requests received per endpoint, keyed by the endpoint's
// pattern ("GET /v2/commerce/products/{ids}"); requests to no endpoint are keyed by method and
// path. Refused requests (401, 429, 4xx) count too.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// Count returns the number of requests received by one endpoint, by its pattern.
func (s *Server) Count(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[endpoint]
}

// Total returns the number of requests received.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// ResetCounts sets the request counts (and the count of throttled requests) to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	s.throttled = 0
}

// UserAgents returns the User-Agent values of the authorized requests, sorted.
func (s *Server) UserAgents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.userAgents))
}
