// Package postgres keeps presence in PostgreSQL (through pgx) and lets
// several nodes on one database act as one hub.
//
// The store implements hub.Store and hub.Feed. Each change of a user runs
// in one transaction that holds the user's row lock and decides with
// hub.Decide, so the nodes' changes to one user are serialised and
// versioned; the new record travels to every node by NOTIFY on a channel
// named after the schema. Each node keeps a lease (renewed by the
// database clock) and a row per user it holds a connection of; every node
// sweeps up after nodes whose lease ran out.
//
// # Concurrency
//
// A Store is safe for concurrent use. Open starts one goroutine that
// renews the lease and sweeps; Close stops it and waits. Run, the feed,
// runs on its caller's goroutine until its context ends.
package postgres
