package model

import (
	"encoding/csv"
	"errors"
	"strings"
	"testing"
)

func parseOne(t *testing.T, csvText string, cols Columns) (Flight, error) {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewParser(recs[0], cols)
	if err != nil {
		return Flight{}, err
	}
	var f Flight
	err = p.Parse(recs[1], &f)
	return f, err
}

var nycColumns = Columns{
	Year: "year", Month: "month", DayOfMonth: "day", Origin: "origin", Dest: "dest",
	Carrier: "carrier", CRSDepTime: "sched_dep_time", NAValues: []string{"NA"},
}

func TestParser(t *testing.T) {
	bts := `"YEAR","MONTH","DAY_OF_MONTH","DAY_OF_WEEK","UNIQUE_CARRIER","ORIGIN","DEST","CRS_DEP_TIME",` + "\n"
	tests := map[string]struct {
		csv     string
		cols    Columns
		want    Flight
		wantErr string
		missing bool
	}{
		"A BTS row with a zero-padded time parses.": {
			csv: bts + `2016,1,1,5,"DL","ATL","SEA","0940",`, cols: BTSColumns,
			want: Flight{Month: 1, DayOfMonth: 1, DayOfWeek: 5, Origin: "ATL", Dest: "SEA", Carrier: "DL", CRSDepTime: 940},
		},
		"A nycflights row derives the day of week from the date.": {
			csv:  `"","year","month","day","sched_dep_time","carrier","origin","dest"` + "\n" + `"1",2013,1,1,515,"UA","EWR","IAH"`,
			cols: nycColumns,
			// 1 January 2013 was a Tuesday.
			want: Flight{Month: 1, DayOfMonth: 1, DayOfWeek: 2, Origin: "EWR", Dest: "IAH", Carrier: "UA", CRSDepTime: 515},
		},
		"An NA cell is a missing value.": {
			csv:  `"","year","month","day","sched_dep_time","carrier","origin","dest"` + "\n" + `"1",2013,1,1,NA,"UA","EWR","IAH"`,
			cols: nycColumns, wantErr: "column sched_dep_time (crs_dep_time): missing value", missing: true,
		},
		"A word in a numeric column names column and value.": {
			csv: bts + `2016,jan,1,5,"DL","ATL","SEA","0940",`, cols: BTSColumns,
			wantErr: `column MONTH (month): "jan": not an integer`,
		},
		"An impossible clock time is refused.": {
			csv: bts + `2016,1,1,5,"DL","ATL","SEA","0975",`, cols: BTSColumns,
			wantErr: `column CRS_DEP_TIME (crs_dep_time): "0975": must be a clock time hhmm, 0000..2400`,
		},
		"Missing columns are all named.": {
			csv: `"YEAR","MONTH"` + "\n" + `2016,1`, cols: BTSColumns,
			wantErr: "missing required columns: DAY_OF_MONTH (for day_of_month), DAY_OF_WEEK (for day_of_week), ORIGIN (for origin), DEST (for dest), UNIQUE_CARRIER (for carrier), CRS_DEP_TIME (for crs_dep_time)",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseOne(t, tt.csv, tt.cols)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrMissing) != tt.missing {
					t.Fatalf("errors.Is(err, ErrMissing) = %v, want %v", !tt.missing, tt.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadFlightsSkipsUnusableRows(t *testing.T) {
	m := testModel(t)
	in := `"YEAR","MONTH","DAY_OF_MONTH","DAY_OF_WEEK","UNIQUE_CARRIER","ORIGIN","DEST","CRS_DEP_TIME",
2016,1,1,5,"DL","ATL","SEA","0940",
2016,1,1,5,"DL","","SEA","0940",
2016,2,3,3,"DL","JFK","ATL","1305",
`
	var rows []int
	var origins []string
	err := m.ReadFlights(strings.NewReader(in), func(row int, f Flight) error {
		rows = append(rows, row)
		origins = append(origins, f.Origin)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0] != 1 || rows[1] != 3 || origins[1] != "JFK" {
		t.Fatalf("rows %v origins %v, want rows [1 3] with JFK second", rows, origins)
	}
}
