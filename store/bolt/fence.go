package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/accessbot/accessbot/access"
	bbolt "go.etcd.io/bbolt"
)

var _ access.Fencer = (*Store)(nil)

// bucketFence keeps "epoch": the number of Opens of the file, the high
// bits of every fencing token the process hands out (claims.go).
var (
	bucketFence = []byte("fence")
	keyEpoch    = []byte("epoch")
)

// maxEpoch keeps tokens positive int64s.
const maxEpoch = 1<<(63-seqBits) - 1

// nextEpoch counts the Open in the file and returns the new epoch.
func nextEpoch(db *bbolt.DB) (int64, error) {
	var epoch int64
	err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketFence)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketFence, err)
		}
		if v := b.Get(keyEpoch); len(v) == 8 {
			epoch = int64(binary.BigEndian.Uint64(v))
		}
		if epoch >= maxEpoch {
			return errors.New("the fencing token epoch is used up")
		}
		epoch++
		return b.Put(keyEpoch, binary.BigEndian.AppendUint64(nil, uint64(epoch)))
	})
	return epoch, err
}

// ClaimFenced takes or renews the claim on key for owner (see
// access.Fencer). Claims live in memory: one process owns a bolt file.
func (s *Store) ClaimFenced(ctx context.Context, key, owner string, ttl time.Duration) (access.Lease, bool, error) {
	if err := ctx.Err(); err != nil {
		return access.Lease{}, false, fmt.Errorf("bolt: claim %s: %w", key, err)
	}
	if key == "" || owner == "" {
		return access.Lease{}, false, fmt.Errorf("bolt: claim %q for %q: key and owner are required", key, owner)
	}
	if ttl <= 0 {
		return access.Lease{}, false, fmt.Errorf("bolt: claim %s: ttl %v is not positive", key, ttl)
	}
	l, ok, err := s.claims.claim(key, owner, s.now, ttl)
	if err != nil {
		return access.Lease{}, false, fmt.Errorf("bolt: claim %s: %w", key, err)
	}
	return l, ok, nil
}

// ReleaseFenced gives the claim on key back if owner holds it and reports
// whether it did.
func (s *Store) ReleaseFenced(ctx context.Context, key, owner string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("bolt: release %s: %w", key, err)
	}
	return s.claims.release(key, owner, s.now()), nil
}

// Claim takes an expiring claim on id for owner. It returns true when the
// claim is free, expired or already owner's (the expiry is then renewed).
// It is ClaimFenced without the token.
func (s *Store) Claim(ctx context.Context, id, owner string, ttl time.Duration) (bool, error) {
	_, ok, err := s.ClaimFenced(ctx, id, owner, ttl)
	return ok, err
}

// Release gives the claim on id back if owner holds it; otherwise it does
// nothing. It is idempotent.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	_, err := s.ReleaseFenced(ctx, id, owner)
	return err
}

// fence returns the check a write on ctx makes inside its transaction (it
// passes when ctx carries no fence) and done, to call once the transaction
// has ended: until then no claim changes hands, so the fence checked is
// still the holder's when the write commits.
func (s *Store) fence(ctx context.Context) (check func() error, done func()) {
	f, ok := access.FenceFrom(ctx)
	if !ok {
		return func() error { return nil }, func() {}
	}
	s.claims.acquiring.RLock()
	return func() error {
		if !s.claims.holds(f.Key, f.Token, s.now()) {
			return fmt.Errorf("lease %s token %d: %w", f.Key, f.Token, access.ErrFenced)
		}
		return nil
	}, s.claims.acquiring.RUnlock
}
