package docs_test

import (
	"testing"

	"github.com/dataflow-sync/dataflow/engine/docs"
)

// ---------------------------------------------------------------------------------------------
// Whole documents, both formats, both directions: the layout of the seed document, properties
// by direction, list properties as dotted element rows, computed properties, N/A types.

const wholeFlows = `dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: product-to-item
    source: Product
    target: Item
    create: never
    merge:
      - [{source: sku, target: sku}]
    properties:
      - {source: sku, target: sku}
      - {source: name, target: title, sync: to-target}
      - {source: stock, target: quantity}
      - {source: price, target: price, to_target: "amount(price)", to_source: "decimal(price)"}
      - {source: remark, target: note, sync: to-source}
      - {source: sku, target: extra, sync: to-target}
      - {target: slug, to_target: "lower(name)", sync: to-target}
  - id: order-to-sale
    source: Order
    target: Sale
    when: {expr: "total > 0", describe: has a total}
    properties:
      - {source: customer_id, target: buyerId}
      - {source: total, target: total, sync: to-target}
      - source: lines
        target: items
        properties:
          - {source: product_id, target: itemId, ref: product-to-item}
          - {source: qty, target: count}
`

func TestWholeDocumentRST(t *testing.T) {
	ds := crmShop(t).dataflow(wholeFlows).build()
	checkText(t, "forward", docs.RST(ds["crm-to-shop"]), `=============================
Acme CRM to Web Shop Dataflow
=============================

Generated: 2024-11-06 00:00:01

Introduction
------------

This document describes the dataflow from Acme CRM to Web Shop: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

Acme CRM Product to Web Shop Item
---------------------------------
Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.

A Acme CRM Product will merge with a Web Shop Item if one of the following property combinations match:

.. list-table::
   :header-rows: 1

   * - Acme CRM Product Property
     - Web Shop Item Property
   * - sku
     - sku

Once a link between a Acme CRM Product and a Web Shop Item is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Product and a Web Shop Item:

.. list-table::
   :header-rows: 1

   * - Acme CRM Product Property
     - Web Shop Item Property
     - Web Shop Data Type
   * - sku
     - sku
     - "string"
   * - name
     - title
     - "string"
   * - stock
     - quantity
     - "integer"
   * - price
     - price
     - "string"
   * - sku
     - extra
     - N/A
   * - (computed: lower(name))
     - slug
     - N/A


Acme CRM Order to Web Shop Sale
-------------------------------
When a Acme CRM Order has a total, it will be synchronized with a Web Shop Sale.

Once a link between a Acme CRM Order and a Web Shop Sale is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Order and a Web Shop Sale:

.. list-table::
   :header-rows: 1

   * - Acme CRM Order Property
     - Web Shop Sale Property
     - Web Shop Data Type
   * - customer_id
     - buyerId
     - "string"
   * - total
     - total
     - "number"
   * - lines.product_id
     - items.itemId
     - "string"
   * - lines.qty
     - items.count
     - "integer"
`)
	checkText(t, "reverse", docs.RST(ds["crm-to-shop.reverse"]), `=============================
Web Shop to Acme CRM Dataflow
=============================

Generated: 2024-11-06 00:00:01

Introduction
------------

This document describes the dataflow from Web Shop to Acme CRM: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

Web Shop Item to Acme CRM Product
---------------------------------
Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.

A Web Shop Item will merge with a Acme CRM Product if one of the following property combinations match:

.. list-table::
   :header-rows: 1

   * - Web Shop Item Property
     - Acme CRM Product Property
   * - sku
     - sku

Once a link between a Web Shop Item and a Acme CRM Product is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Item and a Acme CRM Product:

.. list-table::
   :header-rows: 1

   * - Web Shop Item Property
     - Acme CRM Product Property
     - Acme CRM Data Type
   * - sku
     - sku
     - "string"
   * - quantity
     - stock
     - "integer"
   * - price
     - price
     - "number"
   * - note
     - remark
     - "string"


Web Shop Sale to Acme CRM Order
-------------------------------
Before any synchronization can take place, a link between a Web Shop Sale and a Acme CRM Order must be established.

Once a link between a Web Shop Sale and a Acme CRM Order is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Sale and a Acme CRM Order:

.. list-table::
   :header-rows: 1

   * - Web Shop Sale Property
     - Acme CRM Order Property
     - Acme CRM Data Type
   * - buyerId
     - customer_id
     - "string"
   * - items.itemId
     - lines.product_id
     - "string"
   * - items.count
     - lines.qty
     - "integer"
`)
}

func TestWholeDocumentMarkdown(t *testing.T) {
	ds := crmShop(t).dataflow(wholeFlows).build()
	checkText(t, "forward", docs.Markdown(ds["crm-to-shop"]), `# Acme CRM to Web Shop Dataflow

Generated: 2024-11-06 00:00:01

## Introduction

This document describes the dataflow from Acme CRM to Web Shop: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

## Acme CRM Product to Web Shop Item

Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.

A Acme CRM Product will merge with a Web Shop Item if one of the following property combinations match:

| Acme CRM Product Property | Web Shop Item Property |
| --- | --- |
| sku | sku |

Once a link between a Acme CRM Product and a Web Shop Item is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Product and a Web Shop Item:

| Acme CRM Product Property | Web Shop Item Property | Web Shop Data Type |
| --- | --- | --- |
| sku | sku | "string" |
| name | title | "string" |
| stock | quantity | "integer" |
| price | price | "string" |
| sku | extra | N/A |
| (computed: lower(name)) | slug | N/A |


## Acme CRM Order to Web Shop Sale

When a Acme CRM Order has a total, it will be synchronized with a Web Shop Sale.

Once a link between a Acme CRM Order and a Web Shop Sale is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Order and a Web Shop Sale:

| Acme CRM Order Property | Web Shop Sale Property | Web Shop Data Type |
| --- | --- | --- |
| customer\_id | buyerId | "string" |
| total | total | "number" |
| lines.product\_id | items.itemId | "string" |
| lines.qty | items.count | "integer" |
`)
	checkText(t, "reverse", docs.Markdown(ds["crm-to-shop.reverse"]), `# Web Shop to Acme CRM Dataflow

Generated: 2024-11-06 00:00:01

## Introduction

This document describes the dataflow from Web Shop to Acme CRM: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

## Web Shop Item to Acme CRM Product

Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.

A Web Shop Item will merge with a Acme CRM Product if one of the following property combinations match:

| Web Shop Item Property | Acme CRM Product Property |
| --- | --- |
| sku | sku |

Once a link between a Web Shop Item and a Acme CRM Product is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Item and a Acme CRM Product:

| Web Shop Item Property | Acme CRM Product Property | Acme CRM Data Type |
| --- | --- | --- |
| sku | sku | "string" |
| quantity | stock | "integer" |
| price | price | "number" |
| note | remark | "string" |


## Web Shop Sale to Acme CRM Order

Before any synchronization can take place, a link between a Web Shop Sale and a Acme CRM Order must be established.

Once a link between a Web Shop Sale and a Acme CRM Order is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Sale and a Acme CRM Order:

| Web Shop Sale Property | Acme CRM Order Property | Acme CRM Data Type |
| --- | --- | --- |
| buyerId | customer\_id | "string" |
| items.itemId | lines.product\_id | "string" |
| items.count | lines.qty | "integer" |
`)
}

// The Introduction is configurable, with {source} and {target} standing for the system names
// of the document's direction.
func TestIntroduction(t *testing.T) {
	ds := crmShop(t).dataflow(`dataflow: crm-to-shop
source: crm
target: shop
introduction: |
  QA checklist for {source} to {target}.
flows:
  - id: product-to-item
    source: Product
    target: Item
    properties:
      - {source: sku, target: sku}
`).build()
	if got, want := ds["crm-to-shop"].Introduction, "QA checklist for Acme CRM to Web Shop."; got != want {
		t.Errorf("forward: got %q, want %q", got, want)
	}
	if got, want := ds["crm-to-shop.reverse"].Introduction, "QA checklist for Web Shop to Acme CRM."; got != want {
		t.Errorf("reverse: got %q, want %q", got, want)
	}
}
