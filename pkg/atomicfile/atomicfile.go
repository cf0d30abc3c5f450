// Package atomicfile writes output files so that readers never see half of one: the bytes go
// to a temporary file in the destination's directory, which is synced to disk and renamed
// over the destination only once complete. A failed or abandoned write leaves the
// destination as it was and no temporary file behind.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an output being written. Write to it, then Commit to put it in place, or Abort.
type File struct {
	f    *os.File
	w    *bufio.Writer
	path string
}

// Create starts writing path with permissions perm; the directory must exist.
func Create(path string, perm os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	return &File{f: f, w: bufio.NewWriterSize(f, 256<<10), path: path}, nil
}

// Write buffers p for the file.
func (a *File) Write(p []byte) (int, error) { return a.w.Write(p) }

// Commit flushes and syncs the file and renames it over the destination. On failure the
// destination is untouched and the temporary file removed.
func (a *File) Commit() error {
	err := a.w.Flush()
	if err == nil {
		err = a.f.Sync()
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.f.Name(), a.path)
	}
	if err != nil {
		_ = os.Remove(a.f.Name())
		return err
	}
	// Sync the directory too, so the rename itself survives a crash; not every file
	// system supports it, and the file is in place either way.
	if d, derr := os.Open(filepath.Dir(a.path)); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Abort drops the file; the destination is untouched.
func (a *File) Abort() {
	_ = a.f.Close()
	_ = os.Remove(a.f.Name())
}

// Write writes path with permissions perm through write, atomically. Errors name path.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	a, err := Create(path, perm)
	if err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	if err := write(a); err != nil {
		a.Abort()
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	if err := a.Commit(); err != nil {
		return fmt.Errorf("could not write %s: %w", path, err)
	}
	return nil
}
