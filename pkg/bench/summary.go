package bench

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/latency"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Error kinds a result without an HTTP response is counted under.
const (
	ErrTimeout = "timeout"
	ErrRefused = "connection_refused"
	ErrReset   = "connection_reset"
	ErrOther   = "other"
)

var errorKinds = []string{ErrTimeout, ErrRefused, ErrReset, ErrOther}

// ClassifyError sorts a result's error into one of the error kinds. Results with an HTTP
// status (Code != 0) are not transport errors and return "".
func ClassifyError(r *vegeta.Result) string {
	if r.Code != 0 {
		return ""
	}
	e := strings.ToLower(r.Error)
	switch {
	case strings.Contains(e, "timeout") || strings.Contains(e, "deadline exceeded"):
		return ErrTimeout
	case strings.Contains(e, "connection refused"):
		return ErrRefused
	case strings.Contains(e, "connection reset") || strings.Contains(e, "broken pipe") ||
		strings.HasSuffix(e, ": eof") || e == "eof" || strings.Contains(e, "unexpected eof") ||
		strings.Contains(e, "server closed"):
		return ErrReset
	}
	return ErrOther
}

// Summary accumulates results as they stream in, in memory that does not grow with their
// number: a latency histogram, counters, and a few extremes. Every field is an exact,
// order-independent aggregate, so summaries of disjoint result sets merge into the summary of
// their union (a report over N results files equals the report over one file holding them all).
type Summary struct {
	requests, success, httpErrors uint64
	bytesIn, bytesOut             uint64
	codes                         [600]uint64
	otherCodes                    map[uint16]uint64
	errs                          [4]uint64
	errSample                     [4]string // lexicographically smallest message of each kind
	lat                           latency.Histogram
	sumSqHi, sumSqLo              uint64 // exact 128-bit sum of squared latencies (ns²)
	earliest, latest, end         time.Time
}

// Add counts one result.
func (s *Summary) Add(r *vegeta.Result) {
	s.requests++
	s.bytesIn += r.BytesIn
	s.bytesOut += r.BytesOut
	if int(r.Code) < len(s.codes) {
		s.codes[r.Code]++
	} else {
		if s.otherCodes == nil {
			s.otherCodes = map[uint16]uint64{}
		}
		s.otherCodes[r.Code]++
	}
	switch {
	case r.Code >= 200 && r.Code < 400:
		s.success++
	case r.Code != 0:
		s.httpErrors++
	}
	if r.Code == 0 {
		k := kindIndex(ClassifyError(r))
		s.errs[k]++
		if s.errSample[k] == "" || r.Error < s.errSample[k] {
			s.errSample[k] = r.Error
		}
	} else {
		s.addLatency(r.Latency)
	}
	if s.earliest.IsZero() || r.Timestamp.Before(s.earliest) {
		s.earliest = r.Timestamp
	}
	if r.Timestamp.After(s.latest) {
		s.latest = r.Timestamp
	}
	if end := r.End(); end.After(s.end) {
		s.end = end
	}
}

func (s *Summary) addLatency(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.lat.Add(d)
	hi, lo := bits.Mul64(uint64(d), uint64(d))
	var c uint64
	s.sumSqLo, c = bits.Add64(s.sumSqLo, lo, 0)
	s.sumSqHi += hi + c
}

func kindIndex(kind string) int {
	for i, k := range errorKinds {
		if k == kind {
			return i
		}
	}
	return len(errorKinds) - 1
}

// stdev is the population standard deviation of the recorded latencies, from exact sums.
func (s *Summary) stdev() time.Duration {
	n := s.lat.Count()
	if n < 2 {
		return 0
	}
	// var = (n*Σx² - (Σx)²) / n², with Σx recovered exactly from mean*n is not possible, so
	// use E[x²] - mean² in big floats: Σx² is exact, mean is exact to the nanosecond.
	sumSq := new(big.Float).SetPrec(256).SetInt(new(big.Int).Or(
		new(big.Int).Lsh(new(big.Int).SetUint64(s.sumSqHi), 64), new(big.Int).SetUint64(s.sumSqLo)))
	ex2 := new(big.Float).SetPrec(256).Quo(sumSq, new(big.Float).SetUint64(n))
	mean := new(big.Float).SetPrec(256).SetInt64(int64(s.lat.Mean()))
	v, _ := new(big.Float).Sub(ex2, new(big.Float).Mul(mean, mean)).Float64()
	if v <= 0 {
		return 0
	}
	return time.Duration(math.Round(math.Sqrt(v)))
}

// LatencyReport summarises response latencies. Durations marshal as integer nanoseconds, like
// vegeta's own JSON report.
type LatencyReport struct {
	Count uint64        `json:"count"`
	Min   time.Duration `json:"min"`
	Mean  time.Duration `json:"mean"`
	Stdev time.Duration `json:"stdev"`
	// WithinStdev is the share of latencies within one standard deviation of the mean
	// (wrk's "+/- Stdev").
	WithinStdev float64       `json:"within_stdev"`
	P50         time.Duration `json:"p50"`
	P75         time.Duration `json:"p75"`
	P90         time.Duration `json:"p90"`
	P95         time.Duration `json:"p95"`
	P99         time.Duration `json:"p99"`
	P999        time.Duration `json:"p99_9"`
	Max         time.Duration `json:"max"`
}

// HistogramBar is one bar of the report's latency histogram: latencies in [Low, High).
type HistogramBar struct {
	Low     time.Duration `json:"low"`
	High    time.Duration `json:"high"`
	Count   uint64        `json:"count"`
	Percent float64       `json:"percent"`
}

// ErrorReport counts failed requests by kind. HTTP counts responses whose status is not
// 2xx or 3xx; the other kinds are requests that got no response at all.
type ErrorReport struct {
	Timeout           uint64 `json:"timeout"`
	ConnectionRefused uint64 `json:"connection_refused"`
	ConnectionReset   uint64 `json:"connection_reset"`
	Other             uint64 `json:"other"`
	HTTP              uint64 `json:"http"`
	// Samples holds one error message of each transport error kind seen.
	Samples map[string]string `json:"samples,omitempty"`
}

// BytesReport is a byte total and its mean per request.
type BytesReport struct {
	Total uint64  `json:"total"`
	Mean  float64 `json:"mean"`
}

// Report is the summary of an attack or of results files, as the text and JSON reports show it.
type Report struct {
	// Target and Mode describe the attack; both are empty for a report over results files.
	Target string `json:"target,omitempty"`
	Mode   string `json:"mode,omitempty"`
	// Requests counts every result; Success those with a 2xx or 3xx status.
	Requests     uint64  `json:"requests"`
	Success      uint64  `json:"success"`
	SuccessRatio float64 `json:"success_ratio"`
	// Duration runs from the first to the last request sent; Wait from then to the last
	// response.
	Duration time.Duration `json:"duration"`
	Wait     time.Duration `json:"wait"`
	// RequestedRate is --rate in requests per second (0: unpaced or unknown).
	RequestedRate float64 `json:"requested_rate"`
	// Rate is the rate requests were sent at: Requests / Duration.
	Rate float64 `json:"rate"`
	// Throughput is successful requests per second over Duration + Wait.
	Throughput  float64           `json:"throughput"`
	Latency     LatencyReport     `json:"latency"`
	Histogram   []HistogramBar    `json:"histogram"`
	StatusCodes map[string]uint64 `json:"status_codes"`
	Errors      ErrorReport       `json:"errors"`
	BytesIn     BytesReport       `json:"bytes_in"`
	BytesOut    BytesReport       `json:"bytes_out"`
	Earliest    time.Time         `json:"earliest"`
	Latest      time.Time         `json:"latest"`
	End         time.Time         `json:"end"`
	// Interrupted is set when the attack was stopped early (Ctrl-C).
	Interrupted bool `json:"interrupted,omitempty"`
	// Warnings explain numbers that need care, such as a sent rate short of the requested one.
	Warnings []string `json:"warnings,omitempty"`
}

// RateShortfall is how far below the requested rate the sent rate may fall before the
// report warns (5 %).
const RateShortfall = 0.05

// Report computes the report. buckets are the histogram edges (nil: 1-2-5 edges spanning
// the recorded latencies); requested is the requested rate (zero Rate: none).
func (s *Summary) Report(buckets []time.Duration, requested Rate) Report {
	rep := Report{
		Requests:    s.requests,
		Success:     s.success,
		StatusCodes: map[string]uint64{},
		Earliest:    s.earliest,
		Latest:      s.latest,
		End:         s.end,
	}
	for c, n := range s.codes {
		if n > 0 {
			rep.StatusCodes[strconv.Itoa(c)] = n
		}
	}
	for c, n := range s.otherCodes {
		rep.StatusCodes[strconv.Itoa(int(c))] = n
	}
	rep.Errors = ErrorReport{
		Timeout: s.errs[0], ConnectionRefused: s.errs[1], ConnectionReset: s.errs[2], Other: s.errs[3],
		HTTP: s.httpErrors,
	}
	for i, msg := range s.errSample {
		if msg != "" {
			if rep.Errors.Samples == nil {
				rep.Errors.Samples = map[string]string{}
			}
			rep.Errors.Samples[errorKinds[i]] = msg
		}
	}
	rep.BytesIn.Total, rep.BytesOut.Total = s.bytesIn, s.bytesOut
	if s.requests > 0 {
		rep.SuccessRatio = float64(s.success) / float64(s.requests)
		rep.BytesIn.Mean = float64(s.bytesIn) / float64(s.requests)
		rep.BytesOut.Mean = float64(s.bytesOut) / float64(s.requests)
		rep.Duration = s.latest.Sub(s.earliest)
		rep.Wait = s.end.Sub(s.latest)
		if secs := rep.Duration.Seconds(); secs > 0 {
			rep.Rate = float64(s.requests) / secs
			rep.Throughput = float64(s.success) / (rep.Duration + rep.Wait).Seconds()
		}
	}
	h := &s.lat
	sd := s.stdev()
	rep.Latency = LatencyReport{
		Count: h.Count(), Min: h.Min(), Mean: h.Mean(), Stdev: sd, Max: h.Max(),
		P50: h.Quantile(0.50), P75: h.Quantile(0.75), P90: h.Quantile(0.90),
		P95: h.Quantile(0.95), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
	}
	if n := h.Count(); n > 0 {
		lo := h.Mean() - sd - 1
		within := h.CountAtOrBelow(h.Mean() + sd)
		if lo >= 0 {
			within -= h.CountAtOrBelow(lo)
		}
		rep.Latency.WithinStdev = float64(within) / float64(n)
	}
	if buckets == nil {
		buckets = autoBuckets(h.Min(), h.Max())
	}
	if h.Count() > 0 {
		for _, b := range h.Buckets(buckets) {
			rep.Histogram = append(rep.Histogram, HistogramBar{
				Low: b.Low, High: b.High, Count: b.Count,
				Percent: 100 * float64(b.Count) / float64(h.Count()),
			})
		}
	}
	if !requested.IsMax() {
		rep.RequestedRate = requested.PerSecond()
		if rep.Rate > 0 && rep.Rate < rep.RequestedRate*(1-RateShortfall) {
			rep.Warnings = append(rep.Warnings, shortfallWarning(rep.Rate, rep.RequestedRate))
		}
	}
	return rep
}

func shortfallWarning(sent, requested float64) string {
	return "sent " + strconv.FormatFloat(sent, 'f', 2, 64) + " req/s, short of the requested " +
		strconv.FormatFloat(requested, 'f', 2, 64) + " req/s: the workers (--max-workers) or " +
		"connections (--connections) could not keep up, so requests queued in the generator " +
		"and their latency excludes that wait (coordinated omission); raise the caps or lower --rate"
}

// autoBuckets picks histogram edges from a 1-2-5 sequence (1µs to 500s) so that the bars
// span [min, max] in round numbers people read at a glance.
func autoBuckets(min, max time.Duration) []time.Duration {
	if max <= 0 {
		return []time.Duration{0}
	}
	var seq []time.Duration
	for d := time.Duration(1000); d <= 1000*time.Second; d *= 10 { // from 1µs
		seq = append(seq, d, 2*d, 5*d)
	}
	lo := 0
	for lo+1 < len(seq) && seq[lo+1] <= min {
		lo++
	}
	hi := lo
	for hi < len(seq)-1 && seq[hi] <= max {
		hi++
	}
	edges := append([]time.Duration(nil), seq[lo:hi]...)
	if len(edges) == 0 {
		edges = []time.Duration{0}
	}
	// Keep at most 12 bars: merge from the low end, where load tests have few samples.
	for len(edges) > 12 {
		edges = append(edges[:1], edges[2:]...)
	}
	return edges
}
