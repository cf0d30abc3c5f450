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
	"hash"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
	"gonum.org/v1/gonum/stat"
)

// Options configures Run.
type Options struct {
	// DataPath is the flight CSV (.csv, .csv.gz or a .zip holding one CSV) when DataPaths is
	// empty.
	DataPath string
	// DataPaths lists several flight files or globs, read in order as one table.
	DataPaths []string
	// MaxLineBytes bounds one CSV line; 0 means DefaultMaxLineBytes.
	MaxLineBytes int
	// ConfigPath is the pipeline config; empty means DefaultConfig.
	ConfigPath string
	// OutPath receives the model artifact.
	OutPath string
	// MetricsOut, when set, receives the evaluation report as JSON.
	MetricsOut string
	// PlotsDir, when set, receives roc.png and calibration.png.
	PlotsDir string
	// L2 overrides training.l2: a number, or "auto" to choose it by cross-validation on the
	// training split over L2Grid (DefaultL2Grid when empty).
	L2     string
	L2Grid []float64
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

// MaxCVFolds bounds --cv: fold numbers are kept in memory as bytes, and more folds than
// this say nothing a smaller k does not.
const MaxCVFolds = 255

// L2Auto is the --l2 value that chooses the regularisation by cross-validation.
const L2Auto = "auto"

func validL2(s string) bool {
	v, err := strconv.ParseFloat(s, 64)
	return err == nil && v > 0 && !math.IsInf(v, 0)
}

// inputs lists the data arguments, DataPaths or else DataPath.
func (o *Options) inputs() []string {
	if len(o.DataPaths) > 0 {
		return o.DataPaths
	}
	if o.DataPath == "" {
		return nil
	}
	return []string{o.DataPath}
}

// Validate checks the options that need no file access.
func (o *Options) Validate() error {
	switch {
	case len(o.inputs()) == 0:
		return errors.New("--data is required: the flight CSV to train on")
	case o.MaxLineBytes < 0:
		return fmt.Errorf("--max-line-bytes must be positive, got %d", o.MaxLineBytes)
	case o.L2 != "" && o.L2 != L2Auto && !validL2(o.L2):
		return fmt.Errorf("--l2 must be a positive number or %q, got %q", L2Auto, o.L2)
	case o.CVFolds > MaxCVFolds:
		return fmt.Errorf("--cv must be at most %d, got %d", MaxCVFolds, o.CVFolds)
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
	// Solver is newton (dense Hessian) or newton-cg (Hessian-free, for wide designs).
	Solver     string `json:"solver"`
	Iterations int    `json:"iterations"`
	// Passes over the training rows, line-search trials included.
	Passes       int     `json:"passes"`
	GradientNorm float64 `json:"gradient_norm"`
	// Tolerance is the bound GradientNorm met: a fit that misses it is an error.
	Tolerance    float64 `json:"tolerance"`
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
		return nil, inputerr.Wrap(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(trainGCPercent))
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
	if opts.L2 != "" && opts.L2 != L2Auto {
		cfg.Training.L2, _ = strconv.ParseFloat(opts.L2, 64)
	}
	if err := cfg.Validate(); err != nil {
		return nil, inputerr.Wrap(err)
	}
	inputs, err := ExpandInputs(opts.inputs())
	if err != nil {
		return nil, err
	}
	opts.DataPaths = inputs
	if err := checkWritable(opts.OutPath, opts.MetricsOut); err != nil {
		return nil, inputerr.Wrap(err)
	}
	outs := map[string]string{"--out": opts.OutPath, "--metrics-out": opts.MetricsOut}
	if opts.PlotsDir != "" {
		for _, name := range plotFiles {
			outs["--plots "+name] = filepath.Join(opts.PlotsDir, name)
		}
	}
	if err := checkOutputs(append(slices.Clone(inputs), opts.ConfigPath), outs); err != nil {
		return nil, err
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

// trainGCPercent is the GOGC of a training run. Nearly all of its heap is a few large
// pointer-free slices that live the whole run, which the collector need not scan, so
// collecting at 20 % growth costs little CPU while the default 100 % would let the process
// hold up to twice the data it needs.
const trainGCPercent = 20

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
	inputs, err := ExpandInputs(opts.inputs())
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	h := sha256.New()
	ds, rep, err := cleanFiles(inputs, cfg, h, opts.MaxLineBytes)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	pos := ds.Positives()
	if pos == 0 || pos == ds.Len() {
		cls := "on time"
		if pos > 0 {
			cls = "delayed"
		}
		return nil, inputerr.Errorf("%s: the label has one class only: all %d cleaned rows are %s; a classifier needs both", strings.Join(inputs, ", "), ds.Len(), cls)
	}
	if k := cfg.Training.CVFolds; k > 1 && k > min(pos, ds.Len()-pos) {
		return nil, inputerr.Errorf("--cv %d is more folds than the data supports: each fold needs a delayed and an on-time row, and the cleaned rows hold %d delayed and %d on time, so at most --cv %d",
			k, pos, ds.Len()-pos, min(pos, ds.Len()-pos, MaxCVFolds))
	}
	log.Info("cleaned", "rows_read", rep.RowsRead, "rows_kept", rep.RowsKept, "delayed", pos)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	t := cfg.Training
	rng := newRand(t.Seed)
	trainIdx, testIdx := stratifiedSplit(ds.Delayed, nil, t.TestFraction, rng)
	trainRows, testRows := len(trainIdx), len(testIdx)

	var search *L2Search
	if opts.L2 == L2Auto {
		grid := opts.L2Grid
		if len(grid) == 0 {
			grid = DefaultL2Grid
		}
		k := max(t.CVFolds, 3)
		if k > min(countTrue(ds, trainIdx), len(trainIdx)-countTrue(ds, trainIdx)) {
			return nil, inputerr.Errorf("--l2 auto needs %d folds of the training split, each with a delayed and an on-time row", k)
		}
		if search, err = searchL2(ctx, cfg, ds, trainIdx, grid, k, log); err != nil {
			return nil, err
		}
		cfg.Training.L2 = search.Chosen
		log.Info("l2 chosen", "l2", search.Chosen)
	}

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
		valP, err := predictRows(m, ds, valIdx)
		if err != nil {
			return nil, err
		}
		threshold, _ = bestF1Threshold(valP, labels(ds, valIdx))
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
	testP, err := predictRows(m, ds, testIdx)
	if err != nil {
		return nil, err
	}
	testY := labels(ds, testIdx)
	met := evaluate(testP, testY, threshold, prior)
	met.ThresholdMethod = method
	m.Baseline = buildBaseline(m, ds, trainIdx, testIdx, testP, testY)
	met.L2 = cfg.Training.L2
	met.L2Search = search

	// trainIdx and testIdx are dead from here, so cross-validation reuses their memory.
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
		DataFile:   dataFileNames(inputs),
		RowsRead:   rep.RowsRead, RowsUsed: rep.RowsKept,
		TrainRows: trainRows, TestRows: testRows,
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
			Solver: fr.Solver, Iterations: fr.Iterations, Passes: fr.Passes, GradientNorm: fr.GradNorm, Tolerance: GradTolerance, TrainLoss: fr.Loss,
			Seconds: fitSeconds, TotalSeconds: time.Since(start).Seconds(),
		},
	}, nil
}

// fitOn encodes and fits on the rows in idx.
func fitOn(cfg Config, ds *Dataset, idx []int32) (*model.Model, *fitResult, error) {
	m, err := fitEncoders(cfg, ds, idx)
	if err != nil {
		return nil, nil, err
	}
	d, err := newEncoded(m, ds, idx, classWeights(cfg.Training.ClassWeight, ds, idx))
	if err != nil {
		return nil, nil, err
	}
	fr, err := fit(d, cfg.Training.L2, cfg.Training.MaxIterations)
	if err != nil {
		return nil, nil, err
	}
	m.Intercept = fr.Intercept
	copy(m.Coefficients, fr.Coefficients)
	return m, fr, nil
}

func crossValidate(ctx context.Context, cfg Config, ds *Dataset, met *Metrics, log *slog.Logger) error {
	k := cfg.Training.CVFolds
	folds := stratifiedFolds(ds.Delayed, nil, k, newRand(cfg.Training.Seed+1))
	aucs, err := foldAUCs(ctx, cfg, ds, folds, func(i int, auc float64) {
		log.Info("cross-validation", "fold", i+1, "of", k, "roc_auc", auc)
	})
	if err != nil {
		return fmt.Errorf("cross-validation: %w", err)
	}
	// Population deviation (ddof 0), as numpy's std() that scikit-learn users report.
	mean, std := stat.PopMeanStdDev(aucs, nil)
	met.CVFolds, met.CVROCAUC, met.CVROCAUCMean, met.CVROCAUCStd = k, aucs, &mean, &std
	return nil
}

// foldAUCs fits on all folds but one, in turn, and scores the ROC AUC of the one left out.
func foldAUCs(ctx context.Context, cfg Config, ds *Dataset, folds [][]int32, done func(fold int, auc float64)) ([]float64, error) {
	aucs := make([]float64, len(folds))
	var trainIdx []int32
	for i := range folds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		trainIdx = trainIdx[:0]
		for j, f := range folds {
			if j != i {
				trainIdx = append(trainIdx, f...)
			}
		}
		slices.Sort(trainIdx)
		m, _, err := fitOn(cfg, ds, trainIdx)
		if err != nil {
			return nil, fmt.Errorf("fold %d: %w", i+1, err)
		}
		p, err := predictRows(m, ds, folds[i])
		if err != nil {
			return nil, err
		}
		aucs[i] = rocAUC(p, labels(ds, folds[i]))
		done(i, aucs[i])
	}
	return aucs, nil
}

// predictRows scores the rows in idx with exactly the arithmetic of model.Logit.
func predictRows(m *model.Model, ds *Dataset, idx []int32) ([]float64, error) {
	tabs, err := tables(m, ds)
	if err != nil {
		return nil, err
	}
	p := make([]float64, len(idx))
	for k, i := range idx {
		p[k] = model.Sigmoid(logit(m, tabs, ds, int(i)))
	}
	return p, nil
}

func labels(ds *Dataset, idx []int32) []bool {
	y := make([]bool, len(idx))
	for k, i := range idx {
		y[k] = ds.Delayed[i]
	}
	return y
}

func countTrue(ds *Dataset, idx []int32) int {
	n := 0
	for _, i := range idx {
		if ds.Delayed[i] {
			n++
		}
	}
	return n
}

// cleanFiles opens and cleans the inputs in order, hashing their raw bytes into h.
func cleanFiles(paths []string, cfg Config, h hash.Hash, maxLine int) (*Dataset, *CleanReport, error) {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	var opened []*input
	defer func() {
		for _, in := range opened {
			in.Close()
		}
	}()
	// Files open lazily, one at a time, through a reader that CleanInputs drains in order.
	ins := make([]CleanInput, len(paths))
	for i, p := range paths {
		ins[i] = CleanInput{Name: p, R: &lazyInput{path: p, h: h, maxLine: maxLine, opened: &opened}}
	}
	ds, rep, err := CleanInputs(ins, cfg)
	if err != nil {
		return nil, rep, err
	}
	if ds.Len() > math.MaxInt32 {
		return nil, rep, fmt.Errorf("%d cleaned rows: more than %d, the most one training run takes", ds.Len(), math.MaxInt32)
	}
	return ds, rep, nil
}

// lazyInput opens its file on the first Read and closes it at EOF, so only one input is
// open at a time.
type lazyInput struct {
	path    string
	h       hash.Hash
	maxLine int
	in      *input
	opened  *[]*input
	done    bool
}

func (l *lazyInput) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	if l.in == nil {
		in, err := openInput(l.path, l.h, l.maxLine)
		if err != nil {
			return 0, err
		}
		l.in = in
		*l.opened = append(*l.opened, in)
	}
	n, err := l.in.r.Read(p)
	if err == io.EOF {
		l.done = true
		if cerr := l.in.Close(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

// dataFileNames records the inputs' base names in the artifact.
func dataFileNames(paths []string) string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return strings.Join(names, ",")
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

// FitAll encodes and fits on every row of ds with the named solver ("" picks by width, as
// training does), for comparisons against other solvers on the same design
// (scripts/sklearn-compare). It returns the model and the fit statistics.
func FitAll(cfg Config, ds *Dataset, solver string) (*model.Model, FitReport, error) {
	start := time.Now()
	solve := fit
	switch solver {
	case "":
	case SolverNewton:
		solve = fitLogistic
	case SolverNewtonCG:
		solve = newtonCG
	default:
		return nil, FitReport{}, fmt.Errorf("unknown solver %q (want %s or %s)", solver, SolverNewton, SolverNewtonCG)
	}
	idx := seq(ds.Len())
	m, err := fitEncoders(cfg, ds, idx)
	if err != nil {
		return nil, FitReport{}, err
	}
	d, err := newEncoded(m, ds, idx, classWeights(cfg.Training.ClassWeight, ds, idx))
	if err != nil {
		return nil, FitReport{}, err
	}
	fr, err := solve(d, cfg.Training.L2, cfg.Training.MaxIterations)
	if err != nil {
		return nil, FitReport{}, err
	}
	m.Intercept = fr.Intercept
	copy(m.Coefficients, fr.Coefficients)
	return m, FitReport{Solver: fr.Solver, Iterations: fr.Iterations, Passes: fr.Passes, GradientNorm: fr.GradNorm, Tolerance: GradTolerance,
		TrainLoss: fr.Loss, Seconds: time.Since(start).Seconds()}, nil
}
