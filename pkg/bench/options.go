package bench

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/net/http/httpguts"
)

// Defaults for Options; the CLI uses them as flag defaults.
const (
	DefaultDuration = 30 * time.Second
	DefaultTimeout  = 30 * time.Second
	// DefaultMaxConnections is the number of connections a --rate 0 attack keeps busy when
	// neither --connections nor --workers is given (wrk's -c).
	DefaultMaxConnections = 50
	// DefaultWorkers is the initial worker count of a constant-rate attack.
	DefaultWorkers = 10
	// DefaultMaxWorkers caps the workers a constant-rate attack may grow to. vegeta adds a
	// worker whenever all are blocked so that slow responses do not delay the schedule; the
	// cap bounds memory when the target stops answering.
	DefaultMaxWorkers = 10000
	DefaultMaxBody    = 0
	// MaxMaxBody caps --max-body: a result keeps at most 4 MiB of body, so its record stays
	// within results.MaxRecordBytes (8 MiB) once JSON encoding has base64-ed it.
	MaxMaxBody      = 4 << 20
	DefaultOutput   = "text"
	DefaultBodyForm = "x"
	DefaultName     = "bench"
	// DefaultFromDataRows caps the rows --from-data turns into request bodies.
	DefaultFromDataRows = 10000
	DefaultClient       = "fast"
)

// Body forms for --from-data.
const (
	BodyFormX         = "x"         // {"x": [dense feature vector]}
	BodyFormInstances = "instances" // {"instances": [{named fields}]}
	BodyFormMixed     = "mixed"     // alternate the two
)

// Options configures one attack, grouped by concern: Target is what to send, Sender how to
// send it, Rate and Duration the schedule, Outputs what to write. The zero value is not
// usable; start from DefaultOptions or set at least URL (or Targets), Rate and Duration.
type Options struct {
	Target
	Sender
	// Rate is the constant request rate; the zero Rate runs flat out with Connections workers.
	Rate     Rate
	Duration time.Duration
	Outputs
}

// Target is what an attack sends: one URL or a targets file, and the bodies and headers.
type Target struct {
	// URL is the single target; ignored when Targets is set.
	URL string
	// Method defaults to GET, or POST when a body is given.
	Method string
	// BodyFile is a file whose content is every request's body.
	BodyFile string
	// BodyJSON is an inline JSON body; it also sets Content-Type: application/json.
	BodyJSON string
	// Headers are "Key: Value" lines added to every request.
	Headers []string
	// BearerFile holds a token sent as "Authorization: Bearer <token>", so that keys stay out
	// of shell history.
	BearerFile string
	// Targets is a vegeta targets file (TargetsFormat http or json).
	Targets       string
	TargetsFormat string
	// Bodies is a JSON-lines file: requests rotate through its lines as bodies.
	Bodies string
	// FromData is a flight CSV turned into /predict bodies with the model in Model, which
	// LoadModel loads (the caller injects it: bench does not load models itself).
	FromData  string
	Model     string
	LoadModel ModelLoader
	// BodyForm picks the /predict body shape for FromData: x, instances or mixed.
	BodyForm string
	// FromDataRows caps how many usable rows FromData loads (memory stays bounded).
	FromDataRows int
}

// ModelLoader loads the model --from-data encodes rows with; *model.Model satisfies
// FlightEncoder, so a caller passes e.g. func(p string) (FlightEncoder, error) { return model.Load(p) }.
type ModelLoader func(path string) (FlightEncoder, error)

// Sender is how requests go out: connections, workers, timeouts and the HTTP client.
type Sender struct {
	// Connections caps open connections per host (0: no cap, except under --rate 0 where it
	// is the number of concurrent requests, default DefaultMaxConnections).
	Connections int
	// Workers is the initial worker count (0: DefaultWorkers); under --rate 0 it is the fixed
	// number of concurrent requests (0: Connections, or DefaultMaxConnections).
	Workers int
	// MaxWorkers caps how many workers a constant-rate attack grows to.
	MaxWorkers int
	Timeout    time.Duration
	KeepAlive  bool
	HTTP2      bool
	Insecure   bool
	// MaxBody is how many bytes of each response body are kept in the result, 0 to MaxMaxBody;
	// the rest is read and discarded, within Timeout.
	MaxBody int64
	// Client is "fast" (a lean HTTP/1.1 transport for http:// targets) or "std" (net/http's).
	Client string
	// Preflight dials every target host before the attack so an unreachable target fails fast.
	Preflight bool
}

// Outputs is what an attack writes besides the report.
type Outputs struct {
	// Results is a file that receives every result in vegeta's gob encoding.
	Results string
	// Output is the report format: text or json.
	Output string
	// Plot is an HTML file with vegeta's latency-over-time plot.
	Plot string
	// PNG is a directory that receives latency-histogram.png, latency-over-time.png and
	// throughput-over-time.png.
	PNG string
	// Buckets are the latency histogram edges of the report; empty picks 1-2-5 edges.
	Buckets []time.Duration
	// Name is the attack name recorded in every result.
	Name string
	// Progress draws a progress line on the error stream (set it only on a terminal).
	Progress bool
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{
		Target:   Target{BodyForm: DefaultBodyForm, FromDataRows: DefaultFromDataRows},
		Sender:   Sender{MaxWorkers: DefaultMaxWorkers, Timeout: DefaultTimeout, KeepAlive: true, MaxBody: DefaultMaxBody, Client: DefaultClient, Preflight: true},
		Rate:     Rate{Freq: 50, Per: time.Second},
		Duration: DefaultDuration,
		Outputs:  Outputs{Output: DefaultOutput, Name: DefaultName},
	}
}

// Validate checks the options without touching the file system or the network.
func (o Options) Validate() error {
	errs := append(o.Target.validate(), o.Sender.validate(o.Rate)...)
	if err := o.Rate.check(); err != nil {
		errs = append(errs, fmt.Errorf("--rate %v: %w", o.Rate, err))
	}
	if o.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %v: must not be negative", o.Duration))
	}
	if o.Rate.IsMax() && o.Duration == 0 {
		errs = append(errs, errors.New("--rate 0 needs a --duration: an unpaced attack must end on its own"))
	}
	errs = append(errs, o.Outputs.validate()...)
	if len(errs) > 0 {
		return inputerr.Wrap(errors.Join(errs...))
	}
	return nil
}

func (o Target) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Targets == "" {
		if o.URL == "" {
			add("--url or --targets is required")
		} else if err := checkURL(o.URL); err != nil {
			add("--url: %w", err)
		}
	} else if o.URL != "" {
		add("--url and --targets are exclusive: a targets file names its own URLs")
	}
	switch o.TargetsFormat {
	case "", vegeta.HTTPTargetFormat, vegeta.JSONTargetFormat:
	default:
		add("--targets-format %q: want http or json", o.TargetsFormat)
	}
	bodies := 0
	for _, b := range []string{o.BodyFile, o.BodyJSON, o.Bodies, o.FromData} {
		if b != "" {
			bodies++
		}
	}
	if bodies > 1 {
		add("--body, --body-json, --bodies and --from-data are exclusive")
	}
	if o.FromData != "" && o.Model == "" {
		add("--from-data needs --model (the column mapping and encoders come from it)")
	}
	if o.FromData != "" && o.LoadModel == nil {
		add("--from-data needs a model loader (Target.LoadModel)")
	}
	switch o.BodyForm {
	case "", BodyFormX, BodyFormInstances, BodyFormMixed:
	default:
		add("--body-form %q: want x, instances or mixed", o.BodyForm)
	}
	if o.Method != "" && !validMethod(o.Method) {
		add("--method %q: want an upper-case HTTP method such as GET or POST", o.Method)
	}
	for _, h := range o.Headers {
		if _, _, err := parseHeader(h); err != nil {
			add("-H %q: %w", h, err)
		}
	}
	return errs
}

// validate checks the sender for an attack at rate (only whether it is paced matters).
func (o Sender) validate(rate Rate) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Timeout <= 0 {
		add("--timeout %v: must be positive", o.Timeout)
	}
	if o.Connections < 0 || o.Workers < 0 || o.MaxWorkers < 0 {
		add("--connections, --workers and --max-workers must not be negative")
	}
	if !rate.IsMax() && o.MaxWorkers > 0 && o.Workers > o.MaxWorkers {
		add("--workers %d exceeds --max-workers %d", o.Workers, o.MaxWorkers)
	}
	switch {
	case o.MaxBody < 0:
		add("--max-body %d: want a byte count from 0 to %d; keeping whole bodies has no bound (an endless body grows until --timeout)", o.MaxBody, MaxMaxBody)
	case o.MaxBody > MaxMaxBody:
		add("--max-body %d: at most %d (4 MiB), so that every result stays readable by bench report and slo report", o.MaxBody, MaxMaxBody)
	}
	switch o.Client {
	case "", "fast", "std":
	default:
		add("--client %q: want fast or std", o.Client)
	}
	return errs
}

func (o Outputs) validate() []error {
	var errs []error
	switch o.Output {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--output %q: want text or json", o.Output))
	}
	for i := 1; i < len(o.Buckets); i++ {
		if o.Buckets[i] <= o.Buckets[i-1] {
			errs = append(errs, fmt.Errorf("--buckets must be ascending: %v after %v", o.Buckets[i], o.Buckets[i-1]))
			break
		}
	}
	return errs
}

func checkURL(s string) error {
	if !strings.Contains(s, "://") {
		return fmt.Errorf("%q: want an absolute URL such as http://127.0.0.1:8080/predict", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	return nil
}

func validMethod(m string) bool {
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return m != ""
}

// parseHeader splits "Key: Value".
func parseHeader(h string) (string, string, error) {
	k, v, ok := strings.Cut(h, ":")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || k == "" {
		return "", "", errors.New(`want "Key: Value"`)
	}
	if err := checkHeader(k, v); err != nil {
		return "", "", err
	}
	return textproto.CanonicalMIMEHeaderKey(k), v, nil
}

// checkHeader refuses a header name that is not an HTTP token and a value holding CR, LF or
// another control character: one would inject a header or a request of its own.
func checkHeader(k, v string) error {
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return fmt.Errorf("invalid character %q in header name", c)
		}
	}
	if !httpguts.ValidHeaderFieldValue(v) {
		return fmt.Errorf("header %s: the value holds CR, LF or another control character", k)
	}
	return nil
}

// plan is a Sender resolved for a rate, once: the worker counts and connection cap every
// part of an attack (attacker, client, report) uses.
type plan struct {
	workers, maxWorkers uint64
	conns               int // per-host cap, 0 = none
}

// plan resolves the defaults: under --rate 0 Workers, else Connections, else
// DefaultMaxConnections concurrent requests on as many connections; at a constant rate
// Workers (DefaultWorkers) growing to MaxWorkers (DefaultMaxWorkers).
func (o Sender) plan(rate Rate) plan {
	if rate.IsMax() {
		n := o.Workers
		if n == 0 {
			n = o.Connections
		}
		if n == 0 {
			n = DefaultMaxConnections
		}
		conns := o.Connections
		if conns == 0 {
			conns = n
		}
		return plan{workers: uint64(n), maxWorkers: uint64(n), conns: conns}
	}
	w, mw := o.Workers, o.MaxWorkers
	if w == 0 {
		w = DefaultWorkers
	}
	if mw == 0 {
		mw = DefaultMaxWorkers
	}
	if w > mw {
		w = mw
	}
	return plan{workers: uint64(w), maxWorkers: uint64(mw), conns: o.Connections}
}

func (o Target) baseHeader() (http.Header, error) {
	h := http.Header{}
	for _, line := range o.Headers {
		k, v, err := parseHeader(line)
		if err != nil {
			return nil, inputerr.Errorf("-H %q: %w", line, err)
		}
		h.Add(k, v)
	}
	return h, nil
}
