package slo

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/inputerr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxScrapeBytes bounds one /metrics response.
const maxScrapeBytes = 64 << 20

// Snapshot is one scrape of a /metrics endpoint, parsed.
type Snapshot map[string]*dto.MetricFamily

// Scrape fetches and parses a Prometheus text exposition from url.
func Scrape(ctx context.Context, client *http.Client, url string) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, inputerr.Wrap(fmt.Errorf("invalid scrape url %q: %w", url, err))
	}
	// Ask for the text format: it is what expfmt's text parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("could not scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("could not scrape %s: status %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxScrapeBytes))
	if err != nil {
		return nil, inputerr.Wrap(fmt.Errorf("could not parse metrics from %s: %w", url, err))
	}
	return fams, nil
}

func labelsOf(m *dto.Metric) map[string]string {
	ls := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		ls[l.GetName()] = l.GetValue()
	}
	return ls
}

func seriesKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// increase is the counter increase between two samples, treating a drop as a restart
// (the counter began again from zero), as PromQL's increase does.
func increase(before, after float64) float64 {
	if after < before {
		return after
	}
	return after - before
}

// Delta is what happened between two scrapes of delayctl serve: the counter and histogram
// increases of the in-scope routes and the resident memory.
type Delta struct {
	// Codes maps a status code label ("200", "503") to its request count increase.
	Codes map[string]float64
	// Duration is the cumulative duration histogram increase, summed over routes and methods.
	Duration bucketCounts
	// RSS is the larger resident memory of the two scrapes; NaN when not exported.
	RSS float64
	// after is the second scrape, whose drift gauges model objectives read.
	after Snapshot
}

// Diff computes the increases between two snapshots for the routes s judges.
func Diff(s *SLO, before, after Snapshot) (Delta, error) {
	d := Delta{Codes: map[string]float64{}, RSS: math.NaN(), after: after}
	inScope := func(m *dto.Metric) bool { return s.Routes.MatchString(labelsOf(m)["route"]) }

	fam := after[contract.Requests]
	if fam == nil {
		return d, inputerr.Wrap(fmt.Errorf("metric %s not found: is this a delayctl serve /metrics endpoint?", contract.Requests))
	}
	prev := map[string]float64{}
	if pf := before[contract.Requests]; pf != nil {
		for _, m := range pf.GetMetric() {
			prev[seriesKey(m)] = m.GetCounter().GetValue()
		}
	}
	for _, m := range fam.GetMetric() {
		if !inScope(m) {
			continue
		}
		d.Codes[labelsOf(m)["code"]] += increase(prev[seriesKey(m)], m.GetCounter().GetValue())
	}

	if hf := after[contract.Duration]; hf != nil {
		prevH := map[string]*dto.Histogram{}
		if pf := before[contract.Duration]; pf != nil {
			for _, m := range pf.GetMetric() {
				prevH[seriesKey(m)] = m.GetHistogram()
			}
		}
		byBound := map[float64]float64{}
		for _, m := range hf.GetMetric() {
			if !inScope(m) {
				continue
			}
			h, p := m.GetHistogram(), prevH[seriesKey(m)]
			restarted := p == nil || h.GetSampleCount() < p.GetSampleCount()
			pb := map[float64]float64{}
			if !restarted {
				for _, b := range p.GetBucket() {
					pb[b.GetUpperBound()] = float64(b.GetCumulativeCount())
				}
			}
			pc := float64(p.GetSampleCount())
			if restarted {
				pc = 0
			}
			d.Duration.count += float64(h.GetSampleCount()) - pc
			for _, b := range h.GetBucket() {
				if math.IsInf(b.GetUpperBound(), 1) {
					continue
				}
				byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount()) - pb[b.GetUpperBound()]
			}
		}
		for b := range byBound {
			d.Duration.bounds = append(d.Duration.bounds, b)
		}
		sort.Float64s(d.Duration.bounds)
		for _, b := range d.Duration.bounds {
			d.Duration.counts = append(d.Duration.counts, byBound[b])
		}
	}

	for _, snap := range []Snapshot{before, after} {
		if f := snap[contract.RSS]; f != nil {
			for _, m := range f.GetMetric() {
				v := m.GetGauge().GetValue()
				if math.IsNaN(d.RSS) || v > d.RSS {
					d.RSS = v
				}
			}
		}
	}
	return d, nil
}

// requests sums the code increases whose code matches keep.
func (d Delta) requests(keep func(code int) bool) float64 {
	var n float64
	for c, v := range d.Codes {
		code, err := strconv.Atoi(c)
		if err != nil {
			code = 0 // an unparseable code label counts as a failed request
		}
		if keep(code) {
			n += v
		}
	}
	return n
}

// Measure reports what the delta says about objective o over a period of seconds.
func (d Delta) Measure(o Objective, seconds float64) Measurement {
	total := d.requests(func(int) bool { return true })
	switch o.Kind {
	case KindAvailability:
		return Measurement{Total: total, Good: total - d.requests(o.BadStatus)}
	case KindLatency:
		h := d.Duration
		good, exact := h.atOrBelow(o.Threshold.Seconds())
		m := Measurement{Total: h.count, Good: good, Value: math.NaN()}
		if !exact {
			m.Estimate = true
			m.Note = fmt.Sprintf("threshold %s is not a histogram bucket bound: the share under it is interpolated (estimate)", FormatDuration(o.Threshold))
		}
		if o.Percentile {
			m.Value = h.quantile(o.Target)
			m.Estimate = true
			if m.Note == "" {
				m.Note = fmt.Sprintf("%s is estimated from histogram buckets (linear interpolation, as histogram_quantile); the verdict counts the %s bucket exactly",
					PercentileName(o.Target), FormatDuration(o.Threshold))
			}
		}
		return m
	case KindThroughput:
		if seconds <= 0 {
			return Measurement{Value: math.NaN()}
		}
		ok := d.requests(func(c int) bool { return c >= 200 && c < 400 })
		return Measurement{Total: total, Good: ok, Value: ok / seconds}
	case KindMemory:
		m := Measurement{Value: d.RSS}
		if math.IsNaN(d.RSS) {
			m.Note = contract.RSS + " is not exported by the scraped endpoint"
		}
		return m
	case KindRatio:
		return promQLOnly
	case KindModel:
		return measureModelScrape(o, d.after)
	}
	return Measurement{Value: math.NaN()}
}
