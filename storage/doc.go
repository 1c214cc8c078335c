// Package storage holds the implementations of hub.Store: memory (the
// default, for one node and for development) and, in its own package,
// PostgreSQL. The suite in storetest runs against every one of them.
package storage
