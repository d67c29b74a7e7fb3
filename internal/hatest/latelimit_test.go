package hatest

import (
	"testing"
	"time"
)

// TestLateLimit: seed 1796102443366676614 killed replica b at 44.151 s
// while it granted a request clicked at about 43 s, restarted it at once,
// and killed it again at 54.177 s right after it took the request over:
// the grant landed 20.9 s after the click, two lease TTLs, which the
// limit for one take-over (15 s) wrongly called a failure.
func TestLateLimit(t *testing.T) {
	s := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	kills := []killRecord{{at: s(34.237)}, {at: s(44.151)}, {at: s(54.177)}, {at: s(64.894)}}
	for _, c := range []struct {
		from, to float64
		want     time.Duration
	}{
		{43.0, 63.9, 25 * time.Second}, // two kills inside: one more TTL
		{45.0, 50.0, 15 * time.Second}, // none inside
		{44.0, 46.0, 15 * time.Second}, // one kill: the plain limit
		{30.0, 70.0, 45 * time.Second}, // four kills: three more TTLs
	} {
		if got := lateLimit(15*time.Second, kills, s(c.from), s(c.to)); got != c.want {
			t.Errorf("lateLimit(%.1fs..%.1fs) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
