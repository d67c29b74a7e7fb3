package auditsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/accessbot/accessbot/access"
)

// File appends events as JSON lines to a file and rotates it by size:
// when a batch would grow it past MaxBytes, path becomes path.1 (path.1
// becomes path.2, and so on; the oldest beyond Keep is removed) and a new
// path is started. Each batch is written and synced before Deliver
// returns. A batch that fails part way may be written again in part: at
// least once, each line whole.
type File struct {
	Path     string
	MaxBytes int64
	Keep     int
}

// NewFile returns the file sink of c.
func NewFile(c SinkConfig) *File {
	mb, keep := c.MaxSizeMB, c.Keep
	if mb <= 0 {
		mb = DefaultMaxSizeMB
	}
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &File{Path: c.Path, MaxBytes: int64(mb) << 20, Keep: keep}
}

// Deliver appends evs, one JSON object per line.
func (f *File) Deliver(ctx context.Context, evs []access.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("file %s: encode event %s: %w", f.Path, ev.ID, err)
		}
	}
	if dir := filepath.Dir(f.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("file %s: %w", f.Path, err)
		}
	}
	if st, err := os.Stat(f.Path); err == nil && st.Size() > 0 && st.Size()+int64(buf.Len()) > f.MaxBytes {
		if err := f.rotate(); err != nil {
			return fmt.Errorf("file %s: rotate: %w", f.Path, err)
		}
	}
	fh, err := os.OpenFile(f.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	if _, err := fh.Write(buf.Bytes()); err != nil {
		fh.Close()
		return fmt.Errorf("file %s: write: %w", f.Path, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("file %s: sync: %w", f.Path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("file %s: close: %w", f.Path, err)
	}
	return nil
}

// rotate shifts path.N-1 to path.N ... path to path.1, dropping path.Keep.
func (f *File) rotate() error {
	name := func(i int) string { return f.Path + "." + strconv.Itoa(i) }
	if err := os.Remove(name(f.Keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := f.Keep - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.Rename(f.Path, name(1))
}
