package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// explained is a flag's value that says, when a value does not parse,
// what kind of value is wanted and gives a good one, instead of the flag
// package's "parse error".
type explained struct {
	flag.Value
	kind    string // duration, int, float, bool or string
	example string // a good value
	failed  **failure
	written string // the last value set, as it was written
}

// failure is the latest value that did not parse.
type failure struct {
	value   string
	problem string
}

// IsBoolFlag keeps -dev a flag that needs no value.
func (v *explained) IsBoolFlag() bool { return v.kind == "bool" }

// String survives the zero value, which the flag package may make.
func (v *explained) String() string {
	if v == nil || v.Value == nil {
		return ""
	}
	return v.Value.String()
}

func (v *explained) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil {
		*v.failed = &failure{value: s, problem: v.problem(s)}
	}
	v.written = s
	return err
}

func (v *explained) problem(s string) string {
	switch v.kind {
	case "duration":
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return "a duration needs a unit (ms, s, m or h)"
		}
		return "not a duration"
	case "int":
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return "not a whole number in range"
		}
		return "not a whole number"
	case "float":
		return "not a number"
	case "bool":
		return "neither true nor false"
	}
	return "not a valid value"
}

// explainFlags wraps every flag of fs so that a bad value is explained,
// and turns off the flag package's habit of printing the whole usage
// before every error. It returns a function that rewrites an error of
// fs.Parse as one line naming the flag, the bad value and a good one.
func explainFlags(fs *flag.FlagSet) func(error) error {
	var failed *failure
	fs.VisitAll(func(f *flag.Flag) {
		v := &explained{Value: f.Value, kind: kindOf(f.Value), failed: &failed}
		v.example = exampleOf(v.kind, f.DefValue)
		if e, ok := examples[f.Name]; ok {
			v.example = e
		}
		f.Value = v
	})
	fs.Usage = func() {}
	fs.SetOutput(io.Discard) // the flag package would print each error too
	return func(err error) error {
		if err == nil || errors.Is(err, flag.ErrHelp) {
			return err
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			return fmt.Errorf("-%s is not a flag of presenced (presenced -h lists them)", name)
		}
		if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
			if f := fs.Lookup(name); f != nil {
				return fmt.Errorf("-%s needs a value, e.g. -%s %s", name, name, f.Value.(*explained).example)
			}
		}
		// "invalid value %q for flag -%s: %v" (or "invalid boolean value
		// %q for -%s: %v"): the flag whose Set failed.
		if m := failedFlag.FindStringSubmatch(msg); m != nil && failed != nil {
			if f := fs.Lookup(m[1]); f != nil {
				return fmt.Errorf("%s: %s, e.g. %s", flagSetting(f, failed.value), failed.problem, flagSetting(f, f.Value.(*explained).example))
			}
		}
		return err
	}
}

var failedFlag = regexp.MustCompile(`^invalid (?:boolean )?value ".*" for (?:flag )?-([^:\s]+): `)

// envError explains a variable's bad value as explainFlags does a flag's;
// f's Set has just refused value.
func envError(f *flag.Flag, value string) error {
	v := f.Value.(*explained)
	return fmt.Errorf("%s=%s: %s, e.g. %s=%s", envName(f.Name), value, v.problem(value), envName(f.Name), v.example)
}

// flagSetting writes f set to value as it is typed: -grace 5s, -dev=true.
func flagSetting(f *flag.Flag, value string) string {
	if f.Value.(*explained).kind == "bool" {
		return "-" + f.Name + "=" + value
	}
	return "-" + f.Name + " " + value
}

func kindOf(v flag.Value) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return "string"
	}
	switch g.Get().(type) {
	case time.Duration:
		return "duration"
	case bool:
		return "bool"
	case int, int64, uint, uint64:
		return "int"
	case float64:
		return "float"
	}
	return "string"
}

// exampleOf is a good value of kind: the default, unless that is zero.
func exampleOf(kind, def string) string {
	examples := map[string]string{"duration": "5s", "int": "10", "float": "0.5", "bool": "true", "string": "x"}
	switch def {
	case "", "0", "0s", "false":
		return examples[kind]
	}
	return def
}

// examples are good values of the flags whose default is empty, for the
// errors that ask for one.
var examples = map[string]string{
	"admin-addr":          "127.0.0.1:9090",
	"dev-secret":          "$(openssl rand -hex 32)",
	"jwt-secret":          "$(openssl rand -hex 32)",
	"jwt-secret-previous": "$(openssl rand -hex 32)",
	"jwt-issuer":          "https://auth.example.com",
	"jwt-audience":        "presenced",
	"jwt-public-key-file": "/etc/presenced/jwt.pem",
	"jwt-jwks-url":        "https://auth.example.com/.well-known/jwks.json",
	"client-ip-header":    "X-Forwarded-For",
	"allowed-origins":     "https://app.example.com",
	"database-url":        "postgres://presenced@db:5432/presence",
	"node-id":             "node1",
}

// positive are the number flags that must be above 0: at 0 they would
// mean nothing, or (for most) silently fall back to their default. Every
// other number flag must not be negative; its 0 is documented (no limit,
// no delay, no leeway). A test fails for a number flag in neither list.
var positive = map[string]bool{
	"read-header-timeout": true, "read-timeout": true, "idle-timeout": true, "max-idle-connections": true,
	"jwt-jwks-max-age": true, "jwt-jwks-min-refresh": true, "grace": true, "heartbeat-ttl": true,
	"ping-interval": true, "pong-timeout": true, "write-timeout": true, "max-message-bytes": true,
	"max-ids": true, "max-username-length": true, "max-subscriptions": true, "max-connections-per-user": true,
	"max-queue-bytes": true, "message-burst": true, "request-burst": true, "socket-burst-per-ip": true,
	"socket-burst": true, "shutdown-timeout": true, "lease-ttl": true, "sweep-interval": true,
	"watch-authz-ttl": true, "watch-authz-timeout": true, "webhook-queue": true, "webhook-max-backoff": true,
}

// mayBeZero are the number flags whose 0 is documented.
var mayBeZero = map[string]bool{
	"jwt-leeway": true, "shutdown-delay": true, "max-bad-messages": true, "max-messages-per-second": true,
	"max-requests-per-second": true, "max-sockets-per-second-per-ip": true, "max-sockets-per-second": true,
}

// checkValue says what is wrong with f's value, which parsed, or "".
func checkValue(f *flag.Flag) string {
	v := f.Value.(*explained)
	var n float64
	switch x := v.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		n = float64(x)
	case int:
		n = float64(x)
	case int64:
		n = float64(x)
	case float64:
		n = x
	case string:
		return checkText(f.Name, x)
	default:
		return ""
	}
	switch {
	case positive[f.Name] && n <= 0:
		return "must be above 0"
	case n < 0:
		return "must not be negative"
	}
	return ""
}

// checkText checks the string flags whose values are a choice or an
// address.
func checkText(name, s string) string {
	switch name {
	case "log-level":
		var l slog.Level
		if l.UnmarshalText([]byte(s)) != nil {
			return "not a level (debug, info, warn or error)"
		}
	case "log-format":
		if s != "json" && s != "text" {
			return "neither json nor text"
		}
	case "addr", "admin-addr":
		if s == "" && name == "admin-addr" {
			return "" // none
		}
		_, port, err := net.SplitHostPort(s)
		if err != nil {
			return "not an address of the form host:port (an empty host: all interfaces)"
		}
		if _, err := net.LookupPort("tcp", port); err != nil || port == "" {
			return "port " + strconv.Quote(port) + " is not a port number"
		}
	}
	return ""
}

// checkValues refuses the first flag whose value parsed but is wrong,
// naming it as it was set: the flag, or its variable (from says which).
func checkValues(fs *flag.FlagSet, from map[string]string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		problem := checkValue(f)
		if problem == "" {
			return
		}
		v := f.Value.(*explained)
		if name := from[f.Name]; name != "" && name != "-"+f.Name {
			err = fmt.Errorf("%s=%s: %s, e.g. %s=%s", name, v.written, problem, name, v.example)
			return
		}
		err = fmt.Errorf("%s: %s, e.g. %s", flagSetting(f, v.written), problem, flagSetting(f, v.example))
	})
	return err
}

// printUsage writes -h: what presenced is, then every flag with its kind,
// meaning, variable and default.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `Usage: presenced [flags]

presenced serves presence over WebSocket and REST on one port. Each flag
can also be set by its variable (-grace is PRESENCE_GRACE); a flag on the
command line wins. Durations take a unit: 500ms, 5s, 1m30s.

`)
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.(*explained)
		kind := " " + v.kind
		if v.kind == "bool" {
			kind = ""
		}
		fmt.Fprintf(w, "  -%s%s\n    \t%s", f.Name, kind, f.Usage)
		if exampleOf(v.kind, f.DefValue) == f.DefValue {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
