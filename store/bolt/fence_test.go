package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/storetest"
)

func TestFence(t *testing.T) {
	storetest.RunFence(t,
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
