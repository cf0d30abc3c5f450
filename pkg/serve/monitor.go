package serve

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for MonitorOptions; the command's flags reuse them.
const (
	DefaultDriftWindow           = time.Hour
	DefaultPredictionLogSample   = 1.0
	DefaultPredictionLogMaxBytes = 100 << 20
	DefaultPredictionLogKeep     = 3
	DefaultPredictionLogBuffer   = 4096
	requestIDHeader              = "X-Request-Id"
)

// MonitorOptions configure model monitoring: the drift counters and gauges, and the
// prediction log.
type MonitorOptions struct {
	// DriftWindow is the span the PSI gauges compare with the training baseline, cut into
	// DriftBuckets rolling buckets. 0 means DefaultDriftWindow.
	DriftWindow time.Duration
	// PredictionLog, when set, is the JSON-lines file sampled predictions are appended to.
	PredictionLog string
	// PredictionLogSample is the share of predictions logged, in (0, 1].
	PredictionLogSample float64
	// PredictionLogMaxBytes rotates the log before it grows past this size; 0 never rotates.
	PredictionLogMaxBytes int64
	// PredictionLogKeep is how many rotated files (FILE.1 ... FILE.N) are kept.
	PredictionLogKeep int
	// PredictionLogBuffer is how many entries may wait for the writer before new ones are
	// dropped. 0 means DefaultPredictionLogBuffer.
	PredictionLogBuffer int
}

// validate checks the options; modelPath is refused as the log, which would be appended to.
func (o MonitorOptions) validate(modelPath string) error {
	var errs []error
	if o.DriftWindow < 0 || (o.DriftWindow > 0 && o.DriftWindow < DriftBuckets*time.Second) {
		errs = append(errs, fmt.Errorf("--drift-window must be at least %ds (it is cut into %d buckets), got %v", DriftBuckets, DriftBuckets, o.DriftWindow))
	}
	if o.PredictionLog != "" {
		if !(o.PredictionLogSample > 0 && o.PredictionLogSample <= 1) {
			errs = append(errs, fmt.Errorf("--prediction-log-sample must be in (0, 1], got %v", o.PredictionLogSample))
		}
		if filepath.Clean(o.PredictionLog) == filepath.Clean(modelPath) {
			errs = append(errs, fmt.Errorf("--prediction-log %s is the model file; log elsewhere", o.PredictionLog))
		}
		if o.PredictionLogMaxBytes < 0 || o.PredictionLogKeep < 0 || o.PredictionLogBuffer < 0 {
			errs = append(errs, errors.New("--prediction-log-max-bytes, --prediction-log-keep and the buffer must not be negative"))
		}
	}
	return errors.Join(errs...)
}

// monitor watches what the served model is asked and answers: drift counters per model and
// the prediction log.
type monitor struct {
	window time.Duration
	now    func() time.Time
	drift  atomic.Pointer[drift]
	log    *predLog // nil when off
}

func newMonitor(o MonitorOptions, reg prometheus.Registerer, m *model.Model) (*monitor, error) {
	mo := &monitor{window: o.DriftWindow, now: time.Now}
	if mo.window == 0 {
		mo.window = DefaultDriftWindow
	}
	mo.setModel(m)
	reg.MustRegister(driftCollector{cur: mo.drift.Load})
	if o.PredictionLog != "" {
		f, err := openRotating(o.PredictionLog, o.PredictionLogMaxBytes, o.PredictionLogKeep)
		if err != nil {
			return nil, err
		}
		buf := o.PredictionLogBuffer
		if buf == 0 {
			buf = DefaultPredictionLogBuffer
		}
		mo.log = newPredLog(f, o.PredictionLogSample, buf, reg)
	}
	return mo, nil
}

// setModel starts fresh drift counts for a newly loaded model.
func (mo *monitor) setModel(m *model.Model) { mo.drift.Store(newDrift(m, mo.window, mo.now)) }

// run advances the drift window every bucket period until stop is closed, so the window
// is exact to a bucket however rarely /metrics is scraped.
func (mo *monitor) run(stop <-chan struct{}) {
	every(mo.window/DriftBuckets, stop, func() {
		d := mo.drift.Load()
		d.mu.Lock()
		d.rotate()
		d.mu.Unlock()
	})
}

func (mo *monitor) close() error {
	if mo.log == nil {
		return nil
	}
	return mo.log.close()
}

// observe counts a request's predictions into the drift counters and offers the sampled
// ones to the prediction log. It allocates nothing unless a prediction is logged.
func (mo *monitor) observe(r *http.Request, lm *loadedModel, b *batch, probs []float64) {
	d := mo.drift.Load()
	if d.m != lm.m { // a reload raced this request: its model's counters are gone
		return
	}
	var stack [logBins]int32
	var bins []int32
	if n := len(lm.m.Features); n <= logBins {
		bins = stack[:n]
	} else {
		p := d.scratch.Get().(*[]int32)
		defer d.scratch.Put(p)
		bins = *p
	}
	for i, p := range probs {
		if b.named {
			lm.m.BinFlight(&b.flights[i], bins)
		} else {
			lm.m.BinVector(b.row(i), bins)
		}
		d.observe(bins, p)
		if mo.log != nil && mo.log.sampled() {
			e := logEntry{at: mo.now(), m: lm.m, id: r.Header.Get(requestIDHeader), instance: i, named: b.named, p: p}
			if b.named {
				e.flight = b.flights[i]
			} else if len(bins) <= logBins {
				e.nbins = copy(e.bins[:], bins)
			}
			mo.log.offer(&e)
		}
	}
}
