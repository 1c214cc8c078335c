// Package metrics exposes presenced's metrics in the Prometheus text
// format at /metrics, through github.com/prometheus/client_golang.
//
// It implements the observers that the other packages declare
// ([transport.Observer], [hub.StoreObserver]) and reads the hub's counters
// at each scrape, so that neither hub nor transport imports Prometheus.
// Every series a deployment may alert on exists from the start, at zero,
// whichever store is configured.
//
// # Concurrency
//
// A Metrics is safe for concurrent use. Its label children are created
// once in [New], so the calls on the event path are atomic additions that
// never allocate.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/internal/version"
	"github.com/presenced/presenced/transport"
	"github.com/presenced/presenced/transport/webhook"
)

var (
	_ transport.Observer = (*Metrics)(nil)
	_ hub.StoreObserver  = (*Metrics)(nil)
	_ webhook.Observer   = (*Metrics)(nil)
)

// latencyBuckets spans a fast local write or delivery (half a
// millisecond) to a stalled one (ten seconds), in seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// storeOps are the writes a store reports; others get a series when first
// reported.
var storeOps = []string{"save", "last_seen"}

// Metrics holds presenced's metrics and the registry that serves them.
type Metrics struct {
	reg *prometheus.Registry

	received        map[string]prometheus.Counter
	receivedUnknown prometheus.Counter
	receivedInvalid prometheus.Counter
	eventsSent      prometheus.Counter
	delivery        prometheus.Histogram
	closes          map[int]prometheus.Counter
	closesOther     prometheus.Counter
	slowConsumers   prometheus.Counter
	tokensREST      prometheus.Counter
	tokensWS        prometheus.Counter
	storeWrite      *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
	clusterNodes    prometheus.Gauge
	webhookSent     *prometheus.CounterVec
	webhookRetried  *prometheus.CounterVec
	webhookFailed   *prometheus.CounterVec
	webhookDropped  *prometheus.CounterVec
}

// New registers every metric. counts is read at each scrape for the
// connection, user, subscription and store queue gauges; pass the hub's
// Counts, which never waits for the hub goroutine.
func New(counts func() hub.Stats) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := factory{m.reg}

	f.gaugeFunc("presenced_connections", "Open WebSocket connections on this node.",
		func() int { return counts().Sessions })
	f.gaugeFunc("presenced_online_users", "Users this node sees online, on any node of the cluster.",
		func() int { return counts().OnlineUsers })
	f.gaugeFunc("presenced_subscriptions", "Watches held by the sockets on this node: one per socket and watched user.",
		func() int { return counts().Subscriptions })
	f.gaugeFunc("presenced_store_pending_writes",
		"Writes this node has queued for the store and not yet had answered: changes of state and last_seen flushes. It grows while the store is down or slow; at the hub's MaxPendingWrites (10000) new changes are refused.",
		func() int { return counts().PendingWrites })
	f.gaugeFunc("presenced_store_down", "1 while the store is unavailable and this node answers from memory, its writes queued; 0 otherwise.",
		func() int {
			if counts().StoreDown {
				return 1
			}
			return 0
		})

	received := f.counterVec("presenced_messages_received_total",
		"Client messages received on sockets, by type; unknown for a type the server does not know, invalid for a frame that did not decode.", "type")
	// transport lists the message types it handles and the codes it
	// closes with, so that a new one has its series from the start.
	// Anything else a client sends is counted as "unknown", and a frame
	// that does not decode as "invalid", so clients cannot grow the label
	// set; another close code is counted as "other".
	kinds := transport.MessageTypes()
	m.received = make(map[string]prometheus.Counter, len(kinds))
	for _, k := range kinds {
		m.received[k] = received.WithLabelValues(k)
	}
	m.receivedUnknown = received.WithLabelValues("unknown")
	m.receivedInvalid = received.WithLabelValues("invalid")

	m.eventsSent = f.counter("presenced_events_sent_total", "Presence events written to sockets, one per watcher.")
	m.delivery = f.histogram("presenced_event_delivery_seconds",
		"Time from the hub's decision on a status change to the write of its event to a watcher's socket, per watcher.")

	closes := f.counterVec("presenced_sockets_closed_total", "Sockets closed by the server, by close code.", "code")
	codes := transport.CloseCodes()
	m.closes = make(map[int]prometheus.Counter, len(codes))
	for _, c := range codes {
		m.closes[c] = closes.WithLabelValues(strconv.Itoa(c))
	}
	m.closesOther = closes.WithLabelValues("other")
	m.slowConsumers = f.counter("presenced_slow_consumers_total",
		"Sockets dropped because their send queue overflowed (close code 4000).")

	tokens := f.counterVec("presenced_tokens_rejected_total", "Missing or invalid tokens, by where they were presented.", "via")
	m.tokensREST = tokens.WithLabelValues("rest")
	m.tokensWS = tokens.WithLabelValues("ws")

	m.storeWrite = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "presenced_store_write_seconds", Help: "Duration of writes to the database, by operation.", Buckets: latencyBuckets,
	}, []string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presenced_store_write_errors_total", Help: "Writes to the database that failed, by operation.",
	}, []string{"op"})
	m.reg.MustRegister(m.storeWrite, m.storeErrors)
	for _, op := range storeOps {
		m.storeWrite.WithLabelValues(op)
		m.storeErrors.WithLabelValues(op)
	}
	m.webhookSent = f.counterVec("presenced_webhook_events_sent_total", "Webhook events a receiver took (a 2xx answer), by target.", "target")
	m.webhookRetried = f.counterVec("presenced_webhook_retries_total",
		"Webhook requests that failed with a 5xx, a 429, a timeout or a connection error and are tried again, by target.", "target")
	m.webhookFailed = f.counterVec("presenced_webhook_events_failed_total",
		"Webhook events given up because the receiver refused them with another 4xx, by target.", "target")
	m.webhookDropped = f.counterVec("presenced_webhook_events_dropped_total",
		"Webhook events dropped unsent because more than -webhook-queue waited for the target.", "target")
	m.clusterNodes = f.gauge("presenced_cluster_nodes", "Live nodes of the cluster seen at the latest look at the leases, this one included; 0 without a cluster.", nil)

	build := version.Get()
	f.gauge("presenced_build_info", "Always 1; its labels name the running build: version, vcs revision and Go release.",
		prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion}).Set(1)

	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WebhookTargets creates the webhook series of each target (as
// webhook.Name writes it), so that they exist at zero from the start.
func (m *Metrics) WebhookTargets(targets ...string) {
	for _, t := range targets {
		for _, c := range []*prometheus.CounterVec{m.webhookSent, m.webhookRetried, m.webhookFailed, m.webhookDropped} {
			c.WithLabelValues(t)
		}
	}
}

// WebhookSent counts events a receiver took.
func (m *Metrics) WebhookSent(target string, events int) {
	m.webhookSent.WithLabelValues(target).Add(float64(events))
}

// WebhookRetried counts requests that failed and will be tried again.
func (m *Metrics) WebhookRetried(target string) { m.webhookRetried.WithLabelValues(target).Inc() }

// WebhookFailed counts events a receiver refused for good.
func (m *Metrics) WebhookFailed(target string, events int) {
	m.webhookFailed.WithLabelValues(target).Add(float64(events))
}

// WebhookDropped counts events dropped unsent because too many waited.
func (m *Metrics) WebhookDropped(target string, events int) {
	m.webhookDropped.WithLabelValues(target).Add(float64(events))
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// MessageReceived counts a client message by its type.
func (m *Metrics) MessageReceived(kind string) {
	if c, ok := m.received[kind]; ok {
		c.Inc()
	} else if kind == "" {
		m.receivedInvalid.Inc()
	} else {
		m.receivedUnknown.Inc()
	}
}

// EventSent counts a delivered event and its delay.
func (m *Metrics) EventSent(delay time.Duration) {
	m.eventsSent.Inc()
	m.delivery.Observe(delay.Seconds())
}

// SocketClosed counts a close by the server; 4000 is a slow consumer.
func (m *Metrics) SocketClosed(code int) {
	if c, ok := m.closes[code]; ok {
		c.Inc()
	} else {
		m.closesOther.Inc()
	}
	if code == transport.CloseSlowConsumer {
		m.slowConsumers.Inc()
	}
}

// TokenRejected counts a refused token.
func (m *Metrics) TokenRejected(via string) {
	if via == "ws" {
		m.tokensWS.Inc()
	} else {
		m.tokensREST.Inc()
	}
}

// StoreWrite records one database write.
func (m *Metrics) StoreWrite(op string, took time.Duration, err error) {
	m.storeWrite.WithLabelValues(op).Observe(took.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// ClusterNodes records the number of live nodes.
func (m *Metrics) ClusterNodes(n int) { m.clusterNodes.Set(float64(n)) }

// factory registers metrics as it makes them.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help, label string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string, labels prometheus.Labels) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeFunc(name, help string, read func() int) {
	f.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
		func() float64 { return float64(read()) }))
}

func (f factory) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets})
	f.reg.MustRegister(h)
	return h
}
