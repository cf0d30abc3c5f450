package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/delayctl/delayctl/pkg/atomicfile"
)

func TestWrite(t *testing.T) {
	boom := errors.New("boom")
	tests := map[string]struct {
		write    func(io.Writer) error
		perm     os.FileMode
		wantErr  error
		wantData string
	}{
		"A complete write replaces the file.": {
			write: func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, perm: 0o644, wantData: "new",
		},
		"A failed write leaves the old file.": {
			write: func(w io.Writer) error { _, _ = io.WriteString(w, "half"); return boom }, perm: 0o644, wantErr: boom, wantData: "old",
		},
		"The permissions are the ones asked for.": {
			write: func(w io.Writer) error { _, err := io.WriteString(w, "secret"); return err }, perm: 0o600, wantData: "secret",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.txt")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := atomicfile.Write(path, tt.perm, tt.write)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Write = %v, want %v", err, tt.wantErr)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tt.wantData {
				t.Errorf("file holds %q, want %q", got, tt.wantData)
			}
			if st, _ := os.Stat(path); tt.wantErr == nil && st.Mode().Perm() != tt.perm {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.perm)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

func TestCreateAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.bin")
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("directory holds %v after Abort, want nothing", entries)
	}
}

func TestAMissingDirectoryIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "out.txt")
	if err := atomicfile.Write(path, 0o644, func(io.Writer) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Write = %v, want os.ErrNotExist", err)
	}
}
