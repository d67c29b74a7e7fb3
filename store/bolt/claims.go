package bolt

import (
	"errors"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Fencing tokens are the process's epoch (counted up in the file at every
// Open, see fence.go) above seqBits bits of a counter kept in memory: they
// increase across restarts without a write per claim.
const seqBits = 40

// lapseMemory is how long a claim that expired without a Release is kept,
// so that the next acquisition can report the holding that lapsed.
const lapseMemory = 24 * time.Hour

var errTokensUsedUp = errors.New("the fencing tokens of this process are used up; restart it")

type claim struct {
	owner   string
	token   int64
	expires time.Time
}

// claims is an in-memory table of expiring claims with their fencing
// tokens, safe across goroutines.
type claims struct {
	mu     sync.Mutex
	m      map[string]claim
	writes int
	base   int64 // epoch << seqBits
	seq    int64

	// acquiring is held for writing while a claim changes hands and for
	// reading by a fenced write from its check until its commit, so no
	// lease changes hands between the two.
	acquiring sync.RWMutex
}

// claim takes or renews key for owner (see access.Fencer.ClaimFenced).
func (c *claims) claim(key, owner string, now func() time.Time, ttl time.Duration) (access.Lease, bool, error) {
	c.mu.Lock()
	if l, ok, done := c.renew(key, owner, now(), ttl); done {
		c.mu.Unlock()
		return l, ok, nil
	}
	c.mu.Unlock()

	// A new acquisition: wait for fenced writes in flight.
	c.acquiring.Lock()
	defer c.acquiring.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := now()
	if l, ok, done := c.renew(key, owner, t, ttl); done {
		return l, ok, nil
	}
	if c.seq+1 >= 1<<seqBits {
		return access.Lease{}, false, errTokensUsedUp
	}
	c.seq++
	l := access.Lease{Token: c.base | c.seq}
	if prev, ok := c.m[key]; ok {
		l.Lapsed = &access.Holder{Owner: prev.owner, Token: prev.token}
	}
	c.m[key] = claim{owner: owner, token: l.Token, expires: t.Add(ttl)}
	c.writes++
	if c.writes%256 == 0 {
		for k, v := range c.m {
			if t.After(v.expires.Add(lapseMemory)) {
				delete(c.m, k)
			}
		}
	}
	return l, true, nil
}

// renew handles a claim of key that is held and unexpired: it renews it
// for its owner or refuses another. done is false when key is free.
// c.mu is held.
func (c *claims) renew(key, owner string, now time.Time, ttl time.Duration) (l access.Lease, ok, done bool) {
	cur, held := c.m[key]
	if !held || !now.Before(cur.expires) {
		return access.Lease{}, false, false
	}
	if cur.owner != owner {
		return access.Lease{}, false, true
	}
	cur.expires = now.Add(ttl)
	c.m[key] = cur
	return access.Lease{Token: cur.token}, true, true
}

// release ends owner's unexpired holding of key and reports whether there
// was one. An expired holding is left for the next acquisition to report.
func (c *claims) release(key, owner string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[key]
	if !ok || cur.owner != owner || !now.Before(cur.expires) {
		return false
	}
	delete(c.m, key)
	return true
}

// holds reports whether key is held, unexpired, with token.
func (c *claims) holds(key string, token int64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[key]
	return ok && cur.token == token && now.Before(cur.expires)
}
