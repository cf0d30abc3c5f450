package evaluate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/delayctl/delayctl/pkg/model"
)

// fuzzModel is a small model with a baseline: dep_hour and origin one-hot, month standardised.
func fuzzModel(t testing.TB) *model.Model {
	t.Helper()
	m := &model.Model{
		Name: model.DefaultName, Version: "fuzz", Input: model.BTSColumns,
		Features: []model.Feature{
			{Variable: "dep_hour", Encoding: model.OneHot, Vocabulary: []string{"6", "7"}},
			{Variable: "origin", Encoding: model.OneHot, Vocabulary: []string{"ATL", "SEA"}},
			{Variable: "month", Encoding: model.Standard, Mean: 6.5, Std: 3.5},
		},
		VectorLength: 5, Intercept: -2, Coefficients: []float64{0.5, -0.25, 1, 0.75, 0.2}, Threshold: 0.3,
		Baseline: &model.Baseline{Rows: 4, Features: []model.FeatureBaseline{
			{Variable: "dep_hour", Counts: []float64{2, 2, 0}},
			{Variable: "origin", Counts: []float64{3, 1, 0}},
			{Variable: "month", Edges: []float64{6}, Counts: []float64{2, 2}},
		}, Predictions: model.PredictionBaseline{Counts: []float64{3, 1}, Positives: []float64{1, 1}}},
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzReadLog feeds arbitrary prediction logs and outcomes to the join: it must return rows
// or an error, never panic, and every row's bins must lie inside the model's bins.
func FuzzReadLog(f *testing.F) {
	f.Add([]byte(`{"model_version":"fuzz","request_id":"a","instance":0,"inputs":{"month":3,"day_of_month":1,"day_of_week":1,"origin":"ATL","dest":"SEA","carrier":"DL","crs_dep_time":705},"probability":0.2}`+"\n"),
		[]byte("request_id,ARR_DEL15\na,1\n"))
	f.Add([]byte(`{"model_version":"fuzz","request_id":"a","instance":1,"inputs":{"dep_hour":"7","origin":"<unseen>","month":"(6,+inf]"},"probability":0.9}`+"\n"),
		[]byte("request_id,ARR_DEL15\na/1,0\n"))
	f.Add([]byte("{}\n[]\n"), []byte("x\n"))
	m := fuzzModel(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, log, outcomes []byte) {
		lp, op := filepath.Join(dir, "l.jsonl"), filepath.Join(dir, "o.csv")
		if err := os.WriteFile(lp, log, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(op, outcomes, 0o644); err != nil {
			t.Fatal(err)
		}
		rows, _, err := readLog(m, Options{PredictionsPath: lp, OutcomesPath: op, KeyColumn: DefaultKeyColumn, LabelColumn: "ARR_DEL15"})
		if err != nil {
			return
		}
		for _, r := range rows {
			for i, b := range r.bins {
				if b < 0 || int(b) >= m.NumBins(i) {
					t.Fatalf("bin %d of feature %d is outside its %d bins", b, i, m.NumBins(i))
				}
			}
		}
	})
}
