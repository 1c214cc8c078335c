#!/usr/bin/env bash
# Prints the path of a Centrifugo v6.9.1 binary, first building it from its
# Go module into a cache directory outside the repository when it is not
# there yet. bench/run.sh measures presenced beside it, and the tests of
# internal/loadgen drive it; it is never committed. Usage:
#
#   bench/centrifugo.sh              # builds once (a few minutes), then prints the path
#
# CENTRIFUGO_DIR overrides the directory (default
# ${XDG_CACHE_HOME:-~/.cache}/presenced-bench/centrifugo-v6.9.1, where the
# tests look too).
set -euo pipefail
version=v6.9.1
dir=${CENTRIFUGO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/presenced-bench/centrifugo-$version}
if [ ! -x "$dir/centrifugo" ] || ! "$dir/centrifugo" version | grep -q "Centrifugo ${version#v} "; then
	echo "building Centrifugo $version into $dir" >&2
	mkdir -p "$dir"
	# The version is stamped as Centrifugo's own release build does, so
	# that `centrifugo version` names it.
	GOBIN="$dir" GOFLAGS=-mod=mod go install \
		-ldflags "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=${version#v}" \
		"github.com/centrifugal/centrifugo/v6@$version" >&2
fi
echo "$dir/centrifugo"
