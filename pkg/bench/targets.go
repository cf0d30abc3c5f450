package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadTargets reads every input file the options name and returns the targets one attack
// cycles through. Every mistake is an input error (inputerr.Err) naming the file and line.
func (o Target) loadTargets() ([]vegeta.Target, error) {
	hdr, err := o.baseHeader()
	if err != nil {
		return nil, err
	}
	if o.BearerFile != "" {
		tok, err := os.ReadFile(o.BearerFile)
		if err != nil {
			return nil, inputerr.Errorf("could not read --bearer-file: %w", err)
		}
		t := strings.TrimSpace(string(tok))
		if t == "" || strings.ContainsAny(t, "\r\n") {
			return nil, inputerr.Errorf("--bearer-file %q: want one non-empty line holding the token", o.BearerFile)
		}
		hdr.Set("Authorization", "Bearer "+t)
	}

	var bodies [][]byte
	jsonBodies := false
	switch {
	case o.BodyFile != "":
		b, err := os.ReadFile(o.BodyFile)
		if err != nil {
			return nil, inputerr.Errorf("could not read --body: %w", err)
		}
		bodies, jsonBodies = [][]byte{b}, json.Valid(b)
	case o.BodyJSON != "":
		if !json.Valid([]byte(o.BodyJSON)) {
			return nil, inputerr.Errorf("--body-json is not valid JSON: %.60q", o.BodyJSON)
		}
		bodies, jsonBodies = [][]byte{[]byte(o.BodyJSON)}, true
	case o.Bodies != "":
		if bodies, err = readJSONLines(o.Bodies); err != nil {
			return nil, err
		}
		jsonBodies = true
	case o.FromData != "":
		form := o.BodyForm
		if form == "" {
			form = DefaultBodyForm
		}
		max := o.FromDataRows
		if max <= 0 {
			max = DefaultFromDataRows
		}
		if bodies, err = flightBodies(o.LoadModel, o.Model, o.FromData, form, max); err != nil {
			return nil, err
		}
		jsonBodies = true
	}
	if jsonBodies && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}

	if o.Targets != "" {
		return readTargetsFile(o.Targets, o.TargetsFormat, firstOrNil(bodies), hdr, bodies)
	}
	method := o.Method
	if method == "" {
		method = http.MethodGet
		if len(bodies) > 0 {
			method = http.MethodPost
		}
	}
	if len(bodies) == 0 {
		return []vegeta.Target{{Method: method, URL: o.URL, Header: hdr}}, nil
	}
	tgts := make([]vegeta.Target, len(bodies))
	for i, b := range bodies {
		tgts[i] = vegeta.Target{Method: method, URL: o.URL, Body: b, Header: hdr}
	}
	return tgts, nil
}

func firstOrNil(b [][]byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[0]
}

// readTargetsFile parses a vegeta targets file. With rotating bodies (--bodies), each body is
// paired in turn with the targets that have none of their own.
func readTargetsFile(path, format string, body []byte, hdr http.Header, bodies [][]byte) ([]vegeta.Target, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, inputerr.Errorf("could not read --targets: %w", err)
	}
	if format == "" {
		format = vegeta.HTTPTargetFormat
		if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
			format = vegeta.JSONTargetFormat
		}
	}
	var tr vegeta.Targeter
	if format == vegeta.JSONTargetFormat {
		tr = vegeta.NewJSONTargeter(bytes.NewReader(data), nil, hdr)
	} else {
		tr = vegeta.NewHTTPTargeter(bytes.NewReader(data), nil, hdr)
	}
	var tgts []vegeta.Target
	for {
		var t vegeta.Target
		err := tr(&t)
		if errors.Is(err, vegeta.ErrNoTargets) {
			break
		}
		if err != nil {
			return nil, inputerr.Errorf("targets file %q (%s format), target %d: %w", path, format, len(tgts)+1, err)
		}
		if err := checkURL(t.URL); err != nil {
			return nil, inputerr.Errorf("targets file %q, target %d: %w", path, len(tgts)+1, err)
		}
		for k, vs := range t.Header {
			for _, v := range vs {
				if err := checkHeader(k, v); err != nil {
					return nil, inputerr.Errorf("targets file %q, target %d: %w", path, len(tgts)+1, err)
				}
			}
		}
		tgts = append(tgts, t)
	}
	if len(tgts) == 0 {
		return nil, inputerr.Errorf("targets file %q holds no targets", path)
	}
	if len(bodies) > 1 {
		var out []vegeta.Target
		for i, b := range bodies {
			t := tgts[i%len(tgts)]
			if len(t.Body) == 0 {
				t.Body = b
			}
			out = append(out, t)
		}
		return out, nil
	}
	for i := range tgts {
		if len(tgts[i].Body) == 0 {
			tgts[i].Body = body
		}
	}
	return tgts, nil
}

// readJSONLines reads one JSON document per non-blank line.
func readJSONLines(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, inputerr.Errorf("could not read --bodies: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var out [][]byte
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if !json.Valid(b) {
			return nil, inputerr.Errorf("--bodies %q line %d: not valid JSON", path, line)
		}
		out = append(out, bytes.Clone(b))
	}
	if err := sc.Err(); err != nil {
		return nil, inputerr.Errorf("could not read --bodies %q: %w", path, err)
	}
	if len(out) == 0 {
		return nil, inputerr.Errorf("--bodies %q holds no bodies", path)
	}
	return out, nil
}

// FlightEncoder is what --from-data needs of a model: its CSV reader and its dense encoder.
// *model.Model implements it.
type FlightEncoder interface {
	ReadFlights(r io.Reader, fn func(rowNum int, f model.Flight) error) error
	Encode(f model.Flight, dst []float64) []float64
}

var errEnough = errors.New("enough rows")

// flightBodies turns up to max usable rows of a flight CSV into /predict request bodies.
func flightBodies(load ModelLoader, modelPath, dataPath, form string, max int) ([][]byte, error) {
	if load == nil {
		return nil, errors.New("--from-data needs a model loader")
	}
	m, err := load(modelPath)
	if err != nil {
		return nil, inputerr.Errorf("could not load --model %q: %w", modelPath, err)
	}
	f, err := os.Open(dataPath)
	if err != nil {
		return nil, inputerr.Errorf("could not read --from-data: %w", err)
	}
	defer f.Close()
	var (
		bodies [][]byte
		x      []float64
	)
	err = m.ReadFlights(bufio.NewReaderSize(f, 64<<10), func(_ int, fl model.Flight) error {
		if len(bodies) >= max {
			return errEnough
		}
		useX := form == BodyFormX || form == BodyFormMixed && len(bodies)%2 == 0
		if useX {
			x = m.Encode(fl, x)
			bodies = append(bodies, encodeX(x))
			return nil
		}
		b, err := json.Marshal(struct {
			Instances []model.Flight `json:"instances"`
		}{[]model.Flight{fl}})
		if err != nil {
			return err
		}
		bodies = append(bodies, b)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, inputerr.Errorf("could not read flights from %q: %w", dataPath, err)
	}
	if len(bodies) == 0 {
		return nil, inputerr.Errorf("--from-data %q: no usable rows for this model's columns", dataPath)
	}
	return bodies, nil
}

// encodeX writes {"x":[...]} with the shortest float representation that reads back exactly.
func encodeX(x []float64) []byte {
	b := make([]byte, 0, 8+len(x)*4)
	b = append(b, `{"x":[`...)
	for i, v := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, "]}"...)
}

// preflight dials every distinct target host once, so that a wrong port or a server that is
// not up fails with one clear error instead of a report full of refused connections.
func preflight(ctx context.Context, tgts []vegeta.Target, timeout time.Duration) error {
	if timeout > 5*time.Second {
		timeout = 5 * time.Second
	}
	seen := map[string]bool{}
	d := net.Dialer{Timeout: timeout}
	for _, t := range tgts {
		u, err := url.Parse(t.URL)
		if err != nil {
			return inputerr.Errorf("target URL %q: %w", t.URL, err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		addr := net.JoinHostPort(u.Hostname(), port)
		if seen[addr] || len(seen) >= 16 {
			continue
		}
		seen[addr] = true
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("target %s is unreachable (pass --preflight=false to attack anyway): %w", addr, err)
		}
		_ = c.Close()
	}
	return nil
}

// BodiesOptions configures RunBodies (delayctl bench bodies).
type BodiesOptions struct {
	Model    string
	FromData string
	Form     string
	Rows     int
	// LoadModel loads Model (the caller injects it, as for Target.LoadModel).
	LoadModel ModelLoader
	// Out is the JSON-lines file written atomically; "" or "-" writes to standard output.
	Out string
}

// RunBodies writes the request bodies --from-data would send to o.Out (or out), one JSON
// document per line, so that machines without the data and model (bench pods in a cluster)
// can send the same realistic load with --bodies. A line saying how many went where goes to
// errOut when they went to a file.
func RunBodies(o BodiesOptions, out, errOut io.Writer) error {
	if o.Out == "" || o.Out == "-" {
		_, err := writeBodies(out, o)
		return err
	}
	if err := checkWritableDir(filepath.Dir(o.Out)); err != nil {
		return inputerr.Errorf("--out: %w", err)
	}
	var n int
	err := atomicfile.Write(o.Out, 0o644, func(w io.Writer) (err error) {
		n, err = writeBodies(w, o)
		return err
	})
	if err == nil {
		fmt.Fprintf(errOut, "wrote %d bodies to %s\n", n, o.Out)
	}
	return err
}

func writeBodies(w io.Writer, o BodiesOptions) (int, error) {
	switch o.Form {
	case BodyFormX, BodyFormInstances, BodyFormMixed:
	default:
		return 0, inputerr.Errorf("--body-form must be %s, %s or %s, got %q", BodyFormX, BodyFormInstances, BodyFormMixed, o.Form)
	}
	if o.Model == "" || o.FromData == "" {
		return 0, inputerr.Errorf("--from-data and --model are both required")
	}
	rows := o.Rows
	if rows <= 0 {
		rows = DefaultFromDataRows
	}
	bodies, err := flightBodies(o.LoadModel, o.Model, o.FromData, o.Form, rows)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	for _, b := range bodies {
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return len(bodies), bw.Flush()
}
