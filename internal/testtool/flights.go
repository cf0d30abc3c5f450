package testtool

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// flightColumns are the columns of the real flight data that the health tests keep, in order.
var flightColumns = []string{"YEAR", "MONTH", "DAY_OF_MONTH", "DAY_OF_WEEK", "UNIQUE_CARRIER", "ORIGIN",
	"DEST", "CRS_DEP_TIME", "ARR_DEL15", "CANCELLED", "DIVERTED"}

// HalfFlights writes every other row of the real 2016 flights (data/flightdata.csv, which
// `make data` puts in place and `make test` depends on) to dir/name, trimmed to the columns
// the pipeline reads, MONTH second. The data set is not committed, so the tests derive their
// fixture from it; without it the test fails and says how to get it.
func HalfFlights(t testing.TB, dir, name string) string {
	t.Helper()
	src := filepath.Join(repoRoot(t), "data", "flightdata.csv")
	in, err := os.Open(src)
	if err != nil {
		t.Fatalf("the real flight data is needed: run `make data` (%v)", err)
	}
	defer in.Close()
	recs, err := csv.NewReader(in).ReadAll()
	if err != nil {
		t.Fatalf("reading %s: %v", src, err)
	}
	idx := make([]int, len(flightColumns))
	for i, c := range flightColumns {
		idx[i] = -1
		for j, h := range recs[0] {
			if h == c {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			t.Fatalf("%s has no column %s", src, c)
		}
	}
	path := filepath.Join(dir, name)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(out)
	row := make([]string, len(idx))
	for n, rec := range recs {
		if n > 0 && (n-1)%2 != 0 {
			continue
		}
		for i, j := range idx {
			row[i] = rec[j]
		}
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// repoRoot is the directory holding go.mod, found upwards from the test's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(fmt.Errorf("no go.mod above the test's directory"))
		}
		dir = parent
	}
}
