package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

// TestVersionPrintsStampedBuild: `accessbot version` shows the version, commit
// and build date that deploy/build.sh stamps in with -X.
func TestVersionPrintsStampedBuild(t *testing.T) {
	saved := [3]string{version, commit, date}
	t.Cleanup(func() { version, commit, date = saved[0], saved[1], saved[2] })
	version, commit, date = "v1.2.3", "0a1b2c3", "2026-12-01T02:50:00Z"

	for _, arg := range []string{"version", "--version", "-v"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{arg}, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, errOut.String())
		}
		want := "accessbot v1.2.3 (commit 0a1b2c3, built 2026-12-01T02:50:00Z, " + runtime.Version() + ")\n"
		if out.String() != want {
			t.Errorf("%s printed %q, want %q", arg, out.String(), want)
		}
	}
}
