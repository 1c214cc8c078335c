package main

import (
	"context"
	"log/slog"

	"github.com/presenced/presenced/internal/presenced"
	"github.com/presenced/presenced/internal/version"
)

// logStartup writes the one line that says what this process is: where
// it listens, which build it is, where statuses live, and whether it runs
// in development mode, and who may read whom. Its message, "listening", and its first field,
// "addr", are what tests and tools wait for (web/test/helpers.mjs, the
// cluster tests' startNode); admin_addr, when there is an admin listener,
// comes next.
func logStartup(log *slog.Logger, srv *presenced.Server, o *options) {
	attrs := []any{"addr", srv.Addr()}
	if srv.AdminAddr() != "" {
		attrs = append(attrs, "admin_addr", srv.AdminAddr())
	}
	attrs = append(append(attrs, "version", version.Get().Version), srv.StoreAttrs()...)
	attrs = append(attrs, "watch_policy", o.watchPolicy, "dev", o.dev)
	level := slog.LevelInfo
	if o.dev {
		level = slog.LevelWarn
		secret := "from -dev-secret"
		if o.devSecret == "" {
			secret = "made up at start: its tokens stop working when the process ends (-dev-secret keeps one)"
		}
		attrs = append(attrs, "dev_secret", secret,
			"warning", "development mode: POST /dev/token signs a token for anyone who asks and any origin may connect; never use -dev in production")
	}
	log.Log(context.Background(), level, "listening", attrs...)
}
