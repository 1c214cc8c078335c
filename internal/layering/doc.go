// Package layering holds, in its test, the rules of which package may
// import which: the dependency direction the README's layout describes,
// checked with go list on every test run instead of kept by convention.
package layering
