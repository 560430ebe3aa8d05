// Command pocketbase is PocketBase v0.36.8 as a test system of the http connector: the tests
// (internal/pocketbasetest) build it into a cache directory and start it on a free 127.0.0.1
// port with a temporary data directory. It has its own go.mod so that the product's module
// does not depend on PocketBase.
package main

import (
	"log"

	"github.com/pocketbase/pocketbase"
)

func main() {
	app := pocketbase.New()
	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
