package results_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
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
		"A broken JSON line names its place.": {paths: []string{"-"}, stdin: strings.NewReader("{\"code\":200}\n{\"code\": 200, \"lat\n{\"code\":200}\n"), wantErr: `results file "-": line 2`},
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

// encodeAll encodes rs with enc into one byte slice.
func encodeAll(t *testing.T, enc func(io.Writer) vegeta.Encoder, rs []vegeta.Result) []byte {
	t.Helper()
	var b bytes.Buffer
	e := enc(&b)
	for i := range rs {
		if err := e.Encode(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestTheLastResultIsNeverLostSilently(t *testing.T) {
	rs := sample(5, 0)
	rs[4].Code = 500 // the failure a CI gate must see
	jsonl := encodeAll(t, func(w io.Writer) vegeta.Encoder { return vegeta.NewJSONEncoder(w) }, rs)
	csv := encodeAll(t, func(w io.Writer) vegeta.Encoder { return vegeta.NewCSVEncoder(w) }, rs)
	gob := encodeAll(t, func(w io.Writer) vegeta.Encoder { return vegeta.NewEncoder(w) }, rs)
	tests := map[string]struct {
		data     []byte
		want500s int
		wantErr  string
	}{
		"JSON lines with every newline give every result.":         {data: jsonl, want500s: 1},
		"A last JSON line without its newline is still read.":      {data: jsonl[:len(jsonl)-1], want500s: 1},
		"A last JSON line cut mid-line is an error naming line 5.": {data: jsonl[:len(jsonl)-20], wantErr: `results file "run.json": line 5: cut short`},
		"A last CSV record without its newline is still read.":     {data: csv[:len(csv)-1], want500s: 1},
		"A last CSV record cut mid-record is an error.":            {data: csv[:len(csv)-30], wantErr: `results file "run.json": result 5`},
		"A gob stream cut mid-result is an error.":                 {data: gob[:len(gob)-3], wantErr: `results file "run.json": result 5`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			n, n500 := 0, 0
			err := results.Read(context.Background(), "run.json", bytes.NewReader(tt.data), func(r *vegeta.Result) {
				n++
				if r.Code == 500 {
					n500++
				}
			})
			if tt.wantErr != "" {
				if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want an input error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || n != 5 || n500 != tt.want500s {
				t.Fatalf("read %d results (%d of them 500s), err %v; want 5 with %d", n, n500, err, tt.want500s)
			}
		})
	}
}

// endless yields n bytes made by repeating pattern, counting what was read.
type endless struct {
	pattern []byte
	left    int64
	read    int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	for i := range p {
		p[i] = e.pattern[(e.read+int64(i))%int64(len(e.pattern))]
	}
	e.left -= int64(len(p))
	e.read += int64(len(p))
	return len(p), nil
}

func TestALargeFileInNoEncodingIsRefusedCheaply(t *testing.T) {
	const size = 200 << 20
	tests := map[string][]byte{
		"One 200 MB line of text.":     []byte("x"),
		"200 MB of short text lines.":  []byte("hello, world\n"),
		"200 MB of high bytes.":        {0xff, 0xfe, 0x80},
		"A huge declared gob message.": {0xfc, 0x7f, 0xff, 0xff, 0xff},
		"200 MB of one JSON-ish line.": []byte(`{"code":200,"latency":1,`),
	}
	for name, pattern := range tests {
		t.Run(name, func(t *testing.T) {
			src := &endless{pattern: pattern, left: size}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := results.Read(context.Background(), "big.bin", src, func(*vegeta.Result) {})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), `"big.bin"`) {
				t.Fatalf("error %v, want an input error naming big.bin", err)
			}
			// At most one record of MaxRecordBytes is looked at before giving up.
			if limit := int64(2 * results.MaxRecordBytes); src.read > limit {
				t.Errorf("read %d MiB before refusing, want at most %d MiB", src.read>>20, limit>>20)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*results.MaxRecordBytes {
				t.Errorf("allocated %d MiB while refusing, want at most %d MiB", alloc>>20, 8*results.MaxRecordBytes>>20)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	rs := sample(3, 0)
	for _, enc := range []func(io.Writer) vegeta.Encoder{
		func(w io.Writer) vegeta.Encoder { return vegeta.NewEncoder(w) },
		func(w io.Writer) vegeta.Encoder { return vegeta.NewJSONEncoder(w) },
		func(w io.Writer) vegeta.Encoder { return vegeta.NewCSVEncoder(w) },
	} {
		var b bytes.Buffer
		e := enc(&b)
		for i := range rs {
			if err := e.Encode(&rs[i]); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(b.Bytes())
		f.Add(b.Bytes()[:b.Len()-1])
	}
	f.Add([]byte("hello\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		err := results.Read(context.Background(), "fuzz", bytes.NewReader(data), func(*vegeta.Result) { n++ })
		if err != nil && !errors.Is(err, inputerr.Err) {
			t.Fatalf("error %v is not an input error", err)
		}
		if err == nil && len(bytes.TrimSpace(data)) > 0 && n == 0 {
			t.Fatalf("%d bytes read as no result and no error", len(data))
		}
	})
}
