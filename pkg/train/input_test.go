package train

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/inputerr"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipped(t *testing.T, content string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func zipped(t *testing.T, files map[string]string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Every way an output could land on an input, and every input the data cannot support, is
// refused before anything is written.
func TestRunRefusesOutputsOverInputsAndImpossibleCV(t *testing.T) {
	dir := t.TempDir()
	small := readFile(t, "testdata/flights_small.csv")
	data := writeFile(t, dir, "data.csv", small)
	cfg := writeFile(t, dir, "train.yaml", readFile(t, "../../configs/train.yaml"))
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	plots := filepath.Join(dir, "plots")
	if err := os.Mkdir(plots, 0o755); err != nil {
		t.Fatal(err)
	}
	plotData := writeFile(t, plots, "roc.png", small)
	tests := map[string]struct {
		opts    Options
		wantErr string
	}{
		"--out equal to --data is refused.": {
			opts:    Options{DataPath: data, OutPath: data},
			wantErr: "--out " + data + " is also an input",
		},
		"--out naming the data by another path is refused.": {
			opts:    Options{DataPath: data, OutPath: filepath.Join(dir, ".", "sub", "..", "data.csv")},
			wantErr: "is also an input",
		},
		"--out through a symlink to the data is refused.": {
			opts:    Options{DataPath: data, OutPath: link},
			wantErr: "--out " + link + " is also an input",
		},
		"--metrics-out equal to --data is refused.": {
			opts:    Options{DataPath: data, OutPath: filepath.Join(dir, "m.json"), MetricsOut: data},
			wantErr: "--metrics-out " + data + " is also an input",
		},
		"A plot file equal to an input is refused.": {
			opts:    Options{DataPaths: []string{data, plotData}, OutPath: filepath.Join(dir, "m.json"), PlotsDir: plots},
			wantErr: "--plots roc.png " + plotData + " is also an input",
		},
		"--out equal to the pipeline config is refused.": {
			opts:    Options{DataPath: data, ConfigPath: cfg, OutPath: cfg},
			wantErr: "--out " + cfg + " is also an input",
		},
		"--out equal to --metrics-out is refused.": {
			opts:    Options{DataPath: data, OutPath: filepath.Join(dir, "m.json"), MetricsOut: filepath.Join(dir, "m.json")},
			wantErr: "--metrics-out and --out both write",
		},
		"--cv above the delayed rows names the maximum.": {
			opts:    Options{DataPath: data, OutPath: filepath.Join(dir, "m.json"), CVFolds: 5},
			wantErr: "--cv 5 is more folds than the data supports: each fold needs a delayed and an on-time row, and the cleaned rows hold 4 delayed and 5 on time, so at most --cv 4",
		},
		"--cv 100000 is refused before reading.": {
			opts:    Options{DataPath: data, OutPath: filepath.Join(dir, "m.json"), CVFolds: 100000},
			wantErr: "--cv must be at most 255, got 100000",
		},
		"A glob that matches nothing is named.": {
			opts:    Options{DataPath: filepath.Join(dir, "*.zip"), OutPath: filepath.Join(dir, "m.json")},
			wantErr: "matches no file",
		},
		"The same file twice is refused.": {
			opts:    Options{DataPaths: []string{data, filepath.Join(dir, "*.csv")}, OutPath: filepath.Join(dir, "m.json")},
			wantErr: "--data names " + data + " twice",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			before := readFile(t, data)
			if tt.opts.CVFolds == 0 {
				tt.opts.CVFolds = -1
			}
			_, err := Run(context.Background(), tt.opts, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, inputerr.Err) {
				t.Fatalf("error %v, want an input error containing %q", err, tt.wantErr)
			}
			if readFile(t, data) != before || readFile(t, plotData) != before {
				t.Fatal("an input was changed")
			}
			for _, p := range []string{filepath.Join(dir, "m.json"), filepath.Join(plots, "calibration.png")} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s was written", p)
				}
			}
		})
	}
}

func TestCleanRefusesOutputOverInput(t *testing.T) {
	dir := t.TempDir()
	data := writeFile(t, dir, "data.csv", readFile(t, "testdata/flights_small.csv"))
	_, err := RunClean(context.Background(), CleanOptions{DataPath: data, OutPath: data}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--out "+data+" is also an input") {
		t.Fatalf("error %v, want the output refused", err)
	}
}

func TestHeaderAndLineHardening(t *testing.T) {
	small := readFile(t, "testdata/flights_small.csv")
	header, body, _ := strings.Cut(small, "\n")
	tests := map[string]struct {
		in       string
		maxLine  int
		wantErr  string
		wantRows int
	}{
		"A UTF-8 byte-order mark before a quoted header is stripped.": {
			in: "\ufeff" + small, wantRows: 9,
		},
		"A duplicated header name is an error naming both columns.": {
			in:      strings.Replace(header, `"TAIL_NUM"`, `"ORIGIN"`, 1) + "\n" + body,
			wantErr: `duplicate column name "ORIGIN": columns 7 and 10`,
		},
		"A line over the limit is an error with its line number.": {
			in:      header + "\n" + strings.SplitN(body, "\n", 2)[0] + "\n" + strings.Repeat("x", 5000) + "\n" + body,
			maxLine: 4096, wantErr: "line 3: line too long: more than 4096 bytes without a newline",
		},
		"Lines at the limit are read.": {
			in: small, maxLine: 400, wantRows: 9,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			maxLine := tt.maxLine
			if maxLine == 0 {
				maxLine = DefaultMaxLineBytes
			}
			ds, _, err := CleanInputs([]CleanInput{{Name: "f.csv", R: textReader(strings.NewReader(tt.in), maxLine)}}, DefaultConfig())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "f.csv: ") {
					t.Fatalf("error %v, want f.csv: ...%q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != tt.wantRows {
				t.Fatalf("%d rows, want %d", ds.Len(), tt.wantRows)
			}
		})
	}
}

// endless is an io.Reader of x bytes without a newline, forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// One endless line stops at the limit: the reader allocates in proportion to the limit,
// not to the line.
func TestOverlongLineKeepsMemoryBounded(t *testing.T) {
	const limit = 1 << 20
	header := strings.SplitN(readFile(t, "testdata/flights_small.csv"), "\n", 2)[0]
	r := io.MultiReader(strings.NewReader(header+"\n"), endless{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := CleanInputs([]CleanInput{{Name: "big.csv", R: textReader(r, limit)}}, DefaultConfig())
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLineTooLong) || !strings.Contains(err.Error(), "big.csv: row 1: line 2:") {
		t.Fatalf("error %v, want line 2 too long in big.csv", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*limit {
		t.Fatalf("reading an endless line allocated %d bytes, want at most %d", alloc, 16*limit)
	}
}

func TestManyInputsGzipAndZip(t *testing.T) {
	dir := t.TempDir()
	small := readFile(t, "testdata/flights_small.csv")
	header, body, _ := strings.Cut(small, "\n")
	bad := header + "\n" + strings.Replace(strings.SplitN(body, "\n", 2)[0], `"0905"`, `"nine"`, 1) + "\n"
	good := filepath.Join(dir, "good")
	if err := os.Mkdir(good, 0o755); err != nil {
		t.Fatal(err)
	}
	plain := writeFile(t, good, "a.csv", small)
	gz := writeFile(t, good, "b.csv.gz", gzipped(t, small))
	zp := writeFile(t, good, "c.zip", zipped(t, map[string]string{"On_Time_2016_1.csv": small, "readme.html": "<p>terms</p>"}))
	tests := map[string]struct {
		data     []string
		wantRows int
		wantErr  string
	}{
		"A plain, a gzip and a zip input read as one table.": {data: []string{plain, gz, zp}, wantRows: 27},
		"A glob reads every match.":                          {data: []string{filepath.Join(good, "*.csv*")}, wantRows: 18},
		"A bad cell in a gzip input names the file and line.": {
			data:    []string{plain, writeFile(t, dir, "bad.csv.gz", gzipped(t, bad))},
			wantErr: filepath.Join(dir, "bad.csv.gz") + `:2: row 1, column CRS_DEP_TIME: "nine": not an integer`,
		},
		"A bad cell in a zip input names the file and line.": {
			data:    []string{writeFile(t, dir, "bad.zip", zipped(t, map[string]string{"x.csv": bad}))},
			wantErr: filepath.Join(dir, "bad.zip") + `:2: row 1`,
		},
		"A zip with two CSVs is refused.": {
			data:    []string{writeFile(t, dir, "two.zip", zipped(t, map[string]string{"x.csv": small, "y.csv": small}))},
			wantErr: "want exactly one .csv inside the zip, found 2",
		},
		"A file that is not gzip is named.": {
			data:    []string{writeFile(t, dir, "fake.csv.gz", small)},
			wantErr: filepath.Join(dir, "fake.csv.gz") + ": not a gzip file",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			inputs, err := ExpandInputs(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			ds, _, err := cleanFiles(inputs, DefaultConfig(), nil, 0)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != tt.wantRows {
				t.Fatalf("%d rows, want %d", ds.Len(), tt.wantRows)
			}
		})
	}
}

// FuzzClean feeds arbitrary bytes through the input path training uses (BOM, line limit,
// CSV, header, cells): it may refuse them, never panic, and what it keeps is in range.
func FuzzClean(f *testing.F) {
	small, err := os.ReadFile("testdata/flights_small.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add(append([]byte("\ufeff"), small...))
	f.Add([]byte("YEAR,MONTH\n2016,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.InvalidRows = PolicyDrop
		cfg.Missing = map[string]string{"month": ImputeMedian, "origin": ImputeMode, "crs_dep_time": ImputeMedian}
		ds, _, err := CleanInputs([]CleanInput{{Name: "fuzz.csv", R: textReader(bytes.NewReader(data), 4096)}}, cfg)
		if err != nil {
			return
		}
		for i := range ds.Len() {
			fl := ds.Flight(i)
			if err := fl.Validate(); err != nil {
				t.Fatalf("kept row %d is invalid: %v", i, err)
			}
		}
	})
}
