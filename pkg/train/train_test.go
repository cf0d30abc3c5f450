package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/model"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func synthFile(t *testing.T, rows int, seed int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "synth.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Synth(f, SynthOptions{Rows: rows, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }

func TestRunWritesModelMetricsAndPlots(t *testing.T) {
	data := synthFile(t, 3000, 5)
	dir := t.TempDir()
	opts := Options{
		DataPath: data, OutPath: filepath.Join(dir, "model.json"), MetricsOut: filepath.Join(dir, "metrics.json"),
		PlotsDir: filepath.Join(dir, "plots"), CVFolds: 3, ToolVersion: "test", Now: fixedNow,
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), opts, &out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(opts.OutPath)
	if err != nil {
		t.Fatalf("the written model does not load: %v", err)
	}
	if m.Name != model.DefaultName || m.Version != res.Model.Version || m.Training.TrainedAt != "2026-11-23T12:00:00Z" {
		t.Fatalf("model metadata %q %q %q", m.Name, m.Version, m.Training.TrainedAt)
	}
	var metrics map[string]any
	if err := json.Unmarshal([]byte(readFile(t, opts.MetricsOut)), &metrics); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier",
		"threshold", "confusion_matrix", "baseline", "cv_roc_auc_mean", "cv_roc_auc_std"} {
		if _, ok := metrics[k]; !ok {
			t.Errorf("metrics.json lacks %q", k)
		}
	}
	for _, png := range []string{"roc.png", "calibration.png"} {
		b, err := os.ReadFile(filepath.Join(opts.PlotsDir, png))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG: %v", png, err)
		}
	}
	for _, want := range []string{"roc_auc", "baseline (always on time)", "3-fold stratified cross-validation", "written to"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSameInputsGiveTheSameArtifact(t *testing.T) {
	data := synthFile(t, 2000, 9)
	dir := t.TempDir()
	var files [2][]byte
	for i := range files {
		path := filepath.Join(dir, "m.json")
		if _, err := Run(context.Background(), Options{DataPath: data, OutPath: path, CVFolds: -1, Now: fixedNow}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		files[i] = []byte(readFile(t, path))
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatal("two runs with the same data, config and seed wrote different artifacts")
	}
	path := filepath.Join(dir, "other.json")
	if _, err := Run(context.Background(), Options{DataPath: data, OutPath: path, CVFolds: -1, Seed: 8, SeedSet: true, Now: fixedNow}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(files[0], []byte(readFile(t, path))) {
		t.Fatal("another seed wrote the same artifact")
	}
}

func TestRunBadInputLeavesNoModel(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := readFile(t, "testdata/flights_small.csv")
	header := strings.SplitN(small, "\n", 2)[0]
	row := `2016,1,1,4,1,"DL","N100DN","1001",10397,"ATL",14747,"SEA","0905","0903",-2.00,0.00,"1140","1131",-9.00,0.00,0.00,0.00,335.00,328.00,2182.00,`
	oneClass := header + "\n" + strings.Repeat(row+"\n", 5)
	tests := map[string]struct {
		data    string
		out     string
		wantErr string
	}{
		"A missing file is named.":          {data: filepath.Join(dir, "nope.csv"), wantErr: "could not open flight data: open " + filepath.Join(dir, "nope.csv")},
		"An empty file says so.":            {data: write("empty.csv", ""), wantErr: "the file is empty: no header row"},
		"Missing columns are named.":        {data: write("cols.csv", "YEAR,MONTH\n2016,1\n"), wantErr: "missing required columns: DAY_OF_MONTH (for day_of_month)"},
		"A non-numeric cell names row+col.": {data: write("bad.csv", header+"\n"+row+"\n"+strings.Replace(row, `"0905"`, `"nine"`, 1)+"\n"), wantErr: `row 2, column CRS_DEP_TIME: "nine": not an integer`},
		"One class only is refused.":        {data: write("one.csv", oneClass), wantErr: "the label has one class only: all 5 cleaned rows are on time"},
		"An unwritable output is refused.":  {data: write("ok.csv", small), out: filepath.Join(dir, "no-such-dir", "m.json"), wantErr: "cannot write " + filepath.Join(dir, "no-such-dir", "m.json")},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			out := tt.out
			if out == "" {
				out = filepath.Join(dir, "model.json")
			}
			_, err := Run(context.Background(), Options{DataPath: tt.data, OutPath: out, CVFolds: -1}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a model file was left at %s", out)
			}
		})
	}
}

// Training on synthetic data recovers the planted coefficients: with origin one-hot and the
// hour standardised, coefficient differences between airports estimate the planted origin
// effects, and the hour coefficient divided by the hour's deviation estimates the slope.
func TestTrainingRecoversThePlantedSignal(t *testing.T) {
	data := synthFile(t, 150000, 3)
	cfg := DefaultConfig()
	cfg.Features = []FeatureConfig{
		{"origin", model.OneHot}, {"month", model.OneHot}, {"day_of_week", model.OneHot}, {"dep_hour", model.Standard},
	}
	cfg.Crosses = nil
	cfg.Training.L2 = 1e-7
	cfg.Training.Threshold = "0.5"
	res, err := Fit(context.Background(), cfg, Options{DataPath: data})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Model
	coef := map[string]float64{}
	for j, name := range m.FeatureNames() {
		coef[name] = m.Coefficients[j]
	}
	const tol = 0.1 // about four standard errors at this size
	for _, o := range []string{"DTW", "JFK", "MSP", "SEA"} {
		got := coef["origin="+o] - coef["origin=ATL"]
		want := SynthOrigin[o] - SynthOrigin["ATL"]
		if math.Abs(got-want) > tol {
			t.Errorf("origin %s vs ATL: recovered %.3f, planted %.3f", o, got, want)
		}
	}
	for mo, eff := range SynthMonth {
		got := coef["month="+itoa(mo)] - coef["month=3"]
		if math.Abs(got-eff) > tol {
			t.Errorf("month %d vs March: recovered %.3f, planted %.3f", mo, got, eff)
		}
	}
	hour := m.Features[3]
	if slope := coef["dep_hour"] / hour.Std; math.Abs(slope-SynthHourSlope) > 0.01 {
		t.Errorf("hour slope: recovered %.4f, planted %.4f", slope, SynthHourSlope)
	}
}

func itoa(n int) string { return model.CategoryOf("month", &model.Flight{Month: n}) }

// The model has the same bits, and the solver takes the same passes, at any GOMAXPROCS:
// sums run over fixed chunks added in chunk order. Smaller chunks spread the data over
// more chunks than workers.
func TestSameModelAtAnyGOMAXPROCS(t *testing.T) {
	defer func(n int) { chunkRows = n }(chunkRows)
	chunkRows = 2000
	data := synthFile(t, 30123, 5)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var first []byte
	var firstPasses int
	for _, procs := range []int{1, 2, 4, 8} {
		runtime.GOMAXPROCS(procs)
		res, err := Fit(context.Background(), DefaultConfig(), Options{DataPath: data, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := res.Model.Write(&b); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first, firstPasses = b.Bytes(), res.Fit.Passes
			continue
		}
		if !bytes.Equal(b.Bytes(), first) {
			t.Fatalf("GOMAXPROCS=%d wrote a different model than GOMAXPROCS=1", procs)
		}
		if res.Fit.Passes != firstPasses {
			t.Fatalf("GOMAXPROCS=%d took %d passes, GOMAXPROCS=1 took %d", procs, res.Fit.Passes, firstPasses)
		}
	}
}

// A crossed model scores every row the same bits through training's tables, the model's
// named-field path and the encoded vector, before and after a save and load.
func TestCrossedModelPredictsTheSameEverywhere(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Crosses = [][]string{{"origin", "dep_hour"}, {"carrier", "month"}, {"day_of_week", "dest"}}
	// About 190 training rows per origin and hour: some pairs are kept, some pooled.
	cfg.CrossMinCount = 190
	data := synthFile(t, 20000, 4)
	res, err := Fit(context.Background(), cfg, Options{DataPath: data, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.json")
	if err := res.Model.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.SchemaVersion != model.SchemaVersionCrosses {
		t.Fatalf("schema %q, want %q", loaded.SchemaVersion, model.SchemaVersionCrosses)
	}
	f, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ds, _, err := Clean(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	probs, err := predictRows(res.Model, ds, seq(ds.Len()))
	if err != nil {
		t.Fatal(err)
	}
	other := 0
	var x []float64
	for i := range ds.Len() {
		fl := ds.Flight(i)
		named, err := loaded.PredictFlight(&fl)
		if err != nil {
			t.Fatal(err)
		}
		x = loaded.Encode(fl, x)
		vec, err := loaded.PredictVector(x)
		if err != nil {
			t.Fatal(err)
		}
		if named != probs[i] || vec != probs[i] {
			t.Fatalf("row %d: training %v, named %v, vector %v", i, probs[i], named, vec)
		}
		for _, name := range []string{"origin:dep_hour", "carrier:month", "day_of_week:dest"} {
			j := slices.Index(loaded.FeatureNames(), name+"="+model.CrossOther)
			if x[j] == 1 {
				other++
			}
		}
	}
	if other == 0 {
		t.Fatal("no row used a pooled (other) cross column: the test does not cover pooling")
	}
	// A pair never seen in training takes the pooled column.
	unseen := model.Flight{Month: 1, DayOfMonth: 1, DayOfWeek: 1, Origin: "ZZZ", Dest: "YYY", Carrier: "XX", CRSDepTime: 1200}
	x = loaded.Encode(unseen, x)
	if j := slices.Index(loaded.FeatureNames(), "origin:dep_hour="+model.CrossOther); x[j] != 1 {
		t.Fatal("an unseen origin does not encode as the pooled origin:dep_hour column")
	}
}

// --l2 auto scores each grid value by cross-validation of the training split, keeps the best
// and records it in the metrics and the artifact's config.
func TestL2AutoChoosesTheBestScoredValue(t *testing.T) {
	data := synthFile(t, 4000, 6)
	res, err := Fit(context.Background(), DefaultConfig(), Options{DataPath: data, L2: L2Auto, L2Grid: []float64{1e-4, 1, 1e-2}, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Metrics.L2Search
	if s == nil || len(s.Grid) != 3 || s.Folds != 3 {
		t.Fatalf("search %+v, want 3 values over 3 folds", s)
	}
	best := s.Grid[0]
	for _, g := range s.Grid[1:] {
		if g.ROCAUC >= best.ROCAUC {
			best = g
		}
	}
	if s.Chosen != best.L2 || res.Metrics.L2 != best.L2 || s.Chosen == 1 {
		t.Fatalf("chose %v (metrics l2 %v), best scored %+v of %+v", s.Chosen, res.Metrics.L2, best, s.Grid)
	}
	var cfg Config
	if err := json.Unmarshal(res.Model.Training.Config, &cfg); err != nil || cfg.Training.L2 != s.Chosen {
		t.Fatalf("artifact config l2 %v (%v), want %v", cfg.Training.L2, err, s.Chosen)
	}
	if err := (&Options{DataPath: "x", OutPath: "y", L2: "-1"}).Validate(); err == nil || !strings.Contains(err.Error(), `--l2 must be a positive number or "auto", got "-1"`) {
		t.Fatalf("--l2 -1: %v", err)
	}
}
