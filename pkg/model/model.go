// Package model owns the delayctl model artifact: its JSON schema, the feature encoders, loading
// with verification, atomic saving, and prediction. It is the only package that reads or writes
// model files; train produces a Model, serve and bench consume one. It has no dependency on the
// training stack (no dataframe, no optimizer) so the server binary path stays small.
//
// A model is a logistic regression over encoded features:
//
//	p(delayed) = 1 / (1 + exp(-(intercept + coefficients · x)))
//
// where x is the concatenation of each feature's encoding, in order: a one-hot block of
// len(vocabulary) columns for a categorical feature, or one standardised column
// ((value-mean)/std) for a numeric one. A category the model never saw encodes as an all-zero
// block, so it contributes nothing beyond the intercept: the prediction falls back to the
// other features rather than failing.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// SchemaVersion identifies the artifact format of a model without feature crosses; such
// models are written as v1 so that every earlier delayctl still reads them.
const SchemaVersion = "delayctl.model/v1"

// SchemaVersionCrosses identifies the format of a model with Cross features, which a v1
// reader cannot encode. Decode reads both and refuses a cross in a v1 file.
const SchemaVersionCrosses = "delayctl.model/v2"

// DefaultName is the model name used when the training config gives none. It is the {name}
// in the Open Inference Protocol paths.
const DefaultName = "flight-delay"

// Encodings a Feature can use.
const (
	OneHot   = "onehot"
	Standard = "standard"
	// Cross is the one-hot encoding of a pair of variables' joint value: one column per pair
	// in the vocabulary, plus a last column for every other pair (pairs rarer than the
	// training's minimum count, and pairs never seen).
	Cross = "cross"
)

// CrossSeparator joins the two categories of a Cross vocabulary entry ("ATL:17") and the two
// variable names of a Cross feature ("origin:dep_hour"), as R writes interactions.
const CrossSeparator = ":"

// CrossOther names the last column of a Cross feature in FeatureNames.
const CrossOther = "(other)"

// Model is the artifact. Fields are exported for JSON; construct one by training, or by Load,
// and call Prepare after changing Features or Coefficients by hand.
type Model struct {
	SchemaVersion string    `json:"schema_version"`
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	Label         Label     `json:"label"`
	Input         Columns   `json:"input"`
	Features      []Feature `json:"features"`
	VectorLength  int       `json:"vector_length"`
	Intercept     float64   `json:"intercept"`
	Coefficients  []float64 `json:"coefficients"`
	Threshold     float64   `json:"threshold"`
	Training      Training  `json:"training"`
	// Baseline is the training-time distribution of inputs and predictions (baseline.go);
	// nil in models written before it existed.
	Baseline *Baseline `json:"baseline,omitempty"`
	Checksum string    `json:"checksum"`

	lookups []lookup // per feature, built by Prepare
}

// Label records what the positive class means and how it was derived from the CSV.
type Label struct {
	Name       string `json:"name"`       // e.g. "delayed"
	Definition string `json:"definition"` // e.g. "ARR_DEL15 == 1; cancelled: drop; diverted: drop"
}

// Feature is one encoded block of the input vector.
type Feature struct {
	// Variable is the Flight-derived value encoded, one of Variables(); for a Cross, the two
	// crossed variables joined by CrossSeparator.
	Variable string `json:"variable"`
	// Encoding is OneHot, Standard or Cross.
	Encoding string `json:"encoding"`
	// Cross names the two crossed variables of a Cross feature.
	Cross []string `json:"cross,omitempty"`
	// Vocabulary lists the categories of a OneHot feature, one column each, in order; for a
	// Cross, the kept pairs as "a:b".
	Vocabulary []string `json:"vocabulary,omitempty"`
	// MinCount is the training count below which a Cross pair was pooled into the last column.
	MinCount int `json:"min_count,omitempty"`
	// Mean and Std standardise a Standard feature: (value-Mean)/Std.
	Mean float64 `json:"mean,omitempty"`
	Std  float64 `json:"std,omitempty"`
}

// Width is the number of vector columns the feature occupies.
func (f *Feature) Width() int {
	switch f.Encoding {
	case OneHot:
		return len(f.Vocabulary)
	case Cross:
		return len(f.Vocabulary) + 1
	}
	return 1
}

// Training is provenance: what data and config produced the model and how it scored.
type Training struct {
	DataSHA256  string          `json:"data_sha256"`
	DataFile    string          `json:"data_file"`
	RowsRead    int             `json:"rows_read"`
	RowsUsed    int             `json:"rows_used"`
	TrainRows   int             `json:"train_rows"`
	TestRows    int             `json:"test_rows"`
	Seed        int64           `json:"seed"`
	Config      json.RawMessage `json:"config,omitempty"`
	Metrics     json.RawMessage `json:"metrics,omitempty"`
	ToolVersion string          `json:"tool_version"`
	TrainedAt   string          `json:"trained_at"`
}

type lookup struct {
	offset int
	cats   map[string]int // string categories
	ints   map[int]int    // integer categories
	intOf  func(*Flight) int
	strOf  func(*Flight) string
	std    bool
	mean   float64
	invStd float64
	cross  *crossLookup
}

// crossLookup finds a Cross column without allocating: each side's category maps to a small
// index, and the pair of indexes to the column.
type crossLookup struct {
	side  [2]lookup // cats or ints give the side's index
	pairs map[uint64]int
	other int // column of every other pair, relative to the feature's offset
}

// index returns the side's index of f's category.
func (lk *lookup) index(f *Flight) (int, bool) {
	if lk.ints != nil {
		j, ok := lk.ints[lk.intOf(f)]
		return j, ok
	}
	j, ok := lk.cats[lk.strOf(f)]
	return j, ok
}

// column returns the cross column of f, relative to the feature's offset.
func (c *crossLookup) column(f *Flight) int {
	a, ok := c.side[0].index(f)
	if !ok {
		return c.other
	}
	b, ok := c.side[1].index(f)
	if !ok {
		return c.other
	}
	if j, ok := c.pairs[uint64(a)<<32|uint64(b)]; ok {
		return j
	}
	return c.other
}

// prepareCross builds the lookup of a Cross feature.
func prepareCross(i int, f *Feature) (*crossLookup, error) {
	if len(f.Cross) != 2 || f.Variable != f.Cross[0]+CrossSeparator+f.Cross[1] {
		return nil, fmt.Errorf("feature %d (%s): a cross names two variables in cross and variable %q", i, f.Variable, strings.Join(f.Cross, CrossSeparator))
	}
	c := &crossLookup{pairs: make(map[uint64]int, len(f.Vocabulary)), other: len(f.Vocabulary)}
	var vars [2]variable
	for s, name := range f.Cross {
		v, ok := variables[name]
		if !ok {
			return nil, fmt.Errorf("feature %d (%s): unknown variable %q (known: %v)", i, f.Variable, name, Variables())
		}
		vars[s] = v
		c.side[s] = lookup{intOf: v.intOf, strOf: v.strOf}
		if v.numeric {
			c.side[s].ints = map[int]int{}
		} else {
			c.side[s].cats = map[string]int{}
		}
	}
	for j, entry := range f.Vocabulary {
		parts := strings.Split(entry, CrossSeparator)
		if len(parts) != 2 {
			return nil, fmt.Errorf("feature %d (%s): vocabulary entry %q is not two categories joined by %q", i, f.Variable, entry, CrossSeparator)
		}
		var idx [2]int
		for s, p := range parts {
			side := &c.side[s]
			if vars[s].numeric {
				n, err := strconv.Atoi(p)
				if err != nil {
					return nil, fmt.Errorf("feature %d (%s): vocabulary entry %q: %q is not an integer", i, f.Variable, entry, p)
				}
				if _, ok := side.ints[n]; !ok {
					side.ints[n] = len(side.ints)
				}
				idx[s] = side.ints[n]
			} else {
				if _, ok := side.cats[p]; !ok {
					side.cats[p] = len(side.cats)
				}
				idx[s] = side.cats[p]
			}
		}
		key := uint64(idx[0])<<32 | uint64(idx[1])
		if _, dup := c.pairs[key]; dup {
			return nil, fmt.Errorf("feature %d (%s): vocabulary entry %q repeats", i, f.Variable, entry)
		}
		c.pairs[key] = j
	}
	return c, nil
}

// HasCrosses reports whether any feature is a Cross.
func (m *Model) HasCrosses() bool {
	for _, f := range m.Features {
		if f.Encoding == Cross {
			return true
		}
	}
	return false
}

// schema is the schema version m is written with.
func (m *Model) schema() string {
	if m.HasCrosses() {
		return SchemaVersionCrosses
	}
	return SchemaVersion
}

// NumFeatures is the length of an encoded vector.
func (m *Model) NumFeatures() int { return len(m.Coefficients) }

// ErrShape is wrapped by every Prepare error about inconsistent sizes.
var ErrShape = errors.New("inconsistent model shape")

// Prepare validates the features against the coefficients and builds the lookup tables that
// prediction uses. Load calls it; a trainer calls it once the Model is assembled.
func (m *Model) Prepare() error {
	m.lookups = make([]lookup, len(m.Features))
	offset := 0
	for i := range m.Features {
		f := &m.Features[i]
		if f.Encoding == Cross {
			if m.SchemaVersion == SchemaVersion {
				return fmt.Errorf("feature %d (%s): cross features need schema_version %q, the file says %q", i, f.Variable, SchemaVersionCrosses, m.SchemaVersion)
			}
			c, err := prepareCross(i, f)
			if err != nil {
				return err
			}
			m.lookups[i] = lookup{offset: offset, cross: c}
			offset += f.Width()
			continue
		}
		if len(f.Cross) > 0 || f.MinCount != 0 {
			return fmt.Errorf("feature %d (%s): cross and min_count apply only to encoding %q", i, f.Variable, Cross)
		}
		v, ok := variables[f.Variable]
		if !ok {
			return fmt.Errorf("feature %d: unknown variable %q (known: %v)", i, f.Variable, Variables())
		}
		lk := lookup{offset: offset, intOf: v.intOf, strOf: v.strOf}
		switch f.Encoding {
		case OneHot:
			if len(f.Vocabulary) == 0 {
				return fmt.Errorf("feature %d (%s): %w: one-hot vocabulary is empty", i, f.Variable, ErrShape)
			}
			if v.numeric {
				lk.ints = make(map[int]int, len(f.Vocabulary))
			} else {
				lk.cats = make(map[string]int, len(f.Vocabulary))
			}
			for j, c := range f.Vocabulary {
				if v.numeric {
					n, err := strconv.Atoi(c)
					if err != nil {
						return fmt.Errorf("feature %d (%s): vocabulary entry %q is not an integer", i, f.Variable, c)
					}
					if _, dup := lk.ints[n]; dup {
						return fmt.Errorf("feature %d (%s): vocabulary entry %q repeats", i, f.Variable, c)
					}
					lk.ints[n] = j
				} else {
					if _, dup := lk.cats[c]; dup {
						return fmt.Errorf("feature %d (%s): vocabulary entry %q repeats", i, f.Variable, c)
					}
					lk.cats[c] = j
				}
			}
		case Standard:
			if !v.numeric {
				return fmt.Errorf("feature %d (%s): a string variable cannot be standardised; use %q", i, f.Variable, OneHot)
			}
			if !(f.Std > 0) || math.IsInf(f.Std, 0) || math.IsNaN(f.Mean) || math.IsInf(f.Mean, 0) {
				return fmt.Errorf("feature %d (%s): std must be a positive finite number, got mean %v std %v", i, f.Variable, f.Mean, f.Std)
			}
			lk.std, lk.mean, lk.invStd = true, f.Mean, 1/f.Std
		default:
			return fmt.Errorf("feature %d (%s): unknown encoding %q (want %q, %q or %q)", i, f.Variable, f.Encoding, OneHot, Standard, Cross)
		}
		m.lookups[i] = lk
		offset += f.Width()
	}
	if offset != len(m.Coefficients) {
		return fmt.Errorf("%w: features encode %d columns but there are %d coefficients", ErrShape, offset, len(m.Coefficients))
	}
	if m.VectorLength != offset {
		return fmt.Errorf("%w: vector_length is %d but features encode %d columns", ErrShape, m.VectorLength, offset)
	}
	for j, c := range m.Coefficients {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Errorf("coefficient %d (%s) is %v", j, m.FeatureName(j), c)
		}
	}
	if math.IsNaN(m.Intercept) || math.IsInf(m.Intercept, 0) {
		return fmt.Errorf("intercept is %v", m.Intercept)
	}
	if !(m.Threshold > 0 && m.Threshold < 1) {
		return fmt.Errorf("threshold must be in (0, 1), got %v", m.Threshold)
	}
	return m.validateBaseline()
}

// FeatureNames lists the vector's columns in order: "variable=category" for one-hot columns,
// the variable name for standardised ones.
func (m *Model) FeatureNames() []string {
	names := make([]string, 0, len(m.Coefficients))
	for _, f := range m.Features {
		switch f.Encoding {
		case OneHot, Cross:
			for _, c := range f.Vocabulary {
				names = append(names, f.Variable+"="+c)
			}
			if f.Encoding == Cross {
				names = append(names, f.Variable+"="+CrossOther)
			}
		default:
			names = append(names, f.Variable)
		}
	}
	return names
}

// FeatureName names column j of the vector.
func (m *Model) FeatureName(j int) string {
	for _, f := range m.Features {
		if j < f.Width() {
			switch {
			case f.Encoding == Standard:
				return f.Variable
			case j == len(f.Vocabulary):
				return f.Variable + "=" + CrossOther
			}
			return f.Variable + "=" + f.Vocabulary[j]
		}
		j -= f.Width()
	}
	return fmt.Sprintf("column %d", j)
}

// VectorLengthError reports an encoded vector of the wrong length.
type VectorLengthError struct{ Got, Want int }

func (e *VectorLengthError) Error() string {
	return fmt.Sprintf("feature vector has %d values, the model expects %d", e.Got, e.Want)
}

// ValueError reports a non-finite value in an encoded vector.
type ValueError struct {
	Index int
	Value float64
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("feature vector value %d is %v; values must be finite numbers", e.Index, e.Value)
}

// PredictVector returns the delay probability for an already-encoded vector. It does not
// allocate.
func (m *Model) PredictVector(x []float64) (float64, error) {
	if len(x) != len(m.Coefficients) {
		return 0, &VectorLengthError{Got: len(x), Want: len(m.Coefficients)}
	}
	// Zeros are skipped: encoded vectors are mostly one-hot zeros, adding c*0 changes nothing,
	// and the sum keeps the order (and so the exact result) of Logit. A NaN or infinite value
	// makes z NaN or infinite, so the values are checked only then.
	z := m.Intercept
	c := m.Coefficients[:len(x)]
	for j, v := range x {
		if v != 0 {
			z += c[j] * v
		}
	}
	if math.IsNaN(z) || math.IsInf(z, 0) {
		for j, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, &ValueError{Index: j, Value: v}
			}
		}
		// Finite values whose products overflowed (1e308 times a coefficient): every finite
		// vector has a logit, so it is computed without overflow rather than refused, which
		// would need a bound on the values that the model does not have.
		z = m.wideLogit(x)
	}
	return sigmoid(z), nil
}

// wideLogit is intercept + coefficients · x for finite values whose products or sum overflow
// float64, summed exactly in big.Float and rounded once: the result is the true logit rounded
// to float64 (large terms that cancel leave the small ones intact), ±Inf when it is beyond
// float64's range, never NaN; sigmoid takes ±Inf to exactly 1 or 0. It allocates, but only
// vectors that overflowed come here.
func (m *Model) wideLogit(x []float64) float64 {
	// Exact: a product of two float64s fits 106 bits, and a sum of terms between 2^-2150 and
	// 2^2048 fits wideLogitPrec bits.
	sum := new(big.Float).SetPrec(wideLogitPrec).SetFloat64(m.Intercept)
	var c, v big.Float
	for j, xj := range x {
		if xj != 0 {
			c.SetPrec(106).SetFloat64(m.Coefficients[j])
			c.Mul(&c, v.SetFloat64(xj))
			sum.Add(sum, &c)
		}
	}
	z, _ := sum.Float64()
	return z
}

// wideLogitPrec holds any sum of float64 products exactly (see wideLogit).
const wideLogitPrec = 4400

// PredictFlight validates the named fields and returns the delay probability. It does not
// allocate: it adds the coefficients the flight's categories select instead of building x.
func (m *Model) PredictFlight(f *Flight) (float64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	return sigmoid(m.Logit(f)), nil
}

// Logit returns intercept + coefficients · encode(f) without validating f.
func (m *Model) Logit(f *Flight) float64 {
	z := m.Intercept
	for i := range m.lookups {
		lk := &m.lookups[i]
		switch {
		case lk.cross != nil:
			z += m.Coefficients[lk.offset+lk.cross.column(f)]
		case lk.std:
			z += m.Coefficients[lk.offset] * (float64(lk.intOf(f)) - lk.mean) * lk.invStd
		case lk.ints != nil:
			if j, ok := lk.ints[lk.intOf(f)]; ok {
				z += m.Coefficients[lk.offset+j]
			}
		default:
			if j, ok := lk.cats[lk.strOf(f)]; ok {
				z += m.Coefficients[lk.offset+j]
			}
		}
	}
	return z
}

// Delayed applies the model's decision threshold to a probability.
func (m *Model) Delayed(p float64) bool { return p >= m.Threshold }

// Entry is one non-zero column of a sparse encoded vector.
type Entry struct {
	Col int32
	Val float64
}

// EncodeSparse appends the flight's non-zero vector entries to dst, in column order.
// Training uses it: a one-hot design has a handful of non-zeros per row.
func (m *Model) EncodeSparse(f *Flight, dst []Entry) []Entry {
	for i := range m.lookups {
		lk := &m.lookups[i]
		switch {
		case lk.cross != nil:
			dst = append(dst, Entry{int32(lk.offset + lk.cross.column(f)), 1})
		case lk.std:
			dst = append(dst, Entry{int32(lk.offset), (float64(lk.intOf(f)) - lk.mean) * lk.invStd})
		case lk.ints != nil:
			if j, ok := lk.ints[lk.intOf(f)]; ok {
				dst = append(dst, Entry{int32(lk.offset + j), 1})
			}
		default:
			if j, ok := lk.cats[lk.strOf(f)]; ok {
				dst = append(dst, Entry{int32(lk.offset + j), 1})
			}
		}
	}
	return dst
}

// Encode appends the flight's dense vector to dst[:0] and returns it: the {"x": [...]} form
// of the same flight.
func (m *Model) Encode(f Flight, dst []float64) []float64 {
	n := len(m.Coefficients)
	if cap(dst) < n {
		dst = make([]float64, n)
	}
	dst = dst[:n]
	clear(dst)
	var buf [32]Entry
	for _, e := range m.EncodeSparse(&f, buf[:0]) {
		dst[e.Col] = e.Val
	}
	return dst
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Sigmoid is the logistic function, computed without overflow for large |z|.
func Sigmoid(z float64) float64 { return sigmoid(z) }
