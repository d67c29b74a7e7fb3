package bolt

// TimeKey and SeqKey are the file's key encodings.
var (
	TimeKey = timeKey
	SeqKey  = seqKey
)
