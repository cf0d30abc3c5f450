package slo_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/google/go-cmp/cmp"
)

func TestLoadRejectsMistakesNamingFieldAndLine(t *testing.T) {
	head := "version: delayctl/v1\nservice: s\nobjectives:\n  - name: a\n"
	tests := map[string]struct {
		doc      string
		wantLine int
		wantText string
	}{
		"An unknown top-level field is refused.":       {"version: delayctl/v1\nservice: s\nwindw: 30d\n", 3, `windw: unknown field "windw"`},
		"An unknown objective field is refused.":       {head + "    availability: {target: 99%, rate_limted_bad: true}\n", 5, `objectives[0].availability.rate_limted_bad: unknown field`},
		"A train config's version is refused.":         {"version: delayctl.train/v1\nservice: s\nobjectives: []\n", 1, `version: invalid spec version "delayctl.train/v1", should be "delayctl.slo/v1"`},
		"A wrong version is refused.":                  {"version: sloth/v1\nservice: s\nobjectives: []\n", 1, `version: invalid spec version "sloth/v1"`},
		"A missing version is refused.":                {"service: s\nobjectives: []\n", 0, `invalid spec version ""`},
		"A file without objectives is refused.":        {"version: delayctl/v1\nservice: s\nobjectives: []\n", 3, "at least one objective is required"},
		"A target above 100% is refused.":              {head + "    availability:\n      target: 100.5%\n", 6, `objectives[0].availability.target: target 100.5% is outside (0, 100%]`},
		"A zero target is refused.":                    {head + "    availability:\n      target: 0\n", 6, "outside (0, 100%]"},
		"A negative target is refused.":                {head + "    availability:\n      target: -5%\n", 6, "outside (0, 100%]"},
		"A ratio written as a bare number is refused.": {head + "    availability:\n      target: 0.999\n", 6, "target 0.999 is read as 0.999%: write 0.999% if that is meant, or 99.9"},
		"An unparseable target is refused.":            {head + "    availability:\n      target: high\n", 6, `invalid target "high"`},
		"A negative threshold is refused.":             {head + "    latency:\n      percentile: p90\n      threshold: -400ms\n", 7, `objectives[0].latency.threshold: duration "-400ms" must not be negative`},
		"An unparseable threshold is refused.":         {head + "    latency:\n      percentile: p90\n      threshold: 4OOms\n", 7, `invalid duration "4OOms"`},
		"A negative window is refused.":                {"version: delayctl/v1\nservice: s\nwindow: -30d\nobjectives:\n  - name: a\n    availability: {target: 99%}\n", 3, `window: duration "-30d" must not be negative`},
		"A percentile above 100 is refused.":           {head + "    latency:\n      percentile: p101\n      threshold: 1s\n", 6, "percentile p101 is outside (0, 100]"},
		"Both latency forms at once are refused.":      {head + "    latency:\n      percentile: p90\n      target: 90%\n      threshold: 1s\n", 7, "either percentile"},
		"Two kinds in one objective are refused.":      {head + "    availability: {target: 99%}\n    memory: {max: 1GB}\n", 4, "sets availability and memory"},
		"An objective without a kind is refused.":      {head + "    description: nothing\n", 4, "needs exactly one of"},
		"A duplicate name is refused.":                 {head + "    availability: {target: 99%}\n  - name: a\n    availability: {target: 98%}\n", 6, `name "a" is already used by objectives[0]`},
		"An upper-case name is refused.":               {"version: delayctl/v1\nservice: s\nobjectives:\n  - name: Avail\n    availability: {target: 99%}\n", 4, "must be lower case"},
		"A negative memory size is refused.":           {head + "    memory:\n      max: -1MB\n", 6, `size "-1MB" must be greater than zero`},
		"An unparseable memory size is refused.":       {head + "    memory:\n      max: lots\n", 6, `invalid size "lots"`},
		"A zero throughput is refused.":                {head + "    throughput:\n      min_rps: 0\n", 6, "must be greater than zero"},
		"A bad routes regexp is refused.":              {"version: delayctl/v1\nservice: s\nroutes: '(/predict'\nobjectives:\n  - name: a\n    availability: {target: 99%}\n", 3, "routes: invalid regular expression"},
		"A non-boolean flag is refused.":               {head + "    availability:\n      target: 99%\n      rate_limited_bad: yes please\n", 7, "want true or false"},
		"A list where a mapping belongs is refused.":   {head + "    availability: [99%]\n", 5, "want a mapping of fields"},
		"A missing service is refused.":                {"version: delayctl/v1\nobjectives:\n  - name: a\n    availability: {target: 99%}\n", 0, "service is required"},
		"A reserved label is refused.":                 {"version: delayctl/v1\nservice: s\nlabels: {slo: x}\nobjectives:\n  - name: a\n    availability: {target: 99%}\n", 3, `label "slo" is set by delayctl`},
		"Broken YAML names its line.":                  {"version: delayctl/v1\nservice: s\nwindow: : 30d\n", 3, "mapping values are not allowed"},
		"An empty file is refused.":                    {"", 0, "empty spec"},
		"Two documents are refused.":                   {"version: delayctl/v1\n---\nservice: s\n", 2, "more than one YAML document"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := slo.Load(strings.NewReader(tt.doc), "slo.yaml")
			var se *slo.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *SpecError", err)
			}
			if se.Line != tt.wantLine || se.File != "slo.yaml" {
				t.Errorf("error at %s:%d, want slo.yaml:%d (%v)", se.File, se.Line, tt.wantLine, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			if !errors.Is(err, inputerr.Err) {
				t.Errorf("error %v is not an input error", err)
			}
		})
	}
}

func TestLoadAcceptsEveryForm(t *testing.T) {
	doc := `version: delayctl/v1
service: delayctl
window: 4w
routes: /predict
labels: {team: ml}
objectives:
  - name: avail
    availability: {target: 99.95, rate_limited_bad: true}
  - name: p99-9
    latency: {percentile: 99.9, threshold: 1s}
  - name: fast
    latency: {target: 99%, threshold: 300ms}
  - name: rps
    throughput: {min_rps: 12.5}
  - name: mem
    memory: {max: 256MiB}
`
	s := mustSLO(t, doc)
	want := []slo.Objective{
		{Name: "avail", Kind: slo.KindAvailability, Target: 0.9995, RateLimitedBad: true},
		{Name: "p99-9", Kind: slo.KindLatency, Target: 0.999, Threshold: time.Second, Percentile: true},
		{Name: "fast", Kind: slo.KindLatency, Target: 0.99, Threshold: 300 * time.Millisecond},
		{Name: "rps", Kind: slo.KindThroughput, MinRPS: 12.5},
		{Name: "mem", Kind: slo.KindMemory, MaxBytes: 256 << 20},
	}
	if d := cmp.Diff(want, s.Objectives, approx); d != "" {
		t.Errorf("objectives (-want +got):\n%s", d)
	}
	if s.Window != 28*24*time.Hour || s.RoutesExpr != "/predict" || s.Labels["team"] != "ml" {
		t.Errorf("window %v routes %q labels %v", s.Window, s.RoutesExpr, s.Labels)
	}
	if !s.Routes.MatchString("/predict") || s.Routes.MatchString("/predictx") {
		t.Errorf("routes regexp %q is not anchored", s.Routes)
	}
}

func TestShippedConfigsLoad(t *testing.T) {
	for _, p := range []string{"../../configs/slo.yaml", "../../configs/slo-99.yaml"} {
		s, err := slo.LoadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if s.Service != "delayctl" || s.Window != slo.DefaultWindow || s.RoutesExpr != slo.DefaultRoutes {
			t.Errorf("%s: service %q window %v routes %q", p, s.Service, s.Window, s.RoutesExpr)
		}
	}
	s, _ := slo.LoadFile("../../configs/slo.yaml")
	var got []string
	for _, o := range s.Objectives {
		got = append(got, o.String())
	}
	want := []string{"good requests >= 99.95%", "p90 <= 400ms", "resident memory <= 256MB",
		"roc_auc >= 0.6", "prediction_psi <= 0.25", "feature_psi{origin} <= 0.25", "unseen_share <= 0.05"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("configs/slo.yaml objectives (-want +got):\n%s", d)
	}
}

// FuzzLoad checks that no input makes the loader panic, and that whatever it accepts is
// valid: targets in (0, 1], positive durations, one kind per objective. The seed corpus is
// testdata/fuzz/FuzzLoad plus the shipped configs.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../../configs/slo.yaml", "../../configs/slo-99.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, doc string) {
		s, err := slo.Load(strings.NewReader(doc), "fuzz.yaml")
		if err != nil {
			var se *slo.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SpecError", err)
			}
			return
		}
		if s.Window <= 0 || len(s.Objectives) == 0 || s.Service == "" {
			t.Fatalf("accepted an invalid slo: %+v", s)
		}
		for _, o := range s.Objectives {
			if o.EventBased() && (o.Target <= 0 || o.Target > 1) {
				t.Fatalf("objective %q: target %v outside (0, 1]", o.Name, o.Target)
			}
			if o.Kind == slo.KindLatency && o.Threshold <= 0 {
				t.Fatalf("objective %q: threshold %v", o.Name, o.Threshold)
			}
		}
	})
}
