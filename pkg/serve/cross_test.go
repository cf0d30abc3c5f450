package serve

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/delayctl/delayctl/pkg/model"
)

// crossedModel is testModel with origin:dep_hour and carrier:month crosses: every origin with
// the even hours, and every carrier with months 1-6, plus their pooled columns.
func crossedModel(t testing.TB) *model.Model {
	t.Helper()
	m := testModel(t, "crossed")
	cats := func(variable string) []string {
		for _, f := range m.Features {
			if f.Variable == variable {
				return f.Vocabulary
			}
		}
		t.Fatalf("no feature %s", variable)
		return nil
	}
	var oh, cm []string
	for _, o := range cats("origin") {
		for h := 0; h < 24; h += 2 {
			oh = append(oh, o+":"+strconv.Itoa(h))
		}
	}
	for _, c := range cats("carrier") {
		for mo := 1; mo <= 6; mo++ {
			cm = append(cm, c+":"+strconv.Itoa(mo))
		}
	}
	m.SchemaVersion = model.SchemaVersionCrosses
	m.Features = append(m.Features,
		model.Feature{Variable: "origin:dep_hour", Encoding: model.Cross, Cross: []string{"origin", "dep_hour"}, Vocabulary: oh, MinCount: 10},
		model.Feature{Variable: "carrier:month", Encoding: model.Cross, Cross: []string{"carrier", "month"}, Vocabulary: cm, MinCount: 10})
	m.VectorLength += len(oh) + 1 + len(cm) + 1
	rng := rand.New(rand.NewPCG(3, 4))
	for len(m.Coefficients) < m.VectorLength {
		m.Coefficients = append(m.Coefficients, rng.NormFloat64()*0.3)
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := m.Seal(); err != nil {
		t.Fatal(err)
	}
	return m
}

// Named instances and their encoded vectors get the same bits from a crossed model, for kept
// pairs, pooled pairs and unseen categories alike.
func TestCrossedModelNamedAndVectorAgree(t *testing.T) {
	m := crossedModel(t)
	s, _ := newTestServer(t, m, testOptions())
	flights := []model.Flight{
		atl, jfk,
		{Month: 2, DayOfMonth: 3, DayOfWeek: 5, Origin: "ATL", Dest: "SEA", Carrier: "DL", CRSDepTime: 600},  // kept pairs
		{Month: 9, DayOfMonth: 3, DayOfWeek: 5, Origin: "ATL", Dest: "SEA", Carrier: "DL", CRSDepTime: 700},  // pooled pairs
		{Month: 3, DayOfMonth: 3, DayOfWeek: 5, Origin: "XXX", Dest: "SEA", Carrier: "ZZ", CRSDepTime: 2200}, // unseen categories
	}
	for i, f := range flights {
		named, err := json.Marshal(map[string]any{"instances": []model.Flight{f}})
		if err != nil {
			t.Fatal(err)
		}
		var got [2]float64
		for k, body := range []string{string(named), `{"x": ` + vectorJSON(m, f) + `}`} {
			rec := do(s.Handler(), "POST", "/predict", "application/json", body)
			if rec.Code != 200 {
				t.Fatalf("flight %d: status %d: %s", i, rec.Code, rec.Body)
			}
			got[k] = decodeJSON[predictAnswer](t, rec.Body.Bytes()).Predictions[0].Probability
		}
		want, err := m.PredictFlight(&f)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != want || got[1] != want {
			t.Fatalf("flight %d: named %v, vector %v, model %v: want the same bits", i, got[0], got[1], want)
		}
	}
}

func TestCrossedModelMetadataListsCrosses(t *testing.T) {
	m := crossedModel(t)
	s, _ := newTestServer(t, m, testOptions())
	md := decodeJSON[modelMetadata](t, do(s.Handler(), "GET", "/v1/models/flight-delay", "", "").Body.Bytes())
	if fmt.Sprint(md.Crosses) != "[[origin dep_hour] [carrier month]]" || md.VectorLength != m.NumFeatures() ||
		!slices.Contains(md.FeatureNames, "carrier:month="+model.CrossOther) {
		t.Errorf("v1 metadata: crosses %v, vector length %d", md.Crosses, md.VectorLength)
	}
	oip := decodeJSON[oipModelMeta](t, do(s.Handler(), "GET", "/v2/models/flight-delay", "", "").Body.Bytes())
	if oip.Parameters == nil || fmt.Sprint(oip.Parameters.Crosses) != "[origin:dep_hour carrier:month]" {
		t.Errorf("OIP metadata parameters %+v", oip.Parameters)
	}
}
