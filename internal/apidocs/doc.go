// Package apidocs holds the test that runs every example of api_docs/run.md
// through a real server and real language images, so that the documentation
// and the service cannot drift apart. It has no code of its own.
package apidocs
