package serve

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/inputerr"
)

func TestRunKeysHash(t *testing.T) {
	tests := map[string]struct {
		name, in  string
		want      string
		wantInput bool
	}{
		"A key with a newline gives its line.":    {name: "ci", in: "k3y\n", want: KeyLine("k3y", "ci") + "\n"},
		"A key without a newline gives its line.": {in: "k3y", want: KeyLine("k3y", "") + "\n"},
		"No key is an input error.":               {in: "\n", wantInput: true},
		"A bad name is an input error.":           {name: "two words", in: "k3y\n", wantInput: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := RunKeysHash(tt.name, strings.NewReader(tt.in), &out)
			if errors.Is(err, inputerr.Err) != tt.wantInput || (!tt.wantInput && err != nil) {
				t.Fatalf("error %v, want an input error: %v", err, tt.wantInput)
			}
			if out.String() != tt.want {
				t.Errorf("printed %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestRunKeysNewAppendsAPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.txt")
	var out, errOut bytes.Buffer
	if err := RunKeysNew(KeysOptions{Name: "ci", Append: path}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out.String())
	data, err := os.ReadFile(path)
	if err != nil || string(data) != KeyLine(key, "ci")+"\n" {
		t.Fatalf("keys file %q (%v), want the line of the printed key", data, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v, want 0600", st.Mode().Perm())
	}
}
