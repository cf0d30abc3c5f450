package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
)

// mustRate is ParseRate for the constants of tests.
func mustRate(s string) Rate {
	r, err := ParseRate(s)
	if err != nil {
		panic(err)
	}
	return r
}

func TestParseRate(t *testing.T) {
	tests := map[string]struct {
		in     string
		want   Rate
		expErr string
	}{
		"Requests per second with a unit letter.":      {in: "500/s", want: Rate{500, time.Second}},
		"A bare number is per second.":                 {in: "250", want: Rate{250, time.Second}},
		"Per minute.":                                  {in: "30/m", want: Rate{30, time.Minute}},
		"A Go duration as the period.":                 {in: "10/100ms", want: Rate{10, 100 * time.Millisecond}},
		"Zero means unpaced.":                          {in: "0", want: Rate{}},
		"Max means unpaced.":                           {in: "max", want: Rate{}},
		"A zero count with a unit is unpaced.":         {in: "0/s", want: Rate{}},
		"An unknown unit should fail naming the unit.": {in: "500/fortnight", expErr: `unknown unit "fortnight"`},
		"A negative count should fail.":                {in: "-5/s", expErr: "non-negative"},
		"A non-number should fail.":                    {in: "fast", expErr: "invalid rate"},
		"A zero period should fail.":                   {in: "5/0s", expErr: "unknown unit"},
		"One request per nanosecond is the highest.":   {in: "1000000000/s", want: Rate{1000000000, time.Second}},
		"More than one per nanosecond should fail.":    {in: "1000000001/s", expErr: "more than one request per nanosecond"},
		"Two per nanosecond should fail.":              {in: "2/1ns", expErr: "more than one request per nanosecond"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.expErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.expErr) {
					t.Fatalf("ParseRate(%q) error = %v, want one containing %q", tt.in, err, tt.expErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"500/s", "1/1h", "0", "7/250ms", "x/y", "3/", "/s", "1000000001/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		// Every accepted rate must be one vegeta's pacer can keep without dividing by zero.
		if p := r.pacer(); !r.IsMax() {
			_, _ = p.Pace(time.Second, 1)
		}
		back, err := ParseRate(r.String())
		if err != nil || back.PerSecond() != r.PerSecond() {
			t.Fatalf("%q parsed to %v, which formats as %q and reads back as %v (%v)", s, r, r.String(), back, err)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{"Content-Type: application/json", "X: y:z", ": v", "Bad Name: v", "K:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, _, err := parseHeader(s)
		if err == nil && (k == "" || strings.ContainsAny(k, " :\t")) {
			t.Fatalf("%q accepted with header name %q", s, k)
		}
	})
}

func validOptions() Options {
	o := DefaultOptions()
	o.URL = "http://127.0.0.1:1/predict"
	o.LoadModel = loadModel
	return o
}

// loadModel is the loader cmd/delayctl injects: the model artifact.
func loadModel(path string) (FlightEncoder, error) { return model.Load(path) }

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		mod    func(*Options)
		expErr string
	}{
		"The defaults with a URL are valid.":            {mod: func(*Options) {}},
		"No URL and no targets should fail.":            {mod: func(o *Options) { o.URL = "" }, expErr: "--url or --targets is required"},
		"A URL without a scheme should fail.":           {mod: func(o *Options) { o.URL = "localhost:8080/predict" }, expErr: "want an absolute URL"},
		"A URL that does not parse should fail.":        {mod: func(o *Options) { o.URL = "http://[::1" }, expErr: "--url"},
		"An ftp URL should fail.":                       {mod: func(o *Options) { o.URL = "ftp://host/x" }, expErr: "scheme must be http or https"},
		"A header without a colon should fail.":         {mod: func(o *Options) { o.Headers = []string{"Authorization Bearer x"} }, expErr: `want "Key: Value"`},
		"A header name with a space should fail.":       {mod: func(o *Options) { o.Headers = []string{"Bad Name: v"} }, expErr: "invalid character"},
		"Two body sources should fail.":                 {mod: func(o *Options) { o.BodyFile, o.BodyJSON = "b.json", "{}" }, expErr: "exclusive"},
		"From-data without a model should fail.":        {mod: func(o *Options) { o.FromData = "f.csv" }, expErr: "needs --model"},
		"An unknown body form should fail.":             {mod: func(o *Options) { o.BodyForm = "csv" }, expErr: "--body-form"},
		"A lower-case method should fail.":              {mod: func(o *Options) { o.Method = "post" }, expErr: "--method"},
		"Rate 0 without a duration should fail.":        {mod: func(o *Options) { o.Rate, o.Duration = Rate{}, 0 }, expErr: "needs a --duration"},
		"A zero timeout should fail.":                   {mod: func(o *Options) { o.Timeout = 0 }, expErr: "--timeout"},
		"More workers than max workers should fail.":    {mod: func(o *Options) { o.Workers, o.MaxWorkers = 20, 10 }, expErr: "exceeds --max-workers"},
		"An unknown output format should fail.":         {mod: func(o *Options) { o.Output = "xml" }, expErr: "--output"},
		"An unknown targets format should fail.":        {mod: func(o *Options) { o.URL, o.Targets, o.TargetsFormat = "", "t.txt", "yaml" }, expErr: "--targets-format"},
		"URL and targets together should fail.":         {mod: func(o *Options) { o.Targets = "t.txt" }, expErr: "exclusive"},
		"Descending histogram buckets should fail.":     {mod: func(o *Options) { o.Buckets = []time.Duration{time.Second, time.Millisecond} }, expErr: "ascending"},
		"A max body below -1 should fail.":              {mod: func(o *Options) { o.MaxBody = -2 }, expErr: "--max-body"},
		"A max body of -1 (all, unbounded) should fail": {mod: func(o *Options) { o.MaxBody = -1 }, expErr: "keeping whole bodies has no bound"},
		"A max body above 4 MiB should fail.":           {mod: func(o *Options) { o.MaxBody = 4<<20 + 1 }, expErr: "at most 4194304"},
		"A rate above one per nanosecond should fail.":  {mod: func(o *Options) { o.Rate = Rate{Freq: 1000000001, Per: time.Second} }, expErr: "more than one request per nanosecond"},
		"A header value with CR LF should fail.":        {mod: func(o *Options) { o.Headers = []string{"X-A: b\r\nX-Injected: 1"} }, expErr: "CR, LF"},
		"An unknown client should fail.":                {mod: func(o *Options) { o.Client = "curl" }, expErr: "--client"},
		"A negative connection count should fail.":      {mod: func(o *Options) { o.Connections = -1 }, expErr: "must not be negative"},
		"Rate 0 with a duration is valid (wrk mode).":   {mod: func(o *Options) { o.Rate = Rate{} }},
		"A header with colons in its value is valid.":   {mod: func(o *Options) { o.Headers = []string{"X-Time: 12:30:00"} }},
		"A targets file without a URL is valid.":        {mod: func(o *Options) { o.URL, o.Targets = "", "t.txt" }},
		"Several mistakes are all reported together.":   {mod: func(o *Options) { o.URL, o.Timeout = "ftp://x", 0 }, expErr: "--timeout"},
		"From-data with a model and mixed bodies ok.":   {mod: func(o *Options) { o.FromData, o.Model, o.BodyForm = "f.csv", "m.json", "mixed" }},
		"An unpaced attack may have a connection cap.":  {mod: func(o *Options) { o.Rate, o.Connections = Rate{}, 8 }},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := validOptions()
			tt.mod(&o)
			err := o.Validate()
			if tt.expErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, inputerr.Err) {
				t.Fatalf("Validate() = %#v, want an input error", err)
			}
			if !strings.Contains(err.Error(), tt.expErr) {
				t.Fatalf("Validate() = %q, want it to mention %q", err, tt.expErr)
			}
		})
	}
}

func TestWorkersAndConnections(t *testing.T) {
	tests := map[string]struct {
		rate                 Rate
		workers, maxW, conns int
		wantW, wantMax       uint64
		wantConns            int
	}{
		"Rate 0 defaults to 50 workers on 50 connections.":   {wantW: 50, wantMax: 50, wantConns: 50},
		"Rate 0 takes its worker count from --connections.":  {conns: 8, wantW: 8, wantMax: 8, wantConns: 8},
		"Rate 0 with --workers caps the workers at that.":    {workers: 16, wantW: 16, wantMax: 16, wantConns: 16},
		"A constant rate starts at 10 workers capped 10000.": {rate: mustRate("100/s"), wantW: 10, wantMax: 10000},
		"A constant rate keeps an explicit cap.":             {rate: mustRate("100/s"), workers: 4, maxW: 64, conns: 32, wantW: 4, wantMax: 64, wantConns: 32},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := Sender{Workers: tt.workers, MaxWorkers: tt.maxW, Connections: tt.conns}
			p := s.plan(tt.rate)
			if p.workers != tt.wantW || p.maxWorkers != tt.wantMax || p.conns != tt.wantConns {
				t.Fatalf("plan() = %+v; want workers %d, max %d, connections %d", p, tt.wantW, tt.wantMax, tt.wantConns)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTargetsInputErrors(t *testing.T) {
	tests := map[string]struct {
		mod    func(t *testing.T, o *Options)
		expErr string
	}{
		"A missing body file should fail naming it.": {
			mod:    func(t *testing.T, o *Options) { o.BodyFile = filepath.Join(t.TempDir(), "nope.json") },
			expErr: "nope.json",
		},
		"Inline JSON that does not parse should fail.": {
			mod:    func(t *testing.T, o *Options) { o.BodyJSON = `{"x": [1,2` },
			expErr: "--body-json is not valid JSON",
		},
		"A malformed http targets file should fail naming the target.": {
			mod: func(t *testing.T, o *Options) {
				o.URL, o.Targets = "", writeFile(t, "targets.txt", "GET http://127.0.0.1:1/a\n\nFETCH\n")
			},
			expErr: "target 2",
		},
		"A targets file with a bad header line should fail.": {
			mod: func(t *testing.T, o *Options) {
				o.URL, o.Targets = "", writeFile(t, "targets.txt", "GET http://127.0.0.1:1/a\nNoColonHere\n")
			},
			expErr: "bad header",
		},
		"A malformed JSON targets file should fail.": {
			mod: func(t *testing.T, o *Options) {
				o.URL, o.Targets, o.TargetsFormat = "", writeFile(t, "targets.json", `{"method":"GET","url":`+"\n"), "json"
			},
			expErr: "targets file",
		},
		"A JSON target without a URL should fail.": {
			mod: func(t *testing.T, o *Options) {
				o.URL, o.Targets = "", writeFile(t, "targets.json", `{"method":"GET"}`+"\n")
			},
			expErr: "url is missing",
		},
		"An empty targets file should fail.": {
			mod:    func(t *testing.T, o *Options) { o.URL, o.Targets = "", writeFile(t, "targets.txt", "# nothing\n") },
			expErr: "holds no targets",
		},
		"A bodies file with a broken line should fail naming the line.": {
			mod:    func(t *testing.T, o *Options) { o.Bodies = writeFile(t, "b.jsonl", "{\"a\":1}\n\n{oops\n") },
			expErr: "line 3",
		},
		"An empty bearer file should fail.": {
			mod:    func(t *testing.T, o *Options) { o.BearerFile = writeFile(t, "token", "\n") },
			expErr: "--bearer-file",
		},
		"A missing model for from-data should fail.": {
			mod: func(t *testing.T, o *Options) {
				o.FromData, o.Model = writeFile(t, "f.csv", "a\n"), filepath.Join(t.TempDir(), "model.json")
			},
			expErr: "could not load --model",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := validOptions()
			tt.mod(t, &o)
			if err := o.Validate(); err != nil {
				t.Fatalf("Validate() = %v; the case must pass validation and fail on reading", err)
			}
			_, err := o.loadTargets()
			if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tt.expErr) {
				t.Fatalf("loadTargets() = %v, want an input error mentioning %q", err, tt.expErr)
			}
		})
	}
}
