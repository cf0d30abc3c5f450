package results_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/results"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func write(t *testing.T, dir, name string, enc func(*bytes.Buffer) vegeta.Encoder, rs []vegeta.Result) string {
	t.Helper()
	var b bytes.Buffer
	e := enc(&b)
	for i := range rs {
		if err := e.Encode(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sample(n int, seq0 uint64) []vegeta.Result {
	rs := make([]vegeta.Result, n)
	for i := range rs {
		code := uint16(200)
		if i%3 == 0 {
			code = 503
		}
		rs[i] = vegeta.Result{Attack: "a", Seq: seq0 + uint64(i), Code: code,
			Timestamp: time.Unix(1700000000, int64(i)).UTC(), Latency: time.Duration(i+1) * time.Millisecond, URL: "http://x/predict"}
	}
	return rs
}

func TestReadFilesMergesEveryEncoding(t *testing.T) {
	dir := t.TempDir()
	gob := write(t, dir, "a.bin", func(b *bytes.Buffer) vegeta.Encoder { return vegeta.NewEncoder(b) }, sample(4, 0))
	js := write(t, dir, "b.json", func(b *bytes.Buffer) vegeta.Encoder { return vegeta.NewJSONEncoder(b) }, sample(3, 100))
	csv := write(t, dir, "c.csv", func(b *bytes.Buffer) vegeta.Encoder { return vegeta.NewCSVEncoder(b) }, sample(2, 200))
	empty := filepath.Join(dir, "empty.bin")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	var codes [600]int
	err := results.ReadFiles(context.Background(), []string{gob, js, empty, csv}, nil, func(r *vegeta.Result) {
		seqs = append(seqs, r.Seq)
		codes[r.Code]++
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{0, 1, 2, 3, 100, 101, 102, 200, 201}
	if len(seqs) != len(want) {
		t.Fatalf("read %v, want %v", seqs, want)
	}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("read %v, want %v", seqs, want)
		}
	}
	// Results 0 and 3 of the gob file, 0 of the JSON and 0 of the CSV file are 503s: a reused
	// Result must not carry a 503 into the 200s that follow it.
	if codes[503] != 4 || codes[200] != 5 {
		t.Fatalf("codes 200: %d, 503: %d; want 5 and 4", codes[200], codes[503])
	}
}

func TestReadFromStdin(t *testing.T) {
	var b bytes.Buffer
	e := vegeta.NewJSONEncoder(&b)
	for _, r := range sample(2, 0) {
		if err := e.Encode(&r); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := results.ReadFiles(context.Background(), []string{"-"}, &b, func(*vegeta.Result) { n++ }); err != nil || n != 2 {
		t.Fatalf("read %d results, err %v; want 2", n, err)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		paths   []string
		stdin   io.Reader
		wantErr string
	}{
		"A missing file is named.":            {paths: []string{filepath.Join(dir, "nope.bin")}, wantErr: "could not open results file"},
		"Text in no encoding is refused.":     {paths: []string{"-"}, stdin: strings.NewReader("hello\n"), wantErr: `results file "-" is not in vegeta's gob, JSON or CSV encoding`},
		"A broken JSON line names its place.": {paths: []string{"-"}, stdin: strings.NewReader("{\"code\":200}\n{\"code\": 200, \"lat\n{\"code\":200}\n"), wantErr: `results file "-": result 2`},
		"Standard input must be given.":       {paths: []string{"-"}, wantErr: "no standard input"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := results.ReadFiles(context.Background(), tt.paths, tt.stdin, func(*vegeta.Result) {})
			if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want an input error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadStopsOnCancel(t *testing.T) {
	var b bytes.Buffer
	e := vegeta.NewJSONEncoder(&b)
	for _, r := range sample(10000, 0) {
		if err := e.Encode(&r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := results.Read(ctx, "run.json", &b, func(*vegeta.Result) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
