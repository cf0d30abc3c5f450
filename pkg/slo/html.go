package slo

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// The HTML report is one self-contained page: inline CSS and SVG charts, no scripts and no
// external resources, so it can be attached to a CI run or mailed as is.

type htmlRow struct {
	ObjectiveResult
	SLIText, StatusText, Class string
	Cells                      [6]string
	// BarPct is the budget consumed, capped at 150 for drawing; BarLabel prints it.
	BarPct   float64
	BarLabel string
}

type htmlData struct {
	*Report
	WindowText string
	Source     string
	Rows       []htmlRow
	Notes      []string
	Generated  string
	CDF        template.HTML
	Timeline   template.HTML
	Latency    string
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"barsHeight": barsHeightFn, "barY": barYFn, "barW": barWFn, "add": addFn, "barColor": barColorFn,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SLO report: {{.Service}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.1rem;margin:1.8rem 0 .5rem}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:6px;font-weight:600;color:#fff}
.met{background:#1a7f37}.breached,.no_data{background:#cf222e}.skipped{background:#6e7781}
.meta{color:#57606a}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
th,td{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{padding:.1rem .5rem;border-radius:1rem;color:#fff;font-size:12px;font-weight:600}
ul.notes{color:#57606a;padding-left:1.2rem}
svg text{font:12px system-ui,sans-serif;fill:#1f2328}
</style>
</head>
<body>
<h1>SLO report: {{.Service}}</h1>
<p><span class="verdict {{if .Met}}met{{else}}breached{{end}}">{{.Verdict}}</span></p>
<p class="meta">Window {{.WindowText}} · routes <code>{{.Routes}}</code><br>{{.Source}}<br>Generated {{.Generated}}</p>
<h2>Objectives</h2>
<table>
<tr><th>Objective</th><th>Promise</th><th>SLI</th><th>Status</th><th>Allowed bad</th><th>Bad</th><th>Budget consumed</th><th>Remaining</th><th>Burn rate</th><th>Window budget</th></tr>
{{range .Rows}}<tr><td><strong>{{.Name}}</strong>{{if .Description}}<br><span class="meta">{{.Description}}</span>{{end}}</td><td>{{.Objective}}</td><td>{{.SLIText}}</td><td><span class="pill {{.Class}}">{{.StatusText}}</span></td>{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</table>
<h2>Error budget consumed in the measured period</h2>
<svg width="100%" viewBox="0 0 900 {{len .Rows | barsHeight}}" role="img" aria-label="error budget consumed per objective">
{{range $i, $r := .Rows}}{{$y := barY $i}}<text x="0" y="{{add $y 15}}">{{$r.Name}}</text>
<rect x="200" y="{{$y}}" width="600" height="20" fill="#eaeef2"/>
{{if $r.Budget}}<rect x="200" y="{{$y}}" width="{{barW $r.BarPct}}" height="20" fill="{{barColor $r.BarPct}}"/>
<text x="{{add (barW $r.BarPct) 206}}" y="{{add $y 15}}">{{$r.BarLabel}}</text>{{else}}<text x="206" y="{{add $y 15}}">no error budget ({{$r.Kind}})</text>{{end}}
{{end}}<line x1="600" y1="0" x2="600" y2="{{len .Rows | barsHeight}}" stroke="#cf222e" stroke-dasharray="4 3"/>
<text x="604" y="10">100%</text>
</svg>
{{if .CDF}}<h2>Latency distribution (share of responses at or under a latency)</h2>
<p class="meta">{{.Latency}}</p>
{{.CDF}}{{end}}
{{if .Timeline}}<h2>Requests and errors per second</h2>
{{.Timeline}}{{end}}
<h2>Notes</h2>
<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>
</body>
</html>
`))

func barsHeightFn(n int) int { return n*30 + 10 }
func barYFn(i int) int       { return i*30 + 5 }
func barWFn(pct float64) int { return int(math.Round(math.Min(pct, 150) / 150 * 600)) }
func addFn(a, b int) int     { return a + b }
func barColorFn(pct float64) string {
	switch {
	case pct > 100:
		return "#cf222e"
	case pct > 50:
		return "#bf8700"
	}
	return "#1a7f37"
}

func writeHTML(w io.Writer, rep *Report) error {
	d := htmlData{Report: rep, WindowText: formatWindow(rep.Window), Source: sourceLine(rep), Notes: notes(rep),
		Generated: rep.GeneratedAt.UTC().Format(time.RFC3339)}
	for _, r := range rep.Objectives {
		row := htmlRow{ObjectiveResult: r, SLIText: sliText(r), StatusText: statusText(r.Status), Class: string(r.Status), Cells: budgetCells(r)}
		if b := r.Budget; b != nil {
			pct := float64(b.Consumed) * 100
			row.BarPct, row.BarLabel = pct, FormatPercent(float64(b.Consumed))
			if math.IsInf(pct, 1) {
				row.BarPct, row.BarLabel = 150, "∞ (no budget)"
			}
		}
		d.Rows = append(d.Rows, row)
	}
	if l := rep.Latency; l != nil && len(l.CDF) > 1 {
		d.CDF = cdfSVG(rep)
		d.Latency = fmt.Sprintf("min %s · mean %s · p50 %s · p90 %s · p99 %s · max %s", FormatDuration(l.Min), FormatDuration(l.Mean),
			FormatDuration(l.P50), FormatDuration(l.P90), FormatDuration(l.P99), FormatDuration(l.Max))
	}
	if len(rep.Timeline) > 1 {
		d.Timeline = timelineSVG(rep)
	}
	return htmlTmpl.Execute(w, d)
}

// Chart geometry shared by the two line charts.
const (
	chartW, chartH         = 900, 300
	padL, padR, padT, padB = 60, 20, 15, 40
)

// cdfSVG draws the latency CDF on a log-scale x axis with a dashed line per latency
// threshold, so "how far from the objective" is visible at a glance.
func cdfSVG(rep *Report) template.HTML {
	pts := rep.Latency.CDF
	lo := math.Max(float64(pts[0].Latency), 1e3) // at least 1µs so the log axis has a floor
	hi := math.Max(float64(pts[len(pts)-1].Latency), lo*10)
	for _, o := range rep.Objectives {
		if o.Kind == KindLatency {
			hi = math.Max(hi, float64(o.objective.Threshold)*1.5)
			lo = math.Min(lo, float64(o.objective.Threshold)/1.5)
		}
	}
	lx0, lx1 := math.Log10(lo), math.Log10(hi)
	x := func(v float64) float64 {
		v = math.Max(v, lo)
		return padL + (math.Log10(v)-lx0)/(lx1-lx0)*(chartW-padL-padR)
	}
	y := func(share float64) float64 { return padT + (1-share)*(chartH-padT-padB) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="100%%" viewBox="0 0 %d %d" role="img" aria-label="latency distribution">`, chartW, chartH)
	for _, s := range []float64{0, 0.5, 0.9, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eaeef2"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, y(s), chartW-padR, y(s), padL-6, y(s)+4, FormatPercent(s))
	}
	for e := math.Ceil(lx0); e <= lx1; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eaeef2"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			x(v), padT, x(v), chartH-padB, x(v), chartH-padB+16, FormatDuration(time.Duration(v)))
	}
	var poly strings.Builder
	for i, p := range pts {
		if i > 0 { // step: the share jumps at each latency
			fmt.Fprintf(&poly, "%.1f,%.1f ", x(float64(p.Latency)), y(pts[i-1].Share))
		}
		fmt.Fprintf(&poly, "%.1f,%.1f ", x(float64(p.Latency)), y(p.Share))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#0969da" stroke-width="2" points="%s"/>`, strings.TrimSpace(poly.String()))
	for _, o := range rep.Objectives {
		if o.Kind != KindLatency {
			continue
		}
		tx, ty := x(float64(o.objective.Threshold)), y(o.objective.Target)
		color := "#1a7f37"
		if o.Status != StatusMet {
			color = "#cf222e"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="5 4"/>`, tx, padT, tx, chartH-padB, color)
		lx, anchor := tx+6, "start"
		if tx > chartW*0.6 { // keep the label inside the chart
			lx, anchor = tx-6, "end"
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/><text x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, tx, ty, color, lx, ty-6,
			anchor, template.HTMLEscapeString(o.Name+": "+o.Objective))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">latency (log scale)</text></svg>`, (chartW+padL)/2, chartH-4)
	return template.HTML(b.String())
}

// timelineSVG draws requests and errors per second over the run.
func timelineSVG(rep *Report) template.HTML {
	tl := rep.Timeline
	var peak uint64 = 1
	for _, s := range tl {
		peak = max(peak, s.Requests)
	}
	n := float64(len(tl) - 1)
	x := func(i int) float64 { return padL + float64(i)/n*(chartW-padL-padR) }
	y := func(v uint64) float64 { return padT + (1-float64(v)/float64(peak))*(chartH-padT-padB) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="100%%" viewBox="0 0 %d %d" role="img" aria-label="requests and errors per second">`, chartW, chartH)
	for _, f := range []float64{0, 0.5, 1} {
		v := uint64(math.Round(f * float64(peak)))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eaeef2"/><text x="%d" y="%.1f" text-anchor="end">%d/s</text>`,
			padL, y(v), chartW-padR, y(v), padL-6, y(v)+4, v)
	}
	line := func(get func(Second) uint64, color string) {
		var pts strings.Builder
		for i, s := range tl {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(i), y(get(s)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, color, strings.TrimSpace(pts.String()))
	}
	line(func(s Second) uint64 { return s.Requests }, "#0969da")
	line(func(s Second) uint64 { return s.Errors }, "#cf222e")
	start := time.Unix(rep.TimelineFrom, 0).UTC()
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text><text x="%d" y="%d" text-anchor="end">+%ds</text>`, padL, chartH-padB+16,
		start.Format("15:04:05Z"), chartW-padR, chartH-padB+16, len(tl)-1)
	fmt.Fprintf(&b, `<text x="%d" y="%d" style="fill:#0969da">■ requests/s</text><text x="%d" y="%d" style="fill:#cf222e">■ transport errors and 5xx/s</text></svg>`,
		padL+200, chartH-4, padL+340, chartH-4)
	return template.HTML(b.String())
}
