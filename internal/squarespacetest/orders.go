package squarespacetest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// orderInput is the body of POST /1.0/commerce/orders: an order imported from a third-party
// sales channel.
type orderInput struct {
	ChannelName                            *string          `json:"channelName"`
	ExternalOrderReference                 *string          `json:"externalOrderReference"`
	CustomerEmail                          *string          `json:"customerEmail"`
	ShippingAddress                        *Address         `json:"shippingAddress"`
	BillingAddress                         *Address         `json:"billingAddress"`
	InventoryBehavior                      *string          `json:"inventoryBehavior"`
	LineItems                              []lineItemInput  `json:"lineItems"`
	ShippingLines                          []ShippingLine   `json:"shippingLines"`
	DiscountLines                          []DiscountLine   `json:"discountLines"`
	PriceTaxInterpretation                 *string          `json:"priceTaxInterpretation"`
	Subtotal                               *Amount          `json:"subtotal"`
	ShippingTotal                          *Amount          `json:"shippingTotal"`
	DiscountTotal                          *Amount          `json:"discountTotal"`
	TaxTotal                               *Amount          `json:"taxTotal"`
	GrandTotal                             *Amount          `json:"grandTotal"`
	FulfillmentStatus                      *string          `json:"fulfillmentStatus"`
	ShopperFulfillmentNotificationBehavior *string          `json:"shopperFulfillmentNotificationBehavior"`
	FulfilledOn                            *string          `json:"fulfilledOn"`
	Fulfillments                           *[]shipmentInput `json:"fulfillments"`
	CreatedOn                              *string          `json:"createdOn"`
}

// lineItemInput is a line item of an imported order: a PHYSICAL_PRODUCT names the variant
// sold (its SKU, if given, must be the variant's; its product name is the product's), a
// CUSTOM item has a title.
type lineItemInput struct {
	LineItemType     *string         `json:"lineItemType"`
	VariantID        *string         `json:"variantId"`
	SKU              *string         `json:"sku"`
	ProductName      *string         `json:"productName"`
	Title            *string         `json:"title"`
	Quantity         *int            `json:"quantity"`
	UnitPricePaid    *Amount         `json:"unitPricePaid"`
	NonSaleUnitPrice *Amount         `json:"nonSaleUnitPrice"`
	VariantOptions   []VariantOption `json:"variantOptions"`
}

// shipmentInput is a shipment of an imported order or of a fulfillment.
type shipmentInput struct {
	ShipDate       *string `json:"shipDate"`
	CarrierName    *string `json:"carrierName"`
	Service        *string `json:"service"`
	TrackingNumber *string `json:"trackingNumber"`
	TrackingURL    *string `json:"trackingUrl"`
}

// fulfillmentInput is the body of POST /1.0/commerce/orders/{id}/fulfillments.
type fulfillmentInput struct {
	ShouldSendNotification *bool           `json:"shouldSendNotification"`
	Shipments              []shipmentInput `json:"shipments"`
}

func (s *Server) listOrders(r *http.Request) (int, any) {
	c, e := listCursor(r.URL.Query(), "orders", func(q map[string][]string) (string, *apiError) {
		status := first(q, "fulfillmentStatus")
		if status != "" && !slices.Contains([]string{"PENDING", "FULFILLED", "CANCELED"}, status) {
			return "", invalid("fulfillmentStatus", "must be PENDING, FULFILLED or CANCELED")
		}
		for _, ps := range strings.Split(first(q, "paymentStates"), ",") {
			if ps != "" && !slices.Contains([]string{"NOT_CHARGED", "AUTHORIZED", "PAID", "REFUNDED", "PENDING", "FAILED", "REFUND_PENDING", "REFUND_FAILED", "PARTIALLY_PAID"}, ps) {
				return "", invalid("paymentStates", "has an unknown payment state "+ps)
			}
		}
		return status, nil
	})
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []sortKey
	for id, o := range s.orders {
		if inRange(o.ModifiedOn, c.After, c.Before) && (c.Filter == "" || o.FulfillmentStatus == c.Filter) {
			keys = append(keys, sortKey{o.ModifiedOn, id})
		}
	}
	ids, pg := s.page(r, c, keys)
	out := make([]Order, 0, len(ids))
	for _, id := range ids {
		out = append(out, *s.orders[id])
	}
	return http.StatusOK, map[string]any{"result": out, "pagination": pg}
}

func (s *Server) getOrder(r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[r.PathValue("id")]
	if !ok {
		return fail(notFound("Order"))
	}
	return http.StatusOK, *o
}

// createOrder imports an order. The Idempotency-Key header is required; a key seen before
// with the same body answers with the order the first request created.
func (s *Server) createOrder(r *http.Request) (int, any) {
	const endpoint = "POST /1.0/commerce/orders"
	key, e := idempotencyKey(r)
	if e != nil {
		return fail(e)
	}
	var in orderInput
	body, e := decode(r, &in)
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, seen, e := s.remembered(endpoint, key, body); e != nil {
		return fail(e)
	} else if seen {
		return http.StatusCreated, *s.orders[prev.id]
	}
	o, e := s.newOrder(in)
	if e != nil {
		return fail(e)
	}
	s.idempotency[key] = idempotent{endpoint: endpoint, body: string(body), id: o.ID}
	return http.StatusCreated, *o
}

// newOrder validates an import and stores the order. s.mu is held.
func (s *Server) newOrder(in orderInput) (*Order, *apiError) {
	text := func(field string, v *string, max int, required bool) (*string, *apiError) {
		if v == nil || strings.TrimSpace(*v) == "" {
			if required {
				return nil, missing(field)
			}
			return nil, nil
		}
		if len(*v) > max {
			return nil, invalid(field, fmt.Sprintf("must be at most %d characters", max))
		}
		return v, nil
	}
	channel, e := text("channelName", in.ChannelName, 30, true)
	if e != nil {
		return nil, e
	}
	ref, e := text("externalOrderReference", in.ExternalOrderReference, 200, true)
	if e != nil {
		return nil, e
	}
	if in.CustomerEmail != nil && *in.CustomerEmail != "" && !strings.Contains(*in.CustomerEmail, "@") {
		return nil, invalid("customerEmail", "is not an e-mail address")
	}
	if in.CreatedOn == nil || *in.CreatedOn == "" {
		return nil, missing("createdOn")
	}
	created, ok := parseTime(*in.CreatedOn)
	if !ok {
		return nil, invalid("createdOn", "is not a valid ISO 8601 UTC date and time")
	}
	if in.PriceTaxInterpretation == nil {
		return nil, missing("priceTaxInterpretation")
	}
	if *in.PriceTaxInterpretation != "EXCLUSIVE" && *in.PriceTaxInterpretation != "INCLUSIVE" {
		return nil, invalid("priceTaxInterpretation", "must be EXCLUSIVE or INCLUSIVE")
	}
	status := "PENDING"
	if in.FulfillmentStatus != nil {
		status = *in.FulfillmentStatus
	}
	if status != "PENDING" && status != "FULFILLED" {
		return nil, invalid("fulfillmentStatus", "must be PENDING or FULFILLED for an imported order")
	}
	var fulfilledOn *string
	if status == "FULFILLED" {
		if in.FulfilledOn == nil || *in.FulfilledOn == "" {
			return nil, invalid("fulfilledOn", "is required when fulfillmentStatus is FULFILLED")
		}
		t, ok := parseTime(*in.FulfilledOn)
		if !ok {
			return nil, invalid("fulfilledOn", "is not a valid ISO 8601 UTC date and time")
		}
		fulfilledOn = ptr(formatTime(t))
	}
	inventory := "SKIP"
	if in.InventoryBehavior != nil {
		inventory = *in.InventoryBehavior
	}
	if inventory != "SKIP" && inventory != "DEDUCT" {
		return nil, invalid("inventoryBehavior", "must be DEDUCT or SKIP")
	}
	if b := in.ShopperFulfillmentNotificationBehavior; b != nil && *b != "SEND" && *b != "SKIP" {
		return nil, invalid("shopperFulfillmentNotificationBehavior", "must be SEND or SKIP")
	}
	if in.Fulfillments == nil {
		return nil, missing("fulfillments")
	}
	shipments, e := s.shipments("fulfillments", *in.Fulfillments)
	if e != nil {
		return nil, e
	}
	if len(in.LineItems) == 0 {
		return nil, missing("lineItems")
	}
	o := &Order{
		Channel: "web", CustomerEmail: in.CustomerEmail, FulfillmentStatus: status,
		InternalNotes: []any{}, ShippingLines: []ShippingLine{}, DiscountLines: []DiscountLine{},
		Fulfillments: shipments, ChannelName: channel, ExternalOrderReference: ref,
		FulfilledOn: fulfilledOn, PriceTaxInterpretation: *in.PriceTaxInterpretation,
		RefundedTotal: s.zero(),
	}
	if in.BillingAddress != nil {
		o.BillingAddress = *in.BillingAddress
	}
	if in.ShippingAddress != nil {
		o.ShippingAddress = *in.ShippingAddress
	}
	deduct := map[string]int{}
	for i, li := range in.LineItems {
		field := fmt.Sprintf("lineItems[%d]", i)
		item := LineItem{ID: s.objectID(), VariantOptions: []VariantOption{}}
		if li.LineItemType == nil {
			return nil, missing(field + ".lineItemType")
		}
		if li.Quantity == nil {
			return nil, missing(field + ".quantity")
		}
		if *li.Quantity < 1 || *li.Quantity > 1_000_000 {
			return nil, invalid(field+".quantity", "must be between 1 and 1000000")
		}
		item.Quantity = *li.Quantity
		if li.UnitPricePaid == nil {
			return nil, missing(field + ".unitPricePaid")
		}
		a, e := s.normalizeAmount(field+".unitPricePaid", *li.UnitPricePaid)
		if e != nil {
			return nil, e
		}
		item.UnitPricePaid = a
		if li.NonSaleUnitPrice != nil {
			if _, e := s.normalizeAmount(field+".nonSaleUnitPrice", *li.NonSaleUnitPrice); e != nil {
				return nil, e
			}
		}
		switch *li.LineItemType {
		case "PHYSICAL_PRODUCT":
			if li.VariantID == nil || *li.VariantID == "" {
				return nil, invalid(field+".variantId", "is required when lineItemType is PHYSICAL_PRODUCT")
			}
			vr, ok := s.variant(*li.VariantID)
			if !ok {
				return nil, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "PRODUCT_VARIANT_NOT_FOUND",
					message: field + ".variantId " + *li.VariantID + " is not a product variant of the site.", details: map[string]any{"field": field + ".variantId"}}
			}
			v := vr.p.Variants[vr.i]
			if li.SKU != nil && *li.SKU != v.SKU {
				return nil, invalid(field+".sku", "is not the SKU of variant "+v.ID)
			}
			item.VariantID, item.SKU, item.ProductID = ptr(v.ID), ptr(v.SKU), ptr(vr.p.ID)
			item.ProductName = vr.p.Name
			item.Weight = v.ShippingMeasurements.Weight.Value
			item.Length = v.ShippingMeasurements.Dimensions.Length
			item.Width = v.ShippingMeasurements.Dimensions.Width
			item.Height = v.ShippingMeasurements.Dimensions.Height
			for _, attr := range vr.p.VariantAttributes {
				item.VariantOptions = append(item.VariantOptions, VariantOption{OptionName: attr, Value: v.Attributes[attr]})
			}
			item.LineItemType = "PHYSICAL_PRODUCT"
			if inventory == "DEDUCT" && !v.Stock.Unlimited {
				deduct[v.ID] += item.Quantity
			}
		case "CUSTOM":
			if li.Title == nil || strings.TrimSpace(*li.Title) == "" {
				return nil, invalid(field+".title", "is required when lineItemType is CUSTOM")
			}
			item.ProductName = *li.Title
			item.LineItemType = "CUSTOM"
		default:
			return nil, invalid(field+".lineItemType", "must be PHYSICAL_PRODUCT or CUSTOM")
		}
		o.LineItems = append(o.LineItems, item)
	}
	if len(in.ShippingLines) > 1 {
		return nil, invalid("shippingLines", "accepts only one shipping entry")
	}
	for i, sl := range in.ShippingLines {
		field := fmt.Sprintf("shippingLines[%d]", i)
		if sl.Method == "" {
			return nil, missing(field + ".method")
		}
		a, e := s.normalizeAmount(field+".amount", sl.Amount)
		if e != nil {
			return nil, e
		}
		o.ShippingLines = append(o.ShippingLines, ShippingLine{Method: sl.Method, Amount: a})
	}
	for i, dl := range in.DiscountLines {
		a, e := s.normalizeAmount(fmt.Sprintf("discountLines[%d].amount", i), dl.Amount)
		if e != nil {
			return nil, e
		}
		dl.Amount = a
		o.DiscountLines = append(o.DiscountLines, dl)
	}
	if in.GrandTotal == nil {
		return nil, missing("grandTotal")
	}
	for _, t := range []struct {
		field string
		in    *Amount
		out   *Amount
	}{{"subtotal", in.Subtotal, &o.Subtotal}, {"shippingTotal", in.ShippingTotal, &o.ShippingTotal},
		{"discountTotal", in.DiscountTotal, &o.DiscountTotal}, {"taxTotal", in.TaxTotal, &o.TaxTotal}, {"grandTotal", in.GrandTotal, &o.GrandTotal}} {
		if t.in == nil {
			*t.out = s.zero()
			continue
		}
		a, e := s.normalizeAmount(t.field, *t.in)
		if e != nil {
			return nil, e
		}
		*t.out = a
	}
	for id, q := range deduct {
		vr, _ := s.variant(id)
		if have := vr.p.Variants[vr.i].Stock.Quantity; have < q {
			return nil, &apiError{status: 409, typ: "CONFLICT", subtype: "INSUFFICIENT_STOCK",
				message: fmt.Sprintf("Variant %s has %d in stock, fewer than the %d ordered.", id, have, q)}
		}
	}
	for id, q := range deduct {
		vr, _ := s.variant(id)
		vr.p.Variants[vr.i].Stock.Quantity -= q
		vr.p.ModifiedOn = s.stamp()
	}
	o.ID = s.objectID()
	o.OrderNumber = fmt.Sprint(s.nextOrder)
	s.nextOrder++
	o.CreatedOn = formatTime(created)
	o.ModifiedOn = s.stamp()
	s.orders[o.ID] = o
	return o, nil
}

// shipments validates shipments: carrier, service, ship date and tracking number required.
func (s *Server) shipments(field string, in []shipmentInput) ([]Shipment, *apiError) {
	if len(in) > 100 {
		return nil, invalid(field, "must hold at most 100 shipments")
	}
	out := []Shipment{}
	for i, sh := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		for _, req := range []struct {
			v *string
			n string
		}{{sh.ShipDate, "shipDate"}, {sh.CarrierName, "carrierName"}, {sh.Service, "service"}, {sh.TrackingNumber, "trackingNumber"}} {
			if req.v == nil || *req.v == "" {
				return nil, missing(f + "." + req.n)
			}
		}
		t, ok := parseTime(*sh.ShipDate)
		if !ok {
			return nil, invalid(f+".shipDate", "is not a valid ISO 8601 UTC date and time")
		}
		if sh.TrackingURL != nil && !strings.HasPrefix(*sh.TrackingURL, "http://") && !strings.HasPrefix(*sh.TrackingURL, "https://") {
			return nil, invalid(f+".trackingUrl", "is not a valid URL")
		}
		out = append(out, Shipment{ShipDate: formatTime(t), CarrierName: *sh.CarrierName, Service: sh.Service, TrackingNumber: *sh.TrackingNumber, TrackingURL: sh.TrackingURL})
	}
	return out, nil
}

// fulfillOrder marks an order FULFILLED and adds the shipments; 204.
func (s *Server) fulfillOrder(r *http.Request) (int, any) {
	var in fulfillmentInput
	if _, e := decode(r, &in); e != nil {
		return fail(e)
	}
	if in.ShouldSendNotification == nil {
		return fail(missing("shouldSendNotification"))
	}
	shipments, e := s.shipments("shipments", in.Shipments)
	if e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[r.PathValue("id")]
	if !ok {
		return fail(notFound("Order"))
	}
	if o.FulfillmentStatus == "CANCELED" {
		return fail(&apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INVALID_ARGUMENT", message: "A canceled order cannot be fulfilled."})
	}
	s.fulfil(o, shipments)
	return http.StatusNoContent, nil
}

// fulfil marks an order FULFILLED with the shipments added. s.mu is held.
func (s *Server) fulfil(o *Order, shipments []Shipment) {
	o.Fulfillments = append(o.Fulfillments, shipments...)
	o.ModifiedOn = s.stamp()
	if o.FulfillmentStatus != "FULFILLED" {
		o.FulfillmentStatus = "FULFILLED"
		o.FulfilledOn = ptr(o.ModifiedOn)
	}
}
