// Package adversarial holds dockerrun's adversarial suite: integration tests
// that attack a real docker-run server, started from cmd/docker-run with its
// default, hardened configuration, by running hostile code in the python and
// bash language images.
//
// Every attack asserts what the server answered (status, error code, how
// long it took) and, afterwards, that no container of the server's owner is
// left, that GET /healthz answers 200, that a normal python run succeeds and
// that the server's goroutine and file-descriptor counts are back to where
// they were before the attack (read from the server's debug listener,
// SERVER_DEBUG_ADDR, and from /proc/PID/fd).
//
// The suite runs under each OCI runtime named in DOCKERRUN_TEST_RUNTIMES
// (default "runc runsc"); a runtime the daemon does not know is skipped, or
// fails the suite under CI=true. Without a reachable Docker engine the tests
// are skipped, or fail under CI=true. Unless -parallel is given, the suite
// runs up to four attacks at once: most of them wait on a time limit.
//
// Environment variables:
//
//	DOCKERRUN_TEST_RUNTIMES        runtimes to test (default "runc runsc")
//	DOCKERRUN_UPDATE_SECURITY_DOC  1: after a passing run, rewrite the table
//	                               of outcomes in docs/security.md
//
// The attacks on the daemon itself (restarts, crashes) each start a private
// daemon (testenv.StartDockerd) and never touch the shared one.
//
// The suite only talks to servers on the loopback interface, and bounds
// every attack in count and time. The package has no non-test code.
package adversarial
