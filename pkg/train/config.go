package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/delayctl/delayctl/pkg/model"
	"gopkg.in/yaml.v3"
)

// ConfigVersion is the only pipeline config version this package reads.
const ConfigVersion = "delayctl/v1"

// Config describes a training pipeline: how to read a flight CSV, what the label is, how to
// clean rows, which features to encode and how to fit. configs/train.yaml documents every field.
type Config struct {
	// Version must be ConfigVersion.
	Version string `yaml:"version" json:"version"`
	// Name is the model's name (the {name} in Open Inference Protocol paths).
	Name string `yaml:"name" json:"name"`
	// Columns maps the CSV's columns onto the canonical flight fields.
	Columns model.Columns `yaml:"columns" json:"columns"`
	// Label says which rows count as delayed.
	Label LabelConfig `yaml:"label" json:"label"`
	// Missing sets, per canonical field, what to do with a missing value: drop (default),
	// mode (most frequent value) or median (numeric fields only).
	Missing map[string]string `yaml:"missing" json:"missing,omitempty"`
	// Features lists the encoded features, in vector order.
	Features []FeatureConfig `yaml:"features" json:"features"`
	// InvalidRows is what to do with a row whose cell cannot be parsed: "error" (the default:
	// stop and name the row and column) or "drop" (drop it and list it in the clean report).
	InvalidRows string `yaml:"invalid_rows" json:"invalid_rows"`
	// Crosses lists pairs of variables encoded by their joint value (model.Cross), after
	// Features in vector order.
	Crosses [][]string `yaml:"crosses" json:"crosses,omitempty"`
	// CrossMinCount pools the pairs of a cross seen fewer times in the training split into one
	// column, which also takes pairs never seen.
	CrossMinCount int `yaml:"cross_min_count" json:"cross_min_count,omitempty"`
	// MinCategoryCount drops categories seen fewer times in the training split; they then
	// encode as unknown (all zeros).
	MinCategoryCount int `yaml:"min_category_count" json:"min_category_count"`
	// Training holds the fit and evaluation settings.
	Training TrainingConfig `yaml:"training" json:"training"`
}

// LabelConfig defines the positive class.
type LabelConfig struct {
	// Column holds a 0/1 delay flag (e.g. ARR_DEL15).
	Column string `yaml:"column" json:"column,omitempty"`
	// DelayMinutesColumn, when Column is empty, holds the arrival delay in minutes; a flight
	// is delayed when it is >= ThresholdMinutes.
	DelayMinutesColumn string  `yaml:"delay_minutes_column" json:"delay_minutes_column,omitempty"`
	ThresholdMinutes   float64 `yaml:"threshold_minutes" json:"threshold_minutes,omitempty"`
	// Cancelled and Diverted set the policy for such rows.
	Cancelled OutcomePolicy `yaml:"cancelled" json:"cancelled"`
	Diverted  OutcomePolicy `yaml:"diverted" json:"diverted"`
}

// OutcomePolicy names a 0/1 column and what to do with rows where it is 1.
type OutcomePolicy struct {
	Column string `yaml:"column" json:"column,omitempty"`
	// Policy is "drop" (the default) or "delayed" (count the flight as delayed).
	Policy string `yaml:"policy" json:"policy,omitempty"`
}

// FeatureConfig is one encoded feature.
type FeatureConfig struct {
	Variable string `yaml:"variable" json:"variable"`
	Encoding string `yaml:"encoding" json:"encoding"`
}

// TrainingConfig holds the fit and evaluation settings.
type TrainingConfig struct {
	// L2 is lambda in: mean weighted log loss + lambda/2 * ||coefficients||^2 (the intercept is
	// not penalised). scikit-learn's C equals 1/(lambda * sum of sample weights).
	L2 float64 `yaml:"l2" json:"l2"`
	// ClassWeight is "none" or "balanced" (weights n/(2*n_class), as scikit-learn).
	ClassWeight string `yaml:"class_weight" json:"class_weight"`
	// TestFraction of the rows, stratified, is held out for evaluation.
	TestFraction float64 `yaml:"test_fraction" json:"test_fraction"`
	// ValidationFraction of the training split chooses the threshold when Threshold is best_f1.
	ValidationFraction float64 `yaml:"validation_fraction" json:"validation_fraction"`
	// Threshold is a probability in (0,1), or "best_f1".
	Threshold string `yaml:"threshold" json:"threshold"`
	// Seed drives the splits; the same seed, data and config give the same model.
	Seed int64 `yaml:"seed" json:"seed"`
	// CVFolds > 1 runs stratified k-fold cross-validation and reports ROC AUC mean and std.
	CVFolds int `yaml:"cv_folds" json:"cv_folds"`
	// MaxIterations bounds the Newton iterations.
	MaxIterations int `yaml:"max_iterations" json:"max_iterations"`
	// TimeHoldout is the share of the latest rows (cut at a day boundary) a second model,
	// fitted on the earlier rows, is scored on; 0 turns the time-ordered holdout off.
	TimeHoldout float64 `yaml:"time_holdout" json:"time_holdout"`
	// TimeCVFolds >= 2 runs time-blocked cross-validation (forward chaining).
	TimeCVFolds int `yaml:"time_cv_folds" json:"time_cv_folds"`
	// ThresholdSplit is where best_f1 picks the threshold: "random" (a stratified slice of
	// the training rows) or "time" (their latest dates, as production will see).
	ThresholdSplit string `yaml:"threshold_split" json:"threshold_split"`
}

// Policies and settings.
const (
	PolicyDrop      = "drop"
	PolicyDelayed   = "delayed"
	ImputeMode      = "mode"
	ImputeMedian    = "median"
	ThresholdBestF1 = "best_f1"
)

// DefaultConfig is the pipeline for BTS on-time CSVs, the same as configs/train.yaml.
// Calendar and hour features are one-hot: as numbers, a logistic regression can only fit a
// monotone trend in month or hour, and delays are not monotone in either (ROC AUC 0.59
// against 0.69 one-hot, see docs/TRAIN.md).
func DefaultConfig() Config {
	cols := model.BTSColumns
	cols.NAValues = []string{""}
	return Config{
		Version: ConfigVersion,
		Name:    model.DefaultName,
		Columns: cols,
		Label: LabelConfig{
			Column:    "ARR_DEL15",
			Cancelled: OutcomePolicy{Column: "CANCELLED", Policy: PolicyDrop},
			Diverted:  OutcomePolicy{Column: "DIVERTED", Policy: PolicyDrop},
		},
		Features: []FeatureConfig{
			{"month", model.OneHot}, {"day_of_month", model.OneHot}, {"day_of_week", model.OneHot},
			{"week_of_year", model.OneHot}, {"dep_hour", model.OneHot},
			{"origin", model.OneHot}, {"dest", model.OneHot}, {"carrier", model.OneHot},
		},
		// Chosen by 5-fold CV on flightdata.csv (docs/TRAIN.md): 0.6982 against 0.6959
		// without crosses; the crosses need the stronger L2.
		Crosses:          [][]string{{"origin", "month"}, {"origin", "dep_hour"}},
		CrossMinCount:    30,
		InvalidRows:      "error",
		MinCategoryCount: 1,
		Training: TrainingConfig{
			L2: 1e-3, ClassWeight: "none", TestFraction: 0.2, ValidationFraction: 0.2,
			Threshold: ThresholdBestF1, Seed: 42, MaxIterations: 100,
			TimeHoldout: DefaultTimeHoldout, ThresholdSplit: SplitRandom,
		},
	}
}

// LoadConfig reads a pipeline config file. Fields it does not set keep DefaultConfig's values;
// the columns, label and features sections replace the defaults whole when given (features
// without crosses means no crosses). Unknown fields and bad values are errors
// that name the field and its line.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("could not open training config: %w", err)
	}
	defer f.Close()
	cfg, err := DecodeConfig(f)
	if err != nil {
		return Config{}, fmt.Errorf("training config %s: %w", path, err)
	}
	return cfg, nil
}

// DecodeConfig decodes and validates a pipeline config; see LoadConfig.
func DecodeConfig(r io.Reader) (Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, err
	}
	cfg := DefaultConfig()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, err
	}
	if len(root.Content) == 0 {
		return Config{}, errors.New("config is empty")
	}
	// Sections that describe one CSV layout are replaced whole, never merged with the BTS
	// defaults: a label given as minutes must not inherit ARR_DEL15.
	if lookupNode(&root, "columns") != nil {
		cfg.Columns = model.Columns{}
	}
	if lookupNode(&root, "label") != nil {
		cfg.Label = LabelConfig{}
	}
	// Crosses belong to the feature set: a config that lists its own features or crosses
	// gets only the crosses it lists.
	if lookupNode(&root, "features") != nil {
		cfg.Features = nil
		cfg.Crosses = nil
	}
	if lookupNode(&root, "crosses") != nil {
		cfg.Crosses = nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			if n := lookupNode(&root, strings.Split(fe.path, ".")...); n != nil {
				return Config{}, fmt.Errorf("line %d: %w", n.Line, err)
			}
		}
		return Config{}, err
	}
	return cfg, nil
}

// fieldError names the config field (dotted path) a validation error is about.
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func fieldErrorf(path, format string, args ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}

// lookupNode finds the value node at a dotted path of mapping keys or sequence indexes.
func lookupNode(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return nil
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
		default:
			return nil
		}
	}
	return n
}

var canonicalFields = map[string]bool{
	"month": true, "day_of_month": true, "day_of_week": true, "origin": true,
	"dest": true, "carrier": true, "crs_dep_time": true,
}

var numericFields = map[string]bool{
	"month": true, "day_of_month": true, "day_of_week": true, "crs_dep_time": true,
}

// Validate checks every setting and names the first bad field.
func (c *Config) Validate() error {
	if c.Version != ConfigVersion {
		if strings.HasPrefix(c.Version, "delayctl.slo/") {
			return fieldErrorf("version", "must be %q, got %q: this is an SLO file (slo --slo), not a train pipeline config", ConfigVersion, c.Version)
		}
		return fieldErrorf("version", "must be %q, got %q", ConfigVersion, c.Version)
	}
	if strings.TrimSpace(c.Name) == "" || strings.ContainsAny(c.Name, "/ \t?#") {
		return fieldErrorf("name", "must be a non-empty name without spaces, '/', '?' or '#', got %q", c.Name)
	}
	l := c.Label
	switch {
	case l.Column == "" && l.DelayMinutesColumn == "":
		return fieldErrorf("label", "set column (a 0/1 flag) or delay_minutes_column")
	case l.Column != "" && l.DelayMinutesColumn != "":
		return fieldErrorf("label", "set only one of column and delay_minutes_column")
	case l.DelayMinutesColumn != "" && !(l.ThresholdMinutes > 0):
		return fieldErrorf("label.threshold_minutes", "must be > 0 with delay_minutes_column, got %v", l.ThresholdMinutes)
	}
	for name, p := range map[string]OutcomePolicy{"cancelled": l.Cancelled, "diverted": l.Diverted} {
		if p.Policy != "" && p.Policy != PolicyDrop && p.Policy != PolicyDelayed {
			return fieldErrorf("label."+name+".policy", "must be %q or %q, got %q", PolicyDrop, PolicyDelayed, p.Policy)
		}
	}
	for field, pol := range c.Missing {
		if !canonicalFields[field] {
			return fieldErrorf("missing."+field, "unknown field; known: month, day_of_month, day_of_week, origin, dest, carrier, crs_dep_time")
		}
		switch pol {
		case PolicyDrop, ImputeMode:
		case ImputeMedian:
			if !numericFields[field] {
				return fieldErrorf("missing."+field, "median needs a numeric field; use mode")
			}
		default:
			return fieldErrorf("missing."+field, "must be drop, mode or median, got %q", pol)
		}
	}
	if len(c.Features) == 0 {
		return fieldErrorf("features", "at least one feature is required")
	}
	seen := map[string]bool{}
	for i, f := range c.Features {
		path := fmt.Sprintf("features.%d", i)
		if model.VariableDoc(f.Variable) == "" {
			return fieldErrorf(path+".variable", "unknown variable %q; known: %s", f.Variable, strings.Join(model.Variables(), ", "))
		}
		if seen[f.Variable] {
			return fieldErrorf(path+".variable", "variable %q is listed twice", f.Variable)
		}
		seen[f.Variable] = true
		switch f.Encoding {
		case model.OneHot:
		case model.Standard:
			if !model.IsNumeric(f.Variable) {
				return fieldErrorf(path+".encoding", "%q is a category; only %q applies", f.Variable, model.OneHot)
			}
		default:
			return fieldErrorf(path+".encoding", "must be %q or %q, got %q", model.OneHot, model.Standard, f.Encoding)
		}
	}
	crossed := map[string]bool{}
	for i, pair := range c.Crosses {
		path := fmt.Sprintf("crosses.%d", i)
		if len(pair) != 2 {
			return fieldErrorf(path, "a cross names two variables, e.g. [origin, dep_hour]; got %d", len(pair))
		}
		for _, v := range pair {
			if model.VariableDoc(v) == "" {
				return fieldErrorf(path, "unknown variable %q; known: %s", v, strings.Join(model.Variables(), ", "))
			}
		}
		if pair[0] == pair[1] {
			return fieldErrorf(path, "crosses %q with itself", pair[0])
		}
		key := pair[0] + model.CrossSeparator + pair[1]
		if crossed[key] || crossed[pair[1]+model.CrossSeparator+pair[0]] {
			return fieldErrorf(path, "crosses %s and %s again", pair[0], pair[1])
		}
		crossed[key] = true
	}
	if len(c.Crosses) > 0 && c.CrossMinCount < 1 {
		return fieldErrorf("cross_min_count", "must be >= 1 with crosses, got %d", c.CrossMinCount)
	}
	if c.InvalidRows != "error" && c.InvalidRows != PolicyDrop {
		return fieldErrorf("invalid_rows", "must be error or drop, got %q", c.InvalidRows)
	}
	if c.MinCategoryCount < 1 {
		return fieldErrorf("min_category_count", "must be >= 1, got %d", c.MinCategoryCount)
	}
	t := c.Training
	switch {
	case !(t.L2 > 0) || math.IsInf(t.L2, 0):
		return fieldErrorf("training.l2", "must be a positive number (one-hot blocks plus an intercept need it), got %v", t.L2)
	case t.ClassWeight != "none" && t.ClassWeight != "balanced":
		return fieldErrorf("training.class_weight", "must be none or balanced, got %q", t.ClassWeight)
	case !(t.TestFraction > 0 && t.TestFraction < 1):
		return fieldErrorf("training.test_fraction", "must be in (0, 1), got %v", t.TestFraction)
	case t.Threshold == ThresholdBestF1 && !(t.ValidationFraction > 0 && t.ValidationFraction < 1):
		return fieldErrorf("training.validation_fraction", "must be in (0, 1) with threshold best_f1, got %v", t.ValidationFraction)
	case t.CVFolds == 1 || t.CVFolds < 0:
		return fieldErrorf("training.cv_folds", "must be 0 (off) or >= 2, got %d", t.CVFolds)
	case t.MaxIterations < 1:
		return fieldErrorf("training.max_iterations", "must be >= 1, got %d", t.MaxIterations)
	case !(t.TimeHoldout >= 0 && t.TimeHoldout < 1):
		return fieldErrorf("training.time_holdout", "must be in [0, 1) (0 = off), got %v", t.TimeHoldout)
	case t.TimeCVFolds == 1 || t.TimeCVFolds < 0:
		return fieldErrorf("training.time_cv_folds", "must be 0 (off) or >= 2, got %d", t.TimeCVFolds)
	case t.ThresholdSplit != SplitRandom && t.ThresholdSplit != SplitTime:
		return fieldErrorf("training.threshold_split", "must be %q or %q, got %q", SplitRandom, SplitTime, t.ThresholdSplit)
	}
	if _, _, err := t.threshold(); err != nil {
		return fieldErrorf("training.threshold", "%v", err)
	}
	return nil
}

// threshold returns the fixed threshold, or best = true for best_f1.
func (t TrainingConfig) threshold() (fixed float64, best bool, err error) {
	if t.Threshold == ThresholdBestF1 {
		return 0, true, nil
	}
	v, err := strconv.ParseFloat(t.Threshold, 64)
	if err != nil || !(v > 0 && v < 1) {
		return 0, false, fmt.Errorf("must be a probability in (0, 1) or %q, got %q", ThresholdBestF1, t.Threshold)
	}
	return v, false, nil
}
