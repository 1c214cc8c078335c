// Package web holds the static files served at /: the demo page and the
// JavaScript client. They are embedded in the binary.
//
// The client is the npm package @presenced/client in client/; its built
// ES module and declarations (client/dist, committed, so that the binary
// builds without npm) are served as /presence.js and /presence.d.ts, the
// very files the package ships, and the demo imports ./presence.js.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

//go:embed client/dist/presence.js client/dist/presence.d.ts
var client embed.FS

// clientFiles are the names under which the built client is served.
var clientFiles = map[string]bool{"presence.js": true, "presence.d.ts": true}

// FS returns the static files, rooted so that index.html is at the top:
// static/ with the built client beside it.
func FS() fs.FS {
	page, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above; this cannot fail
	}
	dist, err := fs.Sub(client, "client/dist")
	if err != nil {
		panic(err)
	}
	return overlay{base: page, client: dist}
}

// overlay serves clientFiles from the client's build and every other name
// from the page's folder.
type overlay struct{ base, client fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	if clientFiles[name] {
		return o.client.Open(name)
	}
	return o.base.Open(name)
}
