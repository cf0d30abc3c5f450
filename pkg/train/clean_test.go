package train

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/google/go-cmp/cmp"
)

func cleanFile(t *testing.T, path string, cfg Config) (*Dataset, *CleanReport, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Clean(f, cfg)
}

func TestCleanSmallBTS(t *testing.T) {
	ds, rep, err := cleanFile(t, "testdata/flights_small.csv", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// 12 rows: row 3 cancelled, row 5 diverted, row 10 has no ARR_DEL15 and is neither.
	want := &CleanReport{
		RowsRead: 12, RowsKept: 9, Delayed: 4,
		Dropped: map[string]int{DropCancelled: 1, DropDiverted: 1, DropMissingLabel: 1},
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Fatalf("report (-want +got):\n%s", diff)
	}
	first := model.Flight{Month: 1, DayOfMonth: 4, DayOfWeek: 1, Origin: "ATL", Dest: "SEA", Carrier: "DL", CRSDepTime: 905}
	if ds.Flight(0) != first || ds.Delayed[0] || !ds.Delayed[1] {
		t.Fatalf("first rows %+v %v, want %+v on time then a delay", []model.Flight{ds.Flight(0), ds.Flight(1)}, ds.Delayed[:2], first)
	}
}

func TestCleanPolicies(t *testing.T) {
	tests := map[string]struct {
		edit        func(*Config)
		wantKept    int
		wantDelayed int
		wantDropped map[string]int
	}{
		"Cancelled flights counted as delayed are kept.": {
			edit:     func(c *Config) { c.Label.Cancelled.Policy = PolicyDelayed },
			wantKept: 10, wantDelayed: 5,
			wantDropped: map[string]int{DropDiverted: 1, DropMissingLabel: 1},
		},
		"Both policies delayed keep all labelled rows.": {
			edit: func(c *Config) {
				c.Label.Cancelled.Policy = PolicyDelayed
				c.Label.Diverted.Policy = PolicyDelayed
			},
			wantKept: 11, wantDelayed: 6,
			wantDropped: map[string]int{DropMissingLabel: 1},
		},
		"A minutes label derives delays from ARR_DELAY >= 15.": {
			edit: func(c *Config) {
				c.Label = LabelConfig{DelayMinutesColumn: "ARR_DELAY", ThresholdMinutes: 15,
					Cancelled: OutcomePolicy{Column: "CANCELLED"}, Diverted: OutcomePolicy{Column: "DIVERTED"}}
			},
			wantKept: 9, wantDelayed: 4,
			wantDropped: map[string]int{DropCancelled: 1, DropDiverted: 1, DropMissingLabel: 1},
		},
		"A 60-minute threshold keeps only the long delays.": {
			edit: func(c *Config) {
				c.Label = LabelConfig{DelayMinutesColumn: "ARR_DELAY", ThresholdMinutes: 60,
					Cancelled: OutcomePolicy{Column: "CANCELLED"}, Diverted: OutcomePolicy{Column: "DIVERTED"}}
			},
			wantKept: 9, wantDelayed: 2,
			wantDropped: map[string]int{DropCancelled: 1, DropDiverted: 1, DropMissingLabel: 1},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			_, rep, err := cleanFile(t, "testdata/flights_small.csv", cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.RowsKept != tt.wantKept || rep.Delayed != tt.wantDelayed {
				t.Errorf("kept %d (%d delayed), want %d (%d delayed)", rep.RowsKept, rep.Delayed, tt.wantKept, tt.wantDelayed)
			}
			if diff := cmp.Diff(tt.wantDropped, rep.Dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCleanNYCFlightsThroughConfigAlone(t *testing.T) {
	cfg, err := LoadConfig("../../configs/nycflights.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ds, rep, err := cleanFile(t, "testdata/nycflights_small.csv", cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := &CleanReport{
		RowsRead: 15, RowsKept: 13, Delayed: 6,
		Dropped: map[string]int{DropMissingLabel: 1, DropInvalid: 1},
		Invalid: []RowIssue{{Line: 14, Row: 13, Column: "month", Value: "13", Reason: "must be 1..12"}},
		Imputed: map[string]Imputation{"carrier": {Count: 1, Method: ImputeMode, Value: "UA"}},
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Fatalf("report (-want +got):\n%s", diff)
	}
	// Row 9 (2013-02-14, a Thursday): day of week derived from the date; arr_delay 67 >= 15.
	got := ds.Flight(7)
	wantF := model.Flight{Month: 2, DayOfMonth: 14, DayOfWeek: 4, Origin: "LGA", Dest: "MIA", Carrier: "AA", CRSDepTime: 1800}
	if got != wantF || !ds.Delayed[7] {
		t.Fatalf("row 9 cleaned to %+v delayed=%v, want %+v delayed", got, ds.Delayed[7], wantF)
	}
	// Row 10 had carrier NA; the mode of the kept rows is UA.
	if ds.Flight(8).Carrier != "UA" {
		t.Fatalf("imputed carrier %q, want UA", ds.Flight(8).Carrier)
	}
}

func TestCleanRejects(t *testing.T) {
	header := strings.SplitN(readFile(t, "testdata/flights_small.csv"), "\n", 2)[0]
	row := `2016,1,1,4,1,"DL","N100DN","1001",10397,"ATL",14747,"SEA","0905","0903",-2.00,0.00,"1140","1131",-9.00,0.00,0.00,0.00,335.00,328.00,2182.00,`
	tests := map[string]struct {
		in      string
		wantErr string
		is      error
	}{
		"An empty file has no header.": {in: "", wantErr: "the file is empty: no header row"},
		"A header without the needed columns names them.": {
			in:      `"YEAR","MONTH","DAY_OF_MONTH","ARR_DEL15"` + "\n2016,1,1,0\n",
			wantErr: "missing required columns: DAY_OF_WEEK (for day_of_week), ORIGIN (for origin), DEST (for dest), UNIQUE_CARRIER (for carrier), CRS_DEP_TIME (for crs_dep_time)",
		},
		"A word in MONTH names row and column.": {
			in:      header + "\n" + row + "\n" + strings.Replace(row, "2016,1,1,4", "2016,1,jan,4", 1) + "\n",
			wantErr: `line 3: row 2, column MONTH: "jan": not an integer`,
		},
		"A label of 2 names the label column.": {
			in:      header + "\n" + strings.Replace(row, "-9.00,0.00,0.00", "-9.00,2.00,0.00", 1) + "\n",
			wantErr: `line 2: row 1, column ARR_DEL15: "2.00": want 0 or 1`,
		},
		"A header with no rows has no usable rows.": {in: header + "\n", is: ErrNoRows},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := Clean(strings.NewReader(tt.in), DefaultConfig())
			if err == nil {
				t.Fatal("Clean accepted bad input")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			if tt.wantErr != "" && err.Error() != tt.wantErr {
				t.Fatalf("error\n  %q\nwant\n  %q", err, tt.wantErr)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
