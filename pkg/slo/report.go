package slo

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Format names a report encoding.
type Format string

// The report formats. FormatText is the human one, named as in every other verb's -o;
// FormatTable is its old name, still accepted.
const (
	FormatText     Format = "text"
	FormatTable    Format = "table"
	FormatJSON     Format = "json"
	FormatMarkdown Format = "markdown"
	FormatHTML     Format = "html"
)

// Formats lists every report format, in the order help texts show them.
var Formats = []Format{FormatText, FormatJSON, FormatMarkdown, FormatHTML}

// Reporter writes a report in one format, like vegeta's reporters.
type Reporter func(w io.Writer) error

// NewReporter returns the reporter for format f.
func NewReporter(rep *Report, f Format) (Reporter, error) {
	switch f {
	case FormatText, FormatTable, "":
		return func(w io.Writer) error { return writeTable(w, rep) }, nil
	case FormatJSON:
		return func(w io.Writer) error { return writeJSON(w, rep) }, nil
	case FormatMarkdown:
		return func(w io.Writer) error { return writeMarkdown(w, rep) }, nil
	case FormatHTML:
		return func(w io.Writer) error { return writeHTML(w, rep) }, nil
	}
	return nil, fmt.Errorf("unknown output format %q (want text, json, markdown or html)", f)
}

// sliText is the SLI cell: "99.97%", "p90 3.1ms (99.2% <= 400ms)", "41.2 req/s", "45.3MB".
func sliText(r ObjectiveResult) string {
	if r.Status == StatusSkipped || r.Status == StatusNoData && r.Kind != KindMemory && r.Kind != KindThroughput && r.Kind != KindModel {
		return "-"
	}
	approx := ""
	if r.Estimate {
		approx = "~"
	}
	switch r.Kind {
	case KindAvailability, KindRatio:
		return FormatPercent(float64(r.SLI))
	case KindLatency:
		share := FormatPercent(float64(r.SLI))
		if !r.objective.Percentile {
			return approx + share
		}
		return fmt.Sprintf("%s %s%s (%s <= %s)", PercentileName(r.objective.Target), approx, formatLatency(float64(r.Value)),
			share, FormatDuration(r.objective.Threshold))
	case KindThroughput:
		if math.IsNaN(float64(r.Value)) {
			return "-"
		}
		return approx + FormatRate(float64(r.Value))
	case KindMemory:
		if math.IsNaN(float64(r.Value)) {
			return "-"
		}
		return FormatBytes(float64(r.Value))
	case KindModel:
		if math.IsNaN(float64(r.Value)) {
			return "-"
		}
		return r.objective.ModelMetric + " " + strconv.FormatFloat(float64(r.Value), 'f', 4, 64)
	}
	return "-"
}

func formatLatency(seconds float64) string {
	if math.IsNaN(seconds) {
		return "n/a"
	}
	if seconds >= float64(math.MaxInt64)/1e9 || math.IsInf(seconds, 1) {
		return "∞"
	}
	return FormatDuration(time.Duration(seconds * 1e9))
}

func statusText(s Status) string {
	switch s {
	case StatusMet:
		return "MET"
	case StatusBreached:
		return "BREACHED"
	case StatusNoData:
		return "NO DATA"
	}
	return "SKIPPED"
}

// budgetCells are the error budget columns: allowed, bad, consumed, remaining, burn rate,
// share of the window's budget.
func budgetCells(r ObjectiveResult) [6]string {
	b := r.Budget
	if b == nil {
		return [6]string{"-", "-", "-", "-", "-", "-"}
	}
	return [6]string{
		formatCount(b.Allowed), formatCount(b.Bad), formatShare(float64(b.Consumed)),
		formatShare(float64(b.Remaining)), formatBurn(float64(b.BurnRate)), formatShare(float64(b.WindowConsumed)),
	}
}

func formatCount(v float64) string {
	return formatFloat(math.Round(v*100) / 100)
}

// formatShare prints a budget share as a percentage with three significant digits:
// "612%", "89.5%", "0.0142%".
func formatShare(v float64) string {
	p := v * 100
	switch {
	case math.IsNaN(p):
		return "n/a"
	case math.IsInf(p, 1):
		return "∞"
	case math.IsInf(p, -1):
		return "-∞"
	case math.Abs(p) >= 100:
		return fmt.Sprintf("%.0f%%", p)
	case math.Abs(p) >= 10:
		return fmt.Sprintf("%.1f%%", p)
	case math.Abs(p) >= 1:
		return fmt.Sprintf("%.2f%%", p)
	case p == 0:
		return "0%"
	}
	return strconv.FormatFloat(p, 'g', 3, 64) + "%"
}

func formatBurn(v float64) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	return fmt.Sprintf("%.2fx", v)
}

// periodLine explains what period the numbers cover against the SLO window.
func periodLine(rep *Report) string {
	src := rep.Source
	w := formatWindow(rep.Window)
	switch {
	case src.Period <= 0:
		return fmt.Sprintf("The SLO window is %s; the measured period is unknown, so no window budget share is given.", w)
	case src.Kind == "prometheus" && src.Period >= rep.Window:
		return fmt.Sprintf("These numbers cover the whole %s SLO window.", w)
	}
	share := FormatPercent(src.Period.Seconds() / rep.Window.Seconds())
	return fmt.Sprintf("This %s covers %s, %s of the %s SLO window: budgets and burn rates are for that period, "+
		"and \"window budget\" is the share of the whole window's budget it would spend. It does not show the %s SLO is met.",
		periodNoun(src.Kind), FormatDuration(src.Period), share, w, w)
}

func periodNoun(kind string) string {
	switch kind {
	case "scrape":
		return "scrape interval"
	case "prometheus":
		return "query range"
	}
	return "run"
}

func sourceLine(rep *Report) string {
	src := rep.Source
	what := map[string]string{"results": "results", "scrape": "scrape of", "prometheus": "Prometheus at"}[src.Kind]
	s := fmt.Sprintf("%s %s: %s requests in scope", what, strings.Join(src.Inputs, ", "), formatCount(src.Requests))
	if src.Excluded > 0 {
		s += fmt.Sprintf(", %s outside routes", formatCount(src.Excluded))
	}
	if !src.Start.IsZero() {
		s += fmt.Sprintf(", %s to %s", src.Start.UTC().Format(time.RFC3339), src.End.UTC().Format(time.RFC3339))
	}
	return s
}

func writeTable(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "SLO report: %s (window %s, routes %s)\n", rep.Service, formatWindow(rep.Window), rep.Routes)
	fmt.Fprintf(ew, "Source: %s\n\n", sourceLine(rep))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECTIVE\tPROMISE\tSLI\tSTATUS\tALLOWED BAD\tBAD\tCONSUMED\tREMAINING\tBURN RATE\tWINDOW BUDGET")
	for _, r := range rep.Objectives {
		c := budgetCells(r)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Objective, sliText(r), statusText(r.Status),
			c[0], c[1], c[2], c[3], c[4], c[5])
	}
	tw.Flush()
	fmt.Fprintln(ew)
	for _, n := range notes(rep) {
		fmt.Fprintf(ew, "* %s\n", n)
	}
	if l := rep.Latency; l != nil {
		fmt.Fprintf(ew, "\nLatency of responses: min %s, mean %s, p50 %s, p90 %s, p99 %s, max %s\n",
			FormatDuration(l.Min), FormatDuration(l.Mean), FormatDuration(l.P50), FormatDuration(l.P90), FormatDuration(l.P99), FormatDuration(l.Max))
	}
	fmt.Fprintf(ew, "\n%s\n", rep.Verdict)
	return ew.err
}

// notes are the remarks under a report: the period caveat, estimates, skipped objectives,
// budget exhaustion times.
func notes(rep *Report) []string {
	out := []string{periodLine(rep)}
	for _, r := range rep.Objectives {
		if r.Note != "" {
			out = append(out, fmt.Sprintf("%s: %s", r.Name, r.Note))
		}
		switch {
		case r.Status == StatusNoData && r.Kind == KindRatio:
			out = append(out, fmt.Sprintf("%s: its PromQL counted no events in the range, so it cannot be judged (counted as missed)", r.Name))
		case r.Status == StatusNoData:
			out = append(out, fmt.Sprintf("%s: no requests matched routes %s, so it cannot be judged (counted as missed)", r.Name, rep.Routes))
		}
		if b := r.Budget; b != nil && b.Exhaustion > 0 && float64(b.BurnRate) > 1 {
			out = append(out, fmt.Sprintf("%s: at burn rate %s the %s budget lasts %s", r.Name, formatBurn(float64(b.BurnRate)),
				formatWindow(rep.Window), formatLongDuration(b.Exhaustion)))
		}
		if b := r.Budget; b != nil && math.IsInf(float64(b.BurnRate), 1) {
			out = append(out, fmt.Sprintf("%s: a 100%% target has no error budget; any bad request breaches it", r.Name))
		}
	}
	return out
}

func formatLongDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
	if d >= time.Hour {
		return fmt.Sprintf("%.1fh", d.Hours())
	}
	return d.Round(time.Second).String()
}

func writeMarkdown(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	mark := "✅"
	if !rep.Met {
		mark = "❌"
	}
	fmt.Fprintf(ew, "### %s SLO report: %s\n\n", mark, mdEscape(rep.Service))
	fmt.Fprintf(ew, "**%s**\n\n", mdEscape(rep.Verdict))
	fmt.Fprintf(ew, "Window %s · routes `%s` · %s\n\n", formatWindow(rep.Window), rep.Routes, mdEscape(sourceLine(rep)))
	fmt.Fprintln(ew, "| Objective | Promise | SLI | Status | Allowed bad | Bad | Budget consumed | Remaining | Burn rate | Window budget |")
	fmt.Fprintln(ew, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rep.Objectives {
		c := budgetCells(r)
		icon := map[Status]string{StatusMet: "✅", StatusBreached: "❌", StatusNoData: "⚠️", StatusSkipped: "➖"}[r.Status]
		fmt.Fprintf(ew, "| %s | %s | %s | %s %s | %s | %s | %s | %s | %s | %s |\n", mdEscape(r.Name), mdEscape(r.Objective), mdEscape(sliText(r)),
			icon, statusText(r.Status), c[0], c[1], c[2], c[3], c[4], c[5])
	}
	fmt.Fprintln(ew)
	for _, n := range notes(rep) {
		fmt.Fprintf(ew, "- %s\n", mdEscape(n))
	}
	if l := rep.Latency; l != nil {
		fmt.Fprintf(ew, "\nLatency of responses: min %s · mean %s · p50 %s · p90 %s · p99 %s · max %s\n",
			FormatDuration(l.Min), FormatDuration(l.Mean), FormatDuration(l.P50), FormatDuration(l.P90), FormatDuration(l.P99), FormatDuration(l.Max))
	}
	fmt.Fprintf(ew, "\n<sub>delayctl slo report · %s</sub>\n", rep.GeneratedAt.UTC().Format(time.RFC3339))
	return ew.err
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`).Replace(s)
}

// jsonReport is the JSON shape of a report: durations in seconds, NaN as null.
type jsonReport struct {
	*Report
	WindowSeconds float64         `json:"window_seconds"`
	PeriodSeconds float64         `json:"period_seconds"`
	Objectives    []jsonObjective `json:"objectives"`
	Latency       *jsonLatency    `json:"latency,omitempty"`
	Notes         []string        `json:"notes"`
}

type jsonObjective struct {
	ObjectiveResult
	Budget *jsonBudget `json:"error_budget,omitempty"`
}

type jsonBudget struct {
	*Budget
	ExhaustionSeconds Number `json:"exhaustion_seconds"`
}

type jsonLatency struct {
	Min  float64 `json:"min_seconds"`
	Mean float64 `json:"mean_seconds"`
	P50  float64 `json:"p50_seconds"`
	P90  float64 `json:"p90_seconds"`
	P99  float64 `json:"p99_seconds"`
	Max  float64 `json:"max_seconds"`
}

func writeJSON(w io.Writer, rep *Report) error {
	jr := jsonReport{Report: rep, WindowSeconds: rep.Window.Seconds(), PeriodSeconds: rep.Source.Period.Seconds(), Notes: notes(rep)}
	for _, o := range rep.Objectives {
		jo := jsonObjective{ObjectiveResult: o}
		if o.Budget != nil {
			ex := Number(math.Inf(1)) // nothing burns: the budget lasts for ever
			switch {
			case math.IsInf(float64(o.Budget.BurnRate), 1):
				ex = 0
			case o.Budget.Exhaustion > 0:
				ex = Number(o.Budget.Exhaustion.Seconds())
			}
			jo.Budget = &jsonBudget{Budget: o.Budget, ExhaustionSeconds: ex}
		}
		jr.Objectives = append(jr.Objectives, jo)
	}
	if l := rep.Latency; l != nil {
		jr.Latency = &jsonLatency{l.Min.Seconds(), l.Mean.Seconds(), l.P50.Seconds(), l.P90.Seconds(), l.P99.Seconds(), l.Max.Seconds()}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jr)
}

// errWriter keeps the first write error so report writers can print freely and check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
