package evaluate

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/model"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	colorNow      = color.RGBA{R: 200, G: 60, B: 40, A: 255}
	colorTraining = color.RGBA{R: 60, G: 90, B: 180, A: 255}
	colorGrey     = color.RGBA{R: 150, G: 150, B: 150, A: 255}
)

// plotPNGs renders the report's plots, by file name.
func plotPNGs(r *Report) ([][2]string, map[string][]byte, error) {
	type named struct {
		file, title string
		build       func(*Report) (*plot.Plot, error)
	}
	plots := []named{
		{"calibration.png", "Calibration now and at training", calibrationPlot},
		{"scores.png", "Predicted probabilities now and at training", scoresPlot},
	}
	if r.Drift != nil {
		plots = append(plots, named{"psi.png", "Drift (PSI) per feature and of the predictions", psiPlot})
	}
	order := make([][2]string, 0, len(plots))
	out := map[string][]byte{}
	for _, p := range plots {
		pl, err := p.build(r)
		if err != nil {
			return nil, nil, fmt.Errorf("could not draw %s: %w", p.file, err)
		}
		wt, err := pl.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
		if err != nil {
			return nil, nil, fmt.Errorf("could not render %s: %w", p.file, err)
		}
		var buf bytes.Buffer
		if _, err := wt.WriteTo(&buf); err != nil {
			return nil, nil, err
		}
		out[p.file] = buf.Bytes()
		order = append(order, [2]string{p.file, p.title})
	}
	return order, out, nil
}

func writePlots(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("could not create plots directory: %w", err)
	}
	_, pngs, err := plotPNGs(r)
	if err != nil {
		return err
	}
	for name, b := range pngs {
		err := atomicfile.Write(filepath.Join(dir, name), 0o644, func(w io.Writer) error { _, err := w.Write(b); return err })
		if err != nil {
			return err
		}
	}
	return nil
}

func line(p *plot.Plot, name string, c color.Color, pts plotter.XYs, dashed bool) error {
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color, s.Color = c, c
	l.Width = vg.Points(2)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

func calibrationPlot(r *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Calibration (Brier now %.4f)", r.Now.Brier)
	p.X.Label.Text = "predicted delay probability (bin)"
	p.Y.Label.Text = "observed delay rate"
	var now, trained plotter.XYs
	hi := 0.05
	for _, b := range r.Calibration {
		mid := (b.Low + b.High) / 2
		if b.Rows > 0 {
			now = append(now, plotter.XY{X: float64(b.MeanPredicted), Y: float64(b.Observed)})
			hi = max(hi, b.High, float64(b.Observed))
		}
		if b.TrainingRows > 0 && !math.IsNaN(float64(b.TrainingObserved)) {
			trained = append(trained, plotter.XY{X: mid, Y: float64(b.TrainingObserved)})
			hi = max(hi, b.High, float64(b.TrainingObserved))
		}
	}
	hi = min(1, hi*1.05)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, hi, 0, hi
	p.Add(plotter.NewGrid())
	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: hi, Y: hi}})
	if err != nil {
		return nil, err
	}
	diag.Color, diag.Dashes = colorGrey, []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(diag)
	if len(trained) > 0 {
		if err := line(p, "at training (held-out rows)", colorTraining, trained, true); err != nil {
			return nil, err
		}
	}
	if err := line(p, "now", colorNow, now, false); err != nil {
		return nil, err
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

func scoresPlot(r *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Distribution of predicted probabilities"
	p.X.Label.Text = "predicted delay probability (bin)"
	p.Y.Label.Text = "share of rows"
	n := len(r.ScoreBins)
	var now, trained plotter.XYs
	var total, ttotal float64
	for j := range n {
		total += r.ScoreBins[j]
	}
	tcounts := make([]float64, n)
	for _, b := range r.Calibration {
		j := model.PredictionBin((b.Low+b.High)/2, n)
		tcounts[j] = float64(b.TrainingRows)
		ttotal += float64(b.TrainingRows)
	}
	for j := range n {
		mid := (float64(j) + 0.5) / float64(n)
		now = append(now, plotter.XY{X: mid, Y: r.ScoreBins[j] / max(total, 1)})
		if ttotal > 0 {
			trained = append(trained, plotter.XY{X: mid, Y: tcounts[j] / ttotal})
		}
	}
	p.Add(plotter.NewGrid())
	if len(trained) > 0 {
		if err := line(p, "at training (held-out rows)", colorTraining, trained, true); err != nil {
			return nil, err
		}
	}
	if err := line(p, "now", colorNow, now, false); err != nil {
		return nil, err
	}
	p.Legend.Top = true
	return p, nil
}

func psiPlot(r *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Population stability index against the training baseline"
	p.X.Label.Text = "PSI"
	names := []string{"predictions"}
	vals := plotter.Values{finite(float64(r.Drift.PredictionPSI))}
	for _, f := range r.Drift.Features {
		names = append(names, f.Variable)
		vals = append(vals, finite(float64(f.PSI)))
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return nil, err
	}
	bars.Horizontal = true
	bars.Color = colorNow
	p.Add(plotter.NewGrid(), bars)
	p.NominalY(names...)
	for _, o := range r.Objectives {
		if o.Metric != MetricPredictionPSI && o.Metric != MetricFeaturePSI {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: o.Bound, Y: -0.5}, {X: o.Bound, Y: float64(len(names)) - 0.5}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes = colorGrey, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(o.Name+" bound", l)
	}
	p.Legend.Top = true
	return p, nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Model health: {{.R.Model}} {{.R.Version}}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}.breached{color:#b00;font-weight:bold}.met{color:#070}</style></head>
<body><h1>Model health: {{.R.Model}} {{.R.Version}}</h1>
<p>{{.Header}}</p><p class="{{if .Healthy}}met{{else}}breached{{end}}">{{.Verdict}}</p>
{{range .Tables}}{{if .T.Head}}<h2>{{.Title}}</h2><table><tr>{{range .T.Head}}<th>{{.}}</th>{{end}}</tr>
{{range .T.Rows}}<tr>{{range .}}<td class="{{.}}">{{.}}</td>{{end}}</tr>{{end}}</table>{{end}}{{end}}
<h2>Confusion at {{printf "%.4f" .R.Threshold}}</h2><table><tr><th></th><th>predicted delayed</th><th>predicted on time</th></tr>
<tr><td>delayed</td><td>{{.R.Now.Confusion.TP}}</td><td>{{.R.Now.Confusion.FN}}</td></tr>
<tr><td>on time</td><td>{{.R.Now.Confusion.FP}}</td><td>{{.R.Now.Confusion.TN}}</td></tr></table>
{{range .Notes}}<p>note: {{.}}</p>{{end}}
{{range .Plots}}<h2>{{.Title}}</h2><img alt="{{.Title}}" src="data:image/png;base64,{{.Data}}">{{end}}
</body></html>
`))

type htmlTable struct {
	Title string
	T     struct {
		Head []string
		Rows [][]string
	}
}

func writeHTML(w io.Writer, r *Report) error {
	order, pngs, err := plotPNGs(r)
	if err != nil {
		return err
	}
	type img struct{ Title, Data string }
	var imgs []img
	for _, o := range order {
		imgs = append(imgs, img{o[1], base64.StdEncoding.EncodeToString(pngs[o[0]])})
	}
	q, d, o := r.tables()
	var tables []htmlTable
	for _, t := range []struct {
		title string
		t     table
	}{{"Objectives", o}, {"Quality", q}, {"Drift (PSI against the training baseline)", d}} {
		var h htmlTable
		h.Title, h.T.Head, h.T.Rows = t.title, t.t.head, t.t.rows
		tables = append(tables, h)
	}
	return htmlTemplate.Execute(w, map[string]any{
		"R": r, "Header": r.header(), "Healthy": r.Healthy(), "Verdict": verdict(r),
		"Tables": tables, "Notes": r.Notes, "Plots": imgs,
	})
}
