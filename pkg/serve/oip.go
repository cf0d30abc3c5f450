package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/delayctl/delayctl/pkg/model"
)

// Open Inference Protocol v2 (KServe, Triton, MLServer): REST health, metadata and infer.
// The model has one input tensor, x, of shape [-1, F] (FP64; FP32 and integer types are
// accepted and widened), and two outputs of shape [-1]: probability (FP64) and label (INT64,
// 1 = delayed).

const (
	oipInput       = "x"
	oipProbability = "probability"
	oipLabel       = "label"
	oipPlatform    = "delayctl_logistic_regression"
)

type oipTensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type oipModelMeta struct {
	Name     string          `json:"name"`
	Versions []string        `json:"versions"`
	Platform string          `json:"platform"`
	Inputs   []oipTensorMeta `json:"inputs"`
	Outputs  []oipTensorMeta `json:"outputs"`
	// Parameters is the protocol's optional extension object: the feature crosses, as
	// "a:b" names, when the model has any.
	Parameters *oipMetaParameters `json:"parameters,omitempty"`
}

type oipMetaParameters struct {
	Crosses []string `json:"crosses"`
}

func v2Metadata(m *model.Model) oipModelMeta {
	var params *oipMetaParameters
	for _, f := range m.Features {
		if f.Encoding == model.Cross {
			if params == nil {
				params = &oipMetaParameters{}
			}
			params.Crosses = append(params.Crosses, f.Variable)
		}
	}
	return oipModelMeta{
		Parameters: params,
		Name:       m.Name, Versions: []string{m.Version}, Platform: oipPlatform,
		Inputs: []oipTensorMeta{{oipInput, "FP64", []int64{-1, int64(m.NumFeatures())}}},
		Outputs: []oipTensorMeta{
			{oipProbability, "FP64", []int64{-1}},
			{oipLabel, "INT64", []int64{-1}},
		},
	}
}

// inferRequest is the body of POST /v2/models/{name}/infer.
type inferRequest struct {
	ID         string          `json:"id"`
	Parameters json.RawMessage `json:"parameters"`
	Inputs     []struct {
		Name       string          `json:"name"`
		Shape      []int64         `json:"shape"`
		Datatype   string          `json:"datatype"`
		Parameters json.RawMessage `json:"parameters"`
		Data       json.RawMessage `json:"data"`
	} `json:"inputs"`
	Outputs []struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"outputs"`
}

// Tensor element kinds the infer route accepts.
const (
	elemFloat = iota
	elemInt
	elemBool
)

// elemType is a tensor datatype as the decoder checks it: its kind and, for the integer
// types, the range of values it holds.
type elemType struct {
	name   string
	kind   int
	lo, hi float64
	rng    string // lo to hi, exactly
}

func elemTypeOf(datatype string) (elemType, bool) {
	e := elemType{name: datatype, kind: elemInt}
	switch datatype {
	case "FP64":
		return elemType{name: datatype, kind: elemFloat, lo: -math.MaxFloat64, hi: math.MaxFloat64}, true
	case "FP32":
		return elemType{name: datatype, kind: elemFloat, lo: -math.MaxFloat32, hi: math.MaxFloat32, rng: "±3.4028235e+38"}, true
	case "BOOL":
		return elemType{name: datatype, kind: elemBool}, true
	case "INT8":
		e.lo, e.hi, e.rng = math.MinInt8, math.MaxInt8, "-128 to 127"
	case "INT16":
		e.lo, e.hi, e.rng = math.MinInt16, math.MaxInt16, "-32768 to 32767"
	case "INT32":
		e.lo, e.hi, e.rng = math.MinInt32, math.MaxInt32, "-2147483648 to 2147483647"
	case "INT64":
		e.lo, e.hi, e.rng = math.MinInt64, math.MaxInt64, "-9223372036854775808 to 9223372036854775807"
	case "UINT8":
		e.hi, e.rng = math.MaxUint8, "0 to 255"
	case "UINT16":
		e.hi, e.rng = math.MaxUint16, "0 to 65535"
	case "UINT32":
		e.hi, e.rng = math.MaxUint32, "0 to 4294967295"
	case "UINT64":
		e.hi, e.rng = math.MaxUint64, "0 to 18446744073709551615"
	default:
		return elemType{}, false
	}
	return e, true
}

// check refuses a value the datatype cannot hold: a fraction as an integer, or a value out of
// the type's range.
func (e elemType) check(v float64, k int) error {
	if e.kind == elemBool {
		return nil
	}
	if e.kind == elemInt && v != math.Trunc(v) {
		return badRequest("data element %d is %v, not an integer as the datatype %s says", k, v, e.name)
	}
	// The wide integer types' upper bounds (2^63 - 1, 2^64 - 1) round up to powers of two as
	// float64, which no value of the type reaches.
	if v < e.lo || v > e.hi || (e.kind == elemInt && e.hi >= 1<<63 && v >= e.hi) {
		return badRequest("data element %d is %v, outside the range of %s (%s)", k, v, e.name, e.rng)
	}
	return nil
}

// decodeInfer reads an infer request into b and returns the request id and which outputs to
// send. Every error is a 400, as the protocol asks.
func decodeInfer(body []byte, b *batch, m *model.Model, maxBatch int) (id string, wantProb, wantLabel bool, err error) {
	var req inferRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return "", false, false, badRequest("empty request body: send {\"inputs\": [{\"name\": \"x\", \"shape\": [N, %d], \"datatype\": \"FP64\", \"data\": [...]}]}", m.NumFeatures())
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", false, false, jsonError(body, err)
	}
	if len(req.Inputs) != 1 {
		return "", false, false, badRequest("the model takes exactly one input tensor (%s, shape [-1, %d]); got %d", oipInput, m.NumFeatures(), len(req.Inputs))
	}
	in := req.Inputs[0]
	et, ok := elemTypeOf(in.Datatype)
	if !ok {
		return "", false, false, badRequest("input %q: datatype %q is not supported: use FP64, FP32, an INT or UINT type, or BOOL", in.Name, in.Datatype)
	}
	f := int64(m.NumFeatures())
	if len(in.Shape) != 2 || in.Shape[1] != f {
		return "", false, false, badRequest("input %q: shape %s, the model expects [N, %d]", in.Name, shapeString(in.Shape), f)
	}
	n := in.Shape[0]
	switch {
	case n <= 0:
		return "", false, false, badRequest("input %q: shape %s holds no instances", in.Name, shapeString(in.Shape))
	case n > int64(maxBatch):
		return "", false, false, badRequest("input %q: batch of %d instances is more than the server's --max-batch %d: split it", in.Name, n, maxBatch)
	}
	if len(in.Data) == 0 {
		return "", false, false, badRequest("input %q has no data", in.Name)
	}
	d := decoder{s: in.Data, b: b}
	b.field = "data"
	if err := d.tensor(et, n, f); err != nil {
		return "", false, false, asBadRequest(fmt.Sprintf("input %q: ", in.Name), err)
	}
	if got := int64(len(b.vals)); got != n*f {
		return "", false, false, badRequest("input %q: data has %d elements, shape %s needs %d", in.Name, got, shapeString(in.Shape), n*f)
	}
	for i := int64(1); i <= n; i++ {
		b.ends = append(b.ends, int(i*f))
	}
	wantProb, wantLabel = len(req.Outputs) == 0, len(req.Outputs) == 0
	for _, o := range req.Outputs {
		switch o.Name {
		case oipProbability:
			wantProb = true
		case oipLabel:
			wantLabel = true
		default:
			return "", false, false, badRequest("unknown output %q: the model outputs %q and %q", o.Name, oipProbability, oipLabel)
		}
	}
	return req.ID, wantProb, wantLabel, nil
}

// shapeString writes a shape as the protocol does, [2, 80].
func shapeString(shape []int64) string {
	b := []byte{'['}
	for i, d := range shape {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}

// asBadRequest makes a decoder error a 400 with a prefix: the protocol has no 422.
func asBadRequest(prefix string, err error) error {
	return &requestError{http.StatusBadRequest, prefix + err.Error()}
}

// tensor reads the data of an [n, f] tensor, flat (n*f elements) or nested as the shape says
// (n rows of f elements), appending every element to b.vals. Nested data that does not match
// the shape (ragged rows, a row count other than n, deeper nesting) is refused, not re-split.
// The element count of flat data is checked by the caller.
func (d *decoder) tensor(e elemType, n, f int64) error {
	d.ws()
	if d.peek() != '[' {
		return d.typeError("data", "want an array")
	}
	d.i++
	d.ws()
	if d.peek() != '[' {
		return d.elements(e, "data")
	}
	for row := int64(0); ; row++ {
		d.ws()
		if d.peek() != '[' {
			return badRequest("data row %d is not an array: nest every row as the shape [%d, %d] says, or none", row, n, f)
		}
		d.i++
		start := len(d.b.vals)
		if err := d.elements(e, "data row"); err != nil {
			return err
		}
		if got := int64(len(d.b.vals) - start); got != f {
			return badRequest("data row %d has %d elements, the shape [%d, %d] says %d", row, got, n, f, f)
		}
		if err := d.next("data"); err != nil {
			return err
		}
		if d.s[d.i-1] == ']' {
			if row+1 != n {
				return badRequest("data has %d rows, the shape [%d, %d] says %d", row+1, n, f, n)
			}
			return nil
		}
	}
}

// elements reads the scalar elements of an array whose [ is consumed, through its ].
func (d *decoder) elements(e elemType, field string) error {
	for first := true; ; first = false {
		d.ws()
		if first && d.peek() == ']' {
			d.i++
			return nil
		}
		k := len(d.b.vals)
		switch c := d.peek(); {
		case c == '[':
			return badRequest("data element %d is an array: the data is nested deeper than its shape", k)
		case e.kind == elemBool && (c == 't' || c == 'f'):
			switch {
			case bytes.HasPrefix(d.s[d.i:], []byte("true")):
				d.b.vals = append(d.b.vals, 1)
				d.i += 4
			case bytes.HasPrefix(d.s[d.i:], []byte("false")):
				d.b.vals = append(d.b.vals, 0)
				d.i += 5
			default:
				return d.syntax("invalid literal")
			}
		default:
			v, err := d.number(func() string { return fmt.Sprintf("data element %d", k) })
			if err != nil {
				return err
			}
			if err := e.check(v, k); err != nil {
				return err
			}
			d.b.vals = append(d.b.vals, v)
		}
		if err := d.next(field); err != nil || d.s[d.i-1] == ']' {
			return err
		}
	}
}

// v2Infer serves POST /v2/models/{name}[/versions/{version}]/infer.
func (s *Server) v2Infer(w http.ResponseWriter, r *http.Request) {
	lm := s.cur.Load()
	if !s.v2ModelMatches(w, r, lm) {
		return
	}
	var id string
	var wantProb, wantLabel bool
	s.serveWork(w, r, lm, true, func(_ int, body []byte, b *batch) (err error) {
		id, wantProb, wantLabel, err = decodeInfer(body, b, lm.m, s.opts.MaxBatch)
		return err
	}, func(o []byte, probs []float64) []byte {
		o = append(o, `{"model_name":`...)
		o = append(o, lm.nameJSON...)
		o = append(o, `,"model_version":`...)
		o = append(o, lm.versionJSON...)
		if id != "" {
			o = append(o, `,"id":`...)
			o = appendJSONString(o, id)
		}
		o = append(o, `,"outputs":[`...)
		if wantProb {
			o = append(o, `{"name":"probability","datatype":"FP64","shape":[`...)
			o = strconv.AppendInt(o, int64(len(probs)), 10)
			o = append(o, `],"data":[`...)
			for i, p := range probs {
				if i > 0 {
					o = append(o, ',')
				}
				o = appendFloat(o, p)
			}
			o = append(o, "]}"...)
		}
		if wantLabel {
			if wantProb {
				o = append(o, ',')
			}
			o = append(o, `{"name":"label","datatype":"INT64","shape":[`...)
			o = strconv.AppendInt(o, int64(len(probs)), 10)
			o = append(o, `],"data":[`...)
			for i, p := range probs {
				if i > 0 {
					o = append(o, ',')
				}
				if lm.m.Delayed(p) {
					o = append(o, '1')
				} else {
					o = append(o, '0')
				}
			}
			o = append(o, "]}"...)
		}
		return append(o, "]}\n"...)
	})
}

// v2ModelMatches answers 404 unless the path names the served model (and version, if given).
func (s *Server) v2ModelMatches(w http.ResponseWriter, r *http.Request, lm *loadedModel) bool {
	name, version := r.PathValue("name"), r.PathValue("version")
	if name != lm.m.Name {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found: this server serves %q", name, lm.m.Name))
		return false
	}
	if version != "" && version != lm.m.Version {
		writeError(w, http.StatusNotFound, fmt.Sprintf("version %q of model %q not found: serving version %q", version, name, lm.m.Version))
		return false
	}
	return true
}

// v2Server serves GET /v2, the server metadata.
func (s *Server) v2Server(w http.ResponseWriter, _ *http.Request) {
	v := s.opts.ServerVersion
	if v == "" {
		v = "dev"
	}
	b := appendJSONString([]byte(`{"name":"delayctl","version":`), v)
	writeJSON(w, http.StatusOK, append(b, `,"extensions":[]}`+"\n"...))
}

// v2Live serves GET /v2/health/live.
func (s *Server) v2Live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"live":true}`+"\n"))
}

// v2Ready serves GET /v2/health/ready: 200 while a model is loaded and the server is not
// draining, 503 otherwise.
func (s *Server) v2Ready(w http.ResponseWriter, _ *http.Request) {
	if !s.ready() {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"ready":false}`+"\n"))
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"ready":true}`+"\n"))
}

// v2Model serves GET /v2/models/{name}[/versions/{version}].
func (s *Server) v2Model(w http.ResponseWriter, r *http.Request) {
	lm := s.cur.Load()
	if s.v2ModelMatches(w, r, lm) {
		writeJSON(w, http.StatusOK, lm.v2Meta)
	}
}

// v2ModelReady serves GET /v2/models/{name}[/versions/{version}]/ready.
func (s *Server) v2ModelReady(w http.ResponseWriter, r *http.Request) {
	lm := s.cur.Load()
	if !s.v2ModelMatches(w, r, lm) {
		return
	}
	b := append([]byte(`{"name":`), lm.nameJSON...)
	if !s.ready() {
		writeJSON(w, http.StatusServiceUnavailable, append(b, `,"ready":false}`+"\n"...))
		return
	}
	writeJSON(w, http.StatusOK, append(b, `,"ready":true}`+"\n"...))
}
