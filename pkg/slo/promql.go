package slo

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/prometheus/common/model"
)

// BucketFor returns the bucket bound equal to threshold, or false when there is none.
func BucketFor(threshold time.Duration) (float64, bool) {
	return contract.BucketFor(threshold.Seconds())
}

// errNotBucket explains that a threshold is not a bucket bound.
func errNotBucket(o Objective) error {
	var bs []string
	for _, b := range contract.DurationBuckets {
		bs = append(bs, FormatDuration(time.Duration(b*1e9)))
	}
	return fmt.Errorf("objective %q: latency threshold %s is not a bucket bound of %s, so Prometheus cannot count requests under it exactly; use one of %s",
		o.Name, FormatDuration(o.Threshold), contract.Duration, strings.Join(bs, ", "))
}

// leMatcher matches the "le" label of a bucket bound. Prometheus 3 normalises whole-number
// bounds to "1.0" while client_golang writes "1", so whole numbers match both spellings.
func leMatcher(b float64) string {
	s := strconv.FormatFloat(b, 'f', -1, 64)
	if b == math.Trunc(b) {
		return fmt.Sprintf(`%s=~"%s|%s\\.0"`, contract.LabelLE, s, s)
	}
	return fmt.Sprintf(`%s="%s"`, contract.LabelLE, s)
}

// badCodes is the code regexp of the requests an availability objective counts as bad.
// Load shedding's 503 is a server error and always bad; rate limiting's 429 only when asked.
func badCodes(o Objective) string {
	switch {
	case o.ClientErrorsBad:
		return contract.ClassClientError + "|" + contract.ClassServerError
	case o.RateLimitedBad:
		return contract.ClassRateLimited + "|" + contract.ClassServerError
	}
	return contract.ClassServerError
}

// codeMatcher matches the code label against a class regexp.
func codeMatcher(class string) string { return contract.LabelCode + `=~"` + class + `"` }

var selectorRe = regexp.MustCompile(`^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*(?:,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)*,?\s*$`)

// ValidSelector checks extra label matchers such as `job="delayctl",env!="dev"`.
func ValidSelector(s string) error {
	if s == "" || selectorRe.MatchString(s) {
		return nil
	}
	return fmt.Errorf("invalid label matchers %q: want e.g. job=\"delayctl\",env=~\"prod|staging\"", s)
}

// queries builds the PromQL for one SLO; extra holds label matchers added to every selector.
// It is the one place that writes PromQL over the metrics delayctl serve exports.
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
		ms = append(ms, contract.LabelRoute+"=~"+strconv.Quote(q.routes))
	}
	ms = append(ms, matchers...)
	if q.extra != "" {
		ms = append(ms, q.extra)
	}
	return metric + "{" + strings.Join(ms, ",") + "}"
}

func promDuration(d time.Duration) string { return model.Duration(d).String() }

// requests is fn (rate or increase) of the requests in scope over w, summed.
func (q queries) requests(fn string, w time.Duration, matchers ...string) string {
	return fmt.Sprintf("sum(%s(%s[%s]))", fn, q.sel(contract.Requests, true, matchers...), promDuration(w))
}

// events returns the PromQL counting the bad and the valid events of an event-based
// objective over w (increases of counters, summed over the routes in scope). Counts, not
// rates, so that errorRatio can guard its denominator exactly.
func (q queries) events(o Objective, w time.Duration) (bad, total string, err error) {
	switch o.Kind {
	case KindAvailability:
		return q.requests("increase", w, codeMatcher(badCodes(o))), q.requests("increase", w), nil
	case KindLatency:
		b, ok := BucketFor(o.Threshold)
		if !ok {
			return "", "", errNotBucket(o)
		}
		ws := promDuration(w)
		total = fmt.Sprintf("sum(increase(%s[%s]))", q.sel(contract.DurationCount, true), ws)
		return fmt.Sprintf("%s - sum(increase(%s[%s]))", total, q.sel(contract.DurationBucket, true, leMatcher(b)), ws), total, nil
	}
	return "", "", fmt.Errorf("objective %q: %s objectives have no error ratio", o.Name, o.Kind)
}

// orZero makes an absent result 0: a count over series that do not exist (a target never
// scraped, or gone for longer than the window) is no event at all.
func orZero(expr string) string { return "(" + expr + " or on () vector(0))" }

// guardedRatio divides a count of bad events by a count of valid ones without ever giving
// NaN: the denominator is clamped at 1, which changes nothing when there was a request (a
// count that is not 0 is at least 1: increase() only extrapolates upwards) and makes an idle
// window's 0/0 a ratio of 0 (nothing failed). sloth's unguarded ratio is NaN there, and one
// NaN poisons every sum_over_time over it for the whole period (sloth#531).
func guardedRatio(bad, total string) string {
	return fmt.Sprintf("(\n  %s\n/\n  clamp_min(%s, 1)\n)", bad, total)
}

// errorRatio is the share of bad events of an event-based objective over w: the SLI error
// ratio recorded by `slo rules`. It is a number at every instant, 0 when idle.
func (q queries) errorRatio(o Objective, w time.Duration) (string, error) {
	if o.Kind == KindRatio {
		return rawErrorRatio(o, w)
	}
	bad, total, err := q.events(o, w)
	if err != nil {
		return "", err
	}
	return guardedRatio(orZero(bad), orZero(total)), nil
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
		bad, total, err := q.events(o, w)
		if err != nil {
			return measureQueries{}, err
		}
		return measureQueries{Total: total, Good: fmt.Sprintf("%s - (%s or vector(0))", total, bad)}, nil
	case KindLatency:
		b, ok := BucketFor(o.Threshold)
		if !ok {
			return measureQueries{}, errNotBucket(o)
		}
		m := measureQueries{
			Total: fmt.Sprintf("sum(increase(%s[%s]))", q.sel(contract.DurationCount, true), ws),
			Good:  fmt.Sprintf("sum(increase(%s[%s]))", q.sel(contract.DurationBucket, true, leMatcher(b)), ws),
		}
		if o.Percentile {
			m.Value = fmt.Sprintf("histogram_quantile(%s, sum by (%s) (increase(%s[%s])))", formatFloat(o.Target),
				contract.LabelLE, q.sel(contract.DurationBucket, true), ws)
		}
		return m, nil
	case KindThroughput:
		return measureQueries{Value: fmt.Sprintf("%s / %s", q.requests("increase", w, codeMatcher(contract.ClassSuccess)), formatFloat(w.Seconds()))}, nil
	case KindMemory:
		return measureQueries{Value: fmt.Sprintf("max(max_over_time(%s[%s]))", q.sel(contract.RSS, false), ws)}, nil
	case KindRatio:
		return rawMeasure(o, w)
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
