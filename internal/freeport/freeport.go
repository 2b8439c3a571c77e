// Package freeport finds loopback TCP ports for child servers that must be
// told their port before they start (veil run, the e2e tests, the bench).
// The port is only free at the moment of asking: another process may take
// it before the child binds it, so callers that can must retry on a bind
// failure.
package freeport

import (
	"errors"
	"fmt"
	"net"
)

// Loopback returns a TCP port on 127.0.0.1 that was free a moment ago.
func Loopback() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("find a free port: not a TCP address")
	}
	return addr.Port, nil
}
