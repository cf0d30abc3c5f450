package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/results"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// attackOpts returns options for a short attack on url.
func attackOpts(url string, rate string, du time.Duration) Options {
	o := DefaultOptions()
	o.URL = url
	o.Rate = mustRate(rate)
	o.Duration = du
	return o
}

func mustAttack(t *testing.T, ctx context.Context, o Options) *Report {
	t.Helper()
	rep, err := Attack(ctx, o, io.Discard)
	if err != nil {
		t.Fatalf("Attack: %v", err)
	}
	return rep
}

func okHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, body)
	})
}

// The pacer bench hands vegeta keeps the schedule of the requested rate: a pure function of
// the elapsed time and the hits sent so far (hit n+1 is due at (n+1) x Per/Freq), checked
// without a clock.
func TestRatePacerKeepsTheSchedule(t *testing.T) {
	tests := map[string]struct {
		rate     string
		elapsed  time.Duration
		hits     uint64
		wantWait time.Duration
		wantStop bool
	}{
		"At the start, the first hit waits one interval.": {rate: "200/s", elapsed: 0, hits: 0, wantWait: 5 * time.Millisecond},
		"On schedule, the next hit waits for its slot.":   {rate: "200/s", elapsed: 5 * time.Millisecond, hits: 1, wantWait: 5 * time.Millisecond},
		"Behind schedule, the next hit goes at once.":     {rate: "200/s", elapsed: time.Second, hits: 100, wantWait: 0},
		"Ahead of schedule, it waits for its slot.":       {rate: "200/s", elapsed: 100 * time.Millisecond, hits: 29, wantWait: 50 * time.Millisecond},
		"A sub-second period paces within the period.":    {rate: "10/100ms", elapsed: 0, hits: 0, wantWait: 10 * time.Millisecond},
		"Per minute paces in seconds.":                    {rate: "30/m", elapsed: 0, hits: 0, wantWait: 2 * time.Second},
		"The highest rate paces one hit per nanosecond.":  {rate: "1000000000/s", elapsed: 0, hits: 0, wantWait: time.Nanosecond},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			wait, stop := mustRate(tt.rate).pacer().Pace(tt.elapsed, tt.hits)
			if wait != tt.wantWait || stop != tt.wantStop {
				t.Errorf("Pace(%v, %d) = %v, %v; want %v, %v", tt.elapsed, tt.hits, wait, stop, tt.wantWait, tt.wantStop)
			}
		})
	}
}

// A constant-rate attack against a real server: what holds however slow the machine is. It
// never sends more than the schedule allows, and every request it sent is answered and
// counted. (The schedule itself is TestRatePacerKeepsTheSchedule's.)
func TestConstantRateAttack(t *testing.T) {
	for _, client := range []string{"fast", "std"} {
		t.Run(client+" client", func(t *testing.T) {
			var served atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				_, _ = io.WriteString(w, "ok")
			}))
			defer srv.Close()
			o := attackOpts(srv.URL, "200/s", 500*time.Millisecond)
			o.Client = client
			rep := mustAttack(t, context.Background(), o)
			if rep.Requests == 0 || rep.Requests > 101 {
				t.Errorf("sent %d requests, want 1 to 101 (200/s for 500ms)", rep.Requests)
			}
			if rep.RequestedRate != 200 {
				t.Errorf("requested rate %v, want 200", rep.RequestedRate)
			}
			if rep.Success != rep.Requests || rep.StatusCodes["200"] != rep.Requests || uint64(served.Load()) != rep.Requests {
				t.Errorf("success %d, codes %v, served %d; want all %d to be 200", rep.Success, rep.StatusCodes, served.Load(), rep.Requests)
			}
		})
	}
}

func TestStatusAndErrorClassification(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			w.WriteHeader(http.StatusInternalServerError)
		case 1:
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	o := attackOpts(srv.URL, "100/s", time.Second)
	rep := mustAttack(t, context.Background(), o)
	c := rep.StatusCodes
	if c["200"]+c["500"]+c["429"] != rep.Requests || c["500"] == 0 || c["429"] == 0 {
		t.Fatalf("status codes %v do not add up to %d requests with some 500s and 429s", c, rep.Requests)
	}
	if rep.Errors.HTTP != c["500"]+c["429"] || rep.Success != c["200"] {
		t.Fatalf("http errors %d, success %d; want %d and %d", rep.Errors.HTTP, rep.Success, c["500"]+c["429"], c["200"])
	}
	if e := rep.Errors; e.Timeout+e.ConnectionRefused+e.ConnectionReset+e.Other != 0 {
		t.Fatalf("socket errors %+v, want none", e)
	}
}

// hangingServer answers nothing until the client gives up or the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv
}

func TestTimeoutsAreCountedAndBounded(t *testing.T) {
	srv := hangingServer(t)
	for _, client := range []string{"fast", "std"} {
		t.Run(client+" client", func(t *testing.T) {
			o := attackOpts(srv.URL, "20/s", 500*time.Millisecond)
			o.Timeout = 200 * time.Millisecond
			o.Client = client
			rep := mustAttack(t, context.Background(), o)
			if rep.Requests == 0 || rep.Errors.Timeout != rep.Requests {
				t.Fatalf("%d requests, errors %+v: want every request to time out", rep.Requests, rep.Errors)
			}
			if rep.Latency.Count != 0 {
				t.Fatalf("latency counted %d timed-out requests, want none (they are errors)", rep.Latency.Count)
			}
		})
	}
}

// An endless response body is drained until --timeout and kept only up to --max-body: the
// generator's memory does not grow with it (vegeta's -1, keep it all, is refused by Validate).
func TestAnEndlessBodyIsKeptOnlyUpToMaxBody(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	for _, client := range []string{"fast", "std"} {
		t.Run(client+" client", func(t *testing.T) {
			o := attackOpts(srv.URL, "5/s", 400*time.Millisecond)
			o.Timeout = 300 * time.Millisecond
			o.Client = client
			o.MaxBody = 1024
			o.Results = filepath.Join(t.TempDir(), "run.bin")
			rep := mustAttack(t, context.Background(), o)
			got := decodeAll(t, o.Results)
			if len(got) == 0 || uint64(len(got)) != rep.Requests {
				t.Fatalf("%d results for %d requests", len(got), rep.Requests)
			}
			for i, r := range got {
				if len(r.Body) > 1024 {
					t.Errorf("result %d kept %d body bytes, want at most 1024", i, len(r.Body))
				}
			}
			if rep.Errors.Timeout != rep.Requests {
				t.Errorf("errors %+v over %d requests: want every endless body to end at --timeout", rep.Errors, rep.Requests)
			}
		})
	}
}

func TestConnectionRefusedAndTargetDyingMidAttack(t *testing.T) {
	t.Run("refused from the start", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		o := attackOpts("http://"+addr+"/", "50/s", 300*time.Millisecond)
		o.Preflight = false
		rep := mustAttack(t, context.Background(), o)
		if rep.Requests == 0 || rep.Errors.ConnectionRefused != rep.Requests {
			t.Fatalf("errors %+v over %d requests, want all refused", rep.Errors, rep.Requests)
		}
		if !strings.Contains(rep.Errors.Samples[ErrRefused], "connection refused") {
			t.Fatalf("sample %q", rep.Errors.Samples[ErrRefused])
		}
	})
	t.Run("server stops after 20 requests", func(t *testing.T) {
		var n atomic.Int64
		srv := httptest.NewUnstartedServer(nil)
		stopped := make(chan struct{})
		var once sync.Once
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 20 {
				once.Do(func() { go func() { srv.Listener.Close(); srv.CloseClientConnections(); close(stopped) }() })
			}
		})
		srv.Start()
		defer srv.Close()
		o := attackOpts(srv.URL, "100/s", time.Second)
		rep := mustAttack(t, context.Background(), o)
		<-stopped
		e := rep.Errors
		if rep.Success < 19 || e.ConnectionRefused+e.ConnectionReset == 0 {
			t.Fatalf("success %d, errors %+v: want the first ~20 to succeed and the rest to fail to connect", rep.Success, e)
		}
		if rep.Success+e.ConnectionRefused+e.ConnectionReset+e.Other+e.Timeout != rep.Requests {
			t.Fatalf("success %d + errors %+v != %d requests", rep.Success, e, rep.Requests)
		}
	})
}

func TestPreflightRejectsUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	results := filepath.Join(t.TempDir(), "run.bin")
	o := attackOpts("http://"+addr+"/", "50/s", time.Second)
	o.Results = results
	rep, err := Attack(context.Background(), o, io.Discard)
	if rep != nil || err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Attack() = %v, %v; want no report and an unreachable error", rep, err)
	}
	if _, err := os.Stat(results); !os.IsNotExist(err) {
		t.Fatalf("results file exists after a failed preflight: %v", err)
	}
}

func decodeAll(t *testing.T, path string) []vegeta.Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var out []vegeta.Result
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decoding %s with vegeta's gob decoder: %v", path, err)
		}
		out = append(out, r)
	}
}

func TestResultsFileReadsBackWithVegeta(t *testing.T) {
	srv := httptest.NewServer(okHandler(`{"ok":true}`))
	defer srv.Close()
	dir := t.TempDir()
	o := attackOpts(srv.URL+"/predict", "100/s", 500*time.Millisecond)
	o.Results = filepath.Join(dir, "run.bin")
	o.BodyJSON = `{"x":[1,2,3]}`
	o.MaxBody = 4
	rep := mustAttack(t, context.Background(), o)
	got := decodeAll(t, o.Results)
	if uint64(len(got)) != rep.Requests || len(got) == 0 {
		t.Fatalf("results file holds %d results, report counts %d", len(got), rep.Requests)
	}
	for i, r := range got {
		if r.Method != "POST" || r.Code != 200 || r.Attack != DefaultName || r.BytesOut != 13 || string(r.Body) != `{"ok` || r.Seq != uint64(i) && i == 0 {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	var again Summary
	if err := results.ReadFiles(context.Background(), []string{o.Results}, nil, again.Add); err != nil {
		t.Fatal(err)
	}
	if again.Report(nil, o.Rate).Latency != rep.Latency {
		t.Fatalf("report from the file differs from the live report")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestCancellationStopsCleanlyAndKeepsResults(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 30 {
			cancel() // Ctrl-C, as signal.NotifyContext delivers it
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	o := attackOpts(srv.URL, "100/s", time.Minute)
	o.Results = filepath.Join(dir, "run.bin")
	o.Plot = filepath.Join(dir, "plot.html")
	var out bytes.Buffer
	if err := Run(ctx, o, &out, io.Discard); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(out.String(), "Interrupted") {
		t.Fatalf("report does not say it was interrupted:\n%s", out.String())
	}
	results := decodeAll(t, o.Results)
	if len(results) < 30 || len(results) > 100 {
		t.Fatalf("%d results after cancelling at the 30th request of a 1 min attack", len(results))
	}
	if !strings.Contains(out.String(), "  "+itoa(len(results))+" requests in") {
		t.Fatalf("report and results file disagree on the count (%d):\n%s", len(results), out.String())
	}
	if st, err := os.Stat(o.Plot); err != nil || st.Size() == 0 {
		t.Fatalf("plot not written: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestUnpacedAttackCapsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int64
	conns := map[string]bool{}
	var mu sync.Mutex
	// Requests wait (up to a second) until two are in flight at once, so that the attack's
	// concurrency shows however slowly the machine starts its workers.
	concurrent := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		if cur >= 2 {
			once.Do(func() { close(concurrent) })
		}
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		select {
		case <-concurrent:
		case <-time.After(time.Second):
		}
		time.Sleep(time.Millisecond)
	}))
	defer srv.Close()
	o := attackOpts(srv.URL, "0", 500*time.Millisecond)
	o.Connections = 4
	rep := mustAttack(t, context.Background(), o)
	if peak.Load() > 4 || peak.Load() < 2 {
		t.Fatalf("peak concurrency %d with --connections 4", peak.Load())
	}
	if len(conns) > 4 {
		t.Fatalf("%d connections opened with --connections 4", len(conns))
	}
	if rep.Requests == 0 || rep.Success != rep.Requests {
		t.Fatalf("%d requests, %d ok", rep.Requests, rep.Success)
	}
	if rep.RequestedRate != 0 || len(rep.Warnings) != 0 {
		t.Fatalf("an unpaced attack reports requested rate %v and warnings %q", rep.RequestedRate, rep.Warnings)
	}
}

func TestShortfallIsReportedWhenWorkersAreCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
	}))
	defer srv.Close()
	// 2 workers at 50 ms each carry at most 40 req/s: 200/s cannot be sent.
	o := attackOpts(srv.URL, "200/s", time.Second)
	o.Workers, o.MaxWorkers = 2, 2
	rep := mustAttack(t, context.Background(), o)
	if rep.Rate > 100 || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "short of the requested 200.00") {
		t.Fatalf("rate %.1f, warnings %q: want a shortfall warning", rep.Rate, rep.Warnings)
	}
}

func TestKeepAliveOffOpensAConnectionPerRequest(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(okHandler("ok"))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for _, client := range []string{"fast", "std"} {
		conns.Store(0)
		o := attackOpts(srv.URL, "50/s", 400*time.Millisecond)
		o.KeepAlive, o.Client, o.Preflight = false, client, false
		rep := mustAttack(t, context.Background(), o)
		if rep.Success != rep.Requests || uint64(conns.Load()) != rep.Requests {
			t.Fatalf("%s client: %d requests (%d ok) over %d connections, want one connection each", client, rep.Requests, rep.Success, conns.Load())
		}
	}
}

// recordingServer records every request's method, headers and body.
type recordingServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	hdrs   []http.Header
	paths  []string
}

func newRecordingServer() *recordingServer {
	rs := &recordingServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.bodies = append(rs.bodies, string(b))
		rs.hdrs = append(rs.hdrs, r.Header.Clone())
		rs.paths = append(rs.paths, r.Method+" "+r.URL.Path)
		rs.mu.Unlock()
	}))
	return rs
}

func TestRequestsCarryHeadersBodiesAndTargets(t *testing.T) {
	rs := newRecordingServer()
	defer rs.Close()
	t.Run("headers, bearer token and rotating bodies", func(t *testing.T) {
		rs.bodies, rs.hdrs = nil, nil
		o := attackOpts(rs.URL+"/predict", "100/s", 300*time.Millisecond)
		o.Headers = []string{"X-Tenant: blue", "accept: application/json"}
		o.BearerFile = writeFile(t, "token", "s3cret\n")
		o.Bodies = writeFile(t, "b.jsonl", "{\"n\":1}\n{\"n\":2}\n\n{\"n\":3}\n")
		rep := mustAttack(t, context.Background(), o)
		if rep.Success != rep.Requests || len(rs.bodies) < 6 {
			t.Fatalf("%d requests, %d ok, %d recorded", rep.Requests, rep.Success, len(rs.bodies))
		}
		seen := map[string]int{}
		for i, b := range rs.bodies {
			seen[b]++
			h := rs.hdrs[i]
			if h.Get("X-Tenant") != "blue" || h.Get("Authorization") != "Bearer s3cret" || h.Get("Content-Type") != "application/json" || h.Get("Accept") != "application/json" {
				t.Fatalf("request %d headers %v", i, h)
			}
		}
		if len(seen) != 3 || seen[`{"n":1}`] == 0 || seen[`{"n":3}`] == 0 {
			t.Fatalf("bodies seen %v, want the three rotated", seen)
		}
	})
	for name, format := range map[string]string{"http": "", "json": "json"} {
		t.Run(name+" targets file", func(t *testing.T) {
			rs.paths, rs.bodies, rs.hdrs = nil, nil, nil
			bodyFile := writeFile(t, "body.json", `{"k":"v"}`)
			content := "GET " + rs.URL + "/a\nX-A: 1\n\nPOST " + rs.URL + "/b\n@" + bodyFile + "\n"
			if format == "json" {
				content = `{"method":"GET","url":"` + rs.URL + `/a","header":{"X-A":["1"]}}` + "\n" +
					`{"method":"POST","url":"` + rs.URL + `/b","body":"eyJrIjoidiJ9"}` + "\n"
			}
			o := attackOpts("", "100/s", 300*time.Millisecond)
			o.Targets = writeFile(t, "targets", content)
			o.Headers = []string{"X-All: yes"}
			rep := mustAttack(t, context.Background(), o)
			if rep.Success != rep.Requests || rep.Requests < 2 { // both targets, in rotation
				t.Fatalf("%d requests, %d ok", rep.Requests, rep.Success)
			}
			for i, p := range rs.paths {
				want := map[string]string{"GET /a": "", "POST /b": `{"k":"v"}`}
				b, ok := want[p]
				if !ok || rs.bodies[i] != b || rs.hdrs[i].Get("X-All") != "yes" || p == "GET /a" && rs.hdrs[i].Get("X-A") != "1" {
					t.Fatalf("request %d: %s body %q headers %v", i, p, rs.bodies[i], rs.hdrs[i])
				}
			}
		})
	}
}

// fakeModel stands in for a trained model: it reads "origin,dest,month" rows and encodes a
// flight as a three-element vector.
type fakeModel struct{}

func (fakeModel) ReadFlights(r io.Reader, fn func(int, model.Flight) error) error {
	b, _ := io.ReadAll(r)
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		f := strings.Split(line, ",")
		if len(f) != 3 {
			continue // unusable row
		}
		if err := fn(i+1, model.Flight{Origin: f[0], Dest: f[1], Month: int(f[2][0] - '0'), DayOfWeek: 1, DayOfMonth: 1, Carrier: "DL", CRSDepTime: 900}); err != nil {
			return err
		}
	}
	return nil
}

func (fakeModel) Encode(f model.Flight, dst []float64) []float64 {
	return append(dst[:0], float64(f.Month), 0.5, -1.25e-3)
}

func TestFromDataBuildsPredictBodies(t *testing.T) {
	data := writeFile(t, "flights.csv", "origin,dest,month\nATL,SEA,1\nbroken\nDTW,MSP,2\nJFK,LAX,3\n")
	tests := map[string]struct {
		form string
		want []string
	}{
		"The x form sends dense vectors.": {form: "x", want: []string{`{"x":[1,0.5,-0.00125]}`, `{"x":[2,0.5,-0.00125]}`, `{"x":[3,0.5,-0.00125]}`}},
		"The instances form sends named fields.": {form: "instances", want: []string{
			`{"instances":[{"month":1,"day_of_month":1,"day_of_week":1,"origin":"ATL","dest":"SEA","carrier":"DL","crs_dep_time":900}]}`,
			`{"instances":[{"month":2,"day_of_month":1,"day_of_week":1,"origin":"DTW","dest":"MSP","carrier":"DL","crs_dep_time":900}]}`,
			`{"instances":[{"month":3,"day_of_month":1,"day_of_week":1,"origin":"JFK","dest":"LAX","carrier":"DL","crs_dep_time":900}]}`,
		}},
		"The mixed form alternates.": {form: "mixed", want: []string{
			`{"x":[1,0.5,-0.00125]}`,
			`{"instances":[{"month":2,"day_of_month":1,"day_of_week":1,"origin":"DTW","dest":"MSP","carrier":"DL","crs_dep_time":900}]}`,
			`{"x":[3,0.5,-0.00125]}`,
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := validOptions()
			o.FromData, o.Model, o.BodyForm = data, "model.json", tt.form
			o.LoadModel = func(string) (FlightEncoder, error) { return fakeModel{}, nil }
			tgts, err := o.loadTargets()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tg := range tgts {
				if tg.Method != "POST" || tg.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("target %s with headers %v", tg.Method, tg.Header)
				}
				got = append(got, string(tg.Body))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("bodies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	t.Run("rows are capped", func(t *testing.T) {
		o := validOptions()
		o.FromData, o.Model, o.FromDataRows = data, "model.json", 2
		o.LoadModel = func(string) (FlightEncoder, error) { return fakeModel{}, nil }
		tgts, err := o.loadTargets()
		if err != nil || len(tgts) != 2 {
			t.Fatalf("%d targets, %v; want 2", len(tgts), err)
		}
	})
}

func TestHTTP2(t *testing.T) {
	var protos sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { protos.Store(r.Proto, true) })
	tests := map[string]struct {
		start func() *httptest.Server
		opts  func(*Options)
		want  string
	}{
		"HTTP/2 over TLS (h2 by ALPN), certificate not verified.": {
			start: func() *httptest.Server {
				s := httptest.NewUnstartedServer(h)
				s.EnableHTTP2 = true
				s.StartTLS()
				return s
			},
			opts: func(o *Options) { o.HTTP2, o.Insecure = true, true },
			want: "HTTP/2.0",
		},
		"HTTP/2 without TLS (h2c).": {
			start: func() *httptest.Server {
				s := httptest.NewUnstartedServer(h)
				s.Config.Protocols = new(http.Protocols)
				s.Config.Protocols.SetHTTP1(true)
				s.Config.Protocols.SetUnencryptedHTTP2(true)
				s.Start()
				return s
			},
			opts: func(o *Options) { o.HTTP2 = true },
			want: "HTTP/2.0",
		},
		"HTTPS stays on HTTP/1.1 without --http2.": {
			start: func() *httptest.Server {
				s := httptest.NewUnstartedServer(h)
				s.EnableHTTP2 = true
				s.StartTLS()
				return s
			},
			opts: func(o *Options) { o.Insecure = true },
			want: "HTTP/1.1",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			protos.Clear()
			srv := tt.start()
			defer srv.Close()
			o := attackOpts(srv.URL, "50/s", 300*time.Millisecond)
			tt.opts(&o)
			rep := mustAttack(t, context.Background(), o)
			var seen []string
			protos.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
			if rep.Requests == 0 || rep.Success != rep.Requests || len(seen) != 1 || seen[0] != tt.want {
				t.Fatalf("%d requests, %d ok, protocols %v; want all %s", rep.Requests, rep.Success, seen, tt.want)
			}
		})
	}
	t.Run("An untrusted certificate fails without --insecure.", func(t *testing.T) {
		srv := httptest.NewTLSServer(h)
		defer srv.Close()
		rep := mustAttack(t, context.Background(), attackOpts(srv.URL, "50/s", 200*time.Millisecond))
		if rep.Requests == 0 || rep.Errors.Other != rep.Requests || !strings.Contains(rep.Errors.Samples[ErrOther], "certificate") {
			t.Fatalf("errors %+v over %d requests, want every one a certificate error", rep.Errors, rep.Requests)
		}
	})
}

func TestProgressLineOnlyWhenAsked(t *testing.T) {
	srv := httptest.NewServer(okHandler("ok"))
	defer srv.Close()
	for _, progress := range []bool{true, false} {
		o := attackOpts(srv.URL, "50/s", 1300*time.Millisecond)
		o.Progress = progress
		var errOut bytes.Buffer
		if _, err := Attack(context.Background(), o, &errOut); err != nil {
			t.Fatal(err)
		}
		got := errOut.String()
		if progress && (!strings.Contains(got, "of 1.30s  done ") || !strings.HasSuffix(got, "\r\033[K")) {
			t.Fatalf("progress output %q: want a redrawn line, cleared at the end", got)
		}
		if !progress && got != "" {
			t.Fatalf("progress off but wrote %q", got)
		}
	}
}

func TestProgressLine(t *testing.T) {
	got := progressLine(12*time.Second, 45*time.Second, 6000, 3)
	if want := "12.00s of 45.00s  done 6000  500.0 req/s  errors 3"; got != want {
		t.Fatalf("progressLine = %q, want %q", got, want)
	}
}
