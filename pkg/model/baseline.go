package model

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Unseen names the bin of a category the model's vocabulary lacks, in baselines, metrics
// labels and reports. Category values are airport, carrier or number codes, never this.
const Unseen = "<unseen>"

// DefaultPredictionBins is the number of equal-width probability bins of a baseline.
const DefaultPredictionBins = 20

// Baseline is what the model saw when it was trained, kept in the artifact so that any later
// data (live requests, a new month of flights) can be compared with it. It is optional: models
// written before it existed load without one and simply have no drift reference.
//
// Each feature is cut into bins: a one-hot feature has one bin per vocabulary entry, in
// vocabulary order, plus a last bin for unseen categories; a standardised feature has
// len(Edges)+1 bins split at Edges (a value v falls in the first bin whose edge is >= v).
type Baseline struct {
	// Source says which rows the counts come from, e.g. "held-out test split".
	Source string `json:"source"`
	// Rows is how many rows were counted.
	Rows int `json:"rows"`
	// Features holds one entry per model feature, in feature order.
	Features []FeatureBaseline `json:"features"`
	// Predictions is the distribution of predicted probabilities on the same rows.
	Predictions PredictionBaseline `json:"predictions"`
}

// FeatureBaseline counts the rows that fell in each bin of one feature.
type FeatureBaseline struct {
	Variable string `json:"variable"`
	// Edges split a standardised feature's values into bins; empty for one-hot features.
	Edges []float64 `json:"edges,omitempty"`
	// Counts holds one count per bin.
	Counts []float64 `json:"counts"`
}

// PredictionBaseline is a histogram of probabilities over equal-width bins of [0, 1], with
// the delayed rows of each bin: enough to compare score distributions and calibration.
type PredictionBaseline struct {
	Counts    []float64 `json:"counts"`
	Positives []float64 `json:"positives"`
}

// NumBins is the number of drift bins of feature i: a one-hot feature's categories and
// Unseen, a cross's kept pairs and CrossOther, or a standardised feature's value ranges.
func (m *Model) NumBins(i int) int {
	f := &m.Features[i]
	if f.Encoding == OneHot || f.Encoding == Cross {
		return len(f.Vocabulary) + 1
	}
	if m.Baseline != nil {
		return len(m.Baseline.Features[i].Edges) + 1
	}
	return 1
}

// BinNames names the bins of feature i: its vocabulary then Unseen, or value ranges.
func (m *Model) BinNames(i int) []string {
	f := &m.Features[i]
	switch f.Encoding {
	case OneHot:
		return append(append([]string(nil), f.Vocabulary...), Unseen)
	case Cross:
		return append(append([]string(nil), f.Vocabulary...), CrossOther)
	}
	var edges []float64
	if m.Baseline != nil {
		edges = m.Baseline.Features[i].Edges
	}
	names := make([]string, len(edges)+1)
	lo := "-inf"
	for j := range names {
		hi := "+inf"
		if j < len(edges) {
			hi = strconv.FormatFloat(edges[j], 'g', -1, 64)
		}
		names[j] = "(" + lo + "," + hi + "]"
		lo = hi
	}
	return names
}

// UnseenBin is the bin index of an unseen category of feature i, or -1 when the feature has
// none: a standardised one, or a cross, whose pooled bin also holds the rare pairs training
// saw.
func (m *Model) UnseenBin(i int) int {
	if m.Features[i].Encoding == OneHot {
		return len(m.Features[i].Vocabulary)
	}
	return -1
}

func (m *Model) valueBin(i int, v float64) int32 {
	if m.Baseline == nil {
		return 0
	}
	return int32(sort.SearchFloat64s(m.Baseline.Features[i].Edges, v))
}

// BinFlight writes the bin of each feature for a flight into dst (len(m.Features) long).
// It does not allocate.
func (m *Model) BinFlight(f *Flight, dst []int32) {
	for i := range m.lookups {
		lk := &m.lookups[i]
		switch {
		case lk.cross != nil:
			dst[i] = int32(lk.cross.column(f))
		case lk.std:
			dst[i] = m.valueBin(i, float64(lk.intOf(f)))
		case lk.ints != nil:
			j, ok := lk.ints[lk.intOf(f)]
			if !ok {
				j = len(m.Features[i].Vocabulary)
			}
			dst[i] = int32(j)
		default:
			j, ok := lk.cats[lk.strOf(f)]
			if !ok {
				j = len(m.Features[i].Vocabulary)
			}
			dst[i] = int32(j)
		}
	}
}

// BinVector writes the bin of each feature of an encoded vector into dst: the first active
// column of a one-hot block (none active: unseen), or the bin of a standardised value mapped
// back to its raw scale. x must have NumFeatures values. It does not allocate.
func (m *Model) BinVector(x []float64, dst []int32) {
	for i := range m.lookups {
		lk := &m.lookups[i]
		f := &m.Features[i]
		if lk.std {
			dst[i] = m.valueBin(i, x[lk.offset]*f.Std+f.Mean)
			continue
		}
		// A cross's pooled column is its last; it and an unseen one-hot category both show as
		// no active column among the vocabulary's.
		w := len(f.Vocabulary)
		j := w
		for k, v := range x[lk.offset : lk.offset+w] {
			if v != 0 {
				j = k
				break
			}
		}
		dst[i] = int32(j)
	}
}

// PredictionBin is the equal-width bin of [0, 1] that p falls in, out of n.
func PredictionBin(p float64, n int) int {
	b := int(p * float64(n))
	return min(max(b, 0), n-1)
}

// psiFloor replaces an empty share, as Evidently does, so a bin empty on one side costs a
// large but finite amount.
const psiFloor = 1e-4

// PSI is the population stability index of actual against expected counts over the same
// bins: Σ (aᵢ−eᵢ)·ln(aᵢ/eᵢ) over shares, empty shares counted as 0.0001. 0 means the same
// distribution; 0.1 is commonly read as a moderate and 0.25 as a large shift. NaN when either
// side is empty.
func PSI(expected, actual []float64) float64 {
	var te, ta float64
	for i := range expected {
		te += expected[i]
		ta += actual[i]
	}
	if te == 0 || ta == 0 {
		return math.NaN()
	}
	var psi float64
	for i := range expected {
		e, a := max(expected[i]/te, psiFloor), max(actual[i]/ta, psiFloor)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// validateBaseline checks that a baseline matches the model's features.
func (m *Model) validateBaseline() error {
	b := m.Baseline
	if b == nil {
		return nil
	}
	if len(b.Features) != len(m.Features) {
		return fmt.Errorf("baseline: %w: %d features, the model has %d", ErrShape, len(b.Features), len(m.Features))
	}
	for i := range b.Features {
		fb, f := &b.Features[i], &m.Features[i]
		if fb.Variable != f.Variable {
			return fmt.Errorf("baseline feature %d: variable %q, the model's is %q", i, fb.Variable, f.Variable)
		}
		if f.Encoding == OneHot && len(fb.Edges) > 0 {
			return fmt.Errorf("baseline feature %d (%s): a one-hot feature has no edges", i, f.Variable)
		}
		if !sort.Float64sAreSorted(fb.Edges) {
			return fmt.Errorf("baseline feature %d (%s): edges must be increasing", i, f.Variable)
		}
		if err := counts(fb.Counts, m.NumBins(i)); err != nil {
			return fmt.Errorf("baseline feature %d (%s): %w", i, f.Variable, err)
		}
	}
	p := &b.Predictions
	if len(p.Counts) < 2 {
		return errors.New("baseline predictions: at least 2 bins are needed")
	}
	if err := counts(p.Counts, len(p.Counts)); err != nil {
		return fmt.Errorf("baseline predictions: %w", err)
	}
	if err := counts(p.Positives, len(p.Counts)); err != nil {
		return fmt.Errorf("baseline predictions positives: %w", err)
	}
	return nil
}

func counts(c []float64, n int) error {
	if len(c) != n {
		return fmt.Errorf("%w: %d counts for %d bins", ErrShape, len(c), n)
	}
	for _, v := range c {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("count %v must be a finite number >= 0", v)
		}
	}
	return nil
}
