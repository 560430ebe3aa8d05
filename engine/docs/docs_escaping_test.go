package docs_test

import (
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/docs"
)

// ---------------------------------------------------------------------------------------------
// Escaping: names come from user files and must come out of the renderers as written.

func escapingProject(t *testing.T) *project {
	return newProject(t).
		system("star", "*Star* Shop_", ent("Item_", prop("price_", typ("number")), prop("`code`", typ("string")),
			prop("a|b", typ("string")), prop("x*y", typ("string")))).
		system("plain", "Plain", ent("Thing", prop("p", typ("number")), prop("c", typ("string")),
			prop("pipe", typ("string")), prop("star", typ("string")))).
		dataflow(withBackquotes(`dataflow: star-to-plain
source: star
target: plain
flows:
  - id: item-to-thing
    source: Item_
    target: Thing
    when: {expr: "price_ > 0", describe: "costs *something*"}
    merge:
      - [{source: "a|b", target: pipe}, {source: "{bq}code{bq}", target: c}]
    properties:
      - {source: price_, target: p}
      - {source: "{bq}code{bq}", target: c}
      - {source: "a|b", target: pipe}
      - {source: "x*y", target: star}
`))
}

// withBackquotes puts the backquotes, which a Go raw string cannot hold, in place of {bq}.
func withBackquotes(s string) string { return strings.ReplaceAll(s, "{bq}", "`") }

func TestEscapingRST(t *testing.T) {
	d := escapingProject(t).build()["star-to-plain"]
	checkText(t, "rst", docs.RST(d), withBackquotes(`=================================
\*Star\* Shop\_ to Plain Dataflow
=================================

Generated: 2024-11-06 00:00:01

Introduction
------------

This document describes the dataflow from \*Star\* Shop\_ to Plain: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

\*Star\* Shop\_ Item\_ to Plain Thing
-------------------------------------
When a \*Star\* Shop\_ Item\_ costs \*something\*, it will be synchronized with a Plain Thing.

A \*Star\* Shop\_ Item\_ will merge with a Plain Thing if one of the following property combinations match:

.. list-table::
   :header-rows: 1

   * - \*Star\* Shop\_ Item\_ Property
     - Plain Thing Property
   * - a\|b
     - pipe
   * - \{bq}code\{bq}
     - c

Once a link between a \*Star\* Shop\_ Item\_ and a Plain Thing is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the \*Star\* Shop\_ value wins.

The following properties are synchronized between a \*Star\* Shop\_ Item\_ and a Plain Thing:

.. list-table::
   :header-rows: 1

   * - \*Star\* Shop\_ Item\_ Property
     - Plain Thing Property
     - Plain Data Type
   * - price\_
     - p
     - "number"
   * - \{bq}code\{bq}
     - c
     - "string"
   * - a\|b
     - pipe
     - "string"
   * - x\*y
     - star
     - "string"
`))
}

func TestEscapingMarkdown(t *testing.T) {
	d := escapingProject(t).build()["star-to-plain"]
	checkText(t, "md", docs.Markdown(d), withBackquotes(`# \*Star\* Shop\_ to Plain Dataflow

Generated: 2024-11-06 00:00:01

## Introduction

This document describes the dataflow from \*Star\* Shop\_ to Plain: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

## \*Star\* Shop\_ Item\_ to Plain Thing

When a \*Star\* Shop\_ Item\_ costs \*something\*, it will be synchronized with a Plain Thing.

A \*Star\* Shop\_ Item\_ will merge with a Plain Thing if one of the following property combinations match:

| \*Star\* Shop\_ Item\_ Property | Plain Thing Property |
| --- | --- |
| a\|b | pipe |
| \{bq}code\{bq} | c |

Once a link between a \*Star\* Shop\_ Item\_ and a Plain Thing is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the \*Star\* Shop\_ value wins.

The following properties are synchronized between a \*Star\* Shop\_ Item\_ and a Plain Thing:

| \*Star\* Shop\_ Item\_ Property | Plain Thing Property | Plain Data Type |
| --- | --- | --- |
| price\_ | p | "number" |
| \{bq}code\{bq} | c | "string" |
| a\|b | pipe | "string" |
| x\*y | star | "string" |
`))
}
