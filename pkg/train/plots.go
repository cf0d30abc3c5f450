package train

import (
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotFiles are the files writePlots writes into its directory.
var plotFiles = []string{"roc.png", "calibration.png"}

// writePlots draws roc.png (the ROC curve against chance) and calibration.png (observed delay
// rate per bin of predicted probability against the diagonal) for the held-out split.
func writePlots(dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("could not create plots directory: %w", err)
	}
	roc, err := rocPlot(r)
	if err != nil {
		return err
	}
	if err := savePlot(roc, filepath.Join(dir, plotFiles[0])); err != nil {
		return err
	}
	cal, err := calibrationPlot(r)
	if err != nil {
		return err
	}
	return savePlot(cal, filepath.Join(dir, plotFiles[1]))
}

func savePlot(p *plot.Plot, path string) error {
	wt, err := p.WriterTo(5*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("could not render %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}

var grey = color.RGBA{R: 150, G: 150, B: 150, A: 255}

// rocPoints returns the ROC curve's (false positive rate, true positive rate) points: one per
// distinct score, thinned to steps of at least 1/2000 in either rate, so a plot of millions
// of held-out rows stays small.
func rocPoints(p []float64, y []bool) plotter.XYs {
	var pos, neg float64
	for _, v := range y {
		if v {
			pos++
		} else {
			neg++
		}
	}
	pos, neg = max(pos, 1), max(neg, 1)
	const step = 1.0 / 2000
	pts := plotter.XYs{{X: 0, Y: 0}}
	var last plotter.XY
	sweep(p, y, func(_, tp, fp float64) {
		last = plotter.XY{X: fp / neg, Y: tp / pos}
		if prev := pts[len(pts)-1]; last.X-prev.X >= step || last.Y-prev.Y >= step {
			pts = append(pts, last)
		}
	})
	if pts[len(pts)-1] != last {
		pts = append(pts, last)
	}
	return pts
}

func rocPlot(r *Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ROC, held-out split (AUC %.3f)", r.Metrics.ROCAUC)
	p.X.Label.Text = "false positive rate"
	p.Y.Label.Text = "true positive rate (recall)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Add(plotter.NewGrid())
	curve, err := plotter.NewLine(rocPoints(r.TestProb, r.TestDelayed))
	if err != nil {
		return nil, err
	}
	curve.Width = vg.Points(2)
	curve.Color = plotter.DefaultLineStyle.Color
	chance, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return nil, err
	}
	chance.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	chance.Color = grey
	c := r.Metrics.Confusion
	op, err := plotter.NewScatter(plotter.XYs{{X: ratio(c.FP, c.FP+c.TN), Y: ratio(c.TP, c.TP+c.FN)}})
	if err != nil {
		return nil, err
	}
	op.Shape = draw.CircleGlyph{}
	op.Radius = vg.Points(4)
	op.Color = color.RGBA{R: 200, A: 255}
	p.Add(chance, curve, op)
	p.Legend.Add("model", curve)
	p.Legend.Add(fmt.Sprintf("threshold %.3f", r.Metrics.Threshold), op)
	p.Legend.Add("chance", chance)
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(10), vg.Points(10)
	return p, nil
}

// calibrationBins groups predictions into equal-width probability bins and returns each
// non-empty bin's mean prediction, observed delay rate and size.
func calibrationBins(p []float64, y []bool, bins int) (pts plotter.XYs, sizes []int) {
	sumP := make([]float64, bins)
	sumY := make([]float64, bins)
	n := make([]int, bins)
	for i, v := range p {
		b := min(int(v*float64(bins)), bins-1)
		sumP[b] += v
		if y[i] {
			sumY[b]++
		}
		n[b]++
	}
	for b := range n {
		if n[b] > 0 {
			pts = append(pts, plotter.XY{X: sumP[b] / float64(n[b]), Y: sumY[b] / float64(n[b])})
			sizes = append(sizes, n[b])
		}
	}
	return pts, sizes
}

func calibrationPlot(r *Result) (*plot.Plot, error) {
	pts, sizes := calibrationBins(r.TestProb, r.TestDelayed, 10)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Calibration, held-out split (Brier %.4f)", r.Metrics.Brier)
	p.X.Label.Text = "mean predicted delay probability (10 bins)"
	p.Y.Label.Text = "observed delay rate"
	hi := 0.0
	for _, pt := range pts {
		hi = max(hi, pt.X, pt.Y)
	}
	hi = min(1, hi*1.1+0.02)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, hi, 0, hi
	p.Add(plotter.NewGrid())
	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: hi, Y: hi}})
	if err != nil {
		return nil, err
	}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	diag.Color = grey
	line, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return nil, err
	}
	points.Shape = draw.CircleGlyph{}
	points.Radius = vg.Points(3)
	labels := make([]string, len(sizes))
	for i, s := range sizes {
		labels[i] = fmt.Sprintf("n=%d", s)
	}
	lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].XAlign = draw.XLeft
		lbl.Offset = vg.Point{X: vg.Points(5), Y: -vg.Points(10)}
	}
	p.Add(diag, line, points, lbl)
	p.Legend.Add("model", line, points)
	p.Legend.Add("perfect calibration", diag)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), -vg.Points(5)
	return p, nil
}
