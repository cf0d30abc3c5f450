package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/delayctl/delayctl/pkg/model"
)

// Label values of delayctl_predictions_total and of the "label" field of /predict answers.
const (
	labelDelayed = "delayed"
	labelOnTime  = "on_time"
)

// predict serves POST /predict and the seeds' root route (GET / with a JSON body, POST / with a
// JSON or form body).
//
// Answer: {"model_name": N, "model_version": V, "predictions": [{"probability": p,
// "delayed": bool, "label": "delayed"|"on_time"}, ...]}, one prediction per instance, in order.
func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	lm := s.cur.Load()
	s.serveWork(w, r, lm, false, func(kind int, body []byte, b *batch) error {
		switch kind {
		case kindForm:
			return decodeForm(body, b, s.opts.MaxBatch)
		case kindMultipart:
			return decodeMultipart(header(r, "Content-Type"), body, b, s.opts.MaxBatch)
		}
		return decodePredict(body, b, s.opts.MaxBatch, lm.intern)
	}, func(o []byte, probs []float64) []byte {
		o = append(o, `{"model_name":`...)
		o = append(o, lm.nameJSON...)
		o = append(o, `,"model_version":`...)
		o = append(o, lm.versionJSON...)
		o = append(o, `,"predictions":[`...)
		for i, p := range probs {
			if i > 0 {
				o = append(o, ',')
			}
			o = append(o, `{"probability":`...)
			o = appendFloat(o, p)
			if lm.m.Delayed(p) {
				o = append(o, `,"delayed":true,"label":"delayed"}`...)
			} else {
				o = append(o, `,"delayed":false,"label":"on_time"}`...)
			}
		}
		return append(o, "]}\n"...)
	})
}

// serveWork runs what every prediction route does: read the body, check its type, take an
// in-flight slot, decode into a pooled batch, predict, and write the answer. decode and answer
// are the route's own parts. The inference protocol (oip) knows no 422: its client errors
// are all 400.
func (s *Server) serveWork(w http.ResponseWriter, r *http.Request, lm *loadedModel, oip bool,
	decode func(kind int, body []byte, b *batch) error, answer func(dst []byte, probs []float64) []byte) {
	// The model's name and version go in the body only: X-Model-Name/X-Model-Version headers
	// cost about 5 % of /predict throughput (net/http clones, sorts and writes each header line;
	// measured with scripts/perf-serve.sh), and the body already says which model answered.
	fail := func(err error) {
		code := statusOf(err)
		if oip && code == http.StatusUnprocessableEntity {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
	}
	// Admission before a byte of the body is read: a request of a connection that stayed
	// beyond the adaptive limit is answered 503 (see shedQueue), and the body budget is asked
	// for in readBody.
	if s.adm.rejected(r) {
		s.shedRequest(w, reasonQueue, false, shedQueueMessage)
		return
	}
	st := workPool.Get().(*workState)
	defer st.put(s.budget)
	body, err := s.readBody(w, r, st)
	if err != nil {
		fail(err)
		return
	}
	contentType := header(r, "Content-Type")
	kind, err := bodyKind(contentType, body)
	if err == nil && oip && kind != kindJSON {
		err = &requestError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Type %q: the inference protocol takes application/json", contentType)}
	}
	if err != nil {
		fail(err)
		return
	}
	if !s.acquire(w) {
		return
	}
	defer s.release()
	b := &st.batch
	b.reset()
	if err := decode(kind, body, b); err != nil {
		fail(err)
		return
	}
	probs, err := s.compute(lm, b)
	if err != nil {
		fail(err)
		return
	}
	s.mon.observe(r, lm, b, probs)
	st.out.b = answer(st.out.b[:0], probs)
	writeJSON(w, http.StatusOK, st.out.b)
}

// workState is what one prediction request needs, pooled as one piece: the body, the decoded
// batch and the answer. held is the body budget the request holds.
type workState struct {
	in, out buffer
	batch   batch
	held    int64
}

var workPool = sync.Pool{New: func() any {
	return &workState{in: buffer{getBodyBuf(0)}, out: buffer{make([]byte, 0, 4096)}}
}}

// put returns the body budget the request held and the state to the pool. A body buffer that
// a huge request grew goes back to its size class's pool, and a state whose answer or batch it
// grew is let go, so the pool does not pin megabytes after one large batch.
func (st *workState) put(budget *bodyBudget) {
	budget.release(st.held)
	st.held = 0
	if cap(st.in.b) > 256<<10 {
		putBodyBuf(st.in.b)
		st.in.b = getBodyBuf(0)
	}
	if cap(st.out.b) <= 256<<10 && cap(st.batch.vals) <= 64<<10 {
		workPool.Put(st)
	}
}

// compute predicts every instance of b into b's probability slice and counts the labels.
func (s *Server) compute(lm *loadedModel, b *batch) ([]float64, error) {
	if s.beforeCompute != nil {
		s.beforeCompute()
	}
	m := lm.m
	n := b.len()
	probs := b.probs[:0]
	delayed := 0
	for i := range n {
		var p float64
		var err error
		if b.named {
			p, err = m.PredictFlight(&b.flights[i])
		} else {
			x := b.row(i)
			if len(x) != m.NumFeatures() {
				return nil, unprocessable("%s has %d values, the model expects %d (GET /v1/models/%s lists them in order)",
					b.rowName(i), len(x), m.NumFeatures(), m.Name)
			}
			p, err = m.PredictVector(x)
		}
		if err != nil {
			return nil, predictError(b, i, err)
		}
		if m.Delayed(p) {
			delayed++
		}
		probs = append(probs, p)
	}
	b.probs = probs
	if delayed > 0 {
		s.met.delayed.Add(float64(delayed))
	}
	if n > delayed {
		s.met.onTime.Add(float64(n - delayed))
	}
	return probs, nil
}

// predictError turns the model's typed errors into 422s naming the instance.
func predictError(b *batch, i int, err error) error {
	var fe *model.FieldError
	var ve *model.ValueError
	var le *model.VectorLengthError
	switch {
	case errors.As(err, &fe), errors.As(err, &ve), errors.As(err, &le):
		return unprocessable("%s: %v", b.rowName(i), err)
	}
	return fmt.Errorf("%s: %w", b.rowName(i), err)
}

// acquire takes an in-flight slot for a prediction, or answers 503 at once when all
// --max-inflight slots are taken. The slot is taken after the body is read, so a client
// trickling its body holds a connection (bounded by --read-timeout) but never a slot.
func (s *Server) acquire(w http.ResponseWriter) bool {
	if s.inflight.Add(1) > s.maxInflight {
		s.inflight.Add(-1)
		s.shedRequest(w, reasonInflight, false, fmt.Sprintf("overloaded: %d predictions already in progress (--max-inflight); retry shortly", s.maxInflight))
		return false
	}
	return true
}

func (s *Server) release() { s.inflight.Add(-1) }

var retryAfter1 = []string{"1"}

// shedQueueMessage answers a request that waited rejectAfter for a place.
var shedQueueMessage = "overloaded: the server serves as many connections as it can without queueing, and none made room within " +
	rejectAfter.String() + "; retry shortly"

// readBody reads the request body into st.in, enforcing --max-body-bytes and the body budget.
// A declared Content-Length is reserved from the budget before anything is read; the buffer
// itself grows only with the bytes that arrive, never from the header's word.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, st *workState) ([]byte, error) {
	limit := s.opts.MaxBodyBytes
	tooLarge := func() error {
		// The rest of the body is not read: the connection cannot be reused.
		w.Header().Set("Connection", "close")
		return &requestError{http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body is larger than %d bytes (--max-body-bytes); send smaller batches", limit)}
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	if r.ContentLength > bodyBase+s.budget.size {
		w.Header().Set("Connection", "close")
		return nil, &requestError{http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body of %d bytes is more than the server buffers for all requests together (%d bytes, --max-buffered-bytes); send smaller batches",
				r.ContentLength, bodyBase+s.budget.size)}
	}
	if r.ContentLength > bodyBase {
		need := budgetFor(classSize(bodyClass(r.ContentLength)))
		if !s.budget.tryAcquire(need) {
			return nil, s.bodyBudgetFull(w)
		}
		st.held = need
	}
	b := st.in.b[:0]
	readErr := func(err error) error {
		st.in.b = b
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.countTimeout(r, timeoutRead)
			w.Header().Set("Connection", "close")
			return &requestError{http.StatusRequestTimeout, "request body not received within --read-timeout"}
		}
		return badRequest("could not read request body: %v", err)
	}
	for {
		if len(b) == cap(b) {
			if int64(len(b)) == r.ContentLength {
				break // all the declared bytes are here
			}
			// A body of unknown length may end right here: look before asking for budget.
			var next [1]byte
			if r.ContentLength < 0 {
				if _, err := io.ReadAtLeast(r.Body, next[:], 1); err == io.EOF {
					break
				} else if err != nil {
					return nil, readErr(err)
				}
			}
			k := bodyClass(int64(cap(b)) + 1)
			if need := budgetFor(classSize(k)) - st.held; need > 0 {
				if !s.budget.tryAcquire(need) {
					st.in.b = b
					return nil, s.bodyBudgetFull(w)
				}
				st.held += need
			}
			nb := append(getBodyBuf(k), b...)
			putBodyBuf(b)
			b = nb
			if r.ContentLength < 0 {
				b = append(b, next[0])
			}
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			st.in.b = b
			return nil, tooLarge()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readErr(err)
		}
	}
	st.in.b = b
	return b, nil
}

// bodyBudgetFull sheds a request whose body the budget cannot cover now.
func (s *Server) bodyBudgetFull(w http.ResponseWriter) error {
	s.countShed(reasonBodyBudget)
	w.Header()["Retry-After"] = retryAfter1
	w.Header().Set("Connection", "close")
	return &requestError{http.StatusServiceUnavailable,
		fmt.Sprintf("overloaded: the server already holds %d bytes of request bodies (--max-buffered-bytes); retry shortly", s.budget.size)}
}

// Kinds of request body.
const (
	kindJSON = iota
	kindForm
	kindMultipart
)

// bodyKind decides how to read a body from its Content-Type. A missing type, or the form type
// curl -d sends by default, holding a JSON object is read as JSON: that is what a client meant.
func bodyKind(contentType string, body []byte) (int, error) {
	first := 0 // the first byte that is not JSON whitespace, or len(body)
	for first < len(body) && (body[first] == ' ' || body[first] == '\t' || body[first] == '\r' || body[first] == '\n') {
		first++
	}
	looksJSON := first < len(body) && body[first] == '{'
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	switch {
	case mt == "application/json" || strings.EqualFold(mt, "application/json"):
		return kindJSON, nil
	case mt == "":
		if looksJSON || first == len(body) {
			return kindJSON, nil
		}
		return kindForm, nil
	case strings.EqualFold(mt, "application/x-www-form-urlencoded"):
		if looksJSON {
			return kindJSON, nil
		}
		return kindForm, nil
	case strings.EqualFold(mt, "multipart/form-data"):
		return kindMultipart, nil
	case strings.EqualFold(mt, "text/json"), len(mt) > 5 && strings.HasSuffix(strings.ToLower(mt), "+json"):
		return kindJSON, nil
	}
	return 0, &requestError{http.StatusUnsupportedMediaType,
		fmt.Sprintf("unsupported Content-Type %q: send application/json, or a form with field x", contentType)}
}

// decodeForm reads the Cloud Function seed's body, x=[0,1,0,...], or x=[[..],[..]].
func decodeForm(body []byte, b *batch, maxBatch int) error {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return badRequest("malformed form body: %v", err)
	}
	return decodeFormValues(vals, b, maxBatch)
}

func decodeFormValues(vals url.Values, b *batch, maxBatch int) error {
	for k := range vals {
		if k != "x" {
			return badRequest("unknown form field %q: send x=[0,1,0,...]", k)
		}
	}
	xs := vals["x"]
	switch len(xs) {
	case 0:
		return badRequest("form has no field x: send x=[0,1,0,...]")
	case 1:
	default:
		return badRequest("form field x appears %d times; send it once", len(xs))
	}
	v := []byte(xs[0])
	d := decoder{s: v, b: b, maxBatch: maxBatch}
	b.field = "x"
	d.ws()
	if err := d.vectors(); err != nil {
		return formValueError(err)
	}
	d.ws()
	if d.i != len(v) {
		return formValueError(d.syntax("unexpected data after the array"))
	}
	if b.len() == 0 {
		return unprocessable("x is empty: send at least one instance")
	}
	return nil
}

// formValueError says that a syntax position refers to the form value, not the body.
func formValueError(err error) error {
	var re *requestError
	if errors.As(err, &re) {
		return &requestError{re.Status, "form field x: " + re.Msg}
	}
	return err
}

// decodeMultipart reads x from a multipart form (curl -F 'x=[0,1,...]').
func decodeMultipart(contentType string, body []byte, b *batch, maxBatch int) error {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return badRequest("multipart body without a boundary in its Content-Type")
	}
	form, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).ReadForm(int64(len(body)) + 1)
	if err != nil {
		return badRequest("malformed multipart body: %v", err)
	}
	defer func() { _ = form.RemoveAll() }()
	if len(form.File) > 0 {
		return badRequest("multipart body holds a file; send x as a plain field")
	}
	return decodeFormValues(form.Value, b, maxBatch)
}
