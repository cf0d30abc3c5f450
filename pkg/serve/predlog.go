package serve

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/prometheus/client_golang/prometheus"
)

// logBins bounds the feature bins a vector's log entry carries; wider models log vectors
// without inputs (named instances always carry their fields).
const logBins = 32

// logEntry is one sampled prediction on its way to the log writer. It is a value with no
// pointers into the request's pooled buffers, so the request can return them at once.
type logEntry struct {
	at       time.Time
	m        *model.Model
	id       string
	instance int
	named    bool
	flight   model.Flight
	nbins    int
	bins     [logBins]int32
	p        float64
}

// predLog writes sampled predictions as JSON lines from its own goroutine. Requests hand
// entries over through a buffered channel and never wait: when the buffer is full the entry
// is dropped and counted.
type predLog struct {
	sample  float64
	ch      chan logEntry
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	// out gets one Write per line, so a rotating file never splits a line.
	out io.WriteCloser

	written, dropped, failed prometheus.Counter
}

func newPredLog(out io.WriteCloser, sample float64, buffer int, reg prometheus.Registerer) *predLog {
	l := &predLog{
		sample: sample, ch: make(chan logEntry, buffer), done: make(chan struct{}), stopped: make(chan struct{}),
		out: out,
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "delayctl_prediction_log_written_total",
			Help: "Predictions written to the prediction log (--prediction-log)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "delayctl_prediction_log_dropped_total",
			Help: "Sampled predictions dropped because the prediction log writer fell behind (its buffer was full)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "delayctl_prediction_log_errors_total",
			Help: "Prediction log lines that could not be written (disk full, permissions)."}),
	}
	reg.MustRegister(l.written, l.dropped, l.failed)
	go l.run()
	return l
}

// sampled decides whether a prediction is logged.
func (l *predLog) sampled() bool { return l.sample >= 1 || rand.Float64() < l.sample }

// offer hands an entry to the writer without ever blocking.
func (l *predLog) offer(e *logEntry) {
	select {
	case l.ch <- *e:
	default:
		l.dropped.Inc()
	}
}

func (l *predLog) run() {
	defer close(l.stopped)
	var line []byte
	for {
		select {
		case e := <-l.ch:
			line = l.write(line, &e)
		case <-l.done:
			for {
				select {
				case e := <-l.ch:
					line = l.write(line, &e)
				default:
					return
				}
			}
		}
	}
}

func (l *predLog) write(line []byte, e *logEntry) []byte {
	line = appendLogLine(line[:0], e)
	if _, err := l.out.Write(line); err != nil {
		l.failed.Inc()
		return line
	}
	l.written.Inc()
	return line
}

// close writes the entries still queued and closes the file. Entries offered afterwards are dropped.
func (l *predLog) close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		<-l.stopped
		err = l.out.Close()
	})
	return err
}

// appendLogLine writes e as one JSON object: time, model, model_version, request_id,
// instance, inputs by name, probability and decision.
func appendLogLine(b []byte, e *logEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","model":`...)
	b = appendJSONString(b, e.m.Name)
	b = append(b, `,"model_version":`...)
	b = appendJSONString(b, e.m.Version)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, e.id)
	b = append(b, `,"instance":`...)
	b = strconv.AppendInt(b, int64(e.instance), 10)
	b = append(b, `,"inputs":{`...)
	if e.named {
		f := &e.flight
		b = append(b, `"month":`...)
		b = strconv.AppendInt(b, int64(f.Month), 10)
		b = append(b, `,"day_of_month":`...)
		b = strconv.AppendInt(b, int64(f.DayOfMonth), 10)
		b = append(b, `,"day_of_week":`...)
		b = strconv.AppendInt(b, int64(f.DayOfWeek), 10)
		b = append(b, `,"origin":`...)
		b = appendJSONString(b, f.Origin)
		b = append(b, `,"dest":`...)
		b = appendJSONString(b, f.Dest)
		b = append(b, `,"carrier":`...)
		b = appendJSONString(b, f.Carrier)
		b = append(b, `,"crs_dep_time":`...)
		b = strconv.AppendInt(b, int64(f.CRSDepTime), 10)
	} else {
		// A vector carries each feature's category (or value range), not the raw fields.
		for i := range e.nbins {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e.m.Features[i].Variable)
			b = append(b, ':')
			b = appendJSONString(b, binName(e.m, i, int(e.bins[i])))
		}
	}
	b = append(b, `},"probability":`...)
	b = appendFloat(b, e.p)
	b = append(b, `,"delayed":`...)
	b = strconv.AppendBool(b, e.m.Delayed(e.p))
	return append(b, "}\n"...)
}

func binName(m *model.Model, feature, bin int) string {
	f := &m.Features[feature]
	if f.Encoding == model.OneHot {
		if bin < len(f.Vocabulary) {
			return f.Vocabulary[bin]
		}
		return model.Unseen
	}
	return m.BinNames(feature)[bin]
}

// rotatingFile is an append-only file that, before a write would take it past max bytes,
// is renamed to path.1 (path.1 to path.2, and so on, keeping keep old files) and started
// afresh.
type rotatingFile struct {
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

func openRotating(path string, max int64, keep int) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max, keep: keep}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("prediction log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("prediction log: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	if r.max > 0 && r.size > 0 && r.size+int64(len(p)) > r.max {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("prediction log: %w", err)
	}
	if r.keep == 0 {
		if err := os.Remove(r.path); err != nil {
			return fmt.Errorf("prediction log: %w", err)
		}
		return r.open()
	}
	for i := r.keep - 1; i >= 1; i-- {
		if err := os.Rename(r.path+"."+strconv.Itoa(i), r.path+"."+strconv.Itoa(i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("prediction log: %w", err)
		}
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("prediction log: %w", err)
	}
	return r.open()
}

func (r *rotatingFile) Close() error { return r.f.Close() }
