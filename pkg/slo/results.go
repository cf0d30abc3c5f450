package slo

import (
	"context"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/latency"
	"github.com/delayctl/delayctl/pkg/results"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Results accumulates vegeta results in constant memory (apart from a per-second timeline
// capped at maxTimelineSeconds) and measures an SLO's objectives from them exactly. The
// zero value is not usable; build one with NewResults.
type Results struct {
	slo *SLO

	routeCache map[string]bool

	seen     uint64 // every result offered, in scope or not
	excluded uint64 // results whose URL path the routes regexp did not match
	total    uint64 // results in scope
	codes    [600]uint64
	other    uint64 // status codes >= 600, counted as server errors
	first    time.Time
	last     time.Time // latest end (timestamp + latency)
	hist     latency.Histogram

	thresholds []time.Duration // distinct latency thresholds, ascending
	fast       []uint64        // responses at or under thresholds[i]

	timeline map[int64]*Second
	// lastURL/lastInScope and lastSec/lastSecond short-cut the map lookups: results
	// mostly arrive in time order against one URL.
	lastURL     string
	lastInScope bool
	lastSec     int64
	lastSecond  *Second
}

// Second is one second of a results timeline: requests started in it and how they ended.
type Second struct {
	Requests uint64 `json:"requests"`
	// Errors counts transport errors and 5xx responses.
	Errors uint64 `json:"errors"`
}

// maxTimelineSeconds caps the per-second timeline kept for charts (about 28 hours).
const maxTimelineSeconds = 100_000

// maxRouteCache bounds the URL -> in-scope cache; URLs with unique query strings would
// otherwise grow it without limit.
const maxRouteCache = 4096

// NewResults returns an empty accumulator for s.
func NewResults(s *SLO) *Results {
	r := &Results{slo: s, routeCache: map[string]bool{}, timeline: map[int64]*Second{}}
	for _, o := range s.Objectives {
		if o.Kind == KindLatency {
			r.thresholds = append(r.thresholds, o.Threshold)
		}
	}
	sort.Slice(r.thresholds, func(i, j int) bool { return r.thresholds[i] < r.thresholds[j] })
	r.thresholds = compactDurations(r.thresholds)
	r.fast = make([]uint64, len(r.thresholds))
	return r
}

func compactDurations(ds []time.Duration) []time.Duration {
	out := ds[:0]
	for i, d := range ds {
		if i == 0 || d != ds[i-1] {
			out = append(out, d)
		}
	}
	return out
}

// inScope reports whether the path of rawURL matches the SLO's routes. A result without a
// URL (hand-made or from an old encoder) is in scope: there is nothing to filter on.
func (r *Results) inScope(rawURL string) bool {
	if rawURL == "" {
		return true
	}
	if rawURL == r.lastURL {
		return r.lastInScope
	}
	ok, hit := r.routeCache[rawURL]
	if !hit {
		ok = r.slo.Routes.MatchString(urlPath(rawURL))
		if len(r.routeCache) < maxRouteCache {
			r.routeCache[rawURL] = ok
		}
	}
	r.lastURL, r.lastInScope = rawURL, ok
	return ok
}

// urlPath returns the path of an absolute or relative URL without parsing the whole URL:
// "http://h:1/predict?x=1" gives "/predict", "http://h:1" gives "/".
func urlPath(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		j := strings.IndexAny(u, "/?#")
		if j < 0 || u[j] != '/' {
			return "/"
		}
		u = u[j:]
	}
	if j := strings.IndexAny(u, "?#"); j >= 0 {
		u = u[:j]
	}
	if u == "" {
		return "/"
	}
	return u
}

// Add counts one result. It is not safe for concurrent use.
func (r *Results) Add(res *vegeta.Result) {
	r.seen++
	if !r.inScope(res.URL) {
		r.excluded++
		return
	}
	r.total++
	switch {
	case int(res.Code) < len(r.codes):
		r.codes[res.Code]++
	default:
		r.other++
	}
	end := res.Timestamp.Add(res.Latency)
	if r.total == 1 || res.Timestamp.Before(r.first) {
		r.first = res.Timestamp
	}
	if end.After(r.last) {
		r.last = end
	}
	if res.Code != 0 {
		r.hist.Add(res.Latency)
		// thresholds is short (one per latency objective) and sorted: scan from the top.
		for i := len(r.thresholds) - 1; i >= 0 && res.Latency <= r.thresholds[i]; i-- {
			r.fast[i]++
		}
	}
	if sec := r.second(res.Timestamp.Unix()); sec != nil {
		sec.Requests++
		if res.Code == 0 || res.Code >= 500 {
			sec.Errors++
		}
	}
}

// second returns the timeline entry of Unix second u, or nil once the timeline is full.
func (r *Results) second(u int64) *Second {
	if r.lastSecond != nil && u == r.lastSec {
		return r.lastSecond
	}
	sec := r.timeline[u]
	if sec == nil {
		if len(r.timeline) >= maxTimelineSeconds {
			return nil
		}
		sec = &Second{}
		r.timeline[u] = sec
	}
	r.lastSec, r.lastSecond = u, sec
	return sec
}

// Seen is the number of results offered to Add; Requests those within the routes.
func (r *Results) Seen() uint64 { return r.seen }

// Requests is the number of results within the SLO's routes.
func (r *Results) Requests() uint64 { return r.total }

// Span is the time from the earliest request's start to the latest response's end.
func (r *Results) Span() time.Duration {
	if r.total == 0 {
		return 0
	}
	return r.last.Sub(r.first)
}

func (r *Results) countCodes(lo, hi int) uint64 {
	var n uint64
	for c := lo; c < hi && c < len(r.codes); c++ {
		n += r.codes[c]
	}
	return n
}

// Measure reports what the results say about objective o. Memory cannot be measured from
// results and is marked skipped.
func (r *Results) Measure(o Objective) Measurement {
	total := float64(r.total)
	switch o.Kind {
	case KindAvailability:
		var bad uint64
		for c := range r.codes {
			if r.codes[c] != 0 && o.BadStatus(c) {
				bad += r.codes[c]
			}
		}
		bad += r.other
		return Measurement{Total: total, Good: total - float64(bad)}
	case KindLatency:
		i := sort.Search(len(r.thresholds), func(i int) bool { return r.thresholds[i] >= o.Threshold })
		m := Measurement{Total: total, Good: float64(r.fast[i])}
		if o.Percentile {
			m.Value = r.percentile(o, m).Seconds()
		}
		return m
	case KindThroughput:
		span := r.Span()
		if r.total == 0 || span <= 0 {
			return Measurement{Value: math.NaN()}
		}
		ok := r.countCodes(200, 400)
		return Measurement{Total: total, Good: float64(ok), Value: float64(ok) / span.Seconds()}
	case KindMemory:
		return Measurement{Value: math.NaN(), Skipped: true, Note: "results files carry no server memory; use --scrape or --prometheus"}
	case KindRatio:
		return promQLOnly
	case KindModel:
		return Measurement{Value: math.NaN(), Skipped: true, Note: "results files carry no model metrics; use delayctl evaluate, --scrape or --prometheus"}
	}
	return Measurement{Value: math.NaN()}
}

// percentile returns the nearest-rank latency percentile with transport errors counted as
// infinitely slow. When the exact count says the objective is met, the value is clamped to
// the threshold: the histogram may be up to 0.1% above the exact value and must not
// contradict the exact verdict.
func (r *Results) percentile(o Objective, m Measurement) time.Duration {
	if r.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(o.Target*float64(r.total) - 1e-9))
	if rank == 0 {
		rank = 1
	}
	if rank > r.hist.Count() {
		return time.Duration(math.MaxInt64)
	}
	v := r.hist.Rank(rank)
	if met(m.Good, m.Total, o.Target) && v > o.Threshold {
		v = o.Threshold
	}
	return v
}

// Histogram is the latency histogram of the in-scope responses (transport errors left out).
func (r *Results) Histogram() *latency.Histogram { return &r.hist }

// Timeline returns the per-second request and error counts, ordered by time, as Unix
// seconds and counts. It stops growing after about 28 hours of results.
func (r *Results) Timeline() ([]int64, []Second) {
	keys := make([]int64, 0, len(r.timeline))
	for k := range r.timeline {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	secs := make([]Second, len(keys))
	for i, k := range keys {
		secs[i] = *r.timeline[k]
	}
	return keys, secs
}

// ReadResultsFiles streams every result in the named files into acc, one file after another
// (order does not matter to the SLIs). Each file may be in vegeta's gob, JSON or CSV
// encoding; "-" reads standard input from stdin. Errors name the file and the result's
// position.
func ReadResultsFiles(ctx context.Context, paths []string, stdin io.Reader, acc interface{ Add(*vegeta.Result) }) error {
	return results.ReadFiles(ctx, paths, stdin, acc.Add)
}
