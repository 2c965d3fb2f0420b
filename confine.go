package dockerrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Seccomp profiles for [WithSeccompProfile], besides a profile of one's own
// in Docker's JSON format.
const (
	// SeccompBuiltin is dockerrun's own profile: Docker's default profile
	// as github.com/moby/profiles/seccomp holds it (the package Docker
	// itself builds from), with the io_uring system calls denied whatever
	// that package says. It is the same on every engine, so the sandbox is
	// not weaker where the engine is older: Docker removed io_uring from its
	// default profile only in version 25.
	SeccompBuiltin = "builtin"
	// SeccompDaemon leaves the profile to the daemon: its own default
	// profile, or the one its --seccomp-profile names. On engines older
	// than Docker 25 that profile allows io_uring.
	SeccompDaemon = "daemon"
	// SeccompUnconfined runs containers with no seccomp filter at all. [New]
	// refuses it unless [WithDangerouslyAllowUnconfinedSeccomp] says yes.
	SeccompUnconfined = "unconfined"
)

// ioUringCalls are the system calls of io_uring, a large share of the
// kernel's privilege escalations since it appeared; the builtin profile
// denies them.
var ioUringCalls = []string{"io_uring_enter", "io_uring_register", "io_uring_setup"}

// linuxEPERM is EPERM on Linux, whatever the platform the library is built
// for: the errno the kernel itself returns when io_uring is disabled.
const linuxEPERM = 1

// builtinSeccomp is the builtin profile in Docker's JSON format, made once.
var builtinSeccomp = sync.OnceValues(func() ([]byte, error) {
	base, err := dockerDefaultProfile()
	if err != nil {
		return nil, err
	}
	return json.Marshal(denyIOUring(base))
})

// BuiltinSeccompProfile returns the profile [SeccompBuiltin] stands for, in
// Docker's JSON format: a starting point for a profile of one's own.
func BuiltinSeccompProfile() ([]byte, error) {
	p, err := builtinSeccomp()
	return bytes.Clone(p), err
}

// denyIOUring removes the io_uring calls from every rule of p, drops the
// rules left empty, and adds one rule that denies them with EPERM. p is
// modified and returned.
func denyIOUring(p *seccomp.Seccomp) *seccomp.Seccomp {
	rules := p.Syscalls[:0]
	for _, r := range p.Syscalls {
		if slices.Contains(ioUringCalls, r.Name) {
			continue
		}
		if len(r.Names) > 0 {
			r.Names = slices.DeleteFunc(r.Names, func(n string) bool { return slices.Contains(ioUringCalls, n) })
			if len(r.Names) == 0 {
				continue
			}
		}
		rules = append(rules, r)
	}
	errno := uint(linuxEPERM)
	p.Syscalls = append(rules, &seccomp.Syscall{
		LinuxSyscall: specs.LinuxSyscall{
			Names:    slices.Clone(ioUringCalls),
			Action:   specs.ActErrno,
			ErrnoRet: &errno,
		},
		Comment: "dockerrun: io_uring is denied on every engine, as Docker 25 and later do",
	})
	return p
}

// checkSeccompProfile reports what is wrong with a profile in Docker's JSON
// format, as the daemon would read it.
func checkSeccompProfile(profile string) error {
	var p seccomp.Seccomp
	d := json.NewDecoder(bytes.NewReader([]byte(profile)))
	if err := d.Decode(&p); err != nil {
		return fmt.Errorf("not a seccomp profile in Docker's JSON format: %w", err)
	}
	if d.More() {
		return fmt.Errorf("more than one JSON value")
	}
	if p.DefaultAction == "" {
		// The daemon takes a profile without a default action and without
		// rules for no profile at all.
		return fmt.Errorf("no defaultAction: want one such as SCMP_ACT_ERRNO")
	}
	// What the daemon refuses at every create, found now rather than at
	// every run.
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return fmt.Errorf("both architectures and archMap: want one")
	}
	for i, r := range p.Syscalls {
		if r == nil || (r.Name == "") == (len(r.Names) == 0) {
			return fmt.Errorf("syscalls[%d]: want either name or names", i)
		}
	}
	return nil
}

// noNewPrivileges is the security option that keeps setuid binaries and
// file capabilities from raising privileges.
const noNewPrivileges = "no-new-privileges"

// securityOpt returns the security options of every container: "seccomp=..."
// unless the daemon's profile is wanted, and no-new-privileges.
func (c *config) securityOpt() ([]string, error) {
	var opts []string
	switch c.seccomp {
	case SeccompDaemon:
	case SeccompUnconfined:
		opts = append(opts, "seccomp=unconfined")
	case SeccompBuiltin:
		p, err := builtinSeccomp()
		if err != nil {
			return nil, err
		}
		opts = append(opts, "seccomp="+string(p))
	default:
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(c.seccomp)); err != nil {
			return nil, err
		}
		opts = append(opts, "seccomp="+b.String())
	}
	if c.noNewPrivileges {
		opts = append(opts, noNewPrivileges)
	}
	return opts, nil
}

// dockerMaskedPaths are the paths Docker masks in every container by
// default (oci.DefaultSpec in github.com/moby/moby, version 28), which a
// container's own MaskedPaths replace rather than extend. Docker 28 also
// masks /sys/devices/system/cpu/cpuN/thermal_throttle for each CPU of the
// daemon's host that has one, which a client cannot know; a test compares
// this list with the defaults of the daemon it runs against.
var dockerMaskedPaths = []string{
	"/proc/asound",
	"/proc/acpi",
	"/proc/interrupts",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// hostInfoPaths are the paths that tell about the host, which dockerrun
// masks besides Docker's: under runc, /proc and /sys are the host kernel's.
// What language runtimes read (/proc/cpuinfo, meminfo, stat, uptime,
// loadavg, /proc/sys, /sys/devices/system/cpu, /sys/fs/cgroup,
// /sys/kernel/mm, /sys/class/net, which shows the container's own network)
// stays; docs/security.md says why each of these goes.
var hostInfoPaths = []string{
	// The kernel's boot command line: the host's init, its options and,
	// on some hosts, its control ports.
	"/proc/cmdline",
	// The exact kernel build and configuration: what an exploit is
	// tailored to.
	"/proc/version",
	"/proc/config.gz",
	"/proc/kallsyms",
	"/proc/modules",
	"/sys/module",
	"/sys/kernel/btf",
	"/sys/kernel/notes",
	"/sys/kernel/vmcoreinfo",
	"/sys/kernel/boot_params",
	"/sys/kernel/slab",
	"/sys/kernel/irq",
	"/sys/kernel/iommu_groups",
	// The host's disks, devices and hardware.
	"/proc/partitions",
	"/proc/diskstats",
	"/proc/swaps",
	"/proc/iomem",
	"/proc/ioports",
	"/proc/devices",
	"/proc/misc",
	"/proc/dma",
	"/proc/mtrr",
	"/proc/fb",
	"/proc/consoles",
	"/proc/driver",
	"/proc/tty",
	"/sys/block",
	"/sys/class/block",
	"/sys/dev",
	"/sys/bus",
	"/sys/hypervisor",
	"/sys/power",
	"/sys/class/dmi",
	"/sys/devices/virtual/dmi",
	// Host-wide activity, readable as side channels on other tenants.
	"/proc/softirqs",
	"/proc/vmstat",
	"/proc/zoneinfo",
	"/proc/buddyinfo",
	"/proc/pagetypeinfo",
	"/proc/slabinfo",
	"/proc/vmallocinfo",
	"/proc/locks",
	"/proc/key-users",
	"/proc/pressure",
	// The host's boot id: the same in every container of the host, so runs
	// could tell that they share one.
	"/proc/sys/kernel/random/boot_id",
}

// maskedPaths is the list of paths masked in every container: Docker's
// defaults and dockerrun's own.
var maskedPaths = slices.Concat(dockerMaskedPaths, hostInfoPaths)

// MaskedPaths returns the paths that every container has masked (an empty
// file or an empty read-only directory under runc): Docker's default
// masked paths, which a container's own list replaces, and those that tell
// about the host. Docker's default read-only paths are kept as they are.
func MaskedPaths() []string { return slices.Clone(maskedPaths) }
