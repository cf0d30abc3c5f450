package serve

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"testing"
)

// The decoders face the network: whatever the bytes, they must return a client error (4xx)
// or a well-formed batch, never panic, and agree with encoding/json on what they accept.
// Seed corpora live in testdata/fuzz/<FuzzName>/. Run one with e.g.
//
//	go test ./pkg/serve -run '^$' -fuzz '^FuzzDecodePredict$' -fuzztime 30s

func FuzzDecodePredict(f *testing.F) {
	for _, seed := range []string{
		`{"x": [0, 1, 0.5, -2e-3]}`,
		`{"x": [[0, 1], [1, 0]]}`,
		`{"instances": [{"month": 1, "day_of_month": 5, "day_of_week": 2, "origin": "ATL", "dest": "SEA", "carrier": "DL", "crs_dep_time": 1905}]}`,
		`{"instances": [[1, 2], [3, 4]]}`,
		`{"x": [NaN]}`, `{"x": [1e999]}`, `{"x": []}`, `{}`, `[]`, ``, `{"x": [1,]}`, `{"x"`,
		`{"instances": [{"origin": "\u0041TL"}]}`,
	} {
		f.Add([]byte(seed))
	}
	const maxBatch = 8
	f.Fuzz(func(t *testing.T, body []byte) {
		b := new(batch)
		err := decodePredict(body, b, maxBatch, map[string]string{"ATL": "ATL"})
		if err != nil {
			checkClientError(t, err)
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		n := b.len()
		if n == 0 || n > maxBatch {
			t.Fatalf("accepted a batch of %d", n)
		}
		for _, v := range b.vals {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted a non-finite value from %q", body)
			}
		}
		if b.named {
			return
		}
		// Differential check against encoding/json.
		var ref struct {
			X         json.RawMessage `json:"x"`
			Instances [][]float64     `json:"instances"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		var rows [][]float64
		switch {
		case b.single:
			var x []float64
			if err := json.Unmarshal(ref.X, &x); err != nil {
				t.Fatalf("x of %q: %v", body, err)
			}
			rows = [][]float64{x}
		case b.field == "x":
			if err := json.Unmarshal(ref.X, &rows); err != nil {
				t.Fatalf("x of %q: %v", body, err)
			}
		default:
			rows = ref.Instances
		}
		got := make([][]float64, n)
		for i := range n {
			got[i] = append([]float64{}, b.row(i)...)
		}
		if !reflect.DeepEqual(got, rows) {
			t.Fatalf("decoded %v from %q, encoding/json reads %v", got, body, rows)
		}
	})
}

func FuzzDecodeInfer(f *testing.F) {
	for _, seed := range []string{
		`{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}`,
		`{"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6]]}]}`,
		`{"id": "a", "inputs": [{"name": "x", "shape": [1, 3], "datatype": "BOOL", "data": [true, false, true]}], "outputs": [{"name": "label"}]}`,
		`{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "INT8", "data": [[[1]], 2, [3]]}]}`,
		`{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "INT8", "data": [1000, 0, 0]}]}`,
		`{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "UINT8", "data": [[-1, 0, 0]]}]}`,
		`{"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [[1, 2, 3, 4], [5, 6]]}]}`,
		`{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "UINT64", "data": [18446744073709551615, 0, 0]}]}`,
		`{"inputs": []}`, `{"inputs": [{"shape": [-1, 3]}]}`, `{`,
	} {
		f.Add([]byte(seed))
	}
	m := tinyModel(f)
	// The range of each integer datatype, written out here rather than taken from the decoder.
	ranges := map[string][2]float64{
		"INT8": {-128, 127}, "INT16": {-32768, 32767}, "INT32": {-2147483648, 2147483647},
		"INT64": {-9223372036854775808, 9223372036854774784}, "UINT8": {0, 255}, "UINT16": {0, 65535},
		"UINT32": {0, 4294967295}, "UINT64": {0, 18446744073709549568}, "FP32": {-math.MaxFloat32, math.MaxFloat32},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := new(batch)
		_, _, _, err := decodeInfer(body, b, m, 4)
		if err != nil {
			checkClientError(t, err)
			if statusOf(err) != http.StatusBadRequest {
				t.Fatalf("infer error with status %d: %v", statusOf(err), err)
			}
			return
		}
		if b.len() == 0 || b.len() > 4 || len(b.vals) != b.len()*3 {
			t.Fatalf("accepted %d rows of %d values from %q", b.len(), len(b.vals), body)
		}
		var req inferRequest
		_ = json.Unmarshal(body, &req)
		if r, ok := ranges[req.Inputs[0].Datatype]; ok {
			for _, v := range b.vals {
				if v < r[0] || v > r[1] || v != math.Trunc(v) && req.Inputs[0].Datatype != "FP32" {
					t.Fatalf("accepted %v as %s from %q", v, req.Inputs[0].Datatype, body)
				}
			}
		}
	})
}

func FuzzDecodeForm(f *testing.F) {
	for _, seed := range []string{"x=[0,1,0]", "x=[[0,1],[1,0]]", "x=", "y=1", "x=[1]&x=[2]", "x=%5B1%5D", "%zz"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := new(batch)
		if err := decodeForm(body, b, 8); err != nil {
			checkClientError(t, err)
			return
		}
		if b.len() == 0 || b.len() > 8 {
			t.Fatalf("accepted a batch of %d", b.len())
		}
	})
}

func checkClientError(t *testing.T, err error) {
	t.Helper()
	var re *requestError
	if !errors.As(err, &re) || re.Status < 400 || re.Status > 499 || re.Msg == "" {
		t.Fatalf("error is not a client error: %#v", err)
	}
}

// tinyModel is a three-column model for the infer fuzzer.
func tinyModel(t testing.TB) *modelT {
	t.Helper()
	m := &modelT{
		Name: "tiny", Version: "1",
		Features: []featureT{
			{Variable: "origin", Encoding: "onehot", Vocabulary: []string{"ATL", "SEA"}},
			{Variable: "month", Encoding: "standard", Mean: 6, Std: 3},
		},
		VectorLength: 3, Coefficients: []float64{1, -1, 0.5}, Threshold: 0.5,
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}
