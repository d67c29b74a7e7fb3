package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/bolt"
	"github.com/accessbot/accessbot/store/storetest"
)

type pathStore struct {
	*bolt.Store
	path string
}

func openAt(t *testing.T, path string) access.Store {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return pathStore{s, path}
}

func TestStore(t *testing.T) {
	storetest.Run(t,
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

func TestOpenCreatesDirectories(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "accessbot.db")
	s := openAt(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("store file not created: %v", err)
	}
	if _, err := s.Get(context.Background(), "r-x"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Get on a new store = %v, want ErrNotFound", err)
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accessbot.db")
	openAt(t, path)
	s, err := bolt.Open(path)
	if err == nil {
		s.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !strings.Contains(err.Error(), "is in use by another accessbot process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open error = %q, want it to name the file and say it is in use", err)
	}
}

func TestOpenBadFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a bolt file\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := bolt.Open(garbage); err == nil {
		s.Close()
		t.Fatal("Open of a non-store file succeeded")
	} else if !strings.Contains(err.Error(), garbage) {
		t.Fatalf("error %q does not name the file", err)
	}
	if _, err := bolt.Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	if _, err := bolt.Open(dir); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
}

func TestClosedStore(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "accessbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(context.Background(), "r-x"); err == nil {
		t.Fatal("Get on a closed store succeeded")
	}
}
