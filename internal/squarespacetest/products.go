package squarespacetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// productInput is the body of POST /v2/commerce/products (create) and, for the fields marked,
// POST /v2/commerce/products/{id} (update).
type productInput struct {
	Type              *string        `json:"type"`
	StorePageID       *string        `json:"storePageId"`
	Name              *string        `json:"name"`        // update too
	Description       *string        `json:"description"` // update too
	URLSlug           *string        `json:"urlSlug"`     // update too
	Tags              []string       `json:"tags"`        // update too
	IsVisible         *bool          `json:"isVisible"`   // update too
	SEOOptions        *SEOOptions    `json:"seoOptions"`  // update too
	VariantAttributes []string       `json:"variantAttributes"`
	Variants          []variantInput `json:"variants"`
}

// productUpdatable are the fields POST /v2/commerce/products/{id} changes.
var productUpdatable = []string{"name", "description", "urlSlug", "tags", "isVisible", "seoOptions"}

// variantInput is a variant in a product create, or the body of a variant update (without
// stock there).
type variantInput struct {
	SKU                  *string            `json:"sku"`
	Pricing              *pricingInput      `json:"pricing"`
	Stock                *Stock             `json:"stock"`
	Attributes           map[string]string  `json:"attributes"`
	ShippingMeasurements *measurementsInput `json:"shippingMeasurements"`
}

// variantUpdatable are the fields POST /v2/commerce/products/{id}/variants/{variantId} changes.
var variantUpdatable = []string{"sku", "pricing", "attributes", "shippingMeasurements"}

type pricingInput struct {
	BasePrice *Amount `json:"basePrice"`
	OnSale    *bool   `json:"onSale"`
	SalePrice *Amount `json:"salePrice"`
}

type measurementsInput struct {
	Weight     *weightInput     `json:"weight"`
	Dimensions *dimensionsInput `json:"dimensions"`
}

type weightInput struct {
	Unit  *string  `json:"unit"`
	Value *float64 `json:"value"`
}

type dimensionsInput struct {
	Unit   *string  `json:"unit"`
	Length *float64 `json:"length"`
	Width  *float64 `json:"width"`
	Height *float64 `json:"height"`
}

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func (s *Server) listStorePages(r *http.Request) (int, any) {
	return http.StatusOK, map[string]any{
		"storePages": []map[string]any{{"id": s.opts.StorePageID, "title": "Shop", "isEnabled": true}},
		"pagination": pagination{},
	}
}

func (s *Server) listProducts(r *http.Request) (int, any) {
	c, e := listCursor(r.URL.Query(), "products", func(q map[string][]string) (string, *apiError) {
		types := first(q, "type")
		for _, t := range strings.Split(types, ",") {
			if t != "" && !slices.Contains([]string{"PHYSICAL", "SERVICE", "GIFT_CARD", "DIGITAL"}, t) {
				return "", invalid("type", "must be a comma-separated list of PHYSICAL, SERVICE, GIFT_CARD, DIGITAL")
			}
		}
		return types, nil
	})
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []sortKey
	for id, p := range s.products {
		if inRange(p.ModifiedOn, c.After, c.Before) && (c.Filter == "" || slices.Contains(strings.Split(c.Filter, ","), p.Type)) {
			keys = append(keys, sortKey{p.ModifiedOn, id})
		}
	}
	ids, pg := s.page(r, c, keys)
	out := make([]Product, 0, len(ids))
	for _, id := range ids {
		out = append(out, *s.products[id])
	}
	return http.StatusOK, map[string]any{"products": out, "pagination": pg}
}

func (s *Server) getProducts(r *http.Request) (int, any) {
	ids, e := splitIDs(r.PathValue("ids"))
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Product, 0, len(ids))
	for _, id := range ids {
		if p, ok := s.products[id]; ok {
			out = append(out, *p)
		}
	}
	if len(out) == 0 {
		return fail(notFound("Product"))
	}
	return http.StatusOK, map[string]any{"products": out}
}

func (s *Server) createProduct(r *http.Request) (int, any) {
	var in productInput
	if _, e := decode(r, &in); e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.newProduct(in)
	if e != nil {
		return fail(e)
	}
	return http.StatusCreated, *p
}

// newProduct validates a create and stores the product with its variants (and so their
// inventory items). s.mu is held.
func (s *Server) newProduct(in productInput) (*Product, *apiError) {
	switch {
	case in.Type == nil || *in.Type == "":
		return nil, missing("type")
	case *in.Type == "SERVICE" || *in.Type == "GIFT_CARD" || *in.Type == "DIGITAL":
		return nil, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "OPERATION_NOT_ALLOWED_FOR_PRODUCT_TYPE",
			message: "The emulator creates PHYSICAL products only; got " + *in.Type + "."}
	case *in.Type != "PHYSICAL":
		return nil, invalid("type", "must be PHYSICAL, SERVICE, GIFT_CARD or DIGITAL")
	}
	if in.StorePageID == nil || *in.StorePageID == "" {
		return nil, missing("storePageId")
	}
	if *in.StorePageID != s.opts.StorePageID {
		return nil, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "STORE_PAGE_NOT_FOUND",
			message: "No store page has the id " + *in.StorePageID + "."}
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return nil, missing("name")
	}
	if len(*in.Name) > 200 {
		return nil, invalid("name", "must be at most 200 characters")
	}
	if len(in.Variants) == 0 {
		return nil, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INSUFFICIENT_PRODUCT_VARIANTS",
			message: "A PHYSICAL product needs at least one variant."}
	}
	if len(in.Variants) > 1 && len(in.VariantAttributes) == 0 {
		return nil, invalid("variantAttributes", "are required for a product with more than one variant")
	}
	p := &Product{
		Type: "PHYSICAL", StorePageID: s.opts.StorePageID, Name: *in.Name,
		Tags: []string{}, VariantAttributes: []string{}, Images: []any{},
	}
	if in.Description != nil {
		p.Description = *in.Description
	}
	if in.IsVisible != nil {
		p.IsVisible = *in.IsVisible
	}
	if in.Tags != nil {
		p.Tags = in.Tags
	}
	if in.VariantAttributes != nil {
		p.VariantAttributes = in.VariantAttributes
	}
	p.SEOOptions = in.SEOOptions
	if in.URLSlug != nil {
		if e := s.checkSlug(*in.URLSlug, ""); e != nil {
			return nil, e
		}
		p.URLSlug = *in.URLSlug
	} else {
		p.URLSlug = s.freeSlug(slugify(p.Name))
	}
	seen := map[string]bool{}
	combos := map[string]bool{}
	for i, vi := range in.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		v := Variant{ID: s.uuid(), Attributes: map[string]string{}}
		v.ShippingMeasurements = s.defaultMeasurements()
		v.Pricing.SalePrice = s.zero()
		if vi.Pricing == nil || vi.Pricing.BasePrice == nil {
			return nil, missing(field + ".pricing.basePrice")
		}
		if e := s.applyVariant(p, &v, vi, field, ""); e != nil {
			return nil, e
		}
		if vi.Stock != nil {
			if vi.Stock.Quantity < 0 {
				return nil, invalid(field+".stock.quantity", "must not be negative")
			}
			v.Stock = *vi.Stock
		}
		if v.SKU == "" {
			v.SKU = fmt.Sprintf("SQ%07d", s.rng.IntN(10_000_000))
		}
		if seen[v.SKU] {
			return nil, skuTaken(field+".sku", v.SKU)
		}
		seen[v.SKU] = true
		combo := ""
		for _, a := range p.VariantAttributes {
			combo += a + "=" + v.Attributes[a] + ";"
		}
		if len(in.Variants) > 1 && combos[combo] {
			return nil, invalid(field+".attributes", "repeat another variant's attribute values")
		}
		combos[combo] = true
		p.Variants = append(p.Variants, v)
	}
	p.ID = s.objectID()
	p.CreatedOn = s.stamp()
	p.ModifiedOn = p.CreatedOn
	p.URL = s.opts.SiteURL + "/shop/p/" + p.URLSlug
	s.products[p.ID] = p
	s.nextSeq++
	s.seq[p.ID] = s.nextSeq
	return p, nil
}

func skuTaken(field, sku string) *apiError {
	return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "SKU_UNAVAILABLE",
		message: field + " " + sku + " is already in use.", details: map[string]any{"field": field}}
}

func (s *Server) defaultMeasurements() ShippingMeasurements {
	if s.opts.Imperial {
		return ShippingMeasurements{Weight: Weight{Unit: "POUND"}, Dimensions: Dimensions{Unit: "INCH"}}
	}
	return ShippingMeasurements{Weight: Weight{Unit: "KILOGRAM"}, Dimensions: Dimensions{Unit: "CENTIMETER"}}
}

// applyVariant applies the variant fields of a create or an update to v: SKU (unique in the
// site), pricing, attributes, shipping measurements. ownID is the variant being updated
// ("" for a new one). s.mu is held.
func (s *Server) applyVariant(p *Product, v *Variant, in variantInput, field, ownID string) *apiError {
	if in.SKU != nil {
		sku := strings.TrimSpace(*in.SKU)
		if sku == "" {
			return invalid(field+".sku", "must not be blank")
		}
		if len(sku) > 60 {
			return invalid(field+".sku", "must be at most 60 characters")
		}
		if s.skuInUse(sku, ownID) {
			return skuTaken(field+".sku", sku)
		}
		v.SKU = sku
	}
	if pr := in.Pricing; pr != nil {
		if pr.BasePrice != nil {
			a, e := s.normalizeAmount(field+".pricing.basePrice", *pr.BasePrice)
			if e != nil {
				return e
			}
			v.Pricing.BasePrice = a
		}
		if pr.SalePrice != nil {
			a, e := s.normalizeAmount(field+".pricing.salePrice", *pr.SalePrice)
			if e != nil {
				return e
			}
			v.Pricing.SalePrice = a
		}
		if pr.OnSale != nil {
			v.Pricing.OnSale = *pr.OnSale
		}
	}
	if in.Attributes != nil {
		for k := range in.Attributes {
			if !slices.Contains(p.VariantAttributes, k) {
				return invalid(field+".attributes."+k, "is not one of the product's variantAttributes")
			}
		}
		v.Attributes = in.Attributes
	}
	if m := in.ShippingMeasurements; m != nil {
		def := s.defaultMeasurements()
		if w := m.Weight; w != nil {
			if w.Unit != nil && *w.Unit != def.Weight.Unit {
				return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "MEASUREMENT_STANDARD_MISMATCH",
					message: fmt.Sprintf("%s.shippingMeasurements.weight.unit %s does not match the site's %s.", field, *w.Unit, def.Weight.Unit)}
			}
			if w.Value != nil {
				if *w.Value < 0 {
					return invalid(field+".shippingMeasurements.weight.value", "must not be negative")
				}
				v.ShippingMeasurements.Weight.Value = *w.Value
			}
		}
		if d := m.Dimensions; d != nil {
			if d.Unit != nil && *d.Unit != def.Dimensions.Unit {
				return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "MEASUREMENT_STANDARD_MISMATCH",
					message: fmt.Sprintf("%s.shippingMeasurements.dimensions.unit %s does not match the site's %s.", field, *d.Unit, def.Dimensions.Unit)}
			}
			for _, x := range []struct {
				v   *float64
				dst *float64
				n   string
			}{{d.Length, &v.ShippingMeasurements.Dimensions.Length, "length"}, {d.Width, &v.ShippingMeasurements.Dimensions.Width, "width"}, {d.Height, &v.ShippingMeasurements.Dimensions.Height, "height"}} {
				if x.v != nil {
					if *x.v < 0 {
						return invalid(field+".shippingMeasurements.dimensions."+x.n, "must not be negative")
					}
					*x.dst = *x.v
				}
			}
		}
	}
	return nil
}

// skuInUse reports whether a variant of the site other than ownID has the SKU (the variants
// of a product being created are checked by the caller). s.mu is held.
func (s *Server) skuInUse(sku, ownID string) bool {
	for _, q := range s.products {
		for _, v := range q.Variants {
			if v.SKU == sku && v.ID != ownID {
				return true
			}
		}
	}
	return false
}

// checkSlug refuses a malformed slug or one another product of the store page has. s.mu is
// held.
func (s *Server) checkSlug(slug, ownID string) *apiError {
	if !slugPattern.MatchString(slug) {
		return invalid("urlSlug", "must be lower-case letters and digits separated by hyphens")
	}
	for _, q := range s.products {
		if q.URLSlug == slug && q.ID != ownID {
			return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "URL_SLUG_UNAVAILABLE", message: "urlSlug " + slug + " is already in use."}
		}
	}
	return nil
}

// freeSlug returns base, or base-2, base-3, … when taken. s.mu is held.
func (s *Server) freeSlug(base string) string {
	slug := base
	for n := 2; s.checkSlug(slug, "") != nil; n++ {
		slug = fmt.Sprintf("%s-%d", base, n)
	}
	return slug
}

// onlyFields refuses a body with fields other than allowed, naming what to use instead.
func onlyFields(body []byte, allowed []string, elsewhere map[string]string) *apiError {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INVALID_ARGUMENT", message: "The request body must be a JSON object."}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			why := "cannot be changed with this endpoint"
			if w, ok := elsewhere[k]; ok {
				why += "; " + w
			}
			return invalid(k, why)
		}
	}
	return nil
}

// isNull reports whether the JSON object body has key with the value null.
func isNull(body []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	v, ok := m[key]
	return ok && string(v) == "null"
}

func (s *Server) updateProduct(r *http.Request) (int, any) {
	var in productInput
	body, e := decode(r, &in)
	if e == nil {
		e = onlyFields(body, productUpdatable, map[string]string{
			"variants": "use POST /v2/commerce/products/{productId}/variants/{variantId}",
			"id":       "it is read-only", "createdOn": "it is read-only", "modifiedOn": "it is read-only",
		})
	}
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[r.PathValue("id")]
	if !ok {
		return fail(notFound("Product"))
	}
	next := clone(*p)
	if in.Name != nil {
		if strings.TrimSpace(*in.Name) == "" {
			return fail(invalid("name", "must not be blank"))
		}
		if len(*in.Name) > 200 {
			return fail(invalid("name", "must be at most 200 characters"))
		}
		next.Name = *in.Name
	}
	if in.Description != nil {
		next.Description = *in.Description
	} else if isNull(body, "description") {
		next.Description = "" // null clears it
	}
	if in.URLSlug != nil {
		if e := s.checkSlug(*in.URLSlug, p.ID); e != nil {
			return fail(e)
		}
		next.URLSlug = *in.URLSlug
		next.URL = s.opts.SiteURL + "/shop/p/" + next.URLSlug
	}
	if in.Tags != nil {
		next.Tags = in.Tags
	}
	if in.IsVisible != nil {
		next.IsVisible = *in.IsVisible
	}
	if in.SEOOptions != nil {
		next.SEOOptions = in.SEOOptions
	}
	next.ModifiedOn = s.stamp()
	*p = next
	return http.StatusOK, *p
}

func (s *Server) updateVariant(r *http.Request) (int, any) {
	var in variantInput
	body, e := decode(r, &in)
	if e == nil {
		e = onlyFields(body, variantUpdatable, map[string]string{
			"stock": "stock changes only through POST /1.0/commerce/inventory/adjustments",
			"id":    "it is read-only", "image": "use the image endpoints",
		})
	}
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[r.PathValue("id")]
	if !ok {
		return fail(notFound("Product"))
	}
	i := slices.IndexFunc(p.Variants, func(v Variant) bool { return v.ID == r.PathValue("variantId") })
	if i < 0 {
		return fail(&apiError{status: 404, typ: "INVALID_REQUEST_ERROR", subtype: "PRODUCT_VARIANT_NOT_FOUND", message: "Product variant not found."})
	}
	v := clone(p.Variants[i])
	if e := s.applyVariant(p, &v, in, "variant", v.ID); e != nil {
		return fail(e)
	}
	p.Variants[i] = v
	p.ModifiedOn = s.stamp()
	return http.StatusOK, v
}

func (s *Server) deleteProduct(r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := s.products[id]; !ok {
		return fail(notFound("Product"))
	}
	delete(s.products, id)
	delete(s.seq, id)
	return http.StatusNoContent, nil
}
