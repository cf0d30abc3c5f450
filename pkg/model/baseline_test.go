package model

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func withBaseline(t testing.TB) *Model {
	t.Helper()
	m := testModel(t)
	m.Baseline = &Baseline{
		Source: "test", Rows: 10,
		Features: []FeatureBaseline{
			{Variable: "dep_hour", Counts: []float64{5, 4, 1}},
			{Variable: "origin", Counts: []float64{6, 4, 0}},
			{Variable: "month", Edges: []float64{3, 6, 9}, Counts: []float64{2, 3, 3, 2}},
		},
		Predictions: PredictionBaseline{Counts: []float64{4, 3, 2, 1}, Positives: []float64{0, 1, 1, 1}},
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBinsOfFlightsAndVectorsAgree(t *testing.T) {
	m := withBaseline(t)
	tests := map[string]struct {
		f    Flight
		want []int32
	}{
		"Known categories fall in their vocabulary bins.": {atlFlight, []int32{1, 0, 0}},
		"An unseen airport and hour fall in the unseen bins.": {
			Flight{Month: 10, DayOfMonth: 1, DayOfWeek: 1, Origin: "BOS", CRSDepTime: 2310}, []int32{2, 2, 3}},
		"A value on an edge falls in the bin the edge closes.": {
			Flight{Month: 6, DayOfMonth: 1, DayOfWeek: 1, Origin: "SEA", CRSDepTime: 600}, []int32{0, 1, 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := make([]int32, 3)
			m.BinFlight(&tc.f, got)
			if !equalInts(got, tc.want) {
				t.Errorf("BinFlight = %v, want %v", got, tc.want)
			}
			m.BinVector(m.Encode(tc.f, nil), got)
			if !equalInts(got, tc.want) {
				t.Errorf("BinVector = %v, want %v", got, tc.want)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() {
		var dst [3]int32
		m.BinFlight(&atlFlight, dst[:])
	}); n != 0 {
		t.Errorf("BinFlight allocates %v times", n)
	}
}

func equalInts(a, b []int32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestPSI(t *testing.T) {
	tests := map[string]struct {
		e, a []float64
		want float64
	}{
		"The same shares give 0 whatever the counts.": {[]float64{1, 2, 1}, []float64{10, 20, 10}, 0},
		"Shares 0.5/0.5 against 0.9/0.1.":             {[]float64{5, 5}, []float64{9, 1}, 0.4*math.Log(0.9/0.5) - 0.4*math.Log(0.1/0.5)},
		"An empty bin counts as 0.0001.":              {[]float64{1, 0}, []float64{1, 1}, (0.5-1)*math.Log(0.5/1) + (0.5-1e-4)*math.Log(0.5/1e-4)},
		"No rows on one side is not a number.":        {[]float64{1, 1}, []float64{0, 0}, math.NaN()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := PSI(tc.e, tc.a)
			if math.IsNaN(tc.want) != math.IsNaN(got) || math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("PSI = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBaselineRoundTripAndRejects(t *testing.T) {
	m := withBaseline(t)
	if mustVersion(t, testModel(t)) != mustVersion(t, m) {
		t.Errorf("the baseline changed the content version")
	}
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Baseline == nil || got.Baseline.Features[2].Edges[1] != 6 {
		t.Fatalf("baseline lost in the round trip: %+v", got.Baseline)
	}
	tests := map[string]struct {
		mutate func(*Baseline)
		want   string
	}{
		"A feature too few is refused.":               {func(b *Baseline) { b.Features = b.Features[:2] }, "2 features, the model has 3"},
		"A count per bin is required.":                {func(b *Baseline) { b.Features[0].Counts = []float64{1, 2} }, "2 counts for 3 bins"},
		"Another variable in a feature's place.":      {func(b *Baseline) { b.Features[1].Variable = "dest" }, `variable "dest"`},
		"Negative counts are refused.":                {func(b *Baseline) { b.Predictions.Positives[0] = -1 }, "must be a finite number >= 0"},
		"Edges out of order are refused.":             {func(b *Baseline) { b.Features[2].Edges = []float64{9, 3, 6} }, "increasing"},
		"One-hot features have no edges.":             {func(b *Baseline) { b.Features[0].Edges = []float64{1} }, "no edges"},
		"A single prediction bin measures no spread.": {func(b *Baseline) { b.Predictions = PredictionBaseline{Counts: []float64{1}, Positives: []float64{1}} }, "at least 2 bins"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := withBaseline(t)
			tc.mutate(m.Baseline)
			err := m.Prepare()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Prepare = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func mustVersion(t *testing.T, m *Model) string {
	t.Helper()
	v, err := m.ContentVersion()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
