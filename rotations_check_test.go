package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckRotationMistakes(t *testing.T) {
	cfg := `
chat:
  console:
    users: {alice: alice@example.com}
providers:
  dryrun: {}
rotations:
  platform:
    members: []
    timezone: Mars/Olympus
    handoff: "funday 25:00"
    grant: [prod-read, nope]
    grace: soon
roles:
  prod-read:
    description: read
    provider: dryrun
    group: readers
    max_duration: 1d
    approvers: {rotation: platfrom, users: [dave@example.com]}
`
	var out, errb bytes.Buffer
	p := filepath.Join(t.TempDir(), "accessbot.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), []string{"check", "--config", p}, nil, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errb.String())
	}
	for _, want := range []string{
		"rotations.platform.members: no members",
		`rotations.platform.timezone: unknown timezone "Mars/Olympus"`,
		`rotations.platform.handoff: unknown weekday "funday"`,
		"rotations.platform.handoff: hour 25 out of range",
		`rotations.platform.grant[1]: unknown role "nope"`,
		`rotations.platform.grace: "soon" is not a duration`,
		`roles.prod-read.approvers.rotation: unknown rotation "platfrom"`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("missing %q in:\n%s", want, errb.String())
		}
	}
	if strings.Contains(errb.String(), "grant[0]") {
		t.Errorf("a known role was reported:\n%s", errb.String())
	}
}
