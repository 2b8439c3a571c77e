// Package sealed holds the end-to-end tests of sealed models: `veil seal`,
// the development KBS (`veil kbs serve`/`upload`) or a fake Confidential
// Data Hub, and veil-runtime cold-starting from the sealed model on
// loopback, including the failures that must leave nothing served and
// nothing leaked. They need `make build`.
package sealed
