// Package postgres keeps presence in PostgreSQL (through pgx) and lets
// several nodes on one database act as one hub.
//
// The store implements hub.Store, hub.BatchStore and hub.Feed. The
// changes the hub hands over together run in one transaction (one commit)
// that locks their users' rows in user id order and decides each change
// with hub.Decide, so the nodes' changes to one user are serialised and
// versioned, and two nodes' transactions never deadlock; each new record
// travels to every node by its own NOTIFY on a channel named after the
// schema. Each node keeps a lease (renewed by the
// database clock) and a vouch, a row of presence_vouches, for each user it
// holds a connection of or is within the grace of; every node sweeps up
// after nodes whose lease ran out.
//
// # Concurrency
//
// A Store is safe for concurrent use. Open starts one goroutine that
// renews the lease and sweeps; Close stops it and waits. Run, the feed,
// runs on its caller's goroutine until its context ends.
package postgres
