package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// initMain is main for PID 1. A container's PID 1 inherits every orphaned
// process and must reap it, and waiting for any child (wait4(-1)) would steal
// the exit status of the commands the agent waits for itself. So PID 1 splits
// in two: it starts a copy of this binary (same arguments, same stdin, stdout
// and stderr) as the agent, then only forwards signals to it and reaps
// children until the agent exits, and exits with the agent's status. Orphans
// of the user's programs are reparented to PID 1 and reaped there, while the
// agent waits for its own children undisturbed.
func initMain(args []string, stdin, stdout, stderr *os.File) int {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	pid, err := syscall.ForkExec(exe, args, &syscall.ProcAttr{
		Env:   append(os.Environ(), envUnderInit+"=1"),
		Files: []uintptr{stdin.Fd(), stdout.Fd(), stderr.Fd()},
	})
	if err != nil {
		// Without a child there is nothing to reap for: be the agent.
		signal.Stop(sigs)
		return agentMain(args[1:], stdin, stdout, stderr, os.Getenv)
	}
	go func() {
		for s := range sigs {
			syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	status, _, err := reapUntil(pid)
	if err != nil {
		fmt.Fprintf(stderr, "code-runner: init: %v\n", err)
		return 1
	}
	return exitCode(status)
}

// reapUntil waits for any child, reaping every one, until pid exits. It
// returns pid's wait status and how many other children it reaped.
func reapUntil(pid int) (syscall.WaitStatus, int, error) {
	reaped := 0
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, reaped, fmt.Errorf("wait for %d: %w", pid, err)
		}
		if wpid == pid {
			return ws, reaped, nil
		}
		reaped++
	}
}

// exitCode turns a wait status into a shell-style exit status.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
