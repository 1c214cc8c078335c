package needs

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Main(m)) }

func TestReportNamesEachRequirementOnce(t *testing.T) {
	got := report("./web", []skipNote{
		{"TestClientNode", "node is not on PATH", "apt-get install nodejs npm"},
		{"TestDemoChromium", "node is not on PATH", "apt-get install nodejs npm"},
		{"TestOther", "no Chromium at /usr/bin/chromium", "apt-get install chromium"},
	})
	want := `--- SKIP ./web: 3 test(s) did not run
    TestClientNode, TestDemoChromium: node is not on PATH
      to run them: apt-get install nodejs npm, then go test -count=1 ./web
    TestOther: no Chromium at /usr/bin/chromium
      to run them: apt-get install chromium, then go test -count=1 ./web
`
	if got != want {
		t.Fatalf("report:\n%s\nwant:\n%s", got, want)
	}
	if report("./web", nil) != "" {
		t.Fatal("a report when nothing skipped")
	}
}

// goTest runs go test on the skipper package (and a package without
// skips, so that go test is in package list mode, as for ./...).
func goTest(t *testing.T, ci string, args ...string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a test binary")
	}
	cmd := exec.Command("go", append(append([]string{"test", "-count=1"}, args...), "./testdata/skipper", "./testdata/plain")...)
	cmd.Env = append(os.Environ(), "CI="+ci)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestBlockShowsWithoutVerbose runs a real go test ./a ./b, whose output
// for passing packages is only their ok lines, and finds the block there.
func TestBlockShowsWithoutVerbose(t *testing.T) {
	out, err := goTest(t, "")
	if err != nil {
		t.Fatalf("go test: %v\n%s", err, out)
	}
	block := "--- SKIP ./internal/needs/testdata/skipper: 2 test(s) did not run\n" +
		"    TestLacksAWidget, TestAlsoLacksAWidget: no widget is installed\n" +
		"      to run them: apt-get install widget, then go test -count=1 ./internal/needs/testdata/skipper\n"
	if strings.Count(out, block) != 1 {
		t.Fatalf("go test without -v does not show the block once:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^ok  \t\S+/testdata/skipper\t`).MatchString(out) || !regexp.MustCompile(`(?m)^ok  \t\S+/testdata/plain\t`).MatchString(out) {
		t.Fatalf("both packages should pass:\n%s", out)
	}
	if strings.Contains(out, "plain:") {
		t.Fatalf("a block for a package that skipped nothing:\n%s", out)
	}

	// With -v go test shows the binary's own output: the block is there
	// once, not twice.
	out, err = goTest(t, "", "-v")
	if err != nil || strings.Count(out, block) != 1 || !strings.Contains(out, "--- SKIP: TestLacksAWidget") {
		t.Fatalf("go test -v: %v\n%s", err, out)
	}
}

func TestUnderCIMissingFails(t *testing.T) {
	out, err := goTest(t, "true")
	if err == nil || !strings.Contains(out, "CI=true, so this test must run, but no widget is installed (to provide it: apt-get install widget)") ||
		!regexp.MustCompile(`(?m)^FAIL\t\S+/testdata/skipper`).MatchString(out) {
		t.Fatalf("under CI=true a missing requirement must fail the test: %v\n%s", err, out)
	}
}
