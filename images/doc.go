// Package images holds no code: it carries the Containerfiles of Veil's
// images and a test that lints them against what `make build` produces.
package images
