package aws

import (
	"testing"
	"time"
)

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT1H": time.Hour, "PT12H": 12 * time.Hour, "PT1H30M": 90 * time.Minute, "PT3600S": time.Hour,
		"PT0.5H": 30 * time.Minute, "P1D": 24 * time.Hour, "P1DT2H": 26 * time.Hour,
	} {
		if got, err := parseISODuration(in); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1h", "P", "PT", "PTH", "P1M", "PT1D", "PT1HT2M"} {
		if _, err := parseISODuration(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestPolicyKeepsOthersAndReadsItsOwn: a statement object (not a list),
// an Id and foreign statements survive a round trip; our statement is read
// back with its users and times.
func TestPolicyKeepsOthersAndReadsItsOwn(t *testing.T) {
	in := `{"Version":"2012-10-17","Id":"x","Statement":{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a&b"}}}}`
	d, err := parsePolicy(in)
	if err != nil || len(d.foreign) != 1 || len(d.ours) != 0 {
		t.Fatalf("%+v %v", d, err)
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	d.deny("bob", at, at.Add(time.Hour))
	d.deny("alice", at, at.Add(2*time.Hour))
	out, err := d.render(PolicyLimit)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a&b"}}},`
	if len(out) < len(want) || out[:len(want)] != want {
		t.Errorf("foreign statement changed:\n%s", out)
	}
	back, err := parsePolicy(out)
	if err != nil || len(back.ours) != 2 || back.ours[1].users[0] != "alice" || !back.ours[1].until.Equal(at.Add(2*time.Hour)) || !back.ours[0].issuedBefore.Equal(at) {
		t.Fatalf("read back %+v %v", back.ours, err)
	}
	if n := back.sweep(at.Add(time.Hour)); n != 1 || back.ours[0].users[0] != "alice" {
		t.Errorf("sweep at bob's expiry removed %d", n)
	}
	if !back.denies("alice", at) || back.denies("bob", at) {
		t.Error("denies")
	}
}
