package serve

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/prometheus/client_golang/prometheus"
)

// DriftBuckets is how many rolling buckets the drift window is cut into: the window slides
// by window/DriftBuckets.
const DriftBuckets = 12

// maxDriftShards bounds the counter shards: enough to spread the cores of a typical replica.
const maxDriftShards = 8

// DriftMinObservations is the fewest predictions in the window for which the PSI gauges are
// exported: PSI over a handful of rows is noise, and an alert on it would be too.
const DriftMinObservations = 100

// drift counts, per model, each feature's bins and the predicted-probability bins, in
// DriftBuckets rolling buckets of preallocated atomic counters. The hot path (observe) costs
// one atomic increment per feature plus one for the probability and allocates nothing; all
// arithmetic (sums, PSI) happens when /metrics is scraped. The counters are repeated in
// shards, one picked at random per prediction, so that cores do not all fight over the cache
// line of the same popular category.
type drift struct {
	m        *model.Model
	offsets  []int // start of feature i's bins within a bucket
	predOff  int   // start of the probability bins
	predBins int
	width    int // counters per bucket
	shards   int
	counts   []atomic.Uint64 // [shard][bucket][width]
	cur      atomic.Int64    // the bucket being filled
	period   time.Duration   // of one bucket
	names    [][]string      // bin names per feature
	predName []string
	scratch  sync.Pool // *[]int32 of len(m.Features), for models with many features

	mu      sync.Mutex // guards rotation and the fields below
	retired []uint64   // counts of buckets that left the window, so totals stay monotonic
	rotated time.Time  // when the current bucket started
	now     func() time.Time
}

func newDrift(m *model.Model, window time.Duration, now func() time.Time) *drift {
	d := &drift{m: m, period: window / DriftBuckets, now: now, predBins: model.DefaultPredictionBins}
	if m.Baseline != nil {
		d.predBins = len(m.Baseline.Predictions.Counts)
	}
	for i := range m.Features {
		d.offsets = append(d.offsets, d.width)
		d.width += m.NumBins(i)
		d.names = append(d.names, m.BinNames(i))
	}
	d.predOff = d.width
	d.width += d.predBins
	for j := range d.predBins {
		d.predName = append(d.predName, strconv.FormatFloat(float64(j+1)/float64(d.predBins), 'g', 4, 64))
	}
	d.shards = min(runtime.GOMAXPROCS(0), maxDriftShards)
	d.counts = make([]atomic.Uint64, d.shards*DriftBuckets*d.width)
	d.retired = make([]uint64, d.width)
	d.rotated = now()
	n := len(m.Features)
	d.scratch.New = func() any { s := make([]int32, n); return &s }
	return d
}

// observe counts one prediction whose feature bins are bins.
func (d *drift) observe(bins []int32, p float64) {
	shard := 0
	if d.shards > 1 {
		shard = rand.IntN(d.shards)
	}
	base := (shard*DriftBuckets + int(d.cur.Load())) * d.width
	c := d.counts[base : base+d.width]
	for i, j := range bins {
		c[d.offsets[i]+int(j)].Add(1)
	}
	c[d.predOff+model.PredictionBin(p, d.predBins)].Add(1)
}

// rotate advances the window to now: each elapsed bucket period retires the oldest bucket
// (its counts move to the running totals) and makes it current. serve's monitor calls it
// every bucket period, and a scrape calls it too. The caller holds mu.
func (d *drift) rotate() {
	steps := int(d.now().Sub(d.rotated) / d.period)
	if steps <= 0 {
		return
	}
	d.rotated = d.rotated.Add(time.Duration(steps) * d.period)
	steps = min(steps, DriftBuckets)
	for range steps {
		next := int(d.cur.Load()+1) % DriftBuckets
		for s := range d.shards {
			c := d.bucket(s, next)
			for k := range c {
				d.retired[k] += c[k].Swap(0)
			}
		}
		d.cur.Store(int64(next))
	}
}

// bucket is the counters of one bucket of one shard.
func (d *drift) bucket(shard, b int) []atomic.Uint64 {
	base := (shard*DriftBuckets + b) * d.width
	return d.counts[base : base+d.width]
}

// snapshot returns the counts since the model was loaded and those in the window.
func (d *drift) snapshot() (total, window []float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rotate()
	total, window = make([]float64, d.width), make([]float64, d.width)
	for s := range d.shards {
		for b := range DriftBuckets {
			c := d.bucket(s, b)
			for k := range c {
				window[k] += float64(c[k].Load())
			}
		}
	}
	for k := range total {
		total[k] = window[k] + float64(d.retired[k])
	}
	return total, window
}

var (
	descFeatureObs = prometheus.NewDesc("delayctl_drift_feature_observations_total",
		"Predictions by each feature's value since the model was loaded: one-hot features by category (the model's vocabulary, plus <unseen>), standardised ones by value range.",
		[]string{"variable", "bin"}, nil)
	descPredObs = prometheus.NewDesc("delayctl_drift_prediction_observations_total",
		"Predictions by predicted probability, in equal-width bins named by their upper bound, since the model was loaded.",
		[]string{"bin"}, nil)
	descWindowObs = prometheus.NewDesc("delayctl_drift_window_predictions",
		"Predictions counted in the drift window (--drift-window) that the PSI gauges compare with the training baseline.", nil, nil)
	descFeaturePSI = prometheus.NewDesc(contract.DriftFeaturePSI,
		"Population stability index of each feature over the drift window against the model's training baseline; exported once the window holds enough predictions.",
		[]string{"variable"}, nil)
	descPredPSI = prometheus.NewDesc(contract.DriftPredictionPSI,
		"Population stability index of the predicted probabilities over the drift window against the model's training baseline.", nil, nil)
	descUnseen = prometheus.NewDesc(contract.DriftUnseenRatio,
		"Share of predictions in the drift window whose category the model never saw, per one-hot feature.",
		[]string{"variable"}, nil)
)

// driftCollector exports the current model's drift counters and computes the PSI gauges at
// scrape time. It describes nothing up front (an unchecked collector): its label values
// follow the model, which a reload can change.
type driftCollector struct{ cur func() *drift }

func (c driftCollector) Describe(chan<- *prometheus.Desc) {}

func (c driftCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.cur()
	if d == nil {
		return
	}
	total, window := d.snapshot()
	for i, f := range d.m.Features {
		for j, name := range d.names[i] {
			ch <- prometheus.MustNewConstMetric(descFeatureObs, prometheus.CounterValue, total[d.offsets[i]+j], f.Variable, name)
		}
	}
	var n float64
	for j, name := range d.predName {
		ch <- prometheus.MustNewConstMetric(descPredObs, prometheus.CounterValue, total[d.predOff+j], name)
		n += window[d.predOff+j]
	}
	ch <- prometheus.MustNewConstMetric(descWindowObs, prometheus.GaugeValue, n)
	b := d.m.Baseline
	if b == nil || n < DriftMinObservations {
		return
	}
	for i, f := range d.m.Features {
		w := window[d.offsets[i] : d.offsets[i]+d.m.NumBins(i)]
		if psi := model.PSI(b.Features[i].Counts, w); !math.IsNaN(psi) {
			ch <- prometheus.MustNewConstMetric(descFeaturePSI, prometheus.GaugeValue, psi, f.Variable)
		}
		if u := d.m.UnseenBin(i); u >= 0 {
			ch <- prometheus.MustNewConstMetric(descUnseen, prometheus.GaugeValue, w[u]/n, f.Variable)
		}
	}
	if psi := model.PSI(b.Predictions.Counts, window[d.predOff:]); !math.IsNaN(psi) {
		ch <- prometheus.MustNewConstMetric(descPredPSI, prometheus.GaugeValue, psi)
	}
}
