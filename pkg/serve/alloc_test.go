//go:build !race

package serve

import (
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/model"
)

// wideModel is testModel with its airport vocabularies grown to 10 times the features.
func wideModel(t testing.TB) *model.Model {
	t.Helper()
	m := testModel(t, "wide")
	for i := range m.Features {
		f := &m.Features[i]
		if f.Variable == "origin" || f.Variable == "dest" {
			for j := range 360 {
				f.Vocabulary = append(f.Vocabulary, "Z"+strings.Repeat("Z", j%3)+string(rune('A'+j%26))+string(rune('A'+j/26)))
			}
		}
	}
	m.VectorLength = 80 + 2*360
	m.Coefficients = append(m.Coefficients, make([]float64, 2*360)...)
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}

// The hot path allocates nothing per feature: a single-vector request costs the same small
// constant number of allocations (zero, once the pools are warm) at 80 and at 800 features.
// (Not run under -race, whose instrumentation allocates.)
func TestPredictAllocationsDoNotGrowWithFeatures(t *testing.T) {
	tests := map[string]struct {
		m    *model.Model
		path string
		body func(*model.Model) string
	}{
		"A vector request at 80 features.":  {testModel(t, "v1"), "/predict", func(m *model.Model) string { return `{"x": ` + vectorJSON(m, atl) + `}` }},
		"A vector request at 800 features.": {wideModel(t), "/predict", func(m *model.Model) string { return `{"x": ` + vectorJSON(m, atl) + `}` }},
		"A named instance at 800 features.": {wideModel(t), "/predict", func(*model.Model) string {
			return `{"instances": [{"month": 1, "day_of_month": 5, "day_of_week": 2, "origin": "ATL", "dest": "SEA", "carrier": "DL", "crs_dep_time": 1905}]}`
		}},
		"A named instance with two crosses.": {crossedModel(t), "/predict", func(*model.Model) string {
			return `{"instances": [{"month": 1, "day_of_month": 5, "day_of_week": 2, "origin": "ATL", "dest": "SEA", "carrier": "DL", "crs_dep_time": 1905}]}`
		}},
		"A vector with two crosses.": {crossedModel(t), "/predict", func(m *model.Model) string { return `{"x": ` + vectorJSON(m, atl) + `}` }},
	}
	const limit = 3 // the ceiling the docs promise
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestServer(t, tc.m, testOptions())
			r := newReplay(s.Handler(), tc.path, tc.body(tc.m))
			if code := r.do(); code != 200 {
				t.Fatalf("status %d", code)
			}
			if n := testing.AllocsPerRun(200, func() { r.do() }); n > limit {
				t.Errorf("%v allocations per request, want at most %d", n, limit)
			}
		})
	}
}
