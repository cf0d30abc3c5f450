package model

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testModel is a small hand-built model: dep_hour one-hot over {6,7}, origin one-hot over
// {ATL,SEA}, month standardised.
func testModel(t testing.TB) *Model {
	t.Helper()
	m := &Model{
		Name: DefaultName, Version: "test",
		Label: Label{Name: "delayed", Definition: "ARR_DEL15 == 1"},
		Input: BTSColumns,
		Features: []Feature{
			{Variable: "dep_hour", Encoding: OneHot, Vocabulary: []string{"6", "7"}},
			{Variable: "origin", Encoding: OneHot, Vocabulary: []string{"ATL", "SEA"}},
			{Variable: "month", Encoding: Standard, Mean: 6.5, Std: 3.5},
		},
		VectorLength: 5,
		Intercept:    -2,
		Coefficients: []float64{0.5, -0.25, 1, 0.75, 0.2},
		Threshold:    0.3,
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}

var atlFlight = Flight{Month: 3, DayOfMonth: 14, DayOfWeek: 1, Origin: "ATL", Dest: "SEA", Carrier: "DL", CRSDepTime: 705}

func TestPredictByHand(t *testing.T) {
	m := testModel(t)
	// dep_hour 7 -> column 1 (-0.25), origin ATL -> column 2 (1), month (3-6.5)/3.5 = -1 -> 0.2*-1
	want := 1 / (1 + math.Exp(-(-2 - 0.25 + 1 - 0.2)))
	got, err := m.PredictFlight(&atlFlight)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-15 {
		t.Fatalf("PredictFlight = %v, want %v", got, want)
	}
	x := m.Encode(atlFlight, nil)
	wantX := []float64{0, 1, 1, 0, -1}
	for i := range wantX {
		if x[i] != wantX[i] {
			t.Fatalf("Encode = %v, want %v", x, wantX)
		}
	}
	pv, err := m.PredictVector(x)
	if err != nil || pv != got {
		t.Fatalf("PredictVector(Encode(f)) = %v, %v; want %v", pv, err, got)
	}
	if m.Delayed(got) != (got >= 0.3) {
		t.Fatalf("Delayed(%v) disagrees with threshold 0.3", got)
	}
}

func TestUnknownCategoryEncodesAsZeros(t *testing.T) {
	m := testModel(t)
	f := atlFlight
	f.Origin = "ZZZ"
	f.CRSDepTime = 2330
	x := m.Encode(f, nil)
	if x[0] != 0 || x[1] != 0 || x[2] != 0 || x[3] != 0 {
		t.Fatalf("unknown categories should encode as zeros, got %v", x)
	}
	p, err := m.PredictFlight(&f)
	want := Sigmoid(-2 + 0.2*-1)
	if err != nil || math.Abs(p-want) > 1e-15 {
		t.Fatalf("PredictFlight = %v, %v; want %v", p, err, want)
	}
}

func TestPredictErrors(t *testing.T) {
	m := testModel(t)
	tests := map[string]struct {
		x       []float64
		f       *Flight
		wantErr string
	}{
		"A short vector names both lengths.":    {x: []float64{1, 2}, wantErr: "has 2 values, the model expects 5"},
		"A NaN value is refused by position.":   {x: []float64{0, 0, math.NaN(), 0, 0}, wantErr: "value 2 is NaN"},
		"An infinite value is refused.":         {x: []float64{0, 0, 0, 0, math.Inf(1)}, wantErr: "value 4 is +Inf"},
		"Month 13 names the field.":             {f: &Flight{Month: 13, DayOfMonth: 1, DayOfWeek: 1, CRSDepTime: 900}, wantErr: `field "month": must be 1..12`},
		"30 February is not a date.":            {f: &Flight{Month: 2, DayOfMonth: 30, DayOfWeek: 1, CRSDepTime: 900}, wantErr: `field "day_of_month"`},
		"Minutes past 59 are not a clock time.": {f: &Flight{Month: 2, DayOfMonth: 3, DayOfWeek: 1, CRSDepTime: 961}, wantErr: `field "crs_dep_time"`},
		"Day of week 0 is refused.":             {f: &Flight{Month: 2, DayOfMonth: 3, DayOfWeek: 0, CRSDepTime: 900}, wantErr: `field "day_of_week"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var err error
			if tt.f != nil {
				_, err = m.PredictFlight(tt.f)
			} else {
				_, err = m.PredictVector(tt.x)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPredictVectorIsFiniteWhenProductsOverflow(t *testing.T) {
	m := testModel(t)
	m.Coefficients = []float64{2, -2, 1, 0.75, 0.2} // intercept -2
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	const huge = math.MaxFloat64
	tests := map[string]struct {
		x    []float64
		want float64
	}{
		"Products that overflow each way and cancel leave the intercept.": {x: []float64{huge, huge, 0, 0, 0}, want: Sigmoid(-2)},
		"Cancelling overflows leave the small terms intact.":              {x: []float64{huge, huge, 0, 0, 1}, want: Sigmoid(-2 + 0.2)},
		"What is left after the overflows cancel may be huge: 1.":         {x: []float64{huge, huge, huge, 0, 0}, want: 1},
		"What is left after the overflows cancel may be hugely negative.": {x: []float64{huge, huge, -huge, 0, 0}, want: 0},
		"A logit beyond float64 gives probability 1, not NaN.":            {x: []float64{huge, -huge, 0, 0, 0}, want: 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := m.PredictVector(tt.x)
			if err != nil {
				t.Fatal(err)
			}
			if p != tt.want {
				t.Fatalf("PredictVector = %v, want %v", p, tt.want)
			}
		})
	}
}

func TestPredictDoesNotAllocate(t *testing.T) {
	m := testModel(t)
	x := m.Encode(atlFlight, nil)
	f := atlFlight
	if n := testing.AllocsPerRun(100, func() { m.PredictFlight(&f) }); n != 0 {
		t.Errorf("PredictFlight allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { m.PredictVector(x) }); n != 0 {
		t.Errorf("PredictVector allocates %v times per call", n)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := testModel(t)
	path := filepath.Join(t.TempDir(), "model.json")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Checksum != m.Checksum || got.Checksum == "" {
		t.Fatalf("checksum %q after load, %q saved", got.Checksum, m.Checksum)
	}
	p1, _ := m.PredictFlight(&atlFlight)
	p2, _ := got.PredictFlight(&atlFlight)
	if p1 != p2 {
		t.Fatalf("loaded model predicts %v, saved one %v", p2, p1)
	}
	var a, b bytes.Buffer
	if err := m.Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.Write(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("re-encoding a loaded model changed its bytes")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("save left %d files behind, want only model.json", len(entries))
	}
}

func TestDecodeRejects(t *testing.T) {
	m := testModel(t)
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	tests := map[string]struct {
		in      string
		wantErr string
		is      error
	}{
		"An empty file says so.":                {in: "", wantErr: "file is empty"},
		"Broken JSON gives a line and column.":  {in: "{\n  \"schema_version\": ,", wantErr: "line 2 column"},
		"Another schema version is named.":      {in: strings.Replace(good, SchemaVersion, "delayctl.model/v9", 1), wantErr: `unsupported schema_version "delayctl.model/v9"`},
		"An edited coefficient fails the sum.":  {in: strings.Replace(good, "0.75", "0.76", 1), is: ErrChecksum},
		"An unknown field is named.":            {in: strings.Replace(good, `"name":`, `"nmae": "x", "name":`, 1), wantErr: `unknown field "nmae"`},
		"A missing checksum is refused.":        {in: strings.Replace(good, m.Checksum, "", 1), wantErr: "checksum"},
		"A string where a number goes is named": {in: strings.Replace(good, `"intercept": -2`, `"intercept": "x"`, 1), wantErr: "line"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("Decode accepted a bad artifact")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPrepareRejectsBadShapes(t *testing.T) {
	tests := map[string]struct {
		edit    func(*Model)
		wantErr string
	}{
		"Too few coefficients.":         {func(m *Model) { m.Coefficients = m.Coefficients[:4] }, "encode 5 columns but there are 4 coefficients"},
		"Wrong vector_length.":          {func(m *Model) { m.VectorLength = 9 }, "vector_length is 9"},
		"An unknown variable is named.": {func(m *Model) { m.Features[0].Variable = "wind" }, `unknown variable "wind"`},
		"A repeated category.":          {func(m *Model) { m.Features[1].Vocabulary = []string{"ATL", "ATL"} }, `"ATL" repeats`},
		"A zero deviation.":             {func(m *Model) { m.Features[2].Std = 0 }, "std must be a positive finite number"},
		"A standardised string.": {func(m *Model) {
			m.Features[1] = Feature{Variable: "origin", Encoding: Standard, Std: 1}
			m.Coefficients = m.Coefficients[:4]
			m.VectorLength = 4
		}, "cannot be standardised"},
		"Threshold 1 is refused.":     {func(m *Model) { m.Threshold = 1 }, "threshold must be in (0, 1)"},
		"A NaN coefficient is named.": {func(m *Model) { m.Coefficients[2] = math.NaN() }, "coefficient 2 (origin=ATL) is NaN"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := testModel(t)
			tt.edit(m)
			err := m.Prepare()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Prepare() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSaveToUnwritablePathLeavesNothing(t *testing.T) {
	m := testModel(t)
	dir := t.TempDir()
	err := m.Save(filepath.Join(dir, "missing-dir", "model.json"))
	if err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("failed save left %d entries", len(entries))
	}
}

func TestContentVersionIgnoresProvenance(t *testing.T) {
	a, b := testModel(t), testModel(t)
	b.Training.TrainedAt = "2030-01-01T00:00:00Z"
	va, _ := a.ContentVersion()
	vb, _ := b.ContentVersion()
	if va != vb || len(va) != 12 {
		t.Fatalf("versions %q and %q should be equal 12-hex strings", va, vb)
	}
	b.Coefficients[0] += 1e-9
	if vc, _ := b.ContentVersion(); vc == va {
		t.Fatal("a changed coefficient kept the same version")
	}
}

func FuzzDecode(f *testing.F) {
	m := testModel(f)
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	buf.Reset()
	if err := crossedModel(f).Write(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"schema_version":"delayctl.model/v1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Anything Decode accepts must be predictable without panicking.
		x := make([]float64, got.NumFeatures())
		if _, err := got.PredictVector(x); err != nil {
			t.Fatalf("accepted model cannot predict a zero vector: %v", err)
		}
		fl := atlFlight
		got.PredictFlight(&fl)
	})
}

func BenchmarkPredictFlight(b *testing.B) {
	m := testModel(b)
	f := atlFlight
	b.ReportAllocs()
	for b.Loop() {
		m.PredictFlight(&f)
	}
}

func BenchmarkPredictVector(b *testing.B) {
	m := testModel(b)
	x := m.Encode(atlFlight, nil)
	b.ReportAllocs()
	for b.Loop() {
		m.PredictVector(x)
	}
}

// FuzzPredictVector: every finite vector gets a probability in [0, 1], never NaN.
func FuzzPredictVector(f *testing.F) {
	f.Add(0.0, 1.0, 1.0, 0.0, -1.0)
	f.Add(math.MaxFloat64, math.MaxFloat64, 0.0, 0.0, 0.0)
	f.Add(-math.MaxFloat64, math.MaxFloat64, 5e-324, -5e-324, 1e308)
	m := testModel(f)
	m.Coefficients = []float64{2, -2, 1, 0.75, 0.2}
	if err := m.Prepare(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b, c, d, e float64) {
		x := []float64{a, b, c, d, e}
		p, err := m.PredictVector(x)
		for _, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				if err == nil {
					t.Fatalf("PredictVector(%v) accepted a non-finite value", x)
				}
				return
			}
		}
		if err != nil || !(p >= 0 && p <= 1) {
			t.Fatalf("PredictVector(%v) = %v, %v; want a probability", x, p, err)
		}
	})
}

// crossedModel adds an origin:dep_hour cross over {ATL:7, SEA:6} (plus its pooled column) to
// testModel.
func crossedModel(t testing.TB) *Model {
	t.Helper()
	m := testModel(t)
	m.SchemaVersion = SchemaVersionCrosses
	m.Features = append(m.Features, Feature{Variable: "origin:dep_hour", Encoding: Cross, Cross: []string{"origin", "dep_hour"}, Vocabulary: []string{"ATL:7", "SEA:6"}, MinCount: 10})
	m.VectorLength = 8
	m.Coefficients = append(m.Coefficients, 0.125, -0.5, 0.0625)
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCrossByHand(t *testing.T) {
	m := crossedModel(t)
	tests := map[string]struct {
		f    Flight
		want float64 // logit
	}{
		"A kept pair takes its column.": {f: atlFlight, want: -2 + 0.5*0 - 0.25 + 1 + (3-6.5)/3.5*0.2 + 0.125},
		"A pair outside the vocabulary takes the pooled column.": {
			f: Flight{Month: 3, DayOfMonth: 14, DayOfWeek: 1, Origin: "ATL", CRSDepTime: 605}, want: -2 + 0.5 + 1 + (3-6.5)/3.5*0.2 + 0.0625,
		},
		"An unseen category takes the pooled column.": {
			f: Flight{Month: 3, DayOfMonth: 14, DayOfWeek: 1, Origin: "JFK", CRSDepTime: 705}, want: -2 - 0.25 + (3-6.5)/3.5*0.2 + 0.0625,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := m.Logit(&tt.f); math.Abs(got-tt.want) > 1e-15 {
				t.Fatalf("logit %v, want %v", got, tt.want)
			}
			named, err := m.PredictFlight(&tt.f)
			if err != nil {
				t.Fatal(err)
			}
			vec, err := m.PredictVector(m.Encode(tt.f, nil))
			if err != nil || vec != named {
				t.Fatalf("vector %v (%v), named %v: want the same bits", vec, err, named)
			}
			// Drift binning sees the same cross column from the flight and from its vector.
			fromFlight, fromVector := make([]int32, len(m.Features)), make([]int32, len(m.Features))
			m.BinFlight(&tt.f, fromFlight)
			m.BinVector(m.Encode(tt.f, nil), fromVector)
			if !slices.Equal(fromFlight, fromVector) {
				t.Fatalf("bins from the flight %v, from its vector %v", fromFlight, fromVector)
			}
		})
	}
	if got := m.FeatureNames()[5:]; strings.Join(got, " ") != "origin:dep_hour=ATL:7 origin:dep_hour=SEA:6 origin:dep_hour=(other)" {
		t.Fatalf("feature names %v", got)
	}
}

func TestCrossSchemaVersions(t *testing.T) {
	var b bytes.Buffer
	if err := crossedModel(t).Write(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatalf("a crossed model does not load back: %v", err)
	}
	if !strings.Contains(b.String(), `"schema_version": "delayctl.model/v2"`) {
		t.Fatal("a crossed model was not written as schema v2")
	}
	var plain bytes.Buffer
	if err := testModel(t).Write(&plain); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plain.String(), `"schema_version": "delayctl.model/v1"`) {
		t.Fatal("a model without crosses was not written as schema v1, which older delayctl reads")
	}
	m := crossedModel(t)
	m.SchemaVersion = SchemaVersion
	if err := m.Prepare(); err == nil || !strings.Contains(err.Error(), `cross features need schema_version "delayctl.model/v2"`) {
		t.Fatalf("a cross in a v1 model: error %v", err)
	}
}
