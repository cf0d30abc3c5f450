package train

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/delayctl/delayctl/pkg/model"
)

// fitEncoders builds the model's features from the rows in idx only (vocabularies, means and
// deviations), so that held-out rows never inform their own encoding.
func fitEncoders(cfg Config, ds *Dataset, idx []int) (*model.Model, error) {
	m := &model.Model{
		SchemaVersion: model.SchemaVersion,
		Name:          cfg.Name,
		Input:         cfg.Columns,
		Threshold:     0.5,
	}
	for _, fc := range cfg.Features {
		f := model.Feature{Variable: fc.Variable, Encoding: fc.Encoding}
		switch fc.Encoding {
		case model.OneHot:
			if model.IsNumeric(fc.Variable) {
				// Count integers, not their strings: this runs once per row and per feature.
				counts := map[int]int{}
				for _, i := range idx {
					counts[int(model.ValueOf(fc.Variable, &ds.Flights[i]))]++
				}
				for c, n := range counts {
					if n >= cfg.MinCategoryCount {
						f.Vocabulary = append(f.Vocabulary, strconv.Itoa(c))
					}
				}
			} else {
				counts := map[string]int{}
				for _, i := range idx {
					counts[model.CategoryOf(fc.Variable, &ds.Flights[i])]++
				}
				for c, n := range counts {
					if n >= cfg.MinCategoryCount {
						f.Vocabulary = append(f.Vocabulary, c)
					}
				}
			}
			sortCategories(f.Vocabulary, model.IsNumeric(fc.Variable))
			if len(f.Vocabulary) == 0 {
				return nil, fmt.Errorf("feature %s: no category occurs at least min_category_count=%d times", fc.Variable, cfg.MinCategoryCount)
			}
		case model.Standard:
			var sum, sq float64
			for _, i := range idx {
				v := model.ValueOf(fc.Variable, &ds.Flights[i])
				sum += v
				sq += v * v
			}
			n := float64(len(idx))
			f.Mean = sum / n
			f.Std = math.Sqrt(math.Max(sq/n-f.Mean*f.Mean, 0))
			if !(f.Std > 0) {
				return nil, fmt.Errorf("feature %s is constant (%v) in the training rows and cannot be standardised; remove it or encode it %s", fc.Variable, f.Mean, model.OneHot)
			}
		}
		m.Features = append(m.Features, f)
		m.VectorLength += f.Width()
	}
	m.Coefficients = make([]float64, m.VectorLength)
	if err := m.Prepare(); err != nil {
		return nil, fmt.Errorf("could not build features: %w", err)
	}
	return m, nil
}

// sortCategories orders a vocabulary numerically for integer variables, else lexically, so the
// vector layout is stable across runs.
func sortCategories(v []string, numeric bool) {
	if !numeric {
		sort.Strings(v)
		return
	}
	sort.Slice(v, func(a, b int) bool {
		x, _ := strconv.Atoi(v[a])
		y, _ := strconv.Atoi(v[b])
		return x < y
	})
}

// design is a sparse (CSR) design matrix with labels and optional weights. Rows of a one-hot
// design hold one non-zero per feature, so the fit's cost grows with rows*features, not with
// rows*columns.
type design struct {
	rowPtr []int
	cols   []int32
	vals   []float64
	y      []float64
	w      []float64 // nil: every weight is 1
	p      int       // columns, excluding the intercept
}

func (d *design) rows() int { return len(d.y) }

func buildDesign(m *model.Model, ds *Dataset, idx []int, weights [2]float64) *design {
	per := len(m.Features)
	d := &design{
		rowPtr: make([]int, 1, len(idx)+1),
		cols:   make([]int32, 0, len(idx)*per),
		vals:   make([]float64, 0, len(idx)*per),
		y:      make([]float64, len(idx)),
		p:      m.NumFeatures(),
	}
	if weights != [2]float64{1, 1} {
		d.w = make([]float64, len(idx))
	}
	var buf []model.Entry
	for r, i := range idx {
		buf = m.EncodeSparse(&ds.Flights[i], buf[:0])
		for _, e := range buf {
			d.cols = append(d.cols, e.Col)
			d.vals = append(d.vals, e.Val)
		}
		d.rowPtr = append(d.rowPtr, len(d.cols))
		if ds.Delayed[i] {
			d.y[r] = 1
		}
		if d.w != nil {
			d.w[r] = weights[int(d.y[r])]
		}
	}
	return d
}

// classWeights returns the weights of the negative and positive class.
func classWeights(mode string, ds *Dataset, idx []int) [2]float64 {
	if mode != "balanced" {
		return [2]float64{1, 1}
	}
	var n [2]float64
	for _, i := range idx {
		if ds.Delayed[i] {
			n[1]++
		} else {
			n[0]++
		}
	}
	total := n[0] + n[1]
	return [2]float64{total / (2 * n[0]), total / (2 * n[1])}
}
