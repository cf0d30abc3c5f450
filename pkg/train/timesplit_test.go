package train

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/model"
)

func datedSet(years []uint16, dates ...[2]int) *Dataset {
	ds := &Dataset{Years: years}
	for i, d := range dates {
		f := model.Flight{Month: d[0], DayOfMonth: d[1], DayOfWeek: 1, Origin: "ATL", Dest: "SEA", Carrier: "DL", CRSDepTime: 900}
		if err := ds.appendRow(&f, 0, i%2 == 0); err != nil {
			panic(err)
		}
	}
	return ds
}

func TestTimeSplit(t *testing.T) {
	tests := map[string]struct {
		ds                  *Dataset
		frac                float64
		wantTrain, wantTest string
		expErr              bool
	}{
		"The latest fifth of the rows is held out, whatever the file order.": {
			ds:   datedSet(nil, [2]int{3, 1}, [2]int{1, 1}, [2]int{2, 1}, [2]int{5, 1}, [2]int{4, 1}),
			frac: 0.2, wantTrain: "01-01..04-01", wantTest: "05-01..05-01",
		},
		"A day is never split between the two sides.": {
			ds:   datedSet(nil, [2]int{1, 1}, [2]int{1, 2}, [2]int{1, 2}, [2]int{1, 2}, [2]int{1, 3}),
			frac: 0.5, wantTrain: "01-01..01-02", wantTest: "01-03..01-03",
		},
		"Years order rows before months do.": {
			ds:   datedSet([]uint16{2017, 2016, 2016, 2017}, [2]int{1, 5}, [2]int{12, 1}, [2]int{11, 1}, [2]int{1, 6}),
			frac: 0.5, wantTrain: "2016-11-01..2016-12-01", wantTest: "2017-01-05..2017-01-06",
		},
		"Rows from a single day cannot be split in time.": {
			ds: datedSet(nil, [2]int{1, 1}, [2]int{1, 1}), frac: 0.5, expErr: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			earlier, later, err := timeSplit(tc.ds, seq(tc.ds.Len()), tc.frac)
			if tc.expErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := period(tc.ds, earlier); got != tc.wantTrain {
				t.Errorf("train period %s, want %s", got, tc.wantTrain)
			}
			if got := period(tc.ds, later); got != tc.wantTest {
				t.Errorf("test period %s, want %s", got, tc.wantTest)
			}
			if len(earlier)+len(later) != tc.ds.Len() {
				t.Errorf("%d + %d rows, want %d", len(earlier), len(later), tc.ds.Len())
			}
		})
	}
}

func TestRunReportsTimeHoldoutBesideRandomSplit(t *testing.T) {
	data := synthFile(t, 3000, 9)
	dir := t.TempDir()
	opts := Options{DataPath: data, OutPath: filepath.Join(dir, "model.json"), CVFolds: -1, Now: fixedNow,
		TimeCVFolds: 3, TimeCVSet: true, ThresholdSplit: SplitTime}
	var out bytes.Buffer
	res, err := Run(context.Background(), opts, &out)
	if err != nil {
		t.Fatal(err)
	}
	th := res.Metrics.TimeHoldout
	if th == nil || res.Metrics.TimeCV == nil || len(res.Metrics.TimeCV.ROCAUC) != 3 {
		t.Fatalf("time holdout %+v, time cv %+v", th, res.Metrics.TimeCV)
	}
	_, lastTrain, _ := strings.Cut(th.TrainPeriod, "..")
	firstTest, _, _ := strings.Cut(th.TestPeriod, "..")
	if lastTrain >= firstTest {
		t.Errorf("test period %s does not follow train period %s", th.TestPeriod, th.TrainPeriod)
	}
	if th.TrainRows+th.Metrics.Rows != res.Clean.RowsKept {
		t.Errorf("time holdout uses %d + %d rows of %d", th.TrainRows, th.Metrics.Rows, res.Clean.RowsKept)
	}
	if !strings.Contains(res.Metrics.ThresholdMethod, "latest dates") {
		t.Errorf("threshold method %q", res.Metrics.ThresholdMethod)
	}
	for _, want := range []string{"random split  time holdout", "time holdout: trained on", "3-fold time-blocked cross-validation"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	m, err := model.Load(opts.OutPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(m.Training.Metrics, []byte(`"time_holdout"`)) {
		t.Errorf("the model's training record lacks the time holdout")
	}
	b := m.Baseline
	if b == nil || b.Rows != m.Training.TestRows || len(b.Features) != len(m.Features) {
		t.Fatalf("baseline %+v for %d test rows", b, m.Training.TestRows)
	}
	var n float64
	for _, c := range b.Predictions.Counts {
		n += c
	}
	for i, f := range b.Features {
		var fn float64
		for _, c := range f.Counts {
			fn += c
		}
		if fn != float64(b.Rows) {
			t.Errorf("feature %d counts %v rows, want %d", i, fn, b.Rows)
		}
	}
	if n != float64(b.Rows) {
		t.Errorf("prediction counts sum to %v, want %d", n, b.Rows)
	}
}

func TestTimeConfigValidation(t *testing.T) {
	tests := map[string]func(*Config){
		"A time holdout of 1 leaves nothing to train on.": func(c *Config) { c.Training.TimeHoldout = 1 },
		"One time-blocked fold is no cross-validation.":   func(c *Config) { c.Training.TimeCVFolds = 1 },
		"An unknown threshold split is refused.":          func(c *Config) { c.Training.ThresholdSplit = "latest" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mutate(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}
