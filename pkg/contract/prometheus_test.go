package contract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/internal/testtool"
	"github.com/delayctl/delayctl/pkg/bench"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/delayctl/delayctl/pkg/slo"
)

// TestPrometheusAndResultsAgree runs the real thing: delayctl serve (serve.Run, shedding
// beyond one prediction in flight), Debian's prometheus scraping it every second with the
// rules of `slo rules` loaded, and delayctl bench driving batches at it so that some are shed
// with 503. `slo report --prometheus` and `slo report --results` over the same window must
// agree: requests within 2%, 5xx within 5%. Every recording rule must be a number. About 20s.
func TestPrometheusAndResultsAgree(t *testing.T) {
	promBin := testtool.Need(t, "prometheus", "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	start := time.Now()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- serve.Run(serveCtx, serve.Options{
			ModelPath: modelFile, Addr: ln.Addr().String(), Listener: ln,
			LogFormat: serve.DefaultLogFormat, LogLevel: "error",
			MaxBodyBytes: serve.DefaultMaxBodyBytes, MaxBatch: serve.DefaultMaxBatch, MaxInflight: 1,
			ReadHeaderTimeout: serve.DefaultReadHeaderTimeout, ReadTimeout: serve.DefaultReadTimeout,
			WriteTimeout: serve.DefaultWriteTimeout, IdleTimeout: serve.DefaultIdleTimeout,
			ShutdownTimeout: serve.DefaultShutdownTimeout, MaxHeaderBytes: serve.DefaultMaxHeaderBytes,
		}, io.Discard)
	}()
	defer func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	serveURL := "http://" + ln.Addr().String()

	var rules bytes.Buffer
	if err := slo.RunRules(ctx, slo.RulesRunOptions{SLOFile: "../../configs/slo.yaml", Selector: `job="delayctl"`}, &rules, io.Discard); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "rules.yaml"), rules.String())
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yaml]
scrape_configs:
  - job_name: delayctl
    static_configs: [{targets: [%q]}]
`, ln.Addr().String()))
	promAddr := freeAddr(t)
	promURL := "http://" + promAddr
	var promLog bytes.Buffer
	cmd := exec.CommandContext(ctx, promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &promLog, &promLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	}()

	// Two scrapes before any traffic: the born-at-zero series are in the TSDB at 0.
	waitFor(t, ctx, "prometheus to scrape serve twice", func() bool {
		v, err := query(ctx, promURL, `count_over_time(up{job="delayctl"}[1m])`, time.Now())
		return err == nil && len(v) == 1 && v[0] >= 2
	})

	body := `{"instances": [` + strings.TrimSuffix(strings.Repeat(`{"month": 1, "day_of_month": 1, "day_of_week": 5, "origin": "ATL", "dest": "SEA", "carrier": "DL", "crs_dep_time": 1905},`, 400), ",") + `]}`
	o := bench.DefaultOptions()
	o.URL, o.BodyJSON = serveURL+"/predict", body
	o.Rate, o.Duration, o.Workers = bench.Rate{}, 4*time.Second, 4 // as fast as 4 workers go
	o.Results = filepath.Join(dir, "results.bin")
	if err := bench.Run(ctx, o, io.Discard, io.Discard); err != nil {
		t.Fatalf("bench: %v", err)
	}
	benchEnd := time.Now()

	// The instant of a scrape well after the last response: increase() then needs no
	// extrapolation at either end (every series starts at 0 and the range ends on a sample).
	var at time.Time
	waitFor(t, ctx, "a scrape after the bench", func() bool {
		v, err := query(ctx, promURL, `timestamp(up{job="delayctl"})`, time.Now())
		if err != nil || len(v) != 1 {
			return false
		}
		at = time.UnixMilli(int64(math.Round(v[0] * 1000)))
		return at.After(benchEnd.Add(1500 * time.Millisecond))
	})

	fromProm := report(t, ctx, slo.Options{Prometheus: promURL, Selector: `job="delayctl"`,
		Range: at.Sub(start) + 10*time.Second, Now: func() time.Time { return at }})
	fromResults := report(t, ctx, slo.Options{Results: []string{o.Results}})
	t.Logf("availability from results: %v requests, %v 5xx; from prometheus: %v, %v",
		fromResults.Total, fromResults.Total-fromResults.Good, fromProm.Total, fromProm.Total-fromProm.Good)
	resBad, promBad := fromResults.Total-fromResults.Good, fromProm.Total-fromProm.Good
	if fromResults.Total == 0 || resBad == 0 {
		t.Fatalf("the bench got %v answers and %v shed: the test needs both", fromResults.Total, resBad)
	}
	if d := math.Abs(fromProm.Total-fromResults.Total) / fromResults.Total; d > 0.02 {
		t.Errorf("requests: prometheus %v, results %v (%.2f%% apart, want within 2%%)", fromProm.Total, fromResults.Total, d*100)
	}
	if d := math.Abs(promBad-resBad) / resBad; d > 0.05 {
		t.Errorf("5xx: prometheus %v, results %v (%.2f%% apart, want within 5%%)", promBad, resBad, d*100)
	}

	// Every recording is a number, and the period's burn sees the sheds.
	rec, err := queryAll(ctx, promURL, `{__name__=~"slo:.+"}`, at)
	if err != nil {
		t.Fatal(err)
	}
	for series, v := range rec {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s = %v", series, v)
		}
	}
	remaining := 0
	for series, v := range rec {
		if strings.HasPrefix(series, "slo:period_error_budget_remaining:ratio") {
			remaining++
			if strings.Contains(series, `slo="availability"`) && v >= 1 {
				t.Errorf("%s = %v after %v sheds, want below 1", series, v, resBad)
			}
		}
	}
	if remaining != 2 {
		t.Errorf("%d budget-remaining series, want 2 (availability, latency-p90): %v", remaining, rec)
	}
}

type availability struct{ Total, Good float64 }

// report runs `slo report` on configs/slo.yaml with JSON output and returns the
// availability objective's counts. A breach (exit 1) is expected: 503s are errors.
func report(t *testing.T, ctx context.Context, o slo.Options) availability {
	t.Helper()
	o.SLOFile, o.Format, o.Timeout = "../../configs/slo.yaml", slo.FormatJSON, 10*time.Second
	var out bytes.Buffer
	if err := slo.Run(ctx, o, &out, io.Discard); err != nil && !errors.Is(err, slo.ErrObjectiveMissed) {
		t.Fatalf("slo report: %v", err)
	}
	var rep struct {
		Objectives []struct {
			Name  string  `json:"name"`
			Total float64 `json:"total_events"`
			Good  float64 `json:"good_events"`
		} `json:"objectives"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	for _, obj := range rep.Objectives {
		if obj.Name == "availability" {
			return availability{obj.Total, obj.Good}
		}
	}
	t.Fatalf("no availability objective in %s", out.String())
	return availability{}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// queryAll runs an instant query and returns each series (as text) with its value.
func queryAll(ctx context.Context, promURL, expr string, at time.Time) (map[string]float64, error) {
	form := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', -1, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, promURL+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", expr, s.Value[1], err)
		}
		name := s.Metric["__name__"]
		delete(s.Metric, "__name__")
		b, _ := json.Marshal(s.Metric)
		out[name+string(b)] = v
	}
	return out, nil
}

func query(ctx context.Context, promURL, expr string, at time.Time) ([]float64, error) {
	all, err := queryAll(ctx, promURL, expr, at)
	var vs []float64
	for _, v := range all {
		vs = append(vs, v)
	}
	return vs, err
}
