package serve

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// inferAnswer is the infer answer, decoded.
type inferAnswer struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name     string    `json:"name"`
		Datatype string    `json:"datatype"`
		Shape    []int     `json:"shape"`
		Data     []float64 `json:"data"`
	} `json:"outputs"`
}

func TestInferSpeaksTheOpenInferenceProtocol(t *testing.T) {
	m := testModel(t, "v1")
	s, _ := newTestServer(t, m, testOptions())
	pa, _ := m.PredictFlight(&atl)
	pj, _ := m.PredictFlight(&jfk)
	xa, xj := vectorJSON(m, atl), vectorJSON(m, jfk)
	flat := strings.TrimSuffix(xa, "]") + "," + strings.TrimPrefix(xj, "[")
	label := func(p float64) float64 {
		if m.Delayed(p) {
			return 1
		}
		return 0
	}
	// An integer tensor: the vector of atl with its standardised columns rounded.
	xr := m.Encode(atl, nil)
	for i := range xr {
		xr[i] = math.Round(xr[i])
	}
	pr, _ := m.PredictVector(xr)
	intData := strings.ReplaceAll(fmt.Sprint(xr), " ", ",")
	tests := map[string]struct {
		path, body string
		outputs    []string
		want       []float64
	}{
		"An FP64 tensor with nested data gets probabilities and labels.": {
			"/v2/models/flight-delay/infer",
			`{"id": "r1", "inputs": [{"name": "x", "shape": [2, 80], "datatype": "FP64", "data": [` + xa + `,` + xj + `]}]}`,
			[]string{"probability", "label"}, []float64{pa, pj}},
		"An FP32 tensor with flat data is accepted.": {
			"/v2/models/flight-delay/infer",
			`{"id": "r1", "inputs": [{"name": "input-0", "shape": [2, 80], "datatype": "FP32", "data": ` + flat + `}]}`,
			[]string{"probability", "label"}, []float64{pa, pj}},
		"An INT64 one-hot tensor is widened.": {
			"/v2/models/flight-delay/versions/v1/infer",
			`{"id": "r1", "inputs": [{"name": "x", "shape": [1, 80], "datatype": "INT64", "data": ` + intData + `}]}`,
			[]string{"probability", "label"}, []float64{pr}},
		"Asking for one output sends only that one.": {
			"/v2/models/flight-delay/infer",
			`{"id": "r1", "inputs": [{"name": "x", "shape": [2, 80], "datatype": "FP64", "data": ` + flat + `}], "outputs": [{"name": "label"}]}`,
			[]string{"label"}, []float64{pa, pj}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := do(s.Handler(), "POST", tc.path, "application/json", tc.body)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			got := decodeJSON[inferAnswer](t, rec.Body.Bytes())
			if got.ModelName != "flight-delay" || got.ModelVersion != "v1" || got.ID != "r1" || len(got.Outputs) != len(tc.outputs) {
				t.Fatalf("answer %s", rec.Body)
			}
			labels := make([]float64, len(tc.want))
			for i, p := range tc.want {
				labels[i] = label(p)
			}
			for i, o := range got.Outputs {
				want := map[string]struct {
					dt   string
					data []float64
				}{
					"probability": {"FP64", tc.want},
					"label":       {"INT64", labels},
				}[tc.outputs[i]]
				if o.Name != tc.outputs[i] || o.Datatype != want.dt || fmt.Sprint(o.Shape) != fmt.Sprint([]int{len(tc.want)}) || fmt.Sprint(o.Data) != fmt.Sprint(want.data) {
					t.Errorf("output %d = %+v, want %s %s %v", i, o, tc.outputs[i], want.dt, want.data)
				}
			}
		})
	}
}

func TestInferErrorsUseTheProtocolCodes(t *testing.T) {
	m := testModel(t, "v1")
	opts := testOptions()
	opts.MaxBatch = 2
	s, _ := newTestServer(t, m, opts)
	xa := vectorJSON(m, atl)
	tensor := func(shape, dt, data string) string {
		return `{"inputs": [{"name": "x", "shape": ` + shape + `, "datatype": "` + dt + `", "data": ` + data + `}]}`
	}
	tests := map[string]struct {
		path, ctype, body string
		status            int
		msg               string
	}{
		"An unknown model is a 404.": {
			"/v2/models/other/infer", "application/json", tensor("[1, 80]", "FP64", xa), 404, `model "other" not found`},
		"An unknown version is a 404.": {
			"/v2/models/flight-delay/versions/v9/infer", "application/json", tensor("[1, 80]", "FP64", xa), 404, `version "v9"`},
		"A wrong feature count in the shape is a 400 naming the expected shape.": {
			"/v2/models/flight-delay/infer", "application/json", tensor("[1, 79]", "FP64", xa), 400, "the model expects [N, 80]"},
		"Data that does not fill the shape is a 400.": {
			"/v2/models/flight-delay/infer", "application/json", tensor("[2, 80]", "FP64", xa), 400, "data has 80 elements, shape [2, 80] needs 160"},
		"A BYTES tensor is a 400.": {
			"/v2/models/flight-delay/infer", "application/json", tensor("[1, 80]", "BYTES", xa), 400, `datatype "BYTES" is not supported`},
		"A fraction in an INT tensor is a 400.": {
			"/v2/models/flight-delay/infer", "application/json", tensor("[1, 80]", "INT32", "[0.5"+strings.Repeat(",0", 79)+"]"), 400, "data element 0 is 0.5, not an integer"},
		"NaN is a 400, not a 422.": {
			"/v2/models/flight-delay/infer", "application/json", tensor("[1, 80]", "FP64", "[NaN"+strings.Repeat(",0", 79)+"]"), 400, "line 1 column 74 (byte 74): invalid character 'N' looking for beginning of value (NaN and Infinity are not numbers in JSON"},
		"A batch over --max-batch is a 400.": {
			"/v2/models/flight-delay/infer", "application/json", tensor("[3, 80]", "FP64", "[]"), 400, "--max-batch 2"},
		"An empty batch is a 400.": {
			"/v2/models/flight-delay/infer", "application/json", tensor("[0, 80]", "FP64", "[]"), 400, "holds no instances"},
		"Two inputs are a 400.": {
			"/v2/models/flight-delay/infer", "application/json", `{"inputs": [{}, {}]}`, 400, "exactly one input tensor"},
		"An unknown output is a 400.": {
			"/v2/models/flight-delay/infer", "application/json", strings.TrimSuffix(tensor("[1, 80]", "FP64", xa), "}") + `, "outputs": [{"name": "score"}]}`, 400, `unknown output "score"`},
		"Malformed JSON is a 400 naming the position.": {
			"/v2/models/flight-delay/infer", "application/json", `{"inputs": [}`, 400, "malformed JSON at line 1 column 13"},
		"A wrong JSON type is a 400 naming the field.": {
			"/v2/models/flight-delay/infer", "application/json", `{"inputs": [{"shape": "2"}]}`, 400, `field "inputs.shape"`},
		"A form body is a 415.": {
			"/v2/models/flight-delay/infer", "application/x-www-form-urlencoded", "x=" + xa, 415, "inference protocol takes application/json"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := do(s.Handler(), "POST", tc.path, tc.ctype, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			got := decodeJSON[struct {
				Error string `json:"error"`
			}](t, rec.Body.Bytes())
			if !strings.Contains(got.Error, tc.msg) {
				t.Errorf("error %q does not say %q", got.Error, tc.msg)
			}
		})
	}
}

func TestOIPMetadataAndReadiness(t *testing.T) {
	s, _ := newTestServer(t, testModel(t, "v1"), Options{ServerVersion: "1.2.3", PublicRoutes: DefaultPublicRoutes})
	tests := map[string]struct {
		path   string
		status int
		body   string
	}{
		"Server metadata names delayctl and its version.": {"/v2", 200,
			`{"name":"delayctl","version":"1.2.3","extensions":[]}`},
		"Model metadata gives the input as [-1, F].": {"/v2/models/flight-delay", 200,
			`{"name":"flight-delay","versions":["v1"],"platform":"delayctl_logistic_regression","inputs":[{"name":"x","datatype":"FP64","shape":[-1,80]}],"outputs":[{"name":"probability","datatype":"FP64","shape":[-1]},{"name":"label","datatype":"INT64","shape":[-1]}]}`},
		"A versioned metadata path works for the served version.": {"/v2/models/flight-delay/versions/v1", 200,
			`{"name":"flight-delay","versions":["v1"],"platform":"delayctl_logistic_regression","inputs":[{"name":"x","datatype":"FP64","shape":[-1,80]}],"outputs":[{"name":"probability","datatype":"FP64","shape":[-1]},{"name":"label","datatype":"INT64","shape":[-1]}]}`},
		"Model readiness is 200 for the served model.":    {"/v2/models/flight-delay/ready", 200, `{"name":"flight-delay","ready":true}`},
		"Model readiness is 404 for another model.":       {"/v2/models/x/ready", 404, `{"error":"model \"x\" not found: this server serves \"flight-delay\""}`},
		"Model metadata is 404 for another version.":      {"/v2/models/flight-delay/versions/v0", 404, `{"error":"version \"v0\" of model \"flight-delay\" not found: serving version \"v1\""}`},
		"A POST to a metadata route is a 405 with Allow.": {"/v2", 405, `{"error":"method POST is not allowed on /v2; use GET, HEAD"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			method := "GET"
			if tc.status == 405 {
				method = "POST"
			}
			rec := do(s.Handler(), method, tc.path, "", "")
			if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.body {
				t.Errorf("%d %s\nwant %d %s", rec.Code, rec.Body, tc.status, tc.body)
			}
		})
	}
}
