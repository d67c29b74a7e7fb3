package bolt

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"
)

// Times are stored as 8-byte big-endian unix nanoseconds with the sign bit
// flipped, so byte order is time order (also before 1970). Times outside
// the int64 nanosecond range (year 1678..2262), such as the zero time, are
// clamped to its ends.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

func timeKey(t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minNanoTime):
		n = math.MinInt64
	case t.After(maxNanoTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n)^(1<<63))
	return b
}

func keyTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])^(1<<63))).UTC()
}

// dueKey is the due index key: time, then id, so a cursor walks earliest first.
func dueKey(t time.Time, id string) []byte {
	return append(timeKey(t), id...)
}

func seqKey(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

// List indexes live in one bucket. A key is
//
//	kind byte | value | 0x00 | created-at (8 bytes) | id
//
// and walking a kind+value prefix backwards gives newest first.
const (
	idxAll       = 'a'
	idxRequester = 'u'
	idxState     = 's'
	idxRole      = 'r'
)

func idxPrefix(kind byte, value string) []byte {
	b := make([]byte, 0, len(value)+2)
	b = append(b, kind)
	b = append(b, value...)
	return append(b, 0)
}

func idxKey(kind byte, value string, created time.Time, id string) []byte {
	b := idxPrefix(kind, value)
	b = append(b, timeKey(created)...)
	return append(b, id...)
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (p always ends with 0x00 here, so incrementing the last byte suffices).
func prefixEnd(p []byte) []byte {
	e := bytes.Clone(p)
	e[len(e)-1]++
	return e
}
