package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// checkName reports whether name is a safe relative file name: not empty, no
// NUL byte, not absolute, and no empty, "." or ".." component.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("file name %q contains a NUL byte", name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("file name %q is absolute: names must be relative to the work directory", name)
	}
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "":
			return fmt.Errorf("file name %q has an empty path component", name)
		case ".", "..":
			return fmt.Errorf("file name %q has a %q component", name, part)
		}
	}
	return nil
}

// writeFiles writes files into dir. Names must have passed checkName. It
// never follows a symbolic link inside dir: directories are created and opened
// one component at a time with O_NOFOLLOW, and files are created with
// O_CREAT|O_EXCL|O_NOFOLLOW, so that every file lands inside dir.
func writeFiles(dir string, files []File) error {
	root, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open work directory %s: %w", dir, err)
	}
	defer syscall.Close(root)
	for _, f := range files {
		if err := checkName(f.Name); err != nil {
			return err
		}
		if err := writeFile(root, f); err != nil {
			return fmt.Errorf("write file %q: %w", f.Name, err)
		}
	}
	return nil
}

// writeFile writes one file below the directory open as root.
func writeFile(root int, f File) error {
	parts := strings.Split(f.Name, "/")
	dirfd := root
	defer func() {
		if dirfd != root {
			syscall.Close(dirfd)
		}
	}()
	for _, part := range parts[:len(parts)-1] {
		err := syscall.Mkdirat(dirfd, part, 0o755)
		if err != nil && err != syscall.EEXIST {
			return fmt.Errorf("create directory %q: %w", part, err)
		}
		fd, err := syscall.Openat(dirfd, part, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err == syscall.ELOOP || err == syscall.ENOTDIR {
			return fmt.Errorf("%q is a symbolic link or not a directory", part)
		}
		if err != nil {
			return fmt.Errorf("open directory %q: %w", part, err)
		}
		if dirfd != root {
			syscall.Close(dirfd)
		}
		dirfd = fd
	}
	fd, err := syscall.Openat(dirfd, parts[len(parts)-1], syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err == syscall.EEXIST {
		return errors.New("a file, directory or symbolic link of that name already exists")
	}
	if err != nil {
		return err
	}
	file := os.NewFile(uintptr(fd), f.Name)
	if _, err := file.WriteString(f.Content); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
