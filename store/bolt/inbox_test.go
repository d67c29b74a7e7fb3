package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
	"github.com/accessbot/accessbot/store/storetest"
)

func TestInbox(t *testing.T) {
	storetest.RunInbox(t,
		func(t *testing.T) access.Store {
			return openAt(t, filepath.Join(t.TempDir(), "accessbot.db"))
		},
		func(t *testing.T, s access.Store) access.Store {
			ps := s.(pathStore)
			if err := ps.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openAt(t, ps.path)
		})
}

// BenchmarkInboxPut is the inbox write a Socket Mode ack waits for (one
// transaction with an fsync, shared by concurrent writers).
func BenchmarkInboxPut(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "accessbot.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchInboxPut(b, s)
}
