package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// maxSeriesPoints bounds the time series: past it, buckets merge pairwise (their width
// doubles), so memory stays constant however long the attack runs.
const maxSeriesPoints = 600

// plotPoints is how many time buckets the PNGs draw at most: enough to show a trend,
// few enough that each point summarises many requests.
const plotPoints = 120

// coarseBins is the resolution of each time bucket's latency histogram: bin i holds
// latencies up to 1µs·2^(i/4), about 19 % wide, plenty for a plotted line.
const coarseBins = 112

type tsBucket struct {
	count, errors uint64
	bins          [coarseBins]uint32
	max           time.Duration
}

// timeSeries counts results in time buckets for the latency-over-time and throughput PNGs.
type timeSeries struct {
	width   time.Duration
	buckets map[int64]*tsBucket
}

func newTimeSeries() *timeSeries {
	return &timeSeries{width: 100 * time.Millisecond, buckets: map[int64]*tsBucket{}}
}

func coarseBin(d time.Duration) int {
	if d <= time.Microsecond {
		return 0
	}
	i := int(math.Ceil(4 * math.Log2(float64(d)/1e3)))
	return min(i, coarseBins-1)
}

func coarseUpper(i int) time.Duration {
	return time.Duration(1e3 * math.Pow(2, float64(i)/4))
}

// Add counts one result at its send time.
func (ts *timeSeries) Add(r *vegeta.Result) {
	k := r.Timestamp.UnixNano() / int64(ts.width)
	b := ts.buckets[k]
	if b == nil {
		if len(ts.buckets) >= maxSeriesPoints {
			ts.compact()
			ts.Add(r)
			return
		}
		b = &tsBucket{}
		ts.buckets[k] = b
	}
	b.count++
	if r.Code < 200 || r.Code >= 400 {
		b.errors++
	}
	if r.Code != 0 {
		b.bins[coarseBin(r.Latency)]++
		b.max = max(b.max, r.Latency)
	}
}

func (ts *timeSeries) compact() {
	ts.width *= 2
	merged := make(map[int64]*tsBucket, len(ts.buckets)/2+1)
	for k, b := range ts.buckets {
		nk := k >> 1
		m := merged[nk]
		if m == nil {
			merged[nk] = b
			continue
		}
		m.count += b.count
		m.errors += b.errors
		for i := range m.bins {
			m.bins[i] += b.bins[i]
		}
		m.max = max(m.max, b.max)
	}
	ts.buckets = merged
}

func (b *tsBucket) quantile(q float64) time.Duration {
	var n uint64
	for _, c := range b.bins {
		n += uint64(c)
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range b.bins {
		seen += uint64(c)
		if seen >= rank {
			return min(coarseUpper(i), b.max)
		}
	}
	return b.max
}

// points returns the buckets in time order: x is the bucket's start in seconds since the
// first result, span is how much of the bucket the attack covered (the first and the last
// bucket are partial, since buckets are aligned to the clock, not to the attack).
func (ts *timeSeries) points(earliest, latest time.Time) (xs, spans []float64, bs []*tsBucket) {
	keys := make([]int64, 0, len(ts.buckets))
	for k := range ts.buckets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w := int64(ts.width)
	from, to := earliest.UnixNano(), latest.UnixNano()+1
	for _, k := range keys {
		lo, hi := max(k*w, from), min(k*w+w, to)
		xs = append(xs, float64(k*w-from)/1e9)
		spans = append(spans, float64(max(hi-lo, 0))/1e9)
		bs = append(bs, ts.buckets[k])
	}
	return xs, spans, bs
}

// PNG file names written by WritePNGs.
const (
	PNGHistogram  = "latency-histogram.png"
	PNGOverTime   = "latency-over-time.png"
	PNGThroughput = "throughput-over-time.png"
)

var (
	colorP50  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorP90  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colorP99  = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colorMax  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colorFail = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// WritePNGs draws the latency histogram, latency percentiles over time and throughput over
// time into dir.
func WritePNGs(dir string, sum *Summary, ts *timeSeries, buckets []time.Duration) error {
	rep := sum.Report(buckets, Rate{})
	if err := savePlot(filepath.Join(dir, PNGHistogram), histogramPlot(&rep)); err != nil {
		return err
	}
	for len(ts.buckets) > plotPoints {
		ts.compact()
	}
	xs, spans, bs := ts.points(sum.earliest, sum.latest)
	if err := savePlot(filepath.Join(dir, PNGOverTime), overTimePlot(xs, bs)); err != nil {
		return err
	}
	return savePlot(filepath.Join(dir, PNGThroughput), throughputPlot(xs, spans, bs, ts.width))
}

func savePlot(path string, p *plot.Plot) error {
	p.Title.Padding = vg.Points(8)
	p.Title.TextStyle.Font.Size = vg.Points(13)
	wt, err := p.WriterTo(9*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { _, err := wt.WriteTo(w); return err })
}

func histogramPlot(rep *Report) *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latency histogram (%d responses, p50 %s, p99 %s)", rep.Latency.Count, fmtDur(rep.Latency.P50), fmtDur(rep.Latency.P99))
	p.Y.Label.Text = "% of responses"
	p.X.Label.Text = "latency"
	vals := make(plotter.Values, len(rep.Histogram))
	names := make([]string, len(rep.Histogram))
	for i, b := range rep.Histogram {
		vals[i] = b.Percent
		names[i] = fmtEdge(b.Low) + "-" + fmtEdge(b.High)
		if i == len(rep.Histogram)-1 {
			names[i] = ">=" + fmtEdge(b.Low)
		}
	}
	if len(vals) == 0 {
		return p
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(min(40, 500/float64(len(vals)))))
	if err == nil {
		bars.Color = colorP50
		bars.LineStyle.Width = 0
		p.Add(bars)
		p.NominalX(names...)
		p.X.Min, p.X.Max = -0.6, float64(len(vals))-0.4
	}
	p.Add(plotter.NewGrid())
	p.X.Tick.Label.Font.Size = vg.Points(8)
	return p
}

func overTimePlot(xs []float64, bs []*tsBucket) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Latency over time"
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = "latency (ms)"
	p.Add(plotter.NewGrid())
	series := []struct {
		name string
		c    color.Color
		f    func(*tsBucket) time.Duration
	}{
		{"max", colorMax, func(b *tsBucket) time.Duration { return b.max }},
		{"p99", colorP99, func(b *tsBucket) time.Duration { return b.quantile(0.99) }},
		{"p90", colorP90, func(b *tsBucket) time.Duration { return b.quantile(0.90) }},
		{"p50", colorP50, func(b *tsBucket) time.Duration { return b.quantile(0.50) }},
	}
	for _, s := range series {
		pts := make(plotter.XYs, 0, len(xs))
		for i, b := range bs {
			if b.count > b.errors || b.max > 0 {
				pts = append(pts, plotter.XY{X: xs[i], Y: float64(s.f(b)) / 1e6})
			}
		}
		addLine(p, s.name, s.c, pts)
	}
	finishAxes(p)
	return p
}

func throughputPlot(xs, spans []float64, bs []*tsBucket, width time.Duration) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Requests per second over time (by send time)"
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = "requests/s"
	p.Add(plotter.NewGrid())
	for _, s := range []struct {
		name string
		c    color.Color
		f    func(*tsBucket) uint64
	}{
		{"all", colorP50, func(b *tsBucket) uint64 { return b.count }},
		{"failed", colorFail, func(b *tsBucket) uint64 { return b.errors }},
	} {
		pts := make(plotter.XYs, 0, len(xs))
		for i, b := range bs {
			// A sliver of a bucket at either end would plot a rate from a handful of requests.
			if spans[i] >= width.Seconds()/4 {
				pts = append(pts, plotter.XY{X: xs[i], Y: float64(s.f(b)) / spans[i]})
			}
		}
		addLine(p, s.name, s.c, pts)
	}
	finishAxes(p)
	return p
}

// finishAxes starts the y axis at zero and leaves headroom above the data for the legend.
func finishAxes(p *plot.Plot) {
	p.Legend.Top = true
	p.Legend.Left = true
	p.Y.Min = 0
	p.Y.Max *= 1.25
}

// addLine draws pts as one named line; an empty series draws nothing.
func addLine(p *plot.Plot, name string, c color.Color, pts plotter.XYs) {
	if len(pts) == 0 {
		return
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return
	}
	l.Color = c
	l.Width = vg.Points(1.2)
	if name == "max" {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		l.Width = vg.Points(0.8)
	}
	p.Add(l)
	p.Legend.Add(name, l)
}
