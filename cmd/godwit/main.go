// Command godwit replicates Kafka topics between clusters for disaster
// recovery and proves, with drills, that recovery works.
//
// This package only parses flags and wires components together; the work
// happens in internal/.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
