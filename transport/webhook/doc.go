// Package webhook tells the app's backend what happens to presence: it
// signs requests as the Standard Webhooks specification says
// (https://www.standardwebhooks.com), so that backends verify them with
// that specification's libraries, and delivers the events that stores
// keep in their outbox to each configured URL, in order, at least once.
//
// # Concurrency
//
// A [Sender] runs one goroutine per URL, started by [Sender.Run] and
// stopped when its context ends; Run returns once they all have. Nothing
// in it runs on the hub goroutine or waits for it: the events come from
// the store's outbox, written in the same transaction as the change they
// report, so a receiver that is down slows nothing but its own delivery.
package webhook
