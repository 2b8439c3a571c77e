// Command veil-runtime: placeholder until its issue lands.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "veil-runtime: not built yet")
	os.Exit(1)
}
