package squarespacetest

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// Amount is a monetary amount as the Commerce APIs send it: an ISO 4217 currency and a decimal
// value as a string at the currency's precision ("8.90").
type Amount struct {
	Currency string `json:"currency"`
	Value    string `json:"value"`
}

// Pricing holds a variant's prices.
type Pricing struct {
	BasePrice Amount `json:"basePrice"`
	OnSale    bool   `json:"onSale"`
	SalePrice Amount `json:"salePrice"`
}

// Stock is a variant's stock as the Products API shows it (read-only there: the Inventory API
// changes it).
type Stock struct {
	Quantity  int  `json:"quantity"`
	Unlimited bool `json:"unlimited"`
}

// Weight is a shipping weight.
type Weight struct {
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
}

// Dimensions are shipping dimensions.
type Dimensions struct {
	Unit   string  `json:"unit"`
	Length float64 `json:"length"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

// ShippingMeasurements are a variant's shipping weight and dimensions.
type ShippingMeasurements struct {
	Weight     Weight     `json:"weight"`
	Dimensions Dimensions `json:"dimensions"`
}

// Variant is a ProductVariant of the Products API v2.
type Variant struct {
	ID                   string               `json:"id"`
	SKU                  string               `json:"sku"`
	Pricing              Pricing              `json:"pricing"`
	Stock                Stock                `json:"stock"`
	Attributes           map[string]string    `json:"attributes"`
	ShippingMeasurements ShippingMeasurements `json:"shippingMeasurements"`
	Image                *VariantImage        `json:"image"`
}

// VariantImage is the image assigned to a variant.
type VariantImage struct {
	ID      string  `json:"id"`
	AltText *string `json:"altText"`
	URL     string  `json:"url"`
}

// SEOOptions are a product page's search engine options.
type SEOOptions struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
}

// Product is a Product of the Products API v2. The emulator creates PHYSICAL products only.
type Product struct {
	ID                string      `json:"id"`
	Type              string      `json:"type"`
	StorePageID       string      `json:"storePageId"`
	Name              string      `json:"name"`
	Description       string      `json:"description"`
	URL               string      `json:"url"`
	URLSlug           string      `json:"urlSlug"`
	Tags              []string    `json:"tags"`
	IsVisible         bool        `json:"isVisible"`
	SEOOptions        *SEOOptions `json:"seoOptions"`
	VariantAttributes []string    `json:"variantAttributes"`
	Variants          []Variant   `json:"variants"`
	Images            []any       `json:"images"`
	CreatedOn         string      `json:"createdOn"`
	ModifiedOn        string      `json:"modifiedOn"`
}

// InventoryItem is an InventoryItem of the Inventory API: the stock of one variant. Its sku
// and descriptor come from the product (read-only here).
type InventoryItem struct {
	VariantID   string `json:"variantId"`
	SKU         string `json:"sku"`
	Descriptor  string `json:"descriptor"`
	IsUnlimited bool   `json:"isUnlimited"`
	Quantity    int    `json:"quantity"`
}

// Address is a postal address of an order; fields the customer left out are null.
type Address struct {
	FirstName   *string `json:"firstName"`
	LastName    *string `json:"lastName"`
	Address1    *string `json:"address1"`
	Address2    *string `json:"address2"`
	City        *string `json:"city"`
	State       *string `json:"state"`
	CountryCode *string `json:"countryCode"`
	PostalCode  *string `json:"postalCode"`
	Phone       *string `json:"phone"`
}

// VariantOption is a variant choice of a line item.
type VariantOption struct {
	OptionName string `json:"optionName"`
	Value      string `json:"value"`
}

// LineItem is a purchased item of an order. Line items are immutable after the order exists.
type LineItem struct {
	ID             string          `json:"id"`
	VariantID      *string         `json:"variantId"`
	SKU            *string         `json:"sku"`
	Weight         float64         `json:"weight"`
	Width          float64         `json:"width"`
	Length         float64         `json:"length"`
	Height         float64         `json:"height"`
	ProductID      *string         `json:"productId"`
	ProductName    string          `json:"productName"`
	Quantity       int             `json:"quantity"`
	UnitPricePaid  Amount          `json:"unitPricePaid"`
	VariantOptions []VariantOption `json:"variantOptions"`
	Customizations []any           `json:"customizations"`
	ImageURL       *string         `json:"imageUrl"`
	LineItemType   string          `json:"lineItemType"`
}

// Shipment is a fulfillment (shipment) of an order.
type Shipment struct {
	ShipDate       string  `json:"shipDate"`
	CarrierName    string  `json:"carrierName"`
	Service        *string `json:"service"`
	TrackingNumber string  `json:"trackingNumber"`
	TrackingURL    *string `json:"trackingUrl"`
}

// ShippingLine is a shipping option chosen at checkout.
type ShippingLine struct {
	Method string `json:"method"`
	Amount Amount `json:"amount"`
}

// DiscountLine is a promotion redeemed at checkout.
type DiscountLine struct {
	Description *string `json:"description"`
	Name        *string `json:"name"`
	Amount      Amount  `json:"amount"`
	PromoCode   *string `json:"promoCode"`
}

// Order is an Order of the Orders API.
type Order struct {
	ID                     string         `json:"id"`
	OrderNumber            string         `json:"orderNumber"`
	CreatedOn              string         `json:"createdOn"`
	ModifiedOn             string         `json:"modifiedOn"`
	Channel                string         `json:"channel"`
	Testmode               bool           `json:"testmode"`
	CustomerEmail          *string        `json:"customerEmail"`
	CustomerID             *string        `json:"customerId"`
	BillingAddress         Address        `json:"billingAddress"`
	ShippingAddress        Address        `json:"shippingAddress"`
	FulfillmentStatus      string         `json:"fulfillmentStatus"`
	LineItems              []LineItem     `json:"lineItems"`
	InternalNotes          []any          `json:"internalNotes"`
	ShippingLines          []ShippingLine `json:"shippingLines"`
	DiscountLines          []DiscountLine `json:"discountLines"`
	FormSubmission         []any          `json:"formSubmission"`
	Fulfillments           []Shipment     `json:"fulfillments"`
	Subtotal               Amount         `json:"subtotal"`
	ShippingTotal          Amount         `json:"shippingTotal"`
	DiscountTotal          Amount         `json:"discountTotal"`
	TaxTotal               Amount         `json:"taxTotal"`
	RefundedTotal          Amount         `json:"refundedTotal"`
	GrandTotal             Amount         `json:"grandTotal"`
	ChannelName            *string        `json:"channelName"`
	ExternalOrderReference *string        `json:"externalOrderReference"`
	FulfilledOn            *string        `json:"fulfilledOn"`
	PriceTaxInterpretation string         `json:"priceTaxInterpretation"`
}

// clone deep-copies a value through JSON, so that callers never share the server's records.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// fractionDigits is the precision of the currencies the emulator knows; others have 2.
var fractionDigits = map[string]int{"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "HUF": 2}

var decimalText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// maxAmount is the largest amount the Commerce APIs accept.
var maxAmount = big.NewRat(1_000_000, 1)

// normalizeAmount checks an amount (currency as the site's, a decimal value no finer than the
// currency's precision, 0 to 1,000,000) and returns it with the value at the currency's
// precision, as Squarespace stores it ("10" → "10.00").
func (s *Server) normalizeAmount(field string, a Amount) (Amount, *apiError) {
	if a.Currency == "" {
		return a, missing(field + ".currency")
	}
	if !currencyCode.MatchString(a.Currency) {
		return a, invalid(field+".currency", "must be an ISO 4217 currency code")
	}
	if a.Currency != s.opts.Currency {
		return a, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "CURRENCY_MISMATCH",
			message: fmt.Sprintf("%s.currency %s does not match the site currency %s", field, a.Currency, s.opts.Currency)}
	}
	if a.Value == "" {
		return a, missing(field + ".value")
	}
	if !decimalText.MatchString(a.Value) {
		return a, invalid(field+".value", "must be a decimal number as a string, e.g. \"10.50\"")
	}
	r, _ := new(big.Rat).SetString(a.Value)
	digits := 2
	if d, ok := fractionDigits[a.Currency]; ok {
		digits = d
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil)))
	if !scaled.IsInt() {
		return a, invalid(field+".value", fmt.Sprintf("has more than %d decimal places for %s", digits, a.Currency))
	}
	if r.Sign() < 0 || r.Cmp(maxAmount) > 0 {
		return a, invalid(field+".value", "must be between 0 and 1000000")
	}
	return Amount{Currency: a.Currency, Value: r.FloatString(digits)}, nil
}

// zero is an amount of 0 in the site's currency.
func (s *Server) zero() Amount {
	digits := 2
	if d, ok := fractionDigits[s.opts.Currency]; ok {
		digits = d
	}
	return Amount{Currency: s.opts.Currency, Value: new(big.Rat).FloatString(digits)}
}

var slugUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// slugify makes a URL slug of a product name, as Squarespace does.
func slugify(name string) string {
	s := strings.Trim(slugUnsafe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if s == "" {
		s = "product"
	}
	return s
}

// descriptor is the inventory descriptor Squarespace generates from the product name and the
// variant's attribute values: "Olive Oil [Green, Large]".
func descriptor(p *Product, v *Variant) string {
	var vals []string
	for _, a := range p.VariantAttributes {
		if x, ok := v.Attributes[a]; ok && x != "" {
			vals = append(vals, x)
		}
	}
	if len(vals) == 0 {
		return p.Name
	}
	return p.Name + " [" + strings.Join(vals, ", ") + "]"
}

func ptr[T any](v T) *T { return &v }
