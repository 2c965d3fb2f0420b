//go:build !linux

package dockerrun

import (
	"fmt"
	"runtime"

	"github.com/moby/profiles/seccomp"
)

// dockerDefaultProfile fails: github.com/moby/profiles/seccomp builds
// Docker's default profile on Linux only.
func dockerDefaultProfile() (*seccomp.Seccomp, error) {
	return nil, fmt.Errorf("the builtin profile is not in builds for %s (github.com/moby/profiles/seccomp makes it on Linux only): build for Linux, or choose %q or a JSON profile", runtime.GOOS, SeccompDaemon)
}
