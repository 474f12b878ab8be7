// Package archtest checks the shape of the code against
// docs/architecture.md: which package may import which. It has no code of
// its own, only tests.
package archtest
