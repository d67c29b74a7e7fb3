package main

import (
	"fmt"
	"io"
	"runtime"
)

// printVersion writes what the build stamped in: the version, the commit it
// was built from and when, and the Go release that built it.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "accessbot %s (commit %s, built %s, %s)\n", version, commit, date, runtime.Version())
}
