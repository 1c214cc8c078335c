package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/storage/memory"
	"github.com/presenced/presenced/storage/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) hub.Store { return memory.New() })
}

func TestOutbox(t *testing.T) {
	storetest.RunOutbox(t, func(_ *testing.T, urls []string) storetest.OutboxStore { return memory.New(urls...) })
}
