package evaluate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/internal/testtool"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/train"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// splitRows writes the rows of the real flights that keep selects (by month and row number) to a
// new CSV in dir.
func splitRows(t *testing.T, dir, name string, keep func(month, row int) bool) string {
	t.Helper()
	// Every other row of the real 2016 BTS flights (Delta out of ATL, DTW, JFK, MSP and SEA).
	in, err := os.Open(testtool.HalfFlights(t, t.TempDir(), "half.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r := csv.NewReader(in)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(out)
	_ = w.Write(header)
	for row := 0; ; row++ {
		rec, err := r.Read()
		if err != nil {
			break
		}
		month, _ := strconv.Atoi(rec[1])
		if keep(month, row) {
			_ = w.Write(rec)
		}
	}
	w.Flush()
	if err := errors.Join(w.Error(), out.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

// trainedOnJanuaryToSeptember trains on three rows in four of January to September and
// returns the model and the data directory.
func trainedOnJanuaryToSeptember(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	data := splitRows(t, dir, "train.csv", func(m, row int) bool { return m <= 9 && row%4 != 0 })
	modelPath := filepath.Join(dir, "model.json")
	_, err := train.Run(context.Background(), train.Options{DataPath: data, OutPath: modelPath, CVFolds: -1,
		Now: func() time.Time { return time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) }}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	return modelPath, dir
}

var qualityAndDrift = []Objective{
	{Name: "auc", Metric: MetricROCAUC, Bound: 0.6},
	{Name: "prediction-drift", Metric: MetricPredictionPSI, Bound: 0.2},
	{Name: "feature-drift", Metric: MetricFeaturePSI, Bound: 0.25},
	{Name: "airports", Metric: MetricFeaturePSI, Bound: 0.1, Variable: "origin"},
	{Name: "unseen", Metric: MetricUnseenShare, Bound: 0.05},
}

// The verdicts on real flights: rows of the training months the model did not see are
// healthy; October to December drift (a season the model never saw) and rank delays no
// better than chance.
func TestVerdictsOnRealFlightsByMonth(t *testing.T) {
	modelPath, dir := trainedOnJanuaryToSeptember(t)
	tests := map[string]struct {
		keep        func(month, row int) bool
		wantStatus  map[string]string
		wantHealthy bool
		wantWorst   string
	}{
		"Unseen rows of the training months are healthy.": {
			keep:        func(m, row int) bool { return m <= 9 && row%4 == 0 },
			wantStatus:  map[string]string{"auc": StatusMet, "prediction-drift": StatusMet, "feature-drift": StatusMet, "airports": StatusMet, "unseen": StatusMet},
			wantHealthy: true,
		},
		"October to December drift and lose their ranking.": {
			keep:       func(m, _ int) bool { return m >= 10 },
			wantStatus: map[string]string{"auc": StatusBreached, "feature-drift": StatusBreached, "airports": StatusMet, "unseen": StatusBreached},
			wantWorst:  "month",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := splitRows(t, dir, strings.ReplaceAll(name, " ", "_")+".csv", tc.keep)
			var out bytes.Buffer
			rep, err := Run(context.Background(), Options{ModelPath: modelPath, DataPath: data, Format: FormatTable, Objectives: qualityAndDrift}, &out)
			if tc.wantHealthy != (err == nil) {
				t.Fatalf("error %v, want healthy = %v\n%s", err, tc.wantHealthy, out.String())
			}
			if err != nil && !errors.Is(err, ErrObjectiveBreached) {
				t.Fatalf("error %v does not wrap ErrObjectiveBreached", err)
			}
			for _, o := range rep.Objectives {
				if want, ok := tc.wantStatus[o.Name]; ok && o.Status != want {
					t.Errorf("%s: %s at %.4f, want %s\n%s", o.Name, o.Status, float64(o.Value), want, out.String())
				}
				if (o.Name == "feature-drift" || o.Name == "unseen") && tc.wantWorst != "" && o.Detail != tc.wantWorst {
					t.Errorf("the most drifted feature is %q, want %q", o.Detail, tc.wantWorst)
				}
			}
			if rep.Training == nil || rep.TrainingTime == nil {
				t.Errorf("the training figures are missing: %+v %+v", rep.Training, rep.TrainingTime)
			}
		})
	}
}

// writeLog writes prediction log lines for the rows of a CSV as serve would, with request
// ids, and an outcomes CSV with the true labels of all but the last row.
func writeLog(t *testing.T, dir string, version string, n int) (logPath, outcomesPath string) {
	t.Helper()
	logPath, outcomesPath = filepath.Join(dir, "pred.jsonl"), filepath.Join(dir, "outcomes.csv")
	var lb, ob bytes.Buffer
	ob.WriteString("id,ARR_DEL15\n")
	for i := range n {
		origin := []string{"ATL", "MSP", "SEA"}[i%3]
		fmt.Fprintf(&lb, `{"time":"2026-11-30T10:00:00Z","model":"flight-delay","model_version":%q,"request_id":"r%d","instance":0,`+
			`"inputs":{"month":%d,"day_of_month":%d,"day_of_week":%d,"origin":%q,"dest":"DTW","carrier":"DL","crs_dep_time":%d},"probability":%g,"delayed":false}`+"\n",
			version, i, 1+i%9, 1+i%28, 1+i%7, origin, 600+100*(i%14), 0.05+0.3*float64(i%10)/10)
		if i < n-1 {
			fmt.Fprintf(&ob, "r%d,%d\n", i, map[bool]int{true: 1, false: 0}[i%10 >= 7])
		}
	}
	if err := os.WriteFile(logPath, lb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outcomesPath, ob.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return logPath, outcomesPath
}

func TestPredictionLogJoinsOutcomes(t *testing.T) {
	modelPath, dir := trainedOnJanuaryToSeptember(t)
	logPath, outcomes := writeLog(t, dir, modelVersion(t, modelPath), 200)
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{ModelPath: modelPath, PredictionsPath: logPath, OutcomesPath: outcomes,
		KeyColumn: "id", Format: FormatJSON, Objectives: []Objective{}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 199 || rep.Positives != 59 {
		t.Errorf("%d rows, %d delayed; want 199 joined, 59 delayed", rep.Rows, rep.Positives)
	}
	// The logged probabilities rise with the outcome: every delayed row scores above every
	// on-time one.
	if rep.Now.ROCAUC != 1 {
		t.Errorf("roc_auc %v, want 1", rep.Now.ROCAUC)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "1 logged predictions have no outcome") {
		t.Errorf("notes %q", rep.Notes)
	}
	if !strings.Contains(out.String(), `"prediction_psi"`) {
		t.Errorf("JSON lacks drift:\n%s", out.String())
	}
}

func modelVersion(t *testing.T, path string) string {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m.Version
}

func TestBadInputIsExitCode2(t *testing.T) {
	modelPath, dir := trainedOnJanuaryToSeptember(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	outcomes := write("o.csv", "request_id,ARR_DEL15\nr1,1\n")
	tests := map[string]struct {
		opts Options
		want string
	}{
		"A CSV without the label column.": {Options{DataPath: write("a.csv", "YEAR,MONTH\n2016,1\n")}, "missing required columns"},
		"A log line that is not JSON.": {Options{PredictionsPath: write("l.jsonl", "{\"probability\": 0.1, \"inputs\": {}}\nnot json\n"), OutcomesPath: outcomes},
			"line 2: not a prediction log line"},
		"An outcome that is not 0 or 1.": {Options{PredictionsPath: write("l2.jsonl", ""), OutcomesPath: write("o2.csv", "request_id,ARR_DEL15\nr1,maybe\n")},
			`row 1, column ARR_DEL15: "maybe": want 0 or 1`},
		"Outcomes without the key column.": {Options{PredictionsPath: write("l3.jsonl", ""), OutcomesPath: write("o3.csv", "id,ARR_DEL15\n")},
			`needs columns "request_id" (key)`},
		"No labelled row at all.":      {Options{PredictionsPath: write("l4.jsonl", ""), OutcomesPath: outcomes}, "no labelled rows"},
		"Two sources at once.":         {Options{DataPath: "x.csv", PredictionsPath: "p", OutcomesPath: "o"}, "give one"},
		"The report over an input.":    {Options{DataPath: "x.csv", HTMLPath: "./x.csv"}, "--html ./x.csv is an input"},
		"An unknown objective metric.": {Options{DataPath: "x.csv", Objectives: []Objective{{Name: "x", Metric: "accuracy"}}}, `unknown metric "accuracy"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.ModelPath, tc.opts.Format = modelPath, FormatTable
			if tc.opts.KeyColumn == "" {
				tc.opts.KeyColumn = DefaultKeyColumn
			}
			_, err := Run(context.Background(), tc.opts, &bytes.Buffer{})
			if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want an input error containing %q", err, tc.want)
			}
		})
	}
}

// The report formats, on a fixed model and fixed rows, against golden files.
func TestReportFormatsGolden(t *testing.T) {
	modelPath, dir := trainedOnJanuaryToSeptember(t)
	data := splitRows(t, dir, "late.csv", func(m, _ int) bool { return m >= 10 })
	for _, f := range []string{FormatTable, FormatMarkdown, FormatJSON} {
		t.Run(f, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Run(context.Background(), Options{ModelPath: modelPath, DataPath: data, Format: f, Objectives: qualityAndDrift}, &out)
			if !errors.Is(err, ErrObjectiveBreached) {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(out.String(), data, "late.csv")
			golden := filepath.Join("testdata", "report_"+f+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s output differs from %s (go test ./pkg/evaluate -update rewrites it):\n%s", f, golden, got)
			}
		})
	}
	t.Run("html", func(t *testing.T) {
		html, plots := filepath.Join(dir, "r.html"), filepath.Join(dir, "plots")
		_, _ = Run(context.Background(), Options{ModelPath: modelPath, DataPath: data, Format: FormatTable, HTMLPath: html, PlotsDir: plots}, &bytes.Buffer{})
		b, err := os.ReadFile(html)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte(`src="data:image/png;base64,`)); n != 3 {
			t.Errorf("%d embedded plots, want 3", n)
		}
		for _, p := range []string{"calibration.png", "scores.png", "psi.png"} {
			f, err := os.Open(filepath.Join(plots, p))
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 8)
			_, _ = bufio.NewReader(f).Read(head)
			f.Close()
			if string(head[1:4]) != "PNG" {
				t.Errorf("%s is not a PNG", p)
			}
		}
	})
}

// A model written before baselines existed still evaluates: quality is judged, drift is
// skipped with a note.
func TestModelWithoutBaseline(t *testing.T) {
	modelPath, dir := trainedOnJanuaryToSeptember(t)
	m, err := model.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	m.Baseline = nil
	old := filepath.Join(dir, "old.json")
	if err := m.Save(old); err != nil {
		t.Fatal(err)
	}
	data := splitRows(t, dir, "same.csv", func(m, row int) bool { return m <= 9 && row%4 == 0 })
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{ModelPath: old, DataPath: data, Format: FormatTable, Objectives: qualityAndDrift}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, o := range rep.Objectives {
		want := StatusSkipped
		if o.Metric == MetricROCAUC {
			want = StatusMet
		}
		if o.Status != want {
			t.Errorf("%s: %s, want %s", o.Name, o.Status, want)
		}
	}
	if rep.Drift != nil || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "no training baseline") {
		t.Errorf("drift %+v, notes %q", rep.Drift, rep.Notes)
	}
}
