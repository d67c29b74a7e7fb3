#!/bin/sh
# The one build command for accessbot. `make build` and the Dockerfile's build
# stage both run it, so a local binary and the image's carry the same flags:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=... -X main.commit=... -X main.date=..."
#
# Usage: deploy/build.sh [OUTPUT]   (default ./accessbot), run from the repository root.
# VERSION, COMMIT and DATE come from the environment (the Dockerfile's build
# arguments); when unset they are read from git and the clock.
set -eu

out=${1:-accessbot}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
date=${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}

for value in "$version" "$commit" "$date"; do
	case $value in
	'' | *[!A-Za-z0-9._:+-]*)
		echo "deploy/build.sh: VERSION, COMMIT and DATE may hold only letters, digits and . _ : + - (got \"$value\")" >&2
		exit 2
		;;
	esac
done

CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date" \
	-o "$out" .
