package testenv

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback address "127.0.0.1:PORT" whose port was free
// a moment ago, for a process that must listen on a port known in advance
// (a server behind a load balancer, a daemon's TCP socket). Another process
// may take the port in between; that is rare enough for tests.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
