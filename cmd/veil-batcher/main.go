// Command veil-batcher: placeholder until its issue lands.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "veil-batcher: not built yet")
	os.Exit(1)
}
