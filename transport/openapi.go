package transport

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes the REST API in OpenAPI 3.1. The contract
// test checks every endpoint's real answers against it, so it changes
// with the handlers, in the same commit.
//
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}
