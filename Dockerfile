# accessbot container image: a static Go binary on distroless, run as a
# numeric non-root user, with no shell in the final image.
#
#   docker build -t accessbot \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse --short=12 HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#
# (`make image IMAGE=registry.example.com/accessbot:TAG` does the same.)
#
# Base images are pinned by digest, so a rebuild takes the same bytes. To move
# to a newer one, look up the current digest of the tag and replace the part
# after '@' (keep the tag in front of it for readers):
#
#   docker buildx imagetools inspect golang:1.26.8-bookworm          # "Digest:" line
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot
#   (or: crane digest IMAGE:TAG)
#
# The Go tag must match the `go` line of go.mod (deploy/test checks it). There
# is no `# syntax=` line on purpose: it would pull a frontend image by tag.

FROM golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
# deploy/build.sh is the one build command (make build runs it too):
# CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE"
RUN ./deploy/build.sh accessbot

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /src/accessbot /accessbot
# 65532 is distroless's "nonroot"; numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# Prometheus metrics and health: /metrics, /healthz, /readyz (metrics.listen, default :9090).
EXPOSE 9090
ENTRYPOINT ["/accessbot"]
CMD ["run", "--config", "/etc/accessbot/accessbot.yaml"]
