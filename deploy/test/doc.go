// Package deploytest checks the deployment files of accessbot: the
// Dockerfile (parsed with BuildKit's own parser, and its build stage run here
// as the image build would run it) and the Kubernetes kustomize base in
// manifests/kubernetes (rendered with kubectl and decoded strictly into the
// Kubernetes API types).
//
// It is a module of its own so that the bot's module does not carry BuildKit
// and the Kubernetes API as dependencies. `make test` runs it after the bot's
// tests; `make image-check` runs only the image build.
package deploytest
