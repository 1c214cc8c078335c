package transport

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
)

// TestTheListsHoldEveryCodeAndMessage reads the close code constants and
// the message types conn.handle answers from the source, and holds
// CloseCodes and MessageTypes to them, so that metrics, which builds its
// series from the lists, cannot miss a code or a message added here.
func TestTheListsHoldEveryCodeAndMessage(t *testing.T) {
	var codes []int
	ast.Inspect(parse(t, "closecode.go"), func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Values) == 1 && ast.IsExported(vs.Names[0].Name) {
			if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.INT {
				code, _ := strconv.Atoi(lit.Value)
				codes = append(codes, code)
			}
		}
		return true
	})
	var types []string
	ast.Inspect(parse(t, "ws.go"), func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "handle" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if cc, ok := n.(*ast.CaseClause); ok {
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						types = append(types, s)
					}
				}
			}
			return true
		})
		return false
	})
	if len(codes) < 10 || len(types) < 5 {
		t.Fatalf("found only %d close codes in closecode.go and %d message types in conn.handle", len(codes), len(types))
	}
	if got := CloseCodes(); !sameSet(got, codes) {
		t.Errorf("CloseCodes() = %v, want each constant of closecode.go once: %v", got, codes)
	}
	if got := MessageTypes(); !sameSet(got, types) {
		t.Errorf("MessageTypes() = %v, want each type conn.handle answers once: %v", got, types)
	}
}

func parse(t *testing.T, file string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sameSet says whether got holds each of want once, and nothing else.
func sameSet[T interface{ ~int | ~string }](got, want []T) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}
