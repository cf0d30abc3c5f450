// Package train turns a flight CSV into a delayctl model: it cleans the rows by the pipeline
// config, encodes features, fits an L2-regularised logistic regression with gonum's Newton
// method, evaluates it on a stratified held-out split (and optionally k-fold cross-validation),
// and writes the model artifact through pkg/model plus a metrics report.
package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
	"gonum.org/v1/gonum/stat"
)

// Options configures Run.
type Options struct {
	// DataPath is the flight CSV.
	DataPath string
	// ConfigPath is the pipeline config; empty means DefaultConfig.
	ConfigPath string
	// OutPath receives the model artifact.
	OutPath string
	// MetricsOut, when set, receives the evaluation report as JSON.
	MetricsOut string
	// PlotsDir, when set, receives roc.png and calibration.png.
	PlotsDir string
	// CVFolds overrides training.cv_folds when >= 0.
	CVFolds int
	// Seed overrides training.seed when SeedSet.
	Seed    int64
	SeedSet bool
	// TimeHoldout overrides training.time_holdout when TimeHoldoutSet.
	TimeHoldout    float64
	TimeHoldoutSet bool
	// TimeCVFolds overrides training.time_cv_folds when TimeCVSet.
	TimeCVFolds int
	TimeCVSet   bool
	// ThresholdSplit overrides training.threshold_split when not empty.
	ThresholdSplit string
	// ModelVersion overrides the content-derived version.
	ModelVersion string
	// ToolVersion is recorded in the artifact.
	ToolVersion string
	// Now stamps the artifact; nil means time.Now. Tests fix it for byte-identical output.
	Now func() time.Time
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Validate checks the options that need no file access.
func (o *Options) Validate() error {
	switch {
	case o.DataPath == "":
		return errors.New("--data is required: the flight CSV to train on")
	case o.OutPath == "":
		return errors.New("--out is required: where to write the model")
	case o.CVFolds == 1 || o.CVFolds < -1:
		return fmt.Errorf("--cv must be 0 (off) or >= 2, got %d", o.CVFolds)
	}
	return nil
}

// Result is everything a training run produced.
type Result struct {
	Model   *model.Model `json:"-"`
	Clean   CleanReport  `json:"clean"`
	Metrics Metrics      `json:"metrics"`
	Fit     FitReport    `json:"fit"`
	// TestProb and TestDelayed are the held-out predictions and truth behind Metrics.
	TestProb    []float64 `json:"-"`
	TestDelayed []bool    `json:"-"`
}

// FitReport describes the final fit. Timings are wall-clock and vary run to run, so they are
// reported but kept out of the artifact.
type FitReport struct {
	Iterations   int     `json:"iterations"`
	GradientNorm float64 `json:"gradient_norm"`
	TrainLoss    float64 `json:"train_loss"`
	Seconds      float64 `json:"seconds"`
	TotalSeconds float64 `json:"total_seconds"`
}

// MetricsFile is the layout of --metrics-out: the metrics at top level, with the cleaning and
// fit reports beside them.
type MetricsFile struct {
	Metrics
	Model   string      `json:"model"`
	Version string      `json:"version"`
	Clean   CleanReport `json:"clean"`
	Fit     FitReport   `json:"fit"`
}

// Run trains a model and writes the artifact, metrics and plots. It prints the evaluation
// table to out. Nothing is written unless training succeeded, and each file is written
// atomically.
func Run(ctx context.Context, opts Options, out io.Writer) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	if opts.ConfigPath != "" {
		var err error
		if cfg, err = LoadConfig(opts.ConfigPath); err != nil {
			return nil, inputerr.Wrap(err)
		}
	}
	if opts.CVFolds >= 0 {
		cfg.Training.CVFolds = opts.CVFolds
	}
	if opts.SeedSet {
		cfg.Training.Seed = opts.Seed
	}
	opts.applyTime(&cfg)
	if err := cfg.Validate(); err != nil {
		return nil, inputerr.Wrap(err)
	}
	if err := checkWritable(opts.OutPath, opts.MetricsOut); err != nil {
		return nil, inputerr.Wrap(err)
	}
	res, err := Fit(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := res.Model.Save(opts.OutPath); err != nil {
		return nil, err
	}
	if opts.MetricsOut != "" {
		mf := MetricsFile{Metrics: res.Metrics, Model: res.Model.Name, Version: res.Model.Version, Clean: res.Clean, Fit: res.Fit}
		err := atomicfile.Write(opts.MetricsOut, 0o644, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(mf)
		})
		if err != nil {
			return nil, err
		}
	}
	if opts.PlotsDir != "" {
		if err := writePlots(opts.PlotsDir, res); err != nil {
			return nil, err
		}
	}
	return res, WriteReport(out, res, opts.OutPath)
}

// checkWritable fails early, before minutes of work, when an output directory is missing.
func checkWritable(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		dir := filepath.Dir(p)
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("cannot write %s: %s is not a directory", p, dir)
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return fmt.Errorf("cannot write %s: it is a directory", p)
		}
	}
	return nil
}

// Fit runs the pipeline in memory: read and clean, split, fit, evaluate, cross-validate. The
// returned model is complete but not saved.
func Fit(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	start := time.Now()
	f, err := os.Open(opts.DataPath)
	if err != nil {
		return nil, inputerr.Errorf("could not open flight data: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	ds, rep, err := Clean(io.TeeReader(f, h), cfg)
	if err != nil {
		return nil, inputerr.Errorf("%s: %w", opts.DataPath, err)
	}
	pos := ds.Positives()
	if pos == 0 || pos == ds.Len() {
		cls := "on time"
		if pos > 0 {
			cls = "delayed"
		}
		return nil, inputerr.Errorf("%s: the label has one class only: all %d cleaned rows are %s; a classifier needs both", opts.DataPath, ds.Len(), cls)
	}
	log.Info("cleaned", "rows_read", rep.RowsRead, "rows_kept", rep.RowsKept, "delayed", pos)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	t := cfg.Training
	rng := newRand(t.Seed)
	trainIdx, testIdx := stratifiedSplit(ds.Delayed, seq(ds.Len()), t.TestFraction, rng)

	threshold, best, _ := t.threshold()
	method := "fixed"
	if best {
		fitIdx, valIdx, how, err := validationSplit(cfg, ds, trainIdx, rng)
		if err != nil {
			return nil, fmt.Errorf("threshold selection: %w", err)
		}
		m, _, err := fitOn(cfg, ds, fitIdx)
		if err != nil {
			return nil, fmt.Errorf("fit for threshold selection: %w", err)
		}
		threshold, _ = bestF1Threshold(predictRows(m, ds, valIdx), labels(ds, valIdx))
		method = how
		log.Info("threshold chosen", "threshold", threshold, "validation_rows", len(valIdx))
	}

	fitStart := time.Now()
	m, fr, err := fitOn(cfg, ds, trainIdx)
	if err != nil {
		return nil, err
	}
	fitSeconds := time.Since(fitStart).Seconds()
	m.Threshold = threshold
	log.Info("fitted", "iterations", fr.Iterations, "gradient_norm", fr.GradNorm)

	prior := float64(countTrue(ds, trainIdx)) / float64(len(trainIdx))
	testP, testY := predictRows(m, ds, testIdx), labels(ds, testIdx)
	met := evaluate(testP, testY, threshold, prior)
	met.ThresholdMethod = method
	m.Baseline = buildBaseline(m, ds, trainIdx, testIdx, testP, testY)

	if t.CVFolds > 1 {
		if err := crossValidate(ctx, cfg, ds, &met, log); err != nil {
			return nil, err
		}
	}
	if err := timeEvaluate(ctx, cfg, ds, &met, log); err != nil {
		return nil, err
	}

	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	metJSON, err := json.Marshal(met)
	if err != nil {
		return nil, err
	}
	m.Label = model.Label{Name: "delayed", Definition: cfg.labelDefinition()}
	m.Training = model.Training{
		DataSHA256: hex.EncodeToString(h.Sum(nil)),
		DataFile:   filepath.Base(opts.DataPath),
		RowsRead:   rep.RowsRead, RowsUsed: rep.RowsKept,
		TrainRows: len(trainIdx), TestRows: len(testIdx),
		Seed: t.Seed, Config: cfgJSON, Metrics: metJSON,
		ToolVersion: opts.ToolVersion,
		TrainedAt:   now().UTC().Format(time.RFC3339),
	}
	m.Version = opts.ModelVersion
	if m.Version == "" {
		if m.Version, err = m.ContentVersion(); err != nil {
			return nil, err
		}
	}
	if err := m.Prepare(); err != nil {
		return nil, err
	}
	return &Result{
		Model: m, Clean: *rep, Metrics: met, TestProb: testP, TestDelayed: testY,
		Fit: FitReport{
			Iterations: fr.Iterations, GradientNorm: fr.GradNorm, TrainLoss: fr.Loss,
			Seconds: fitSeconds, TotalSeconds: time.Since(start).Seconds(),
		},
	}, nil
}

// fitOn encodes and fits on the rows in idx.
func fitOn(cfg Config, ds *Dataset, idx []int) (*model.Model, *fitResult, error) {
	m, err := fitEncoders(cfg, ds, idx)
	if err != nil {
		return nil, nil, err
	}
	d := buildDesign(m, ds, idx, classWeights(cfg.Training.ClassWeight, ds, idx))
	fr, err := fitLogistic(d, cfg.Training.L2, cfg.Training.MaxIterations)
	if err != nil {
		return nil, nil, err
	}
	m.Intercept = fr.Intercept
	copy(m.Coefficients, fr.Coefficients)
	return m, fr, nil
}

func crossValidate(ctx context.Context, cfg Config, ds *Dataset, met *Metrics, log *slog.Logger) error {
	k := cfg.Training.CVFolds
	folds := stratifiedFolds(ds.Delayed, seq(ds.Len()), k, newRand(cfg.Training.Seed+1))
	aucs := make([]float64, k)
	for i := range folds {
		if err := ctx.Err(); err != nil {
			return err
		}
		var trainIdx []int
		for j, f := range folds {
			if j != i {
				trainIdx = append(trainIdx, f...)
			}
		}
		m, _, err := fitOn(cfg, ds, trainIdx)
		if err != nil {
			return fmt.Errorf("cross-validation fold %d: %w", i+1, err)
		}
		aucs[i] = rocAUC(predictRows(m, ds, folds[i]), labels(ds, folds[i]))
		log.Info("cross-validation", "fold", i+1, "of", k, "roc_auc", aucs[i])
	}
	// Population deviation (ddof 0), as numpy's std() that scikit-learn users report.
	mean, std := stat.PopMeanStdDev(aucs, nil)
	met.CVFolds, met.CVROCAUC, met.CVROCAUCMean, met.CVROCAUCStd = k, aucs, &mean, &std
	return nil
}

func predictRows(m *model.Model, ds *Dataset, idx []int) []float64 {
	p := make([]float64, len(idx))
	for k, i := range idx {
		p[k] = model.Sigmoid(m.Logit(&ds.Flights[i]))
	}
	return p
}

func labels(ds *Dataset, idx []int) []bool {
	y := make([]bool, len(idx))
	for k, i := range idx {
		y[k] = ds.Delayed[i]
	}
	return y
}

func countTrue(ds *Dataset, idx []int) int {
	n := 0
	for _, i := range idx {
		if ds.Delayed[i] {
			n++
		}
	}
	return n
}

func (c *Config) labelDefinition() string {
	l := c.Label
	def := l.Column + " == 1"
	if l.Column == "" {
		def = fmt.Sprintf("%s >= %v minutes", l.DelayMinutesColumn, l.ThresholdMinutes)
	}
	for _, o := range []struct {
		name string
		p    OutcomePolicy
	}{{"cancelled", l.Cancelled}, {"diverted", l.Diverted}} {
		if o.p.Column != "" {
			pol := o.p.Policy
			if pol == "" {
				pol = PolicyDrop
			}
			def += fmt.Sprintf("; %s (%s == 1): %s", o.name, o.p.Column, pol)
		}
	}
	return def
}

// FitAll encodes and fits on every row of ds, for comparisons against other solvers on the
// same design (scripts/sklearn-compare). It returns the model and the
// fit statistics.
func FitAll(cfg Config, ds *Dataset) (*model.Model, FitReport, error) {
	start := time.Now()
	m, fr, err := fitOn(cfg, ds, seq(ds.Len()))
	if err != nil {
		return nil, FitReport{}, err
	}
	return m, FitReport{Iterations: fr.Iterations, GradientNorm: fr.GradNorm, TrainLoss: fr.Loss, Seconds: time.Since(start).Seconds()}, nil
}
