package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
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
