package slo

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// The metrics `delayctl serve` exports that SLIs are computed from.
const (
	// MetricRequests counts HTTP requests by route, method and code.
	MetricRequests = "delayctl_http_requests_total"
	// MetricDuration is the request duration histogram by route and method.
	MetricDuration = "delayctl_http_request_duration_seconds"
	// MetricRSS is the server's resident memory from the process collector.
	MetricRSS = "process_resident_memory_bytes"
)

// Buckets are the upper bounds, in seconds, of MetricDuration's buckets. Latency thresholds
// judged from Prometheus data are exact only at one of these bounds.
var Buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .2, .3, .4, .5, .75, 1, 2.5, 5, 10}

// BucketFor returns the bucket bound equal to threshold, or false when there is none.
func BucketFor(threshold time.Duration) (float64, bool) {
	s := threshold.Seconds()
	for _, b := range Buckets {
		if math.Abs(b-s) < 1e-12 {
			return b, true
		}
	}
	return 0, false
}

// errNotBucket explains that a threshold is not a bucket bound.
func errNotBucket(o Objective) error {
	var bs []string
	for _, b := range Buckets {
		bs = append(bs, FormatDuration(time.Duration(b*1e9)))
	}
	return fmt.Errorf("objective %q: latency threshold %s is not a bucket bound of %s, so Prometheus cannot count requests under it exactly; use one of %s",
		o.Name, FormatDuration(o.Threshold), MetricDuration, strings.Join(bs, ", "))
}

// leMatcher matches the "le" label of a bucket bound. Prometheus 3 normalises whole-number
// bounds to "1.0" while client_golang writes "1", so whole numbers match both spellings.
func leMatcher(b float64) string {
	s := strconv.FormatFloat(b, 'f', -1, 64)
	if b == math.Trunc(b) {
		return fmt.Sprintf(`le=~"%s|%s\\.0"`, s, s)
	}
	return fmt.Sprintf(`le="%s"`, s)
}

// badCodes is the code regexp of the requests an availability objective counts as bad.
func badCodes(o Objective) string {
	switch {
	case o.ClientErrorsBad:
		return "4..|5.."
	case o.RateLimitedBad:
		return "429|5.."
	}
	return "5.."
}

var selectorRe = regexp.MustCompile(`^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*(?:,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)*,?\s*$`)

// ValidSelector checks extra label matchers such as `job="delayctl",env!="dev"`.
func ValidSelector(s string) error {
	if s == "" || selectorRe.MatchString(s) {
		return nil
	}
	return fmt.Errorf("invalid label matchers %q: want e.g. job=\"delayctl\",env=~\"prod|staging\"", s)
}

// queries builds the PromQL for one SLO; extra holds label matchers added to every selector.
type queries struct {
	routes string
	extra  string
}

func newQueries(s *SLO, extra string) queries {
	return queries{routes: s.RoutesExpr, extra: strings.TrimSuffix(strings.TrimSpace(extra), ",")}
}

// sel renders metric{route=~"...",<matchers>,<extra>}.
func (q queries) sel(metric string, withRoute bool, matchers ...string) string {
	var ms []string
	if withRoute {
		ms = append(ms, "route=~"+strconv.Quote(q.routes))
	}
	ms = append(ms, matchers...)
	if q.extra != "" {
		ms = append(ms, q.extra)
	}
	return metric + "{" + strings.Join(ms, ",") + "}"
}

func promDuration(d time.Duration) string { return model.Duration(d).String() }

// totalRate is the per-second rate of requests in scope over w (fn is rate or increase).
func (q queries) requests(fn string, w time.Duration, matchers ...string) string {
	return fmt.Sprintf("sum(%s(%s[%s]))", fn, q.sel(MetricRequests, true, matchers...), promDuration(w))
}

// errorRatio is the share of bad events of an event-based objective over w, built from
// per-second rates: the SLI error ratio recorded by `slo rules`.
func (q queries) errorRatio(o Objective, w time.Duration) (string, error) {
	switch o.Kind {
	case KindAvailability:
		return fmt.Sprintf("(\n  %s\n/\n  %s\n)", q.requests("rate", w, `code=~"`+badCodes(o)+`"`), q.requests("rate", w)), nil
	case KindLatency:
		b, ok := BucketFor(o.Threshold)
		if !ok {
			return "", errNotBucket(o)
		}
		return fmt.Sprintf("(\n  1 - (\n    sum(rate(%s[%s]))\n  /\n    sum(rate(%s[%s]))\n  )\n)",
			q.sel(MetricDuration+"_bucket", true, leMatcher(b)), promDuration(w),
			q.sel(MetricDuration+"_count", true), promDuration(w)), nil
	}
	return "", fmt.Errorf("objective %q: %s objectives have no error ratio", o.Name, o.Kind)
}

// measureQueries are the instant queries that measure one objective over w on a Prometheus
// server: for event-based objectives total and good counts; value for the rest and for the
// percentile form's estimate.
type measureQueries struct {
	Total, Good, Value string
}

func (q queries) measure(o Objective, w time.Duration) (measureQueries, error) {
	ws := promDuration(w)
	switch o.Kind {
	case KindAvailability:
		return measureQueries{
			Total: q.requests("increase", w),
			Good:  fmt.Sprintf("%s - (%s or vector(0))", q.requests("increase", w), q.requests("increase", w, `code=~"`+badCodes(o)+`"`)),
		}, nil
	case KindLatency:
		b, ok := BucketFor(o.Threshold)
		if !ok {
			return measureQueries{}, errNotBucket(o)
		}
		m := measureQueries{
			Total: fmt.Sprintf("sum(increase(%s[%s]))", q.sel(MetricDuration+"_count", true), ws),
			Good:  fmt.Sprintf("sum(increase(%s[%s]))", q.sel(MetricDuration+"_bucket", true, leMatcher(b)), ws),
		}
		if o.Percentile {
			m.Value = fmt.Sprintf("histogram_quantile(%s, sum by (le) (increase(%s[%s])))", formatFloat(o.Target),
				q.sel(MetricDuration+"_bucket", true), ws)
		}
		return m, nil
	case KindThroughput:
		return measureQueries{Value: fmt.Sprintf("%s / %s", q.requests("increase", w, `code=~"2..|3.."`), formatFloat(w.Seconds()))}, nil
	case KindMemory:
		return measureQueries{Value: fmt.Sprintf("max(max_over_time(%s[%s]))", q.sel(MetricRSS, false), ws)}, nil
	case KindModel:
		if _, skip := skipQuality(o); skip {
			return measureQueries{}, nil
		}
		return measureQueries{Value: q.modelQuery(o)}, nil
	}
	return measureQueries{}, fmt.Errorf("objective %q: unknown kind %q", o.Name, o.Kind)
}

// bucketCounts is a cumulative histogram: counts[i] observations <= bounds[i], and count in
// total (the +Inf bucket).
type bucketCounts struct {
	bounds []float64
	counts []float64
	count  float64
}

// atOrBelow estimates how many observations are <= v seconds. It is exact at a bound and
// interpolates linearly inside a bucket otherwise (the second result is false then).
func (h bucketCounts) atOrBelow(v float64) (float64, bool) {
	i, found := slices.BinarySearch(h.bounds, v)
	if found {
		return h.counts[i], true
	}
	lo, loCount := 0.0, 0.0
	if i > 0 {
		lo, loCount = h.bounds[i-1], h.counts[i-1]
	}
	if i >= len(h.bounds) {
		return loCount, false // above the last bound: the +Inf bucket tells nothing more
	}
	hi, hiCount := h.bounds[i], h.counts[i]
	return loCount + (hiCount-loCount)*(v-lo)/(hi-lo), false
}

// quantile estimates the q-quantile in seconds as PromQL's histogram_quantile does: linear
// interpolation inside the bucket holding the rank, the last finite bound when the rank
// falls in the +Inf bucket. NaN when empty.
func (h bucketCounts) quantile(q float64) float64 {
	if h.count == 0 || len(h.bounds) == 0 {
		return math.NaN()
	}
	rank := q * h.count
	i := firstAtLeast(h.counts, rank)
	if i >= len(h.bounds) {
		return h.bounds[len(h.bounds)-1]
	}
	lo, loCount := 0.0, 0.0
	if i > 0 {
		lo, loCount = h.bounds[i-1], h.counts[i-1]
	}
	hi, hiCount := h.bounds[i], h.counts[i]
	if hiCount == loCount {
		return hi
	}
	return lo + (hi-lo)*(rank-loCount)/(hiCount-loCount)
}

// firstAtLeast returns the first index whose cumulative count reaches rank.
func firstAtLeast(counts []float64, rank float64) int {
	for i, c := range counts {
		if c >= rank {
			return i
		}
	}
	return len(counts)
}
