package slo

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"gopkg.in/yaml.v3"
)

// AlertWindow is one row of the multi-window, multi-burn-rate table: the alert fires when
// the error ratio over both Long and Short exceeds the burn factor times the error budget,
// where the factor spends BudgetShare of the window's budget within Long.
type AlertWindow struct {
	Severity    string
	Long, Short time.Duration
	BudgetShare float64
}

// AlertWindows are the SRE workbook's windows (sloth's google-30d): over a 30-day SLO they
// give burn factors 14.4 and 6 (page) and 3 and 1 (ticket).
var AlertWindows = []AlertWindow{
	{"page", time.Hour, 5 * time.Minute, 0.02},
	{"page", 6 * time.Hour, 30 * time.Minute, 0.05},
	{"ticket", 24 * time.Hour, 2 * time.Hour, 0.10},
	{"ticket", 72 * time.Hour, 6 * time.Hour, 0.10},
}

// BurnFactor is how many times faster than "exactly on budget" errors must arrive to spend
// BudgetShare of a window's budget within Long: share * window / long.
func (a AlertWindow) BurnFactor(window time.Duration) float64 {
	return math.Round(a.BudgetShare*window.Seconds()/a.Long.Seconds()*1e4) / 1e4
}

// MaxAlertErrorRatio caps the error ratio any burn-rate alert waits for. Where the
// workbook's factor times the budget is above it (a p90 objective's 10% budget asks for
// 14.4 x 10% = 144%, which no outage reaches), the factor is lowered to
// MaxAlertErrorRatio / budget. A total outage fills the fastest page pair's 1h window to 20%
// within 12 minutes, so every objective pages within 15 minutes of a total outage.
const MaxAlertErrorRatio = 0.2

// AlertFactor is the burn factor the rules use for a over window and an error budget:
// BurnFactor, capped at MaxAlertErrorRatio / budget. ok is false when the cap is not above 1:
// an objective with a budget that large (target 80% or less) cannot both ignore a 1x burn
// and page on an outage within 15 minutes, so it gets no alerts.
func AlertFactor(a AlertWindow, window time.Duration, budget float64) (factor float64, ok bool) {
	limit := math.Round(MaxAlertErrorRatio/budget*1e4) / 1e4
	return min(a.BurnFactor(window), limit), limit > 1
}

// ruleFile is the Prometheus rule file layout (what rulefmt parses).
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Recording rule names, after sloth's.
const (
	recordBadEvents       = "slo:sli_bad_events:increase"
	recordEvents          = "slo:sli_events:increase"
	recordErrorRatio      = "slo:sli_error:ratio_rate"
	recordObjective       = "slo:objective:ratio"
	recordBudget          = "slo:error_budget:ratio"
	recordCurrentBurnRate = "slo:current_burn_rate:ratio"
	recordPeriodBurnRate  = "slo:period_burn_rate:ratio"
	recordBudgetRemaining = "slo:period_error_budget_remaining:ratio"
)

// RulesOptions tunes rule generation.
type RulesOptions struct {
	// Selector holds label matchers added to every selector, e.g. job="delayctl". Memory
	// rules are only written with one, since process_resident_memory_bytes is exported by
	// every Go process Prometheus scrapes.
	Selector string
	// Source names the SLO file in the generated header comment.
	Source string
}

// WriteRules writes Prometheus recording and alerting rules for s's availability and
// latency objectives (and memory ones when a selector is given) to w. Latency thresholds
// must be bucket bounds of the duration histogram. It returns the objectives it wrote no
// rules for, or recording rules without alerts for, each with the reason.
func WriteRules(w io.Writer, s *SLO, opts RulesOptions) (skipped []string, err error) {
	if err := ValidSelector(opts.Selector); err != nil {
		return nil, inputerr.Wrap(err)
	}
	q := newQueries(s, opts.Selector)
	windows := ruleWindows(s.Window)
	var file ruleFile
	eventRules := false
	for _, o := range s.Objectives {
		base := map[string]string{"service": s.Service, "slo": o.Name}
		for k, v := range s.Labels {
			base[k] = v
		}
		for k, v := range o.Labels {
			base[k] = v
		}
		switch o.Kind {
		case KindThroughput:
			skipped = append(skipped, fmt.Sprintf("%s: throughput is demand, not service quality; no rules", o.Name))
			continue
		case KindModel:
			if _, skip := skipQuality(o); skip {
				skipped = append(skipped, fmt.Sprintf("%s: %s needs outcomes, which Prometheus does not have; judge it with delayctl evaluate", o.Name, o.ModelMetric))
				continue
			}
			file.Groups = append(file.Groups, modelGroup(s, o, q, base))
			continue
		case KindMemory:
			if opts.Selector == "" {
				skipped = append(skipped, fmt.Sprintf("%s: memory rules need --selector (e.g. job=\"delayctl\"): %s is exported by every Go process", o.Name, contract.RSS))
				continue
			}
			file.Groups = append(file.Groups, memoryGroup(s, o, q, base))
			continue
		}
		groups, err := objectiveGroups(s, o, q, base, windows)
		if err != nil {
			return nil, inputerr.Wrap(err)
		}
		if len(groups) < 3 {
			skipped = append(skipped, fmt.Sprintf("%s: an error budget of %s leaves no burn factor above 1x that a total outage reaches within 15 minutes (MaxAlertErrorRatio %s): recording rules only, no alerts",
				o.Name, FormatPercent(1-o.Target), FormatPercent(MaxAlertErrorRatio)))
		}
		file.Groups = append(file.Groups, foreignGroups(groups, o, base)...)
		eventRules = eventRules || o.Kind != KindRatio
	}
	if eventRules {
		file.Groups = append(file.Groups, absentGroup(s, q))
	}
	var buf bytes.Buffer
	src := opts.Source
	if src == "" {
		src = "<slo file>"
	}
	fmt.Fprintf(&buf, "# Prometheus rules for the %s SLOs, generated by `delayctl slo rules --slo %s`.\n", s.Service, src)
	fmt.Fprintf(&buf, "# Do not edit: change the SLO file and regenerate. Window %s; multi-window multi-burn-rate alerts.\n", formatWindow(s.Window))
	fmt.Fprintf(&buf, "# Evaluate them at least every %s (evaluation_interval; the default is 1m): the window's ratio sums %s counts.\n",
		promDuration(windows[0]), promDuration(windows[0]))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(file); err != nil {
		return nil, fmt.Errorf("could not encode rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("could not encode rules: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return skipped, err
}

// ruleWindows lists the distinct short and long windows the alerts read, ascending.
func ruleWindows(window time.Duration) []time.Duration {
	set := map[time.Duration]bool{}
	for _, a := range AlertWindows {
		set[a.Long], set[a.Short] = true, true
	}
	var ws []time.Duration
	for w := range set {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
	return ws
}

func withLabels(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// sloSel selects one objective's recorded series.
func sloSel(metric string, s *SLO, o Objective, window string) string {
	sel := fmt.Sprintf("%s{service=%q,slo=%q", metric, s.Service, o.Name)
	if window != "" {
		sel += fmt.Sprintf(",window=%q", window)
	}
	return sel + "}"
}

// objectiveGroups writes an event-based objective's recordings and alerts. The short-window
// error ratios read the served counters directly. The period's ratio is the sum of the 5m
// bad-event counts over the sum of the 5m event counts: a traffic-weighted ratio in which an
// idle 5 minutes adds 0 to both sides, where sloth's average of 5m ratios turns NaN for the
// whole period after one idle window (sloth#531). Every recording is a number at every
// instant once the rules have run, whatever the traffic, restarts or scrape gaps.
func objectiveGroups(s *SLO, o Objective, q queries, base map[string]string, windows []time.Duration) ([]ruleGroup, error) {
	prefix := groupName(s.Service, o.Name)
	budget := math.Round((1-o.Target)*1e12) / 1e12
	short := windows[0]
	shortName, period := promDuration(short), promDuration(s.Window)
	sli, err := sliGroup(s, o, q, base, windows)
	if err != nil {
		return nil, err
	}

	meta := ruleGroup{Name: prefix + "-meta-recordings", Rules: []rule{
		{Record: recordObjective, Expr: fmt.Sprintf("vector(%s)", formatFloat(o.Target)), Labels: base},
		{Record: recordBudget, Expr: fmt.Sprintf("vector(%s)", formatFloat(budget)), Labels: base},
		{Record: recordCurrentBurnRate, Expr: fmt.Sprintf("%s\n/ on (service, slo) group_left\n%s",
			sloSel(recordErrorRatio+shortName, s, o, shortName), sloSel(recordBudget, s, o, "")), Labels: base},
		{Record: recordPeriodBurnRate, Expr: fmt.Sprintf("%s\n/ on (service, slo) group_left\n%s",
			sloSel(recordErrorRatio+period, s, o, period), sloSel(recordBudget, s, o, "")), Labels: base},
		{Record: recordBudgetRemaining, Expr: fmt.Sprintf("1 - %s", sloSel(recordPeriodBurnRate, s, o, "")), Labels: base},
	}}

	alerts := ruleGroup{Name: prefix + "-alerts"}
	for _, sev := range []string{"page", "ticket"} {
		var terms, desc []string
		lowest := math.Inf(1)
		for _, a := range AlertWindows {
			if a.Severity != sev {
				continue
			}
			f, ok := AlertFactor(a, s.Window, budget)
			if !ok {
				return []ruleGroup{sli, meta}, nil
			}
			lowest = min(lowest, f)
			long, sh := promDuration(a.Long), promDuration(a.Short)
			terms = append(terms, fmt.Sprintf("(\n  max(%s > (%s * %s)) without (window)\n  and\n  max(%s > (%s * %s)) without (window)\n)",
				sloSel(recordErrorRatio+long, s, o, long), formatFloat(f), formatFloat(budget),
				sloSel(recordErrorRatio+sh, s, o, sh), formatFloat(f), formatFloat(budget)))
			desc = append(desc, fmt.Sprintf("%sx over %s and %s", formatFloat(f), long, sh))
		}
		alerts.Rules = append(alerts.Rules, rule{
			Alert:  alertName(s.Service, o.Name, "BudgetBurn"),
			Expr:   strings.Join(terms, "\nor\n"),
			Labels: withLabels(base, "severity", sev),
			Annotations: map[string]string{
				"summary": fmt.Sprintf("%s %s SLO (%s) is burning its %s error budget too fast", s.Service, o.Name, o.String(), formatWindow(s.Window)),
				"description": fmt.Sprintf("The error ratio over a long and a short window is above the burn factor times the %s error budget (%s): at %sx the %s budget is gone in %s. %s",
					FormatPercent(1-o.Target), strings.Join(desc, "; "), formatFloat(lowest), formatWindow(s.Window),
					formatWindow(time.Duration(float64(s.Window)/lowest).Round(time.Hour)), severityMeaning[sev]),
			},
		})
	}
	return []ruleGroup{sli, meta, alerts}, nil
}

// sliGroup records the error ratio of o over each alert window and over the whole period.
// Event-based objectives record their short-window bad and valid counts, and the period ratio
// sums those counts, so one idle window cannot poison it; a PromQL ratio objective (sloth,
// OpenSLO) has no counts, so each window's ratio is its own query.
func sliGroup(s *SLO, o Objective, q queries, base map[string]string, windows []time.Duration) (ruleGroup, error) {
	sli := ruleGroup{Name: groupName(s.Service, o.Name) + "-sli-recordings"}
	shortName, period := promDuration(windows[0]), promDuration(s.Window)
	if o.Kind == KindRatio {
		for _, w := range append(windows[:len(windows):len(windows)], s.Window) {
			expr, err := q.errorRatio(o, w)
			if err != nil {
				return sli, err
			}
			sli.Rules = append(sli.Rules, rule{Record: recordErrorRatio + promDuration(w), Expr: expr,
				Labels: withLabels(base, "window", promDuration(w))})
		}
		return sli, nil
	}
	bad, total, err := q.events(o, windows[0])
	if err != nil {
		return sli, err
	}
	sli.Rules = []rule{
		{Record: recordBadEvents + shortName, Expr: orZero(bad), Labels: base},
		{Record: recordEvents + shortName, Expr: orZero(total), Labels: base},
		{Record: recordErrorRatio + shortName, Labels: withLabels(base, "window", shortName),
			Expr: guardedRatio(sloSel(recordBadEvents+shortName, s, o, ""), sloSel(recordEvents+shortName, s, o, ""))},
	}
	for _, w := range windows[1:] {
		expr, err := q.errorRatio(o, w)
		if err != nil {
			return sli, err
		}
		sli.Rules = append(sli.Rules, rule{Record: recordErrorRatio + promDuration(w), Expr: expr,
			Labels: withLabels(base, "window", promDuration(w))})
	}
	sli.Rules = append(sli.Rules, rule{
		Record: recordErrorRatio + period,
		Expr: guardedRatio(
			fmt.Sprintf("sum_over_time(%s[%s])", sloSel(recordBadEvents+shortName, s, o, ""), period),
			fmt.Sprintf("sum_over_time(%s[%s])", sloSel(recordEvents+shortName, s, o, ""), period)),
		Labels: withLabels(base, "window", period),
	})
	return sli, nil
}

// severityMeaning says what each severity asks of the on-call engineer.
var severityMeaning = map[string]string{
	"page":   "Page: act now.",
	"ticket": "Ticket: act within a working day.",
}

func memoryGroup(s *SLO, o Objective, q queries, base map[string]string) ruleGroup {
	return ruleGroup{Name: groupName(s.Service, o.Name) + "-alerts", Rules: []rule{{
		Alert:  alertName(s.Service, o.Name, "High"),
		Expr:   fmt.Sprintf("max(%s) > %s", q.sel(contract.RSS, false), formatFloat(o.MaxBytes)),
		For:    "10m",
		Labels: withLabels(base, "severity", "ticket"),
		Annotations: map[string]string{
			"summary":     fmt.Sprintf("%s resident memory above %s for 10 minutes", s.Service, FormatBytes(o.MaxBytes)),
			"description": "Resident memory is {{ $value | humanize1024 }}B, over the " + o.Name + " objective (" + o.String() + ").",
		},
	}}}
}

// AbsentFor is how long the request counters may be missing before the absent alert pages.
const AbsentFor = 10 * time.Minute

// absentGroup pages when no request counter of the routes in scope has been scraped for
// AbsentFor. The event rules read a missing counter as no events, so a server that is down,
// or that Prometheus no longer scrapes, would look like a perfect SLO: a server that serves
// nothing cannot count its own outage.
func absentGroup(s *SLO, q queries) ruleGroup {
	base := map[string]string{"service": s.Service, "severity": "page"}
	for k, v := range s.Labels {
		base[k] = v
	}
	return ruleGroup{Name: groupName(s.Service, "requests") + "-alerts", Rules: []rule{{
		Alert:  alertName(s.Service, "requests", "Absent"),
		Expr:   fmt.Sprintf("absent_over_time(%s[%s])", q.sel(contract.Requests, true), promDuration(AbsentFor)),
		Labels: base,
		Annotations: map[string]string{
			"summary": fmt.Sprintf("%s: no request counter scraped for %s; its SLOs cannot be measured", s.Service, formatWindow(AbsentFor)),
			"description": fmt.Sprintf("Prometheus has no %s series for the routes %s over the last %s: the server is down or no longer scraped. The SLO recordings read no traffic as no errors, so they cannot show this outage. Page: act now.",
				contract.Requests, s.RoutesExpr, formatWindow(AbsentFor)),
		},
	}}}
}

func groupName(service, name string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, service)) + "-slo-" + name
}

// alertName makes a CamelCase alert name such as DelayctlAvailabilityBudgetBurn.
func alertName(service, name, suffix string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(service+"-"+name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	b.WriteString(suffix)
	return b.String()
}
