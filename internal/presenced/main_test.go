package presenced_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }
