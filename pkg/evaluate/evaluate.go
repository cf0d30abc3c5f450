// Package evaluate answers "is the deployed model still as good as when it was trained?":
// it scores a model on newly labelled flights (a CSV in any layout train reads, or the
// server's prediction log joined with outcomes), sets each figure beside the training-time
// one, measures drift (PSI) of every feature and of the predictions against the baseline in
// the model artifact, and judges model objectives. The command delayctl evaluate is a thin
// layer over Run.
package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/train"
)

// Output formats.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// Formats lists the output formats.
var Formats = []string{FormatTable, FormatJSON, FormatMarkdown, FormatHTML}

// Defaults for Options; the command's flags reuse them.
const (
	DefaultKeyColumn = "request_id"
	DefaultTopBins   = 3
)

// Options configures Run. Exactly one source is given: DataPath, or PredictionsPath with
// OutcomesPath.
type Options struct {
	// ModelPath is the model artifact; its baseline and training metrics are the reference.
	ModelPath string
	// DataPath is a labelled flight CSV, read and cleaned like train reads its data.
	DataPath string
	// ConfigPath is the pipeline config for DataPath; empty means the config recorded in the
	// model (the layout it was trained from).
	ConfigPath string
	// PredictionsPath is a serve --prediction-log file, joined with OutcomesPath.
	PredictionsPath string
	// OutcomesPath is a CSV with KeyColumn and LabelColumn.
	OutcomesPath string
	// KeyColumn holds the request id the predictions were made under (X-Request-Id), with
	// "/N" appended for the N-th instance (N >= 1) of a batch.
	KeyColumn string
	// LabelColumn is the 0/1 outcome; empty means the label column of the model's config.
	LabelColumn string
	// Objectives are judged; none given means DefaultObjectives.
	Objectives []Objective
	// Format is one of Formats.
	Format string
	// HTMLPath, when set, also receives the HTML report with its plots embedded.
	HTMLPath string
	// PlotsDir, when set, receives calibration.png, psi.png and scores.png.
	PlotsDir string
}

// Validate checks the options that need no file access.
func (o *Options) Validate() error {
	switch {
	case o.ModelPath == "":
		return errors.New("--model is required: the model to evaluate")
	case o.DataPath == "" && o.PredictionsPath == "":
		return errors.New("give --data (a labelled flight CSV) or --predictions with --outcomes")
	case o.DataPath != "" && o.PredictionsPath != "":
		return errors.New("--data and --predictions are two sources; give one")
	case o.PredictionsPath != "" && o.OutcomesPath == "":
		return errors.New("--predictions needs --outcomes: the CSV of true outcomes to join with")
	case o.OutcomesPath != "" && o.PredictionsPath == "":
		return errors.New("--outcomes goes with --predictions")
	}
	if o.HTMLPath != "" {
		for _, in := range []string{o.ModelPath, o.DataPath, o.PredictionsPath, o.OutcomesPath} {
			if in != "" && filepath.Clean(in) == filepath.Clean(o.HTMLPath) {
				return fmt.Errorf("--html %s is an input; write the report elsewhere", o.HTMLPath)
			}
		}
	}
	for _, f := range Formats {
		if o.Format == f {
			return validateObjectives(o.Objectives)
		}
	}
	return fmt.Errorf("--format %q: want one of %v", o.Format, Formats)
}

// ErrObjectiveBreached is returned (wrapped, naming the objectives) when a model objective
// is not met, so that a scheduled job can page or trigger a retrain.
var ErrObjectiveBreached = errors.New("model objective breached")

// sample is what evaluation needs of each labelled row: its feature bins, the model's
// probability and the outcome.
type sample struct {
	bins    []int32
	p       float64
	delayed bool
}

// Run evaluates, writes the report in opts.Format to out (and the HTML report and plots when
// asked), and returns the report. The error wraps ErrObjectiveBreached when an objective is
// not met, or is an input error (inputerr.Err).
func Run(ctx context.Context, opts Options, out io.Writer) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, inputerr.Wrap(err)
	}
	m, err := model.Load(opts.ModelPath)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	var rows []sample
	var source string
	var notes []string
	if opts.DataPath != "" {
		rows, err = readData(m, opts)
		source = opts.DataPath
	} else {
		rows, notes, err = readLog(m, opts)
		source = opts.PredictionsPath + " joined with " + opts.OutcomesPath
	}
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep, err := Evaluate(m, rows, opts.Objectives)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	rep.Source = source
	rep.Notes = append(rep.Notes, notes...)
	if err := write(out, rep, opts.Format); err != nil {
		return rep, err
	}
	if opts.HTMLPath != "" {
		if err := atomicfile.Write(opts.HTMLPath, 0o644, func(w io.Writer) error { return writeHTML(w, rep) }); err != nil {
			return rep, err
		}
	}
	if opts.PlotsDir != "" {
		if err := writePlots(opts.PlotsDir, rep); err != nil {
			return rep, err
		}
	}
	return rep, rep.Err()
}

// readData cleans a labelled CSV by the config and predicts every kept row.
func readData(m *model.Model, opts Options) ([]sample, error) {
	cfg, err := pipelineConfig(m, opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(opts.DataPath)
	if err != nil {
		return nil, fmt.Errorf("could not open flight data: %w", err)
	}
	defer f.Close()
	ds, _, err := train.Clean(f, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.DataPath, err)
	}
	rows := make([]sample, ds.Len())
	for i := range rows {
		f := ds.Flight(i)
		bins := make([]int32, len(m.Features))
		m.BinFlight(&f, bins)
		p, err := m.PredictFlight(&f)
		if err != nil {
			return nil, fmt.Errorf("%s: kept row %d: %w", opts.DataPath, i+1, err)
		}
		rows[i] = sample{bins: bins, p: p, delayed: ds.Delayed[i]}
	}
	return rows, nil
}

func pipelineConfig(m *model.Model, path string) (train.Config, error) {
	if path != "" {
		return train.LoadConfig(path)
	}
	cfg, err := train.ConfigFromModel(m.Training.Config)
	if err != nil {
		return cfg, fmt.Errorf("model %s: %w (give --config)", m.Name, err)
	}
	return cfg, nil
}

// trainingMetrics decodes the metrics the model recorded at training.
func trainingMetrics(m *model.Model) (*train.Metrics, error) {
	if len(m.Training.Metrics) == 0 {
		return nil, nil
	}
	var tm train.Metrics
	if err := json.Unmarshal(m.Training.Metrics, &tm); err != nil {
		return nil, fmt.Errorf("model %s: its training metrics: %w", m.Name, err)
	}
	return &tm, nil
}

// Evaluate scores the rows and compares them with the model's training record.
func Evaluate(m *model.Model, rows []sample, objs []Objective) (*Report, error) {
	if len(rows) == 0 {
		return nil, errors.New("no labelled rows to evaluate")
	}
	p, y := make([]float64, len(rows)), make([]bool, len(rows))
	pos := 0
	for i, r := range rows {
		p[i], y[i] = r.p, r.delayed
		if r.delayed {
			pos++
		}
	}
	if pos == 0 || pos == len(rows) {
		return nil, fmt.Errorf("the %d labelled rows are all of one class; ROC AUC needs delayed and on-time flights", len(rows))
	}
	tm, err := trainingMetrics(m)
	if err != nil {
		return nil, err
	}
	rep := &Report{Model: m.Name, Version: m.Version, Rows: len(rows), Positives: pos, Threshold: m.Threshold}
	rep.Now = train.Score(p, y, m.Threshold, float64(pos)/float64(len(rows)))
	if tm != nil {
		rep.Training = &tm.Scores
		if tm.TimeHoldout != nil {
			rep.TrainingTime = &tm.TimeHoldout.Metrics.Scores
		}
	}
	rep.Calibration, rep.ScoreBins = calibration(m, rows)
	if m.Baseline == nil {
		rep.Notes = append(rep.Notes, "the model has no training baseline (trained before delayctl recorded one): no drift figures; retrain to get them")
	} else {
		rep.Drift = drift(m, rows)
	}
	rep.Objectives = judge(objs, rep)
	return rep, nil
}

// calibration bins predictions like the baseline does and sets training's observed rate
// beside today's.
func calibration(m *model.Model, rows []sample) ([]CalibrationBin, []float64) {
	n := model.DefaultPredictionBins
	if m.Baseline != nil {
		n = len(m.Baseline.Predictions.Counts)
	}
	bins := make([]CalibrationBin, n)
	counts := make([]float64, n)
	for j := range bins {
		bins[j].Low, bins[j].High = float64(j)/float64(n), float64(j+1)/float64(n)
	}
	for _, r := range rows {
		j := model.PredictionBin(r.p, n)
		b := &bins[j]
		b.Rows++
		counts[j]++
		b.MeanPredicted += Num(r.p)
		if r.delayed {
			b.Observed++
		}
	}
	var out []CalibrationBin
	for j := range bins {
		b := bins[j]
		if b.Rows > 0 {
			b.MeanPredicted /= Num(b.Rows)
			b.Observed /= Num(b.Rows)
		} else {
			b.MeanPredicted, b.Observed = Num(math.NaN()), Num(math.NaN())
		}
		b.TrainingObserved = Num(math.NaN())
		if m.Baseline != nil {
			pb := &m.Baseline.Predictions
			b.TrainingRows = int(pb.Counts[j])
			if pb.Counts[j] > 0 {
				b.TrainingObserved = Num(pb.Positives[j] / pb.Counts[j])
			}
		}
		if b.Rows > 0 || b.TrainingRows > 0 {
			out = append(out, b)
		}
	}
	return out, counts
}

// drift computes the PSI of every feature and of the predictions against the baseline, with
// the bins whose share moved most.
func drift(m *model.Model, rows []sample) *Drift {
	b := m.Baseline
	d := &Drift{BaselineRows: b.Rows}
	pred := make([]float64, len(b.Predictions.Counts))
	for _, r := range rows {
		pred[model.PredictionBin(r.p, len(pred))]++
	}
	d.PredictionPSI = Num(model.PSI(b.Predictions.Counts, pred))
	for i, f := range m.Features {
		counts := make([]float64, m.NumBins(i))
		for _, r := range rows {
			counts[r.bins[i]]++
		}
		fd := FeatureDrift{Variable: f.Variable, PSI: Num(model.PSI(b.Features[i].Counts, counts)), UnseenShare: Num(math.NaN()), TrainingUnseenShare: Num(math.NaN())}
		if u := m.UnseenBin(i); u >= 0 {
			fd.UnseenShare = Num(counts[u] / float64(len(rows)))
			fd.TrainingUnseenShare = Num(b.Features[i].Counts[u] / float64(max(b.Rows, 1)))
		}
		fd.TopBins = topBins(m.BinNames(i), b.Features[i].Counts, counts, DefaultTopBins)
		d.Features = append(d.Features, fd)
	}
	sort.SliceStable(d.Features, func(a, c int) bool { return d.Features[a].PSI > d.Features[c].PSI })
	return d
}

// topBins are the k bins contributing most to the PSI: (a−e)·ln(a/e) per bin.
func topBins(names []string, expected, actual []float64, k int) []BinShift {
	var te, ta float64
	for j := range expected {
		te, ta = te+expected[j], ta+actual[j]
	}
	shifts := make([]BinShift, len(names))
	for j := range names {
		e, a := expected[j]/te, actual[j]/ta
		ef, af := max(e, 1e-4), max(a, 1e-4)
		shifts[j] = BinShift{Bin: names[j], TrainingShare: e, Share: a, Contribution: (af - ef) * math.Log(af/ef)}
	}
	sort.SliceStable(shifts, func(a, b int) bool { return shifts[a].Contribution > shifts[b].Contribution })
	return shifts[:min(k, len(shifts))]
}
