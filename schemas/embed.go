// Package schemas carries the JSON Schemas of dataflow's file formats in the binary, so that
// `dataflow validate` and `dataflow schema` need no files beside the executable.
package schemas

import _ "embed"

// DataflowURL is the $id of the dataflow file-format schema. Register [Dataflow] under this URL
// and compile DataflowURL+"#/$defs/systemFile" for system files and
// DataflowURL+"#/$defs/dataflowFile" for dataflow files (DataflowURL itself dispatches on the
// presence of the `system` key).
const DataflowURL = "https://dataflow-sync.github.io/schemas/dataflow.schema.json"

// Dataflow is the JSON Schema (draft 2020-12) of both YAML file kinds of dataflow: system files
// (mappings/systems/<system>.yaml) and dataflow files (mappings/<dataflow>.yaml). It is the
// content of schemas/dataflow.schema.json, which `dataflow schema` prints and editors use through
// `# yaml-language-server: $schema=...`. Do not modify the slice.
//
//go:embed dataflow.schema.json
var Dataflow []byte
